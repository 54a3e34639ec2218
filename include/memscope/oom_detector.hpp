// OOMDetector: the OOM forecast of `memscope oom` inside a program. A background thread samples
// the host, the process tree and the GPUs every interval, feeds the same forecast as the CLI, and
// calls the warning callbacks when a resource's risk level rises to `warn_at` or above.
// Callbacks run on the monitor thread, without the detector's lock held: they may call
// predictions(), add_warning_callback() and stop_monitoring() (which then only asks the thread to
// stop after the callback), but must not destroy the detector. A callback that throws is caught,
// logged and counted, and does not stop the monitor.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "memscope/result.hpp"

namespace memscope {

// The risk levels of `memscope oom` (same order, same names).
enum class RiskLevel { kLow = 0, kMedium = 1, kHigh = 2, kCritical = 3 };
const char* risk_level_name(RiskLevel level);  // "low" .. "critical"
std::optional<RiskLevel> parse_risk_level_name(std::string_view name);

// One resource's forecast, with the field names of `memscope oom`'s JSON report.
struct OomPrediction {
  int device_id = -1;      // GPU index; -1 for host memory and the process tree
  std::string resource;    // "host", "gpu0", "tree"
  std::string risk_level;  // low | medium | high | critical
  double confidence = 0;
  double current_usage_percent = 0;
  double growth_rate_mb_per_sec = 0;  // MiB/s
  std::optional<double> predicted_oom_time_seconds;
  uint64_t used_bytes = 0;
  uint64_t limit_bytes = 0;
  std::string limit_source;
  std::string recommendation;
};

struct OOMDetectorOptions {
  double interval_seconds = 1.0;         // >= 0.05
  double threshold_percent = 85;         // 1..100
  int pid = 0;                           // the process tree to watch (0: this process)
  std::optional<uint64_t> limit_bytes;   // a limit for the tree, like `memscope oom --limit`
  bool gpus = true;                      // load NVML (absent NVML is not an error: host only)
  std::string nvml_library;              // default: $MEMSCOPE_NVML_LIBRARY, else the driver's
  RiskLevel warn_at = RiskLevel::kHigh;  // medium, high or critical
  std::string proc_root = "/proc";
  std::string sys_root = "/sys";
};

class OOMDetector {
 public:
  using WarningCallback = std::function<void(int device_id, const OomPrediction& prediction)>;

  // Checks the options (an error names the bad one) and opens the collectors.
  static Result<std::unique_ptr<OOMDetector>> create(const OOMDetectorOptions& options);
  ~OOMDetector();  // stops monitoring
  OOMDetector(const OOMDetector&) = delete;
  OOMDetector& operator=(const OOMDetector&) = delete;

  void add_warning_callback(WarningCallback callback);  // before or while monitoring
  Status start_monitoring();  // an error when already started; a stopped detector restarts
  void stop_monitoring();     // joins the thread; idempotent; returns within one sample
  bool monitoring() const;

  std::vector<OomPrediction> predictions() const;  // the latest, one per resource
  uint64_t samples_taken() const;
  uint64_t callback_errors() const;  // callbacks that threw

 private:
  OOMDetector();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace memscope
