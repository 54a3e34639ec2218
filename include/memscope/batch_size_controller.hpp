// BatchSizeController: picks the next batch size of a training loop from its memory headroom and
// OOM risk: shrink fast on risk, grow slowly with sustained headroom, never above the user's
// maximum nor below the minimum. run_with_oom_retry() runs one step and, after an out-of-memory
// error, retries it with a smaller batch down to the minimum.
//
// Policy of recommend(), per observation (one per training step, or per sample of the monitor):
//   effective risk = the larger of the risk given (the words of `memscope oom`) and the risk
//                    of the usage alone: used/limit >= critical_usage_fraction is critical,
//                    >= high_usage_fraction is high (when used and limit are known);
//   critical       -> batch * shrink_factor_critical (at least 1 less), cooldown starts;
//   high           -> batch * shrink_factor_high (at least 1 less), cooldown starts;
//   medium         -> hold; the headroom streak restarts;
//   low            -> while cooling down, hold; with headroom (free fraction >= grow_headroom)
//                     for grow_after consecutive observations, grow by
//                     max(grow_step, batch * (grow_factor - 1)) and restart the streak;
//                     without headroom, hold.
// The result is clamped to [min, max]. Observations without any headroom figure (no limit and
// no headroom_fraction) never grow the batch.
//
// Not thread-safe: one controller belongs to one training loop.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "memscope/result.hpp"

namespace memscope {

// The risk levels of `memscope oom` (and OOMDetector's predictions), lowest first.
enum class OomRisk { kLow = 0, kMedium = 1, kHigh = 2, kCritical = 3 };
const char* to_string(OomRisk risk);                      // "low", "medium", "high", "critical"
std::optional<OomRisk> parse_oom_risk(std::string_view);  // those words, any case

struct BatchSizeControllerOptions {
  int64_t initial = 32;                // within [min, max]
  int64_t min = 1;                     // >= 1
  int64_t max = 1024;                  // the user's maximum, >= min
  double shrink_factor_high = 0.5;     // in (0, 1)
  double shrink_factor_critical = 0.25;  // in (0, 1), <= shrink_factor_high
  double grow_factor = 1.1;            // >= 1: +10 % per growth...
  int64_t grow_step = 1;               // ...but at least this many samples (>= 1)
  double grow_headroom = 0.25;         // free fraction needed to count towards growth, in (0, 1)
  int grow_after = 3;                  // consecutive observations with headroom (>= 1)
  int cooldown = 5;                    // observations after a shrink that never grow (>= 0)
  double high_usage_fraction = 0.85;   // used/limit from which the usage alone is high risk
  double critical_usage_fraction = 0.95;  // ... critical; high < critical <= 1
};

struct MemoryObservation {
  uint64_t used_bytes = 0;
  uint64_t limit_bytes = 0;                // 0: unknown (then headroom_fraction, if any)
  std::optional<double> headroom_fraction;  // free/limit in [0, 1]; wins over used/limit
  OomRisk risk = OomRisk::kLow;            // e.g. OOMDetector's or `memscope oom`'s level
};

enum class BatchAction { kHold, kGrow, kShrink };
const char* to_string(BatchAction action);  // "hold", "grow", "shrink"

struct BatchRecommendation {
  int64_t batch_size = 0;
  BatchAction action = BatchAction::kHold;
  OomRisk risk = OomRisk::kLow;  // the effective risk the decision was made on
  std::string reason;            // one line, e.g. "critical risk (usage 96.0 %): 64 -> 16"
};

// What one training step reports to run_with_oom_retry().
enum class StepOutcome { kOk, kOutOfMemory, kError };
struct StepResult {
  StepOutcome outcome = StepOutcome::kOk;
  std::string message;  // for kError (and, optionally, kOutOfMemory): what went wrong
  static StepResult ok() { return {}; }
  static StepResult out_of_memory(std::string what = {}) {
    return {StepOutcome::kOutOfMemory, std::move(what)};
  }
  static StepResult error(std::string what) { return {StepOutcome::kError, std::move(what)}; }
};
using StepFunction = std::function<StepResult(int64_t batch_size)>;

struct OomRetryOptions {
  int64_t min = 1;             // >= 1: the smallest batch tried
  double shrink_factor = 0.5;  // in (0, 1); each retry takes at least 1 off
  int max_attempts = 0;        // 0: until the minimum has been tried
};

struct OomRetryReport {
  int64_t batch_size = 0;  // the batch that worked
  int attempts = 0;        // steps run, the successful one included
  int out_of_memory = 0;   // of which ran out of memory
};

// Runs step(batch_size); after kOutOfMemory retries with max(min, batch * shrink_factor) (at
// least one less). kOk: the report. kError: an error with the step's message, no retry. Still out
// of memory at the minimum (or after max_attempts): an error naming the sizes tried. Exceptions
// thrown by step are the caller's own and propagate unchanged.
Result<OomRetryReport> run_with_oom_retry(int64_t batch_size, const StepFunction& step,
                                          const OomRetryOptions& options = {});

class BatchSizeController {
 public:
  // Checks the options; an error names the bad one and its value.
  static Result<BatchSizeController> create(const BatchSizeControllerOptions& options);

  // Records one observation and returns the batch size to use next (also current() after).
  BatchRecommendation recommend(const MemoryObservation& observation);
  // An out-of-memory error at the current batch: shrinks as on critical risk.
  BatchRecommendation record_out_of_memory();
  // run_with_oom_retry at current(), with this controller's min and critical shrink factor; an
  // out-of-memory step shrinks the controller too, so the next step starts from what worked.
  Result<OomRetryReport> run_step(const StepFunction& step);

  int64_t current() const { return batch_size_; }
  const BatchSizeControllerOptions& options() const { return options_; }
  void reset(int64_t batch_size);  // clamped to [min, max]; clears the streak and cooldown

 private:
  explicit BatchSizeController(const BatchSizeControllerOptions& options);
  BatchRecommendation shrink(OomRisk risk, double factor, const std::string& why);

  BatchSizeControllerOptions options_;
  int64_t batch_size_ = 0;
  int headroom_streak_ = 0;
  int cooldown_left_ = 0;
};

}  // namespace memscope
