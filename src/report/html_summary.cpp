// The summary tables of an HTML report.
#include <fmt/format.h>

#include "core/units.hpp"
#include "report/escape.hpp"
#include "report/html_page.hpp"
#include "report/process_rows.hpp"

namespace memscope::report {
namespace {

std::string peak_cell(const analyze::Peak& peak) {
  if (!peak.seen) return "<td class=\"num\">-</td>";
  if (peak.bytes == 0) return "<td class=\"num\">0 B</td>";
  return fmt::format("<td class=\"num\">{}<span class=\"at\"> at {}</span></td>",
                     format_bytes(peak.bytes), format_duration(peak.t_seconds));
}

std::string bytes_cell(uint64_t bytes) {
  return fmt::format("<td class=\"num\">{}</td>", bytes > 0 ? format_bytes(bytes) : "-");
}

double percent(uint64_t part, uint64_t whole) {
  return whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
}

void process_table(std::string& out, const analyze::PeakSummary& summary, size_t max_processes) {
  if (summary.processes.empty()) return;
  out +=
      "<h3>Processes</h3>\n<table class=\"summary processes\">\n<thead><tr><th>PID</th>"
      "<th>process</th><th>rank</th><th>seen</th><th>peak RSS</th><th>peak PSS</th>"
      "<th>peak USS</th><th>peak swap</th><th>peak GPU</th></tr></thead>\n<tbody>\n";
  const ProcessRows rows = select_process_rows(summary, max_processes);
  bool any_unreadable = false;
  for (const analyze::TreeEntry& entry : rows.shown) {
    const analyze::ProcessPeaks& process = summary.processes[entry.index];
    any_unreadable = any_unreadable || process.smaps_ever_unreadable;
    const std::string rank =
        process.rank
            ? fmt::format("{}{}", *process.rank,
                          process.world_size ? fmt::format("/{}", *process.world_size) : "")
            : "";
    out += fmt::format(
        "<tr><td class=\"num\">{}</td><td class=\"name\" style=\"padding-left:{}em\" "
        "title=\"{}\">{}{}<span "
        "class=\"cmd\">{}</span></td><td>{}</td><td>{}&ndash;{}</td>{}{}{}{}{}"
        "</tr>\n",
        process.pid, 0.4 + 1.2 * std::min(entry.depth, 6), html_escape(process.cmdline),
        html_escape(process.comm.empty() ? "?" : process.comm),
        process.smaps_ever_unreadable
            ? "<sup title=\"smaps_rollup unreadable: PSS/USS are RSS\">*</sup>"
            : "",
        process.cmdline == process.comm ? "" : html_escape(process.cmdline), rank,
        format_duration(process.first_seen_seconds), format_duration(process.last_seen_seconds),
        peak_cell(process.rss), peak_cell(process.pss), peak_cell(process.uss),
        bytes_cell(process.swap.bytes), bytes_cell(process.gpu.bytes));
  }
  if (rows.hidden_count > 0) {
    out += fmt::format(
        "<tr class=\"more\"><td></td><td colspan=\"8\">&hellip; {} more processes, {} peak USS "
        "together</td></tr>\n",
        rows.hidden_count, format_bytes(rows.hidden_peak_uss_bytes));
  }
  const analyze::TreePeaks& tree = summary.tree;
  out += fmt::format(
      "<tr class=\"total\"><td></td><td class=\"name\">all processes (sum at its "
      "peak)</td><td></td>"
      "<td>up to {} at once</td>{}{}{}{}{}</tr>\n</tbody></table>\n",
      tree.max_process_count, peak_cell(tree.rss), peak_cell(tree.pss), peak_cell(tree.uss),
      bytes_cell(tree.swap.bytes), bytes_cell(tree.gpu.bytes));
  if (any_unreadable) {
    out += "<p class=\"note\">* smaps_rollup was unreadable: PSS and USS fell back to RSS.</p>\n";
  }
}

void device_table(std::string& out, const analyze::PeakSummary& summary) {
  if (summary.devices.empty()) return;
  out +=
      "<h3>GPUs</h3>\n<table class=\"summary devices\">\n<thead><tr><th>GPU</th><th>name</th>"
      "<th>peak used</th><th>of total</th><th>peak reserved</th><th>memory used avg/max</th>"
      "<th>busy avg/max</th><th>API</th></tr></thead>\n<tbody>\n";
  for (const analyze::DevicePeaks& device : summary.devices) {
    const std::string busy =
        device.avg_gpu_utilization_percent
            ? fmt::format("{:.0f}% / {:.0f}%", *device.avg_gpu_utilization_percent,
                          device.max_gpu_utilization_percent.value_or(0))
            : "-";
    out += fmt::format(
        "<tr><td class=\"num\">{}</td><td>{}<span class=\"cmd\">{}</span></td>{}<td "
        "class=\"num\">{} "
        "({:.0f}%)</td>{}<td class=\"num\">{:.0f}% / {:.0f}%</td><td "
        "class=\"num\">{}</td><td>{}</td></tr>\n",
        device.index, html_escape(device.name), html_escape(device.uuid),
        peak_cell(device.peak_used), format_bytes(device.total_bytes),
        percent(device.peak_used.bytes, device.total_bytes),
        device.has_reserved ? peak_cell(device.peak_reserved) : "<td class=\"num\">-</td>",
        device.avg_memory_percent, device.max_memory_percent, busy, html_escape(device.memory_api));
    for (const analyze::GpuProcessPeak& process : device.processes) {
      const std::string name = gpu_process_label(summary, process);
      out += fmt::format(
          "<tr class=\"sub\"><td></td><td class=\"name\">{}</td>{}<td colspan=\"5\">"
          "</td></tr>\n",
          html_escape(name), peak_cell(process.peak_used));
    }
    if (device.unreadable_count > 0) {
      out += fmt::format(
          "<tr class=\"sub\"><td></td><td colspan=\"7\">could not be read in {} of "
          "{} samples</td></tr>\n",
          device.unreadable_count, device.sample_count);
    }
  }
  out += "</tbody></table>\n";
}

void host_table(std::string& out, const analyze::PeakSummary& summary) {
  const analyze::HostPeaks& host = summary.host;
  if (!host.peak_used.seen) return;
  const uint64_t limit = host.limit_at_peak_bytes > 0 ? host.limit_at_peak_bytes : host.limit_bytes;
  out += "<h3>Host</h3>\n<table class=\"summary host\"><tbody>\n";
  out += fmt::format("<tr><th>peak used</th>{}<td>{:.0f}% of {} (limit from {})</td></tr>\n",
                     peak_cell(host.peak_used), percent(host.peak_used.bytes, limit),
                     format_bytes(limit), html_escape(host.limit_source));
  out += fmt::format("<tr><th>MemTotal</th>{}<td></td></tr>\n", bytes_cell(host.mem_total_bytes));
  out +=
      fmt::format("<tr><th>peak swap used</th>{}<td></td></tr>\n", peak_cell(host.peak_swap_used));
  if (host.pressure_available) {
    out += fmt::format(
        "<tr><th>memory pressure</th><td class=\"num\">{:.1f}% / {:.1f}%</td>"
        "<td>highest PSI avg10, some / full</td></tr>\n",
        host.max_some_avg10, host.max_full_avg10);
  }
  if (host.has_vmstat_oom_kill || host.has_cgroup) {
    out += fmt::format(
        "<tr><th>OOM kills</th><td class=\"num\">{}</td><td>during the recording "
        "(host{})</td></tr>\n",
        host.vmstat_oom_kill_delta,
        host.has_cgroup ? fmt::format("; {} in the job's cgroup", host.cgroup_oom_kill_delta) : "");
  }
  out += "</tbody></table>\n";
}

}  // namespace

std::string summary_html(const analyze::PeakSummary& summary, size_t max_processes) {
  std::string out;
  if (summary.sample_count == 0) return "<p class=\"note\">No samples were recorded.</p>\n";
  process_table(out, summary, max_processes);
  device_table(out, summary);
  host_table(out, summary);
  return out;
}

}  // namespace memscope::report
