#include "report/summary_table.hpp"

#include <fmt/format.h>

#include "core/units.hpp"
#include "report/process_rows.hpp"
#include "report/summary_json.hpp"

namespace memscope::report {
namespace {

constexpr size_t kNameWidth = 20;

// "1.2 GiB at 12.3s" in 19 columns.
std::string peak_cell(const analyze::Peak& peak) {
  if (!peak.seen) return fmt::format("{:>19}", "-");
  return fmt::format("{:>10} at {:<5}", format_bytes(peak.bytes), format_duration(peak.t_seconds));
}

std::string fit(std::string text, size_t width) {
  if (text.size() <= width) return text;
  return text.substr(0, width - 3) + "...";
}

// Indented by depth; "*" marks PSS/USS that fell back to RSS.
std::string process_name(const analyze::ProcessPeaks& process, int depth) {
  std::string name(static_cast<size_t>(std::min(depth, 4)) * 2, ' ');
  name += process.comm.empty() ? std::string("?") : process.comm;
  if (process.rank) name += fmt::format(" r{}", *process.rank);
  const std::string marker = process.smaps_ever_unreadable ? "*" : "";
  return fit(name, kNameWidth - marker.size()) + marker;
}

double percent(uint64_t part, uint64_t whole) {
  return whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
}

double recording_seconds(const analyze::PeakSummary& summary, const RecordingInfo& info) {
  if (info.start_unix_ms > 0 && info.end_unix_ms > info.start_unix_ms) {
    return static_cast<double>(info.end_unix_ms - info.start_unix_ms) / 1000.0;
  }
  return summary.duration_seconds;
}

void header(std::string& out, const analyze::PeakSummary& summary, const RecordingInfo& info) {
  const std::string command = info.command.empty() ? "(profile)" : command_line(info.command);
  out += fit(fmt::format("memscope: {}", command), kSummaryWidth) + "\n";
  const std::string outcome =
      info.outcome.empty() ? "did not finish (no outcome recorded)" : info.outcome;
  out += fit(fmt::format("  {} after {}; {} samples every {}s", outcome,
                         format_duration(recording_seconds(summary, info)), summary.sample_count,
                         info.interval_seconds),
             kSummaryWidth) +
         "\n";
}

void processes(std::string& out, const analyze::PeakSummary& summary) {
  if (summary.processes.empty()) return;
  out += fmt::format("\n{:>7} {:<{}} {:>19} {:>19} {:>19} {:>10}\n", "PID", "PROCESS", kNameWidth,
                     "peak RSS", "peak PSS", "peak USS", "peak GPU");
  const ProcessRows rows = select_process_rows(summary, kSummaryMaxProcesses);
  bool any_unreadable = false;
  for (const analyze::TreeEntry& entry : rows.shown) {
    const analyze::ProcessPeaks& process = summary.processes[entry.index];
    any_unreadable = any_unreadable || process.smaps_ever_unreadable;
    out += fmt::format("{:>7} {:<{}} {} {} {} {:>10}\n", process.pid,
                       process_name(process, entry.depth), kNameWidth, peak_cell(process.rss),
                       peak_cell(process.pss), peak_cell(process.uss),
                       process.gpu.bytes > 0 ? format_bytes(process.gpu.bytes) : "-");
  }
  if (rows.hidden_count > 0) {
    out += fmt::format("{:>7} … {} more processes, {} peak USS together\n", "", rows.hidden_count,
                       format_bytes(rows.hidden_peak_uss_bytes));
  }
  const analyze::TreePeaks& tree = summary.tree;
  out += fmt::format("{:>7} {:<{}} {} {} {} {:>10}\n", "",
                     any_unreadable ? "all processes*" : "all processes", kNameWidth,
                     peak_cell(tree.rss), peak_cell(tree.pss), peak_cell(tree.uss),
                     tree.gpu.bytes > 0 ? format_bytes(tree.gpu.bytes) : "-");
  if (any_unreadable) {
    out += "        * smaps_rollup was unreadable: PSS and USS fell back to RSS\n";
  }
}

void devices(std::string& out, const analyze::PeakSummary& summary) {
  if (summary.devices.empty()) return;
  out += fmt::format("\n{:>3}  {:<27} {:>19} {:>6} {:>10} {:>10} {:>15}\n", "GPU", "NAME",
                     "peak used", "", "total", "reserved", "busy avg/max");
  for (const analyze::DevicePeaks& device : summary.devices) {
    const std::string busy =
        device.avg_gpu_utilization_percent
            ? fmt::format("{:.0f}%/{:.0f}%", *device.avg_gpu_utilization_percent,
                          device.max_gpu_utilization_percent.value_or(0))
            : std::string("-");
    out += fmt::format(
        "{:>3}  {:<27} {} {:>5.0f}% {:>10} {:>10} {:>15}\n", device.index,
        fit(device.name.empty() ? "?" : device.name, 27), peak_cell(device.peak_used),
        percent(device.peak_used.bytes, device.total_bytes), format_bytes(device.total_bytes),
        device.has_reserved ? format_bytes(device.peak_reserved.bytes) : "-", busy);
    for (const analyze::GpuProcessPeak& process : device.processes) {
      const std::string name = gpu_process_label(summary, process);
      out += fmt::format("{:>3}    {:<25} {}\n", "", fit(name, 25), peak_cell(process.peak_used));
    }
    if (device.unreadable_count > 0) {
      out += fmt::format("{:>3}    could not be read in {} of {} samples\n", "",
                         device.unreadable_count, device.sample_count);
    }
  }
}

void host(std::string& out, const analyze::PeakSummary& summary, const RecordingInfo& info) {
  const analyze::HostPeaks& host = summary.host;
  if (!host.peak_used.seen) return;
  const uint64_t limit = host.limit_at_peak_bytes > 0 ? host.limit_at_peak_bytes : host.limit_bytes;
  out += "\n";
  out += fit(fmt::format("host   peak used {} of {} ({:.0f}%) at {}; limit from {}",
                         format_bytes(host.peak_used.bytes), format_bytes(limit),
                         percent(host.peak_used.bytes, limit),
                         format_duration(host.peak_used.t_seconds), host.limit_source),
             kSummaryWidth) +
         "\n";
  std::string second = fmt::format("       swap peak {}", format_bytes(host.peak_swap_used.bytes));
  if (host.pressure_available) {
    second += fmt::format("; memory pressure (PSI avg10) max some {:.1f}%, full {:.1f}%",
                          host.max_some_avg10, host.max_full_avg10);
  }
  out += second + "\n";
  if (host.vmstat_oom_kill_delta > 0 || host.cgroup_oom_kill_delta > 0 || info.oom_killed) {
    out += fmt::format("       OOM kills during the recording: {} on the host",
                       host.vmstat_oom_kill_delta);
    if (host.has_cgroup) out += fmt::format(", {} in the job's cgroup", host.cgroup_oom_kill_delta);
    if (info.oom_killed) out += "; the command itself was OOM-killed";
    out += "\n";
  }
}

std::string without_trailing_spaces(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    const bool newline = end != std::string::npos;
    if (!newline) end = text.size();
    size_t last = end;
    while (last > start && text[last - 1] == ' ') --last;
    out.append(text, start, last - start);
    if (newline) out += '\n';
    start = end + 1;
  }
  return out;
}

}  // namespace

std::string render_summary(const analyze::PeakSummary& summary, const RecordingInfo& info) {
  std::string out;
  header(out, summary, info);
  if (summary.sample_count == 0) {
    out += "  no samples were recorded\n";
    return out;
  }
  processes(out, summary);
  devices(out, summary);
  host(out, summary, info);
  return without_trailing_spaces(out);
}

}  // namespace memscope::report
