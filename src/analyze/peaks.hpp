// Peaks and statistics of a recording, computed one sample at a time. Memory grows with the
// number of distinct processes and devices seen, never with the number of samples, so a
// day-long recording of 1,000 processes costs the same as a minute of it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/sample.hpp"

namespace memscope::analyze {

// The largest value seen and when (t_seconds since the recording started). The earliest time
// wins on ties, so "at 12.3s" says when the peak was first reached.
struct Peak {
  uint64_t bytes = 0;
  double t_seconds = 0;
  bool seen = false;

  void offer(uint64_t value, double t) {
    if (!seen || value > bytes) {
      bytes = value;
      t_seconds = t;
      seen = true;
    }
  }
};

// Memory figures of one process (or the sum over a tree) at one instant.
struct MemoryFigures {
  uint64_t rss_bytes = 0;
  uint64_t pss_bytes = 0;
  uint64_t uss_bytes = 0;
  uint64_t swap_bytes = 0;
  uint64_t gpu_bytes = 0;
};

// One process over the recording; a process is its pid plus its start time, so a pid reused by
// the kernel is a different process.
struct ProcessPeaks {
  int pid = 0;
  uint64_t start_time_ticks = 0;
  int ppid = 0;
  std::string comm;
  std::string cmdline;
  std::optional<int> rank;
  std::optional<int> local_rank;
  std::optional<int> world_size;
  double first_seen_seconds = 0;
  double last_seen_seconds = 0;
  size_t sample_count = 0;
  Peak rss;
  Peak pss;
  Peak uss;
  Peak swap;
  Peak gpu;
  bool smaps_ever_unreadable = false;  // PSS/USS fell back to RSS at least once
  MemoryFigures last;
};

// The sum over all processes of one sample, at its peak.
struct TreePeaks {
  Peak rss;
  Peak pss;
  Peak uss;
  Peak swap;
  Peak gpu;
  size_t max_process_count = 0;
};

// One process's use of one GPU over the recording (NVML reports pids only).
struct GpuProcessPeak {
  unsigned pid = 0;
  Peak peak_used;
  uint64_t last_used_bytes = 0;  // 0 when it was absent from the device's last sample
};

struct DevicePeaks {
  int index = 0;
  std::string name;
  std::string uuid;
  std::string memory_api;  // "v2" or "v1", from the last readable sample
  uint64_t total_bytes = 0;
  Peak peak_used;
  Peak peak_reserved;  // seen only when the driver reports it (v2)
  bool has_reserved = false;
  double avg_memory_percent = 0;  // used / total, averaged over readable samples
  double max_memory_percent = 0;
  std::optional<double> avg_gpu_utilization_percent;  // NVML "GPU busy"
  std::optional<double> max_gpu_utilization_percent;
  size_t sample_count = 0;      // samples in which the device appeared
  size_t unreadable_count = 0;  // of those, samples where it could not be read (!ok)
  DeviceSample last;
  std::vector<GpuProcessPeak> processes;  // in order of first appearance
};

struct HostPeaks {
  Peak peak_used;  // against the limit (cgroup usage or MemTotal - MemAvailable)
  uint64_t limit_at_peak_bytes = 0;
  uint64_t limit_bytes = 0;  // as in the last sample
  std::string limit_source;  // "cgroup:/path" or "MemTotal"
  uint64_t mem_total_bytes = 0;
  Peak peak_swap_used;  // SwapTotal - SwapFree
  bool pressure_available = false;
  double max_some_avg10 = 0;
  double max_full_avg10 = 0;
  bool has_vmstat_oom_kill = false;
  uint64_t vmstat_oom_kill_delta = 0;  // oom kills anywhere on the host during the recording
  bool has_cgroup = false;
  uint64_t cgroup_oom_kill_delta = 0;  // oom kills in the job's memory cgroup
};

struct PeakSummary {
  size_t sample_count = 0;
  double first_t_seconds = 0;
  double last_t_seconds = 0;
  double duration_seconds = 0;  // last_t_seconds - first_t_seconds
  int64_t first_unix_ms = 0;
  int64_t last_unix_ms = 0;
  std::vector<ProcessPeaks> processes;  // in order of first appearance
  TreePeaks tree;
  std::vector<DevicePeaks> devices;  // by index
  HostPeaks host;

  // The process with this pid alive at t_seconds (or the last one with that pid); nullptr if none.
  const ProcessPeaks* find_process(int pid, std::optional<double> t_seconds = {}) const;
};

// Feeds on samples in time order and keeps only running peaks and sums.
class PeakTracker {
 public:
  void add(const Sample& sample);
  PeakSummary summary() const;
  size_t process_count() const { return summary_.processes.size(); }

 private:
  struct ProcessKey {
    int pid;
    uint64_t start_time_ticks;
    bool operator==(const ProcessKey&) const = default;
  };
  struct ProcessKeyHash {
    size_t operator()(const ProcessKey& key) const;
  };
  struct DeviceState {
    DevicePeaks peaks;
    double memory_percent_sum = 0;
    size_t memory_percent_count = 0;
    double gpu_utilization_sum = 0;
    size_t gpu_utilization_count = 0;
    std::unordered_map<unsigned, size_t> process_index;
  };

  void add_process(const ProcessSample& process, double t);
  void add_device(const DeviceSample& device, double t);
  void add_host(const SystemSample& system, double t);

  PeakSummary summary_;  // everything but the per-device averages, kept up to date
  std::unordered_map<ProcessKey, size_t, ProcessKeyHash> process_index_;
  std::map<int, DeviceState> devices_;
  std::optional<uint64_t> first_vmstat_oom_kill_;
  std::optional<uint64_t> first_cgroup_oom_kill_;
};

// Processes in tree order (depth first, children by first appearance then pid): each entry is
// an index into `processes` and its depth (0 for a process whose parent was not recorded).
struct TreeEntry {
  size_t index = 0;
  int depth = 0;
};
std::vector<TreeEntry> tree_order(const std::vector<ProcessPeaks>& processes);

}  // namespace memscope::analyze
