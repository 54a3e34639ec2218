#include "report/summary_json.hpp"

#include <fmt/format.h>

#include <cmath>

#include "core/units.hpp"
#include "report/escape.hpp"

namespace memscope::report {
namespace {

using nlohmann::json;

template <class T>
json optional_json(const std::optional<T>& value) {
  return value ? json(*value) : json(nullptr);
}

void put_peak(json& out, const char* name, const analyze::Peak& peak) {
  out[fmt::format("peak_{}_bytes", name)] = peak.bytes;
  out[fmt::format("peak_{}_time_seconds", name)] = seconds_json(peak.t_seconds);
}

json process_json(const analyze::ProcessPeaks& process) {
  json out = {
      {"pid", process.pid},
      {"ppid", process.ppid},
      {"start_time_ticks", process.start_time_ticks},
      {"comm", valid_utf8(process.comm)},
      {"cmdline", valid_utf8(process.cmdline)},
      {"rank", optional_json(process.rank)},
      {"local_rank", optional_json(process.local_rank)},
      {"world_size", optional_json(process.world_size)},
      {"first_seen_seconds", seconds_json(process.first_seen_seconds)},
      {"last_seen_seconds", seconds_json(process.last_seen_seconds)},
      {"sample_count", process.sample_count},
      {"smaps_readable", !process.smaps_ever_unreadable},
  };
  put_peak(out, "rss", process.rss);
  put_peak(out, "pss", process.pss);
  put_peak(out, "uss", process.uss);
  put_peak(out, "swap", process.swap);
  put_peak(out, "gpu", process.gpu);
  out["last"] = {{"rss_bytes", process.last.rss_bytes},
                 {"pss_bytes", process.last.pss_bytes},
                 {"uss_bytes", process.last.uss_bytes},
                 {"swap_bytes", process.last.swap_bytes},
                 {"gpu_bytes", process.last.gpu_bytes}};
  return out;
}

json device_peaks_json(const analyze::DevicePeaks& device) {
  json processes = json::array();
  for (const analyze::GpuProcessPeak& process : device.processes) {
    processes.push_back({{"pid", process.pid},
                         {"peak_used_bytes", process.peak_used.bytes},
                         {"peak_used_time_seconds", seconds_json(process.peak_used.t_seconds)},
                         {"last_used_bytes", process.last_used_bytes}});
  }
  json out = {
      {"index", device.index},
      {"name", valid_utf8(device.name)},
      {"uuid", valid_utf8(device.uuid)},
      {"memory_api", device.memory_api},
      {"total_bytes", device.total_bytes},
      {"avg_memory_percent", device.avg_memory_percent},
      {"max_memory_percent", device.max_memory_percent},
      {"avg_gpu_utilization_percent", optional_json(device.avg_gpu_utilization_percent)},
      {"max_gpu_utilization_percent", optional_json(device.max_gpu_utilization_percent)},
      {"sample_count", device.sample_count},
      {"unreadable_count", device.unreadable_count},
  };
  put_peak(out, "used", device.peak_used);
  out["peak_reserved_bytes"] =
      device.has_reserved ? json(device.peak_reserved.bytes) : json(nullptr);
  out["processes"] = std::move(processes);
  out["last"] = device_json(device.last);
  return out;
}

json host_json(const analyze::HostPeaks& host) {
  json out = {
      {"limit_at_peak_bytes", host.limit_at_peak_bytes},
      {"limit_bytes", host.limit_bytes},
      {"limit_source", valid_utf8(host.limit_source)},
      {"mem_total_bytes", host.mem_total_bytes},
      {"pressure_available", host.pressure_available},
      {"max_some_avg10", host.max_some_avg10},
      {"max_full_avg10", host.max_full_avg10},
      {"vmstat_oom_kill_delta",
       host.has_vmstat_oom_kill ? json(host.vmstat_oom_kill_delta) : json(nullptr)},
      {"cgroup_oom_kill_delta", host.has_cgroup ? json(host.cgroup_oom_kill_delta) : json(nullptr)},
  };
  put_peak(out, "used", host.peak_used);
  put_peak(out, "swap_used", host.peak_swap_used);
  return out;
}

}  // namespace

double seconds_json(double seconds) { return std::round(seconds * 1000.0) / 1000.0; }

std::string command_line(const std::vector<std::string>& command) {
  std::string out;
  for (const std::string& argument : command) {
    if (!out.empty()) out += ' ';
    const bool plain =
        !argument.empty() && argument.find_first_of(" \t\n'\"\\$`;&|<>()*?") == std::string::npos;
    if (plain) {
      out += argument;
      continue;
    }
    out += '\'';
    for (char c : argument) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    out += '\'';
  }
  return out;
}

json recording_json(const RecordingInfo& info) {
  const bool ended = info.end_unix_ms > 0;
  json command = json::array();
  for (const std::string& argument : info.command) command.push_back(valid_utf8(argument));
  return {
      {"command", std::move(command)},
      {"command_line", valid_utf8(command_line(info.command))},
      {"hostname", valid_utf8(info.hostname)},
      {"memscope_version", info.memscope_version},
      {"start", info.start_unix_ms > 0 ? json(rfc3339_utc(info.start_unix_ms)) : json(nullptr)},
      {"end", ended ? json(rfc3339_utc(info.end_unix_ms)) : json(nullptr)},
      {"duration_seconds",
       ended ? json(static_cast<double>(info.end_unix_ms - info.start_unix_ms) / 1000.0)
             : json(nullptr)},
      {"interval_seconds", info.interval_seconds},
      {"root_pid", info.root_pid},
      {"device_filter", info.device_filter},
      {"exit_code", optional_json(info.exit_code)},
      {"term_signal", optional_json(info.term_signal)},
      {"oom_killed", info.oom_killed},
      {"outcome", valid_utf8(info.outcome)},
  };
}

json events_json(const std::vector<RecordingEvent>& events) {
  json out = json::array();
  for (const RecordingEvent& event : events) {
    out.push_back({{"t_seconds", seconds_json(event.t_seconds)},
                   {"kind", valid_utf8(event.kind)},
                   {"message", valid_utf8(event.message)}});
  }
  return out;
}

json summary_json(const analyze::PeakSummary& summary) {
  json tree = {{"max_process_count", summary.tree.max_process_count}};
  put_peak(tree, "rss", summary.tree.rss);
  put_peak(tree, "pss", summary.tree.pss);
  put_peak(tree, "uss", summary.tree.uss);
  put_peak(tree, "swap", summary.tree.swap);
  put_peak(tree, "gpu", summary.tree.gpu);
  json processes = json::array();
  for (const auto& process : summary.processes) processes.push_back(process_json(process));
  json devices = json::array();
  for (const auto& device : summary.devices) devices.push_back(device_peaks_json(device));
  const bool any = summary.sample_count > 0;
  return {
      {"sample_count", summary.sample_count},
      {"first_t_seconds", seconds_json(summary.first_t_seconds)},
      {"last_t_seconds", seconds_json(summary.last_t_seconds)},
      {"duration_seconds", seconds_json(summary.duration_seconds)},
      {"first_timestamp", any ? json(rfc3339_utc(summary.first_unix_ms)) : json(nullptr)},
      {"last_timestamp", any ? json(rfc3339_utc(summary.last_unix_ms)) : json(nullptr)},
      {"tree", std::move(tree)},
      {"processes", std::move(processes)},
      {"devices", std::move(devices)},
      {"host", host_json(summary.host)},
  };
}

json pressure_json(const Pressure& pressure) {
  const auto line = [](const PressureLine& l) {
    return json{{"avg10", l.avg10},
                {"avg60", l.avg60},
                {"avg300", l.avg300},
                {"total_microseconds", l.total_microseconds}};
  };
  if (!pressure.available) return {{"available", false}, {"some", nullptr}, {"full", nullptr}};
  return {{"available", true}, {"some", line(pressure.some)}, {"full", line(pressure.full)}};
}

json cgroup_json(const std::optional<CgroupMemory>& cgroup) {
  if (!cgroup || cgroup->version == 0) return nullptr;
  return {
      {"version", cgroup->version},
      {"path", valid_utf8(cgroup->path)},
      {"usage_bytes", cgroup->usage_bytes},
      {"limit_bytes", optional_json(cgroup->limit_bytes)},
      {"limit_path", valid_utf8(cgroup->limit_path)},
      {"oom_events", cgroup->oom_events},
      {"oom_kill_events", cgroup->oom_kill_events},
      {"swap_usage_bytes", cgroup->swap_usage_bytes},
  };
}

json device_json(const DeviceSample& device) {
  json processes = json::array();
  for (const GpuProcess& process : device.processes) {
    processes.push_back(
        {{"pid", process.pid}, {"used_bytes", process.used_bytes}, {"graphics", process.graphics}});
  }
  return {
      {"index", device.index},
      {"ok", device.ok},
      {"used_bytes", device.used_bytes},
      {"free_bytes", device.free_bytes},
      {"total_bytes", device.total_bytes},
      {"reserved_bytes", optional_json(device.reserved_bytes)},
      {"utilization_percent", optional_json(device.utilization_percent)},
      {"memory_utilization_percent", optional_json(device.memory_utilization_percent)},
      {"temperature_celsius", optional_json(device.temperature_celsius)},
      {"power_watts", optional_json(device.power_watts)},
      {"errors", device.errors},  // NVML error strings: ASCII
      {"processes", std::move(processes)},
  };
}

json sample_json(const Sample& sample) {
  const SystemSample& system = sample.system;
  const MemInfo& meminfo = system.meminfo;
  json host = {
      {"used_bytes", system.used_bytes},
      {"limit_bytes", system.limit_bytes},
      {"total_bytes", meminfo.total_bytes},
      {"available_bytes", meminfo.available_bytes},
      {"cached_bytes", meminfo.cached_bytes},
      {"shmem_bytes", meminfo.shmem_bytes},
      {"swap_total_bytes", meminfo.swap_total_bytes},
      {"swap_used_bytes", meminfo.swap_total_bytes > meminfo.swap_free_bytes
                              ? meminfo.swap_total_bytes - meminfo.swap_free_bytes
                              : 0},
      {"pressure_some_avg10",
       system.pressure.available ? json(system.pressure.some.avg10) : json(nullptr)},
      {"pressure_full_avg10",
       system.pressure.available ? json(system.pressure.full.avg10) : json(nullptr)},
      {"cgroup_usage_bytes", system.cgroup && system.cgroup->version != 0
                                 ? json(system.cgroup->usage_bytes)
                                 : json(nullptr)},
  };
  json devices = json::array();
  for (const DeviceSample& device : sample.devices) devices.push_back(device_json(device));
  json processes = json::array();
  for (const ProcessSample& process : sample.processes) {
    processes.push_back({{"pid", process.pid},
                         {"start_time_ticks", process.start_time_ticks},
                         {"rss_bytes", process.rss_bytes},
                         {"pss_bytes", process.pss_bytes},
                         {"uss_bytes", process.uss_bytes},
                         {"swap_bytes", process.swap_bytes},
                         {"gpu_bytes", process.gpu_bytes}});
  }
  return {
      {"t_seconds", seconds_json(sample.t_seconds)},
      {"timestamp", rfc3339_utc(sample.unix_ms)},
      {"host", std::move(host)},
      {"devices", std::move(devices)},
      {"processes", std::move(processes)},
  };
}

}  // namespace memscope::report
