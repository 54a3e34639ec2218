#include "analyze/peaks.hpp"

#include <algorithm>
#include <functional>

namespace memscope::analyze {

size_t PeakTracker::ProcessKeyHash::operator()(const ProcessKey& key) const {
  const size_t pid_hash = std::hash<int>()(key.pid);
  return pid_hash ^ (std::hash<uint64_t>()(key.start_time_ticks) + 0x9e3779b97f4a7c15ULL +
                     (pid_hash << 6) + (pid_hash >> 2));
}

void PeakTracker::add(const Sample& sample) {
  const double t = sample.t_seconds;
  if (summary_.sample_count == 0) {
    summary_.first_t_seconds = t;
    summary_.first_unix_ms = sample.unix_ms;
  }
  ++summary_.sample_count;
  summary_.last_t_seconds = t;
  summary_.last_unix_ms = sample.unix_ms;
  summary_.duration_seconds = std::max(0.0, t - summary_.first_t_seconds);

  MemoryFigures tree;
  for (const ProcessSample& process : sample.processes) {
    add_process(process, t);
    tree.rss_bytes += process.rss_bytes;
    tree.pss_bytes += process.pss_bytes;
    tree.uss_bytes += process.uss_bytes;
    tree.swap_bytes += process.swap_bytes;
    tree.gpu_bytes += process.gpu_bytes;
  }
  TreePeaks& peaks = summary_.tree;
  peaks.rss.offer(tree.rss_bytes, t);
  peaks.pss.offer(tree.pss_bytes, t);
  peaks.uss.offer(tree.uss_bytes, t);
  peaks.swap.offer(tree.swap_bytes, t);
  peaks.gpu.offer(tree.gpu_bytes, t);
  peaks.max_process_count = std::max(peaks.max_process_count, sample.processes.size());

  for (const DeviceSample& device : sample.devices) add_device(device, t);
  add_host(sample.system, t);
}

void PeakTracker::add_process(const ProcessSample& process, double t) {
  const ProcessKey key{process.pid, process.start_time_ticks};
  auto [it, inserted] = process_index_.try_emplace(key, summary_.processes.size());
  if (inserted) {
    ProcessPeaks& fresh = summary_.processes.emplace_back();
    fresh.pid = process.pid;
    fresh.start_time_ticks = process.start_time_ticks;
    fresh.first_seen_seconds = t;
  }
  ProcessPeaks& peaks = summary_.processes[it->second];
  peaks.ppid = process.ppid;  // changes when the parent dies and the process is re-parented
  // exec changes comm and cmdline; compare first so the common case copies nothing.
  if (peaks.comm != process.comm) peaks.comm = process.comm;
  if (peaks.cmdline != process.cmdline && !process.cmdline.empty()) peaks.cmdline = process.cmdline;
  if (process.rank) peaks.rank = process.rank;
  if (process.local_rank) peaks.local_rank = process.local_rank;
  if (process.world_size) peaks.world_size = process.world_size;
  peaks.last_seen_seconds = t;
  ++peaks.sample_count;
  peaks.rss.offer(process.rss_bytes, t);
  peaks.pss.offer(process.pss_bytes, t);
  peaks.uss.offer(process.uss_bytes, t);
  peaks.swap.offer(process.swap_bytes, t);
  peaks.gpu.offer(process.gpu_bytes, t);
  if (!process.smaps_readable) peaks.smaps_ever_unreadable = true;
  peaks.last = {process.rss_bytes, process.pss_bytes, process.uss_bytes, process.swap_bytes,
                process.gpu_bytes};
}

void PeakTracker::add_device(const DeviceSample& device, double t) {
  DeviceState& state = devices_[device.index];
  DevicePeaks& peaks = state.peaks;
  peaks.index = device.index;
  if (!device.name.empty()) peaks.name = device.name;
  if (!device.uuid.empty()) peaks.uuid = device.uuid;
  ++peaks.sample_count;
  peaks.last = device;
  if (!device.ok) {
    ++peaks.unreadable_count;
    return;
  }
  if (!device.memory_api.empty()) peaks.memory_api = device.memory_api;
  if (device.total_bytes > 0) peaks.total_bytes = device.total_bytes;
  peaks.peak_used.offer(device.used_bytes, t);
  if (device.reserved_bytes) {
    peaks.peak_reserved.offer(*device.reserved_bytes, t);
    peaks.has_reserved = true;
  }
  if (device.total_bytes > 0) {
    const double percent =
        100.0 * static_cast<double>(device.used_bytes) / static_cast<double>(device.total_bytes);
    state.memory_percent_sum += percent;
    ++state.memory_percent_count;
    peaks.max_memory_percent = std::max(peaks.max_memory_percent, percent);
  }
  if (device.utilization_percent) {
    const double busy = *device.utilization_percent;
    state.gpu_utilization_sum += busy;
    ++state.gpu_utilization_count;
    peaks.max_gpu_utilization_percent =
        std::max(peaks.max_gpu_utilization_percent.value_or(0), busy);
  }
  for (GpuProcessPeak& process : peaks.processes) process.last_used_bytes = 0;
  for (const GpuProcess& process : device.processes) {
    auto [it, inserted] = state.process_index.try_emplace(process.pid, peaks.processes.size());
    if (inserted) peaks.processes.push_back(GpuProcessPeak{process.pid, {}, 0});
    GpuProcessPeak& peak = peaks.processes[it->second];
    peak.peak_used.offer(process.used_bytes, t);
    peak.last_used_bytes = process.used_bytes;
  }
}

void PeakTracker::add_host(const SystemSample& system, double t) {
  HostPeaks& host = summary_.host;
  if (!host.peak_used.seen || system.used_bytes > host.peak_used.bytes) {
    host.limit_at_peak_bytes = system.limit_bytes;
  }
  host.peak_used.offer(system.used_bytes, t);
  host.limit_bytes = system.limit_bytes;
  if (host.limit_source != system.limit_source) host.limit_source = system.limit_source;
  host.mem_total_bytes = system.meminfo.total_bytes;
  const MemInfo& meminfo = system.meminfo;
  host.peak_swap_used.offer(meminfo.swap_total_bytes > meminfo.swap_free_bytes
                                ? meminfo.swap_total_bytes - meminfo.swap_free_bytes
                                : 0,
                            t);
  if (system.pressure.available) {
    host.pressure_available = true;
    host.max_some_avg10 = std::max(host.max_some_avg10, system.pressure.some.avg10);
    host.max_full_avg10 = std::max(host.max_full_avg10, system.pressure.full.avg10);
  }
  if (system.vmstat.has_oom_kill) {
    host.has_vmstat_oom_kill = true;
    if (!first_vmstat_oom_kill_) first_vmstat_oom_kill_ = system.vmstat.oom_kill;
    // Counters only rise; a smaller value would be a different boot or a parsing fallback.
    if (system.vmstat.oom_kill >= *first_vmstat_oom_kill_) {
      host.vmstat_oom_kill_delta = system.vmstat.oom_kill - *first_vmstat_oom_kill_;
    }
  }
  if (system.cgroup && system.cgroup->version != 0) {
    host.has_cgroup = true;
    const uint64_t kills = system.cgroup->oom_kill_events;
    if (!first_cgroup_oom_kill_) first_cgroup_oom_kill_ = kills;
    if (kills >= *first_cgroup_oom_kill_)
      host.cgroup_oom_kill_delta = kills - *first_cgroup_oom_kill_;
  }
}

PeakSummary PeakTracker::summary() const {
  PeakSummary summary = summary_;
  summary.devices.reserve(devices_.size());
  for (const auto& [index, state] : devices_) {
    DevicePeaks& device = summary.devices.emplace_back(state.peaks);
    if (state.memory_percent_count > 0) {
      device.avg_memory_percent =
          state.memory_percent_sum / static_cast<double>(state.memory_percent_count);
    }
    if (state.gpu_utilization_count > 0) {
      device.avg_gpu_utilization_percent =
          state.gpu_utilization_sum / static_cast<double>(state.gpu_utilization_count);
    }
  }
  return summary;
}

const ProcessPeaks* PeakSummary::find_process(int pid, std::optional<double> t_seconds) const {
  const ProcessPeaks* latest = nullptr;
  for (const ProcessPeaks& process : processes) {
    if (process.pid != pid) continue;
    if (t_seconds && process.first_seen_seconds <= *t_seconds &&
        *t_seconds <= process.last_seen_seconds) {
      return &process;
    }
    latest = &process;
  }
  return latest;
}

std::vector<TreeEntry> tree_order(const std::vector<ProcessPeaks>& processes) {
  const size_t count = processes.size();
  std::unordered_map<int, std::vector<size_t>> by_pid;
  for (size_t i = 0; i < count; ++i) by_pid[processes[i].pid].push_back(i);

  // A parent is the process with the child's ppid alive when the child appeared; with pid
  // reuse, the latest one started before it.
  constexpr size_t kNone = static_cast<size_t>(-1);
  std::vector<size_t> parent(count, kNone);
  for (size_t i = 0; i < count; ++i) {
    const auto found = by_pid.find(processes[i].ppid);
    if (found == by_pid.end()) continue;
    const double born = processes[i].first_seen_seconds;
    for (size_t candidate : found->second) {
      if (candidate == i) continue;
      const ProcessPeaks& p = processes[candidate];
      if (p.first_seen_seconds <= born && born <= p.last_seen_seconds) {
        parent[i] = candidate;
        break;
      }
      if (p.first_seen_seconds <= born) parent[i] = candidate;
    }
  }

  std::vector<std::vector<size_t>> children(count);
  std::vector<size_t> roots;
  for (size_t i = 0; i < count; ++i)
    (parent[i] == kNone ? roots : children[parent[i]]).push_back(i);
  const auto earlier = [&](size_t a, size_t b) {
    const ProcessPeaks& pa = processes[a];
    const ProcessPeaks& pb = processes[b];
    if (pa.first_seen_seconds != pb.first_seen_seconds) {
      return pa.first_seen_seconds < pb.first_seen_seconds;
    }
    return pa.pid < pb.pid;
  };
  std::sort(roots.begin(), roots.end(), earlier);
  for (auto& list : children) std::sort(list.begin(), list.end(), earlier);

  std::vector<TreeEntry> order;
  order.reserve(count);
  std::vector<bool> visited(count, false);
  const auto walk = [&](size_t root) {
    std::vector<TreeEntry> stack{{root, 0}};
    while (!stack.empty()) {
      const TreeEntry entry = stack.back();
      stack.pop_back();
      if (visited[entry.index]) continue;
      visited[entry.index] = true;
      order.push_back(entry);
      const auto& kids = children[entry.index];
      for (auto it = kids.rbegin(); it != kids.rend(); ++it)
        stack.push_back({*it, entry.depth + 1});
    }
  };
  for (size_t root : roots) walk(root);
  // Parent links that form a cycle (only with inconsistent input) leave processes unvisited.
  for (size_t i = 0; i < count; ++i) {
    if (!visited[i]) walk(i);
  }
  return order;
}

}  // namespace memscope::analyze
