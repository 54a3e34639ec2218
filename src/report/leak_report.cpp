#include "report/leak_report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace memscope::report {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;

double rounded(double value) { return std::round(value * 1000.0) / 1000.0; }

}  // namespace

nlohmann::json leak_verdict_json(const analyze::LeakVerdict& v) {
  return {{"pid", v.pid},
          {"comm", v.comm},
          {"memory", v.memory},
          {"verdict", v.verdict},
          {"reason", v.reason},
          {"confidence", rounded(v.confidence)},
          {"growth_mb_per_min", rounded(v.growth_bytes_per_second * 60 / kMiB)},
          {"recent_growth_mb_per_min", rounded(v.recent_growth_bytes_per_second * 60 / kMiB)},
          {"projected_growth_bytes_per_hour",
           static_cast<uint64_t>(std::max(0.0, v.projected_growth_bytes_per_hour))},
          {"first_bytes", v.first_bytes},
          {"current_bytes", v.current_bytes},
          {"peak_bytes", v.peak_bytes},
          {"rss_bytes", v.rss_bytes},
          {"pss_bytes", v.pss_bytes},
          {"first_seen_seconds", rounded(v.first_seen_seconds)},
          {"last_seen_seconds", rounded(v.last_seen_seconds)},
          {"warmup_end_seconds", rounded(v.warmup_end_seconds)}};
}

nlohmann::json leak_json(const std::string& source, double threshold_mb_per_min,
                         const std::vector<analyze::LeakVerdict>& verdicts) {
  nlohmann::json document = {{"report", "memscope-leak"},
                             {"schema_version", 1},
                             {"source", source},
                             {"threshold_mb_per_min", threshold_mb_per_min},
                             {"processes", nlohmann::json::array()}};
  for (const analyze::LeakVerdict& v : verdicts) {
    document["processes"].push_back(leak_verdict_json(v));
  }
  return document;
}

}  // namespace memscope::report
