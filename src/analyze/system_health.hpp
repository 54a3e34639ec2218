// `memscope system`: the host's health against documented thresholds (README "memscope
// system"), the decision whether swap may be cleared, and the parsers of /proc/stat's cpu line
// and /proc/swaps that only `system` uses. Pure functions: reading files is the caller's part.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "core/sample.hpp"

namespace memscope::analyze {

enum class Verdict { kOk = 0, kWarning = 1, kCritical = 2 };
const char* verdict_name(Verdict verdict);  // "ok", "warning", "critical"

// A value at or above `warning` is a warning, at or above `critical` critical.
struct Threshold {
  double warning = 0;
  double critical = 0;
};
Verdict classify(double value, Threshold threshold);

// The defaults are the README's table; pressure figures are PSI's avg10, a percentage of the
// last 10 s during which some (or all) tasks stalled waiting for memory.
struct HealthThresholds {
  Threshold memory_used_percent{80, 95};  // MemTotal - MemAvailable against MemTotal
  Threshold cgroup_used_percent{80, 95};  // usage against the tightest cgroup limit
  Threshold swap_used_percent{20, 50};    // SwapTotal - SwapFree against SwapTotal
  Threshold pressure_some_avg10{1, 10};
  Threshold pressure_full_avg10{0.5, 5};
  Threshold process_count_percent{80, 95};  // processes against kernel.pid_max
};

struct HealthCheck {
  std::string name;  // "memory", "cgroup", "swap", "pressure some", "pressure full", "processes"
  std::optional<double> value;  // the figure compared (percent); absent when not applicable
  std::optional<Threshold> threshold;
  Verdict verdict = Verdict::kOk;
  std::string detail;  // one line for people, e.g. "51.2 GiB of 64.0 GiB used"
};

// One check per line of `system status`, in a fixed order. A check that does not apply (no swap,
// no PSI, no cgroup limit, pid_max unknown) is present with verdict ok and no value, its detail
// saying why.
std::vector<HealthCheck> check_system_health(const SystemSample& system, size_t process_count,
                                             std::optional<uint64_t> pid_max,
                                             const HealthThresholds& thresholds = {});
// The worst verdict; ok for none.
Verdict overall_verdict(const std::vector<HealthCheck>& checks);

// The `count` largest by USS (ties: lower pid first), zombies left out.
std::vector<ProcessSample> largest_by_uss(const std::vector<ProcessSample>& processes,
                                          size_t count);
// The `count` largest by swap (ties: lower pid first), those with no swap left out.
std::vector<ProcessSample> largest_by_swap(const std::vector<ProcessSample>& processes,
                                           size_t count);

// The aggregate "cpu" line of /proc/stat, in clock ticks. Busy is everything but idle and
// iowait; guest time is already counted in user and nice, so it is not added again.
struct CpuTimes {
  uint64_t busy = 0;
  uint64_t total = 0;
};
Result<CpuTimes> parse_proc_stat_cpu(std::string_view text);
// Busy share between two readings, 0..100; 0 when no tick passed (or the counters went back).
double cpu_busy_percent(const CpuTimes& before, const CpuTimes& after);

// One line of /proc/swaps ("Filename Type Size Used Priority", sizes in KiB).
struct SwapDevice {
  std::string name;
  std::string type;  // "partition", "file"
  uint64_t size_bytes = 0;
  uint64_t used_bytes = 0;
  int priority = 0;
};
// The header line is skipped; a path with spaces appears as "\040" (left as is). Fails on a
// line with fewer than 5 fields or a number that is not one.
Result<std::vector<SwapDevice>> parse_proc_swaps(std::string_view text);

// Whether `swapoff -a && swapon -a` may run: every swapped page comes back into RAM, so
// MemAvailable must hold what is swapped (SwapTotal - SwapFree) plus a margin of
// max(1 GiB, 10 % of MemTotal) left for the running jobs.
struct SwapClearDecision {
  bool nothing_swapped = false;  // no swap in use: nothing to do
  bool allowed = false;
  uint64_t swapped_bytes = 0;
  uint64_t available_bytes = 0;
  uint64_t margin_bytes = 0;
  std::string reason;  // one line, why it is (not) allowed
};
SwapClearDecision decide_swap_clear(const MemInfo& meminfo);

}  // namespace memscope::analyze
