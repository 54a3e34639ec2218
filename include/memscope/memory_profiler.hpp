// MemoryProfiler: `memscope profile` inside a program. A background thread samples the host, a
// process tree and the GPUs every interval; generate_report() writes the same JSON document as
// `memscope profile --output` ("memscope-profile", docs/report-formats.md), plus a "counters"
// member holding the caller's own named series.
//
// Counters (e.g. torch.cuda.memory_stats() figures recorded by the Python `memscope.torch`
// layer) get into the timeline two ways:
// - record_counter(name, value): one point now, from any thread;
// - add_sample_hook(hook): called on the monitor thread at every sample; the name → value pairs
//   it returns are stored with that sample's time. A hook that throws is caught, logged and
//   counted (hook_errors()) and does not stop the profiler; hooks must not call
//   stop_monitoring() nor destroy the profiler.
// In the report: "counters": {NAME: {"count", "last", "min", "max", "mean",
//   "points": [[t_seconds, value], ...]}}, t_seconds on the same clock as the samples. A series
// keeps at most kMaxCounterPoints points (every other one is dropped when full; min, max, mean
// and count still see every point).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "memscope/result.hpp"

namespace memscope {

struct MemoryProfilerOptions {
  double sampling_interval_seconds = 1.0;  // >= 0.05
  std::vector<int> devices;                // GPU indices to sample; empty = all
  int pid = 0;                             // the process tree to watch (0: this process)
  bool gpus = true;                        // load NVML (absent NVML is not an error: host only)
  std::string nvml_library;                // default: $MEMSCOPE_NVML_LIBRARY, else the driver's
  std::string proc_root = "/proc";
  std::string sys_root = "/sys";
};

// Peaks so far, for a quick look without parsing the report.
struct ProfileDevicePeak {
  int index = 0;
  uint64_t peak_used_bytes = 0;
  uint64_t total_bytes = 0;
};
struct ProfileSummary {
  uint64_t samples = 0;
  double duration_seconds = 0;
  uint64_t host_peak_used_bytes = 0;
  uint64_t host_limit_bytes = 0;
  std::vector<ProfileDevicePeak> devices;
};

class MemoryProfiler {
 public:
  using Counters = std::vector<std::pair<std::string, double>>;
  using SampleHook = std::function<Counters()>;
  static constexpr size_t kMaxCounterPoints = 100000;

  // Checks the options (an error names the bad one: interval, pid, unknown device) and opens
  // the collectors.
  static Result<std::unique_ptr<MemoryProfiler>> create(const MemoryProfilerOptions& options);
  ~MemoryProfiler();  // stops monitoring
  MemoryProfiler(const MemoryProfiler&) = delete;
  MemoryProfiler& operator=(const MemoryProfiler&) = delete;

  Status start_monitoring();  // an error when already started; a stopped profiler resumes
  void stop_monitoring();     // joins the thread; idempotent; returns within one sample
  bool monitoring() const;
  // One sample now (with the hooks), monitoring or not: e.g. at the end of each training step.
  void sample_now();

  // A name is 1..128 characters; a value must be finite. An error says which is wrong.
  Status record_counter(const std::string& name, double value);
  void add_sample_hook(SampleHook hook);

  uint64_t samples_taken() const;
  uint64_t hook_errors() const;
  ProfileSummary summary() const;

  // The report as of now (the profile's outcome is "running" while monitoring).
  std::string report_json() const;
  // Writes report_json() to path; an error names the file.
  Status generate_report(const std::string& path) const;

 private:
  MemoryProfiler();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace memscope
