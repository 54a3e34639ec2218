// Leak verdicts from trends (`memscope leak`): per process, the growth of its USS (private
// memory, so shared pages and copy-on-write in DataLoader workers are not counted as growth)
// and, per GPU process, of its GPU memory; with the same sawtooth-robust trend as the OOM
// forecast (trend.hpp). Pure: fed samples, returns verdicts.
//
// Verdicts:
// - "leak suspected": the trend over the window grows at >= threshold MiB/min, significantly
//   (slope > 2 standard errors), over at least min_span_seconds, and still grows over the recent
//   part (the last recent_seconds grow at least half as fast).
// - "growth plateaued": memory rose (peak - first >= max(plateau_min_rise_bytes, 10 % of the
//   first value)) but no longer grows — a warm-up, caches filling, or copy-on-read in workers.
// - "no growth": otherwise.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "analyze/trend.hpp"
#include "core/sample.hpp"

namespace memscope::analyze {

struct LeakParams {
  double threshold_mb_per_min = 1.0;  // --threshold, MiB per minute
  double window_seconds = 600;        // the trend is fitted over this much recent data
  double recent_seconds = 60;         // "still growing" is checked over this much
  double min_span_seconds = 20;       // less data: at most "growth plateaued" or "no growth"
  uint64_t plateau_min_rise_bytes = 4ull << 20;
};

struct LeakVerdict {
  int pid = 0;
  uint64_t start_time_ticks = 0;
  std::string comm;
  std::string memory;   // "uss" or "gpuN"
  std::string verdict;  // "leak suspected" | "growth plateaued" | "no growth"
  std::string reason;
  double first_seen_seconds = 0;
  double last_seen_seconds = 0;
  uint64_t first_bytes = 0;
  uint64_t current_bytes = 0;
  uint64_t peak_bytes = 0;
  uint64_t rss_bytes = 0;  // beside USS, for reference (host rows)
  uint64_t pss_bytes = 0;
  double growth_bytes_per_second = 0;  // the trend's slope over the window
  double recent_growth_bytes_per_second = 0;
  double projected_growth_bytes_per_hour = 0;  // 0 unless growing
  double confidence = 0;
  double warmup_end_seconds = 0;
};

class LeakDetector {
 public:
  explicit LeakDetector(const LeakParams& params);
  void add(const Sample& sample);
  // One verdict per process (and per GPU process), leaks first, then by growth.
  std::vector<LeakVerdict> verdicts() const;

 private:
  struct Series {
    Series(const TrendOptions& window_options, const TrendOptions& recent_options)
        : history(window_options), recent(recent_options) {}
    TrendHistory history;
    TrendHistory recent;
    LeakVerdict latest;  // identity and current figures
  };
  LeakParams params_;
  std::map<std::pair<std::string, std::pair<int, uint64_t>>, Series> series_;
  // Processes (pid, start time) seen with resident memory: a later RSS of 0 is their exit.
  std::set<std::pair<int, uint64_t>> seen_resident_;
};

}  // namespace memscope::analyze
