// What `memscope agent` serves, rendered from the state it cached at its latest sample (a scrape
// never samples): /metrics in the Prometheus text exposition format 0.0.4, and /api/v1/snapshot
// as JSON for the distributed master. docs/report-formats.md lists every family and field.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "analyze/leak.hpp"
#include "analyze/oom.hpp"
#include "core/sample.hpp"

namespace memscope::report {

// The agent's latest view of its node.
struct AgentState {
  std::string hostname;
  std::string endpoint;  // the agent's bound ADDR:PORT, as the master reaches it
  std::string memscope_version = "0.1.0";
  double interval_seconds = 1;
  int64_t start_unix_ms = 0;
  uint64_t samples_taken = 0;
  double sample_duration_seconds = 0;      // what the latest sample cost
  double previous_render_seconds = 0;      // what the previous /metrics rendering took
  Sample sample;  // the latest; `processes` holds only the processes the agent reports
  std::vector<analyze::Assessment> assessments;  // OOM forecast per resource
  std::vector<analyze::LeakVerdict> leaks;       // growth per process (USS) and GPU process
  std::vector<std::string> notes;                // degradations ("NVML not found", ...)
};

// The risk level as a Prometheus value: 0 low, 1 medium, 2 high, 3 critical.
int risk_level_value(analyze::RiskLevel level);

// The text exposition format (Content-Type kPrometheusContentType).
inline constexpr const char* kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";
std::string prometheus_text(const AgentState& state);

// Label values escape backslash, double quote and newline (\\ \" \n).
std::string escape_label_value(std::string_view value);
// Sample values: integers exactly, +Inf / -Inf / NaN as the format spells them.
std::string format_sample_value(double value);

// The `memscope-agent-snapshot` document (schema 1).
nlohmann::json snapshot_json(const AgentState& state);

}  // namespace memscope::report
