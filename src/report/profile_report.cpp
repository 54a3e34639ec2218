#include "report/profile_report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/units.hpp"
#include "report/escape.hpp"
#include "report/summary_json.hpp"

namespace memscope::report {
namespace {

using nlohmann::json;

double percent(uint64_t part, uint64_t whole) {
  return whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
}

// Rounded so reports stay readable; two decimals are plenty for a percentage.
double round2(double value) { return std::round(value * 100.0) / 100.0; }

const DeviceSample* find_device(const Sample& sample, int index) {
  for (const DeviceSample& device : sample.devices) {
    if (device.index == index) return &device;
  }
  return nullptr;
}

std::string comm_of(const analyze::PeakSummary& summary, const Sample& last, unsigned pid) {
  for (const ProcessSample& process : last.processes) {
    if (process.pid >= 0 && static_cast<unsigned>(process.pid) == pid)
      return valid_utf8(process.comm);
  }
  if (pid <= static_cast<unsigned>(std::numeric_limits<int>::max())) {
    if (const auto* process = summary.find_process(static_cast<int>(pid))) {
      return valid_utf8(process->comm);
    }
  }
  return "";
}

json device_report(const analyze::DevicePeaks& peaks, const DeviceSample& current,
                   const analyze::PeakSummary& summary, const Sample& last) {
  const uint64_t total = current.total_bytes > 0 ? current.total_bytes : peaks.total_bytes;
  json processes = json::array();
  for (const analyze::GpuProcessPeak& process : peaks.processes) {
    processes.push_back({{"pid", process.pid},
                         {"comm", comm_of(summary, last, process.pid)},
                         {"used_bytes", process.last_used_bytes},
                         {"peak_used_bytes", process.peak_used.bytes},
                         {"peak_used_time_seconds", seconds_json(process.peak_used.t_seconds)}});
  }
  json errors = current.errors;
  if (!current.ok && current.errors.empty()) errors.push_back("device could not be read");
  return {
      {"name", valid_utf8(peaks.name)},
      {"uuid", valid_utf8(peaks.uuid)},
      {"memory_api", peaks.memory_api},
      {"current_memory",
       {{"allocated", current.used_bytes},
        {"free", current.free_bytes},
        {"total", total},
        {"utilization", round2(percent(current.used_bytes, total))},
        {"reserved_bytes",
         current.reserved_bytes ? json(*current.reserved_bytes) : json(nullptr)}}},
      {"peak_memory", peaks.peak_used.bytes},
      {"peak_memory_time_seconds", seconds_json(peaks.peak_used.t_seconds)},
      {"peak_reserved_bytes", peaks.has_reserved ? json(peaks.peak_reserved.bytes) : json(nullptr)},
      {"statistics",
       {{"avg_utilization", round2(peaks.avg_memory_percent)},
        {"max_utilization", round2(peaks.max_memory_percent)},
        {"avg_gpu_utilization", peaks.avg_gpu_utilization_percent
                                    ? json(round2(*peaks.avg_gpu_utilization_percent))
                                    : json(nullptr)},
        {"max_gpu_utilization", peaks.max_gpu_utilization_percent
                                    ? json(round2(*peaks.max_gpu_utilization_percent))
                                    : json(nullptr)},
        {"num_snapshots", peaks.sample_count},
        {"unreadable_snapshots", peaks.unreadable_count}}},
      {"processes", std::move(processes)},
      {"errors", std::move(errors)},
  };
}

json top_processes(const analyze::PeakSummary& summary, const Sample& last) {
  std::vector<const analyze::ProcessPeaks*> order;
  order.reserve(summary.processes.size());
  for (const auto& process : summary.processes) order.push_back(&process);
  std::sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
    if (a->uss.bytes != b->uss.bytes) return a->uss.bytes > b->uss.bytes;
    if (a->rss.bytes != b->rss.bytes) return a->rss.bytes > b->rss.bytes;
    return a->pid < b->pid;
  });
  if (order.size() > kTopProcesses) order.resize(kTopProcesses);
  json out = json::array();
  for (const analyze::ProcessPeaks* process : order) {
    // Current figures are those of the last sample; a process gone by then shows zeros.
    const bool alive = process->last_seen_seconds >= last.t_seconds;
    const analyze::MemoryFigures current = alive ? process->last : analyze::MemoryFigures{};
    out.push_back({{"pid", process->pid},
                   {"comm", valid_utf8(process->comm)},
                   {"cmdline", valid_utf8(process->cmdline)},
                   {"alive", alive},
                   {"rss_bytes", current.rss_bytes},
                   {"pss_bytes", current.pss_bytes},
                   {"uss_bytes", current.uss_bytes},
                   {"swap_bytes", current.swap_bytes},
                   {"gpu_bytes", current.gpu_bytes},
                   {"peak_rss_bytes", process->rss.bytes},
                   {"peak_rss_time_seconds", seconds_json(process->rss.t_seconds)},
                   {"peak_uss_bytes", process->uss.bytes},
                   {"peak_uss_time_seconds", seconds_json(process->uss.t_seconds)},
                   {"smaps_readable", !process->smaps_ever_unreadable}});
  }
  return out;
}

json host_report(const analyze::PeakSummary& summary, const Sample& last) {
  const SystemSample& system = last.system;
  const MemInfo& meminfo = system.meminfo;
  const analyze::HostPeaks& host = summary.host;
  const uint64_t swap_used = meminfo.swap_total_bytes > meminfo.swap_free_bytes
                                 ? meminfo.swap_total_bytes - meminfo.swap_free_bytes
                                 : 0;
  json pressure = pressure_json(system.pressure);
  pressure["max_some_avg10"] = host.max_some_avg10;
  pressure["max_full_avg10"] = host.max_full_avg10;
  return {
      {"system",
       {{"total_bytes", meminfo.total_bytes},
        {"available_bytes", meminfo.available_bytes},
        {"used_bytes", meminfo.total_bytes > meminfo.available_bytes
                           ? meminfo.total_bytes - meminfo.available_bytes
                           : 0},
        {"free_bytes", meminfo.free_bytes},
        {"cached_bytes", meminfo.cached_bytes},
        {"shmem_bytes", meminfo.shmem_bytes}}},
      {"limit",
       {{"limit_bytes", system.limit_bytes},
        {"source", valid_utf8(system.limit_source)},
        {"used_bytes", system.used_bytes},
        {"used_percent", round2(percent(system.used_bytes, system.limit_bytes))},
        {"peak_used_bytes", host.peak_used.bytes},
        {"peak_used_time_seconds", seconds_json(host.peak_used.t_seconds)}}},
      {"cgroup", cgroup_json(system.cgroup)},
      {"swap",
       {{"total_bytes", meminfo.swap_total_bytes},
        {"used_bytes", swap_used},
        {"peak_used_bytes", host.peak_swap_used.bytes}}},
      {"pressure", std::move(pressure)},
      {"oom_kills",
       {{"host", host.has_vmstat_oom_kill ? json(host.vmstat_oom_kill_delta) : json(nullptr)},
        {"cgroup", host.has_cgroup ? json(host.cgroup_oom_kill_delta) : json(nullptr)}}},
      {"top_processes", top_processes(summary, last)},
  };
}

json notes(const analyze::PeakSummary& summary, const Sample& last) {
  json out = json::array();
  for (const std::string& note : last.system.notes) out.push_back(valid_utf8(note));
  size_t unreadable = 0;
  for (const auto& process : summary.processes) unreadable += process.smaps_ever_unreadable ? 1 : 0;
  if (unreadable > 0) {
    out.push_back(fmt::format(
        "smaps_rollup was unreadable for {} process(es) (another user's?): their PSS and USS "
        "are their RSS",
        unreadable));
  }
  for (const auto& device : summary.devices) {
    if (device.unreadable_count > 0) {
      out.push_back(fmt::format("GPU {} could not be read in {} of {} samples", device.index,
                                device.unreadable_count, device.sample_count));
    }
  }
  if (summary.host.vmstat_oom_kill_delta > 0) {
    out.push_back(fmt::format("the kernel OOM killer ran {} time(s) during the profile",
                              summary.host.vmstat_oom_kill_delta));
  }
  return out;
}

}  // namespace

json profile_json(const analyze::PeakSummary& summary, const Sample& last,
                  const RecordingInfo& info) {
  json devices = json::object();
  for (const analyze::DevicePeaks& peaks : summary.devices) {
    const DeviceSample* current = find_device(last, peaks.index);
    devices[std::to_string(peaks.index)] =
        device_report(peaks, current != nullptr ? *current : peaks.last, summary, last);
  }
  const int64_t timestamp_ms = summary.sample_count > 0 ? summary.last_unix_ms : last.unix_ms;
  return {
      {"report", "memscope-profile"},
      {"schema_version", kProfileSchemaVersion},
      {"timestamp", rfc3339_utc(timestamp_ms)},
      {"start",
       summary.sample_count > 0 ? json(rfc3339_utc(summary.first_unix_ms)) : json(nullptr)},
      {"duration_seconds", seconds_json(summary.duration_seconds)},
      {"interval_seconds", info.interval_seconds},
      {"num_samples", summary.sample_count},
      {"hostname", valid_utf8(info.hostname)},
      {"memscope_version", info.memscope_version},
      {"devices", std::move(devices)},
      {"host", host_report(summary, last)},
      {"notes", notes(summary, last)},
  };
}

}  // namespace memscope::report
