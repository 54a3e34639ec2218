// OOM forecast: per resource (host, cgroup, GPU, process tree), the trend of memory use and the
// time until it reaches its limit, with a risk level and a confidence. Pure functions over
// timelines: the live monitor (`memscope oom`, `run --oom-guard`, OOMDetector) and every replay
// (session files, CSV traces) feed the same OomMonitor, so they give the same answers.
//
// The model (docs/oom-model.md has the reasoning and the defaults):
// - The envelope: samples are grouped into windows (width grows with the span of data, between
//   ModelParams::min_window_seconds and fit_window_seconds/24, and is never finer than the
//   sawtooth's period, or than the longest rise memory then gave back) and each window
//   contributes its peak. Training memory is a sawtooth; the peaks of the teeth are what reaches
//   the limit first.
// - Warm-up: envelope points at the start of the data that lie far below (or above) the trend of
//   the points after them — an import or allocator ramp that then levels off — are left out, up
//   to max_warmup_seconds and never more than half the points.
// - The trend: Theil–Sen (median of pairwise slopes) over the envelope points of the last
//   fit_window_seconds, robust to outlying teeth. Growth counts when the slope is positive and
//   at least twice its standard error.
// - Confidence: the slope's precision (1 - 2·se/slope) times the span factor (fitted span /
//   the larger of full_confidence_span_seconds and predicted time / extrapolation_ratio, capped
//   at 1: a forecast reaching far beyond the data it rests on is discounted); for a resource that
//   is not growing, how sure the model is that even the slope's upper bound would not reach the
//   limit within an hour.
// - Levels: critical when usage >= critical_percent or the limit is < critical_seconds away with
//   confidence >= critical_confidence; high from threshold_percent or < high_seconds; medium from
//   threshold - medium_margin_percent or < medium_seconds. Raised at once, lowered only after the
//   lower level held for lower_after_seconds (no flapping on every tooth).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "analyze/trend.hpp"
#include "core/sample.hpp"

namespace memscope::analyze {

enum class RiskLevel { kLow = 0, kMedium = 1, kHigh = 2, kCritical = 3 };
const char* to_string(RiskLevel level);
// "low", "medium", "high", "critical" (case-insensitive); nothing for anything else.
std::optional<RiskLevel> parse_risk_level(std::string_view text);

enum class ResourceKind { kHost, kCgroup, kGpu, kTree };
const char* to_string(ResourceKind kind);

// One resource's use at one instant.
struct Observation {
  std::string resource;  // "host", "cgroup:/path", "gpu0", "tree"
  ResourceKind kind = ResourceKind::kHost;
  double t_seconds = 0;
  uint64_t used_bytes = 0;
  uint64_t limit_bytes = 0;  // 0: no known limit, the resource is not assessed
  std::string limit_source;  // "MemTotal", "cgroup:/path", "GPU total", "--limit", "available"
  // The part of used_bytes in processes other than the tree's root (DataLoader workers and other
  // children); present for the tree resource. Lets the recommendation name the cause.
  std::optional<uint64_t> children_bytes;
};

// Which resources a sample yields.
struct ObservationScope {
  // The root of the watched process tree; 0 means every process in the sample (a CSV trace, or a
  // session recorded by `memscope run`, whose processes are all the job's).
  int root_pid = 0;
  bool has_tree = false;               // assess the tree (its PSS summed) as a resource
  std::optional<uint64_t> tree_limit;  // --limit; without it the tree is measured against what is
                                       // available to it: its use plus the host's headroom
  bool host = true;                    // host memory against the tightest limit
  bool gpus = true;                    // each GPU against its total
};

// The observations one sample gives: "host" (SystemSample used against the tightest limit, when
// the sample has one; kind kCgroup when that limit is the cgroup's — the collector measures the
// target's cgroup, so this is "each cgroup in scope"), "gpuN" per readable device, and "tree"
// (when has_tree and processes are present).
std::vector<Observation> observe(const Sample& sample, const ObservationScope& scope);

struct ModelParams {
  double threshold_percent = 85;      // --threshold: high from here
  double critical_percent = 95;       // critical from here
  double medium_margin_percent = 15;  // medium from threshold - this
  double critical_seconds = 60;       // predicted OOM sooner than this: critical
  double high_seconds = 300;          // ... high
  double medium_seconds = 1800;       // ... medium
  double critical_confidence = 0.5;   // minimum confidence for a forecast-based level
  double high_confidence = 0.4;
  double medium_confidence = 0.3;
  double fit_window_seconds = 120;           // the trend is fitted over this much recent data
  double min_window_seconds = 1;             // narrowest envelope window
  double full_confidence_span_seconds = 20;  // span of fitted data that earns full confidence
  double extrapolation_ratio = 3;            // ... and at least predicted time / this
  double max_warmup_seconds = 120;           // a warm-up is only looked for this early in the data
  double lower_after_seconds = 10;  // a level is lowered after the lower one held this long
  size_t max_points = 2048;         // raw points kept per resource (older ones merged)
};

// Checks the parameters a user can set; an error names the bad one.
std::optional<std::string> validate(const ModelParams& params);

struct Assessment {
  std::string resource;
  ResourceKind kind = ResourceKind::kHost;
  double t_seconds = 0;
  RiskLevel level = RiskLevel::kLow;      // after hysteresis: what the monitor reports
  RiskLevel raw_level = RiskLevel::kLow;  // from this assessment alone
  double confidence = 0;                  // 0..1
  uint64_t used_bytes = 0;
  uint64_t limit_bytes = 0;
  std::string limit_source;
  double usage_percent = 0;                     // used / limit
  double growth_bytes_per_second = 0;           // the envelope's fitted slope (may be negative)
  bool growing = false;                         // slope > 0 and significant
  std::optional<double> predicted_oom_seconds;  // from t_seconds; only when growing
  double warmup_end_seconds = 0;                // data before this was treated as warm-up
  double fit_span_seconds = 0;
  size_t fit_points = 0;
  std::string reason;  // why this level, e.g. "usage 96.1% >= 95%"
  std::string recommendation;
};

// The history of one resource and the forecast from it.
class ResourceModel {
 public:
  explicit ResourceModel(const ModelParams& params);
  void add(const Observation& observation);
  // The forecast at the latest observation (raw_level == level: no hysteresis here).
  Assessment assess() const;
  bool empty() const { return history_.empty(); }

 private:
  ModelParams params_;
  TrendHistory history_;
  Observation last_;
};

struct LevelChange {
  double t_seconds = 0;
  std::string resource;
  RiskLevel from = RiskLevel::kLow;
  RiskLevel to = RiskLevel::kLow;
  Assessment assessment;
};

// Every resource of a monitored target, sample after sample. One instance per run or replay.
class OomMonitor {
 public:
  OomMonitor(const ModelParams& params, const ObservationScope& scope);
  // Feeds one sample; returns the level changes it caused, in resource order. A resource first
  // seen starts at low, so a first assessment above low is a change.
  std::vector<LevelChange> add(const Sample& sample);
  // Same, for observations made elsewhere (tests, the OOMDetector's own sources).
  std::vector<LevelChange> add(double t_seconds, const std::vector<Observation>& observations);
  // The latest assessment per resource, in the order resources were first seen.
  const std::vector<Assessment>& assessments() const { return latest_; }
  // The highest level over resources, and the assessment that has it (nothing before any data).
  RiskLevel overall() const;
  const Assessment* most_urgent() const;
  // Per resource, the first time each level above low was reached, and the forecast then.
  struct FirstRaised {
    double t_seconds = 0;
    std::optional<double> predicted_oom_seconds;
    double usage_percent = 0;
  };
  const std::map<std::string, std::map<RiskLevel, FirstRaised>>& first_raised() const {
    return first_raised_;
  }
  const ModelParams& params() const { return params_; }

 private:
  struct Tracked {
    ResourceModel model;
    RiskLevel level = RiskLevel::kLow;
    double lower_since = -1;  // when the raw level first fell below `level`, -1: it has not
  };
  ModelParams params_;
  ObservationScope scope_;
  std::vector<std::string> order_;
  std::map<std::string, Tracked> tracked_;
  std::vector<Assessment> latest_;
  std::map<std::string, std::map<RiskLevel, FirstRaised>> first_raised_;
};

}  // namespace memscope::analyze
