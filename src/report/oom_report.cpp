#include "report/oom_report.hpp"

#include <fmt/format.h>

#include <cmath>

#include "core/units.hpp"

namespace memscope::report {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;

// Rounds for JSON so reports are stable and readable (3 decimals).
double rounded(double value) { return std::round(value * 1000.0) / 1000.0; }
// Percentages: two decimals, like every memscope report.
double percent(double value) { return std::round(value * 100.0) / 100.0; }

nlohmann::json optional_seconds(const std::optional<double>& seconds) {
  return seconds ? nlohmann::json(rounded(*seconds)) : nlohmann::json(nullptr);
}

std::string forecast_words(const analyze::Assessment& a) {
  if (!a.predicted_oom_seconds) return "not growing";
  return fmt::format("OOM in {}", format_duration(*a.predicted_oom_seconds));
}

}  // namespace

nlohmann::json assessment_json(const analyze::Assessment& a) {
  return {
      {"resource", a.resource},
      {"kind", analyze::to_string(a.kind)},
      {"t_seconds", rounded(a.t_seconds)},
      {"risk_level", analyze::to_string(a.level)},
      {"raw_risk_level", analyze::to_string(a.raw_level)},
      {"confidence", rounded(a.confidence)},
      {"current_usage_percent", percent(a.usage_percent)},
      {"used_bytes", a.used_bytes},
      {"limit_bytes", a.limit_bytes},
      {"limit_source", a.limit_source},
      {"growth_rate_mb_per_sec", rounded(a.growth_bytes_per_second / kMiB)},
      {"growing", a.growing},
      {"predicted_oom_time_seconds", optional_seconds(a.predicted_oom_seconds)},
      {"warmup_end_seconds", rounded(a.warmup_end_seconds)},
      {"fit_span_seconds", rounded(a.fit_span_seconds)},
      {"fit_points", a.fit_points},
      {"reason", a.reason},
      {"recommendation", a.recommendation},
  };
}

nlohmann::json level_change_json(const analyze::LevelChange& change) {
  const analyze::Assessment& a = change.assessment;
  return {
      {"t", rounded(change.t_seconds)},
      {"resource", change.resource},
      {"level", analyze::to_string(change.to)},
      {"previous_level", analyze::to_string(change.from)},
      {"usage_percent", percent(a.usage_percent)},
      {"predicted_oom_time_seconds", optional_seconds(a.predicted_oom_seconds)},
      {"confidence", rounded(a.confidence)},
      {"growth_rate_mb_per_sec", rounded(a.growth_bytes_per_second / kMiB)},
      {"reason", a.reason},
  };
}

nlohmann::json oom_report_json(const analyze::OomMonitor& monitor, const std::string& mode,
                               const std::string& source) {
  nlohmann::json resources = nlohmann::json::array();
  analyze::RiskLevel peak = analyze::RiskLevel::kLow;
  for (const analyze::Assessment& a : monitor.assessments()) {
    nlohmann::json entry = assessment_json(a);
    nlohmann::json first = nlohmann::json::object();
    const auto found = monitor.first_raised().find(a.resource);
    if (found != monitor.first_raised().end()) {
      for (const auto& [level, when] : found->second) {
        first[analyze::to_string(level)] = {
            {"t_seconds", rounded(when.t_seconds)},
            {"usage_percent", percent(when.usage_percent)},
            {"predicted_oom_time_seconds", optional_seconds(when.predicted_oom_seconds)}};
        if (level > peak) peak = level;
      }
    }
    entry["first_raised"] = std::move(first);
    resources.push_back(std::move(entry));
  }
  const analyze::ModelParams& params = monitor.params();
  return {
      {"report", "memscope-oom"},
      {"schema_version", 1},
      {"mode", mode},
      {"source", source},
      {"threshold_percent", params.threshold_percent},
      {"peak_risk_level", analyze::to_string(peak)},
      {"risk_level", analyze::to_string(monitor.overall())},
      {"resources", std::move(resources)},
  };
}

std::string assessment_line(const analyze::Assessment& a) {
  return fmt::format("{:>8}  {:<8} {:<8} {:5.1f}% of {} ({})  {:+.2f} MiB/s  {}  conf {:.2f}",
                     format_duration(a.t_seconds), a.resource, analyze::to_string(a.level),
                     a.usage_percent, format_bytes(a.limit_bytes), a.limit_source,
                     a.growth_bytes_per_second / kMiB, forecast_words(a), a.confidence);
}

std::string level_change_line(const analyze::LevelChange& change) {
  const analyze::Assessment& a = change.assessment;
  return fmt::format("{:>8}  {:<8} {} -> {}  {:.1f}% of {}  {} (conf {:.2f}): {}",
                     format_duration(change.t_seconds), change.resource,
                     analyze::to_string(change.from), analyze::to_string(change.to),
                     a.usage_percent, format_bytes(a.limit_bytes), forecast_words(a), a.confidence,
                     a.reason);
}

}  // namespace memscope::report
