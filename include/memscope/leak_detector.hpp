// MemoryLeakDetector: the growth verdicts of `memscope leak` inside a program. A background
// thread samples a process tree (and the GPUs' per-process memory) every interval; verdicts()
// fits the same trends as the CLI: per process its USS (private memory), per GPU process its
// GPU memory, each "leak suspected", "growth plateaued" or "no growth".
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "memscope/result.hpp"

namespace memscope {

struct LeakDetectorOptions {
  double interval_seconds = 1.0;      // >= 0.05
  double threshold_mb_per_min = 1.0;  // > 0: growth at or above this rate is a leak
  double window_seconds = 600;        // the trend is fitted over this much recent data (> 0)
  double min_span_seconds = 20;       // less data: never "leak suspected" (>= 0)
  int pid = 0;                        // the process tree to watch (0: this process)
  bool gpus = true;                   // load NVML (absent NVML is not an error: host only)
  std::string nvml_library;           // default: $MEMSCOPE_NVML_LIBRARY, else the driver's
  std::string proc_root = "/proc";
  std::string sys_root = "/sys";
};

struct LeakVerdict {
  int pid = 0;
  std::string name;                     // the process's comm
  std::string memory;                   // "uss" or "gpuN"
  std::string verdict;                  // "leak suspected" | "growth plateaued" | "no growth"
  std::string reason;                   // one line for people
  double growth_mb_per_min = 0;         // the trend over the window, MiB/min
  double recent_growth_mb_per_min = 0;  // over the recent part
  double confidence = 0;                // 0..1
  uint64_t first_bytes = 0;
  uint64_t current_bytes = 0;
  uint64_t peak_bytes = 0;
  double first_seen_seconds = 0;  // since monitoring started
  double last_seen_seconds = 0;
};

class MemoryLeakDetector {
 public:
  // Checks the options (an error names the bad one) and opens the collectors.
  static Result<std::unique_ptr<MemoryLeakDetector>> create(const LeakDetectorOptions& options);
  ~MemoryLeakDetector();  // stops monitoring
  MemoryLeakDetector(const MemoryLeakDetector&) = delete;
  MemoryLeakDetector& operator=(const MemoryLeakDetector&) = delete;

  Status start_monitoring();  // an error when already started; a stopped detector resumes
  void stop_monitoring();     // joins the thread; idempotent; returns within one sample
  bool monitoring() const;
  void sample_now();  // one sample now, monitoring or not

  // One verdict per process (and per GPU process), leaks first, then by growth.
  std::vector<LeakVerdict> verdicts() const;
  bool leak_suspected() const;  // any verdict is "leak suspected"
  uint64_t samples_taken() const;
  // The `memscope leak --output` document ("memscope-leak", schema 1) of verdicts().
  std::string report_json() const;

 private:
  MemoryLeakDetector();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace memscope
