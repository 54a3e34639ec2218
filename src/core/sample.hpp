// The value types that flow from collect/ to analyze/, store/ and report/. Plain data only.
// Every memory figure is in bytes; times are seconds.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace memscope {

// /proc/meminfo, the fields memscope uses.
struct MemInfo {
  uint64_t total_bytes = 0;
  uint64_t free_bytes = 0;
  uint64_t available_bytes = 0;
  uint64_t cached_bytes = 0;
  uint64_t shmem_bytes = 0;
  uint64_t swap_total_bytes = 0;
  uint64_t swap_free_bytes = 0;
};

// One line of /proc/pressure/memory ("some" or "full").
struct PressureLine {
  double avg10 = 0;
  double avg60 = 0;
  double avg300 = 0;
  uint64_t total_microseconds = 0;
};

// /proc/pressure/memory; absent on kernels without PSI (available == false, not an error).
struct Pressure {
  bool available = false;
  PressureLine some;
  PressureLine full;
};

// /proc/vmstat, the counters memscope uses.
struct VmStat {
  bool has_oom_kill = false;  // oom_kill exists since Linux 4.13
  uint64_t oom_kill = 0;
  uint64_t pgmajfault = 0;
};

// The memory cgroup a process belongs to (v1 or v2), with the tightest limit on its path.
struct CgroupMemory {
  int version = 0;                       // 1 or 2; 0 when no memory cgroup was found
  std::string path;                      // as in /proc/PID/cgroup, e.g. "/user.slice/job.scope"
  uint64_t usage_bytes = 0;              // memory.current (v2) / memory.usage_in_bytes (v1)
  std::optional<uint64_t> limit_bytes;   // tightest memory.max / limit_in_bytes up the tree
  std::string limit_path;                // the cgroup whose limit that is
  uint64_t oom_events = 0;               // memory.events "oom" (v2) / memory.failcnt: times usage hit the limit (v1)
  uint64_t oom_kill_events = 0;          // memory.events "oom_kill" (v2) / memory.oom_control (v1)
  uint64_t swap_usage_bytes = 0;         // memory.swap.current (v2) where present
};

// Host-wide state at one instant, with the limit every "percent used" is measured against.
struct SystemSample {
  MemInfo meminfo;
  Pressure pressure;
  VmStat vmstat;
  std::optional<CgroupMemory> cgroup;
  uint64_t limit_bytes = 0;         // tightest of cgroup limit and MemTotal
  std::string limit_source;         // "cgroup:/path" or "MemTotal"
  uint64_t used_bytes = 0;          // against limit: cgroup usage, or MemTotal - MemAvailable
  std::vector<std::string> notes;   // degradations, e.g. "memory pressure (PSI) unavailable"
};

// One process at one instant.
struct ProcessSample {
  int pid = 0;
  int ppid = 0;
  std::string comm;
  char state = '?';
  uint64_t start_time_ticks = 0;  // field 22 of /proc/PID/stat; with pid, identifies the process
  uint64_t rss_bytes = 0;
  uint64_t pss_bytes = 0;         // from smaps_rollup; equals rss_bytes when !smaps_readable
  uint64_t uss_bytes = 0;         // Private_Clean + Private_Dirty; rss_bytes when !smaps_readable
  uint64_t swap_bytes = 0;
  bool smaps_readable = true;     // false: EACCES on smaps_rollup, PSS/USS fell back to RSS
  double smaps_age_seconds = 0;   // how old pss/uss/swap are (re-read on a policy, see README)
  std::string cmdline;            // NUL separators replaced by spaces
  std::optional<int> rank;        // RANK / LOCAL_RANK / WORLD_SIZE from environ, when readable
  std::optional<int> local_rank;
  std::optional<int> world_size;
  uint64_t gpu_bytes = 0;         // sum over devices of this pid's GPU memory
};

// One process's use of one GPU.
struct GpuProcess {
  unsigned pid = 0;
  uint64_t used_bytes = 0;
  bool graphics = false;  // from the graphics list rather than the compute list
};

// One GPU at one instant. Fields that failed carry an error in `errors`, never a crash.
struct DeviceSample {
  int index = 0;
  std::string name;
  std::string uuid;
  bool ok = true;                       // false: the device could not be read at all (GPU lost)
  std::vector<std::string> errors;      // per-call NVML errors, e.g. "temperature: Not Supported"
  uint64_t total_bytes = 0;
  uint64_t used_bytes = 0;              // v2: excludes reserved; v1: includes it
  uint64_t free_bytes = 0;
  std::optional<uint64_t> reserved_bytes;  // only from nvmlDeviceGetMemoryInfo_v2
  std::string memory_api;               // "v2" or "v1"
  std::optional<unsigned> utilization_percent;         // GPU busy
  std::optional<unsigned> memory_utilization_percent;  // memory controller busy
  std::optional<unsigned> temperature_celsius;
  std::optional<double> power_watts;
  std::vector<GpuProcess> processes;
};

// Everything sampled at one instant.
struct Sample {
  double t_seconds = 0;       // since the recording started (monotonic clock)
  int64_t unix_ms = 0;        // wall clock, for RFC 3339 timestamps
  SystemSample system;
  std::vector<ProcessSample> processes;
  std::vector<DeviceSample> devices;
};

}  // namespace memscope
