// Renderings of the OOM forecast (analyze/oom.hpp): the per-resource JSON object of `memscope
// oom` reports and OOMDetector predictions, the lines of --events, and terminal lines.
// JSON layout "memscope-oom" schema 1, documented in docs/report-formats.md.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "analyze/oom.hpp"

namespace memscope::report {

// One resource: risk_level, confidence, current_usage_percent, growth_rate_mb_per_sec (MiB/s),
// predicted_oom_time_seconds (null when not growing), limit_bytes, limit_source, used_bytes,
// recommendation, reason, and the model's fit details.
nlohmann::json assessment_json(const analyze::Assessment& assessment);

// One --events line for a level change: t, resource, level, previous_level, usage_percent,
// predicted_oom_time_seconds, confidence, growth_rate_mb_per_sec, reason.
nlohmann::json level_change_json(const analyze::LevelChange& change);

// The report at the end: report ("memscope-oom"), schema_version, mode ("live" | "replay"), source, threshold_percent,
// resources (latest assessment each, with first_raised per level), peak level.
nlohmann::json oom_report_json(const analyze::OomMonitor& monitor, const std::string& mode,
                               const std::string& source);

// "  12.3s  tree     critical   35.9% of 1.0 GiB (--limit)  +11.70 MiB/s  OOM in 56s  conf 0.51"
std::string assessment_line(const analyze::Assessment& assessment);
// "  12.3s  tree     high -> critical  35.9% of 1.0 GiB  OOM in 56s (conf 0.51): <reason>"
std::string level_change_line(const analyze::LevelChange& change);

}  // namespace memscope::report
