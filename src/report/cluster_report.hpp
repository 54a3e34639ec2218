// The distributed master's documents: what it reads (a worker's registration, an agent's
// /api/v1/snapshot) and what it writes (the `memscope-distributed` JSON report, the live table,
// one plain line per interval). docs/report-formats.md "Distributed master" lists the fields.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "analyze/cluster.hpp"
#include "core/result.hpp"

namespace memscope::report {

// POST /api/v1/register: {"endpoint": "ADDR:PORT", "hostname": "...", "pid": N}.
struct Registration {
  std::string endpoint;  // where the worker's agent answers; port 1..65535
  std::string hostname;
  int pid = 0;
};
// The one-line error says which field is wrong (the master answers 400 with it).
Result<Registration> parse_registration(std::string_view body);
std::string registration_json(const Registration& registration);

// A `memscope-agent-snapshot` (schema 1) reduced to what the master needs: processes grouped by
// RANK (a rank's root process first), host and GPU totals, the OOM assessments.
Result<analyze::NodeReport> parse_agent_snapshot(std::string_view body);

struct MasterInfo {
  std::string endpoint;  // where the master listened
  int64_t started_unix_ms = 0;
  int64_t now_unix_ms = 0;
  double interval_seconds = 1;
  int stale_after_intervals = 3;
  uint64_t intervals = 0;  // pull rounds so far
};
// `now_seconds`: the master's clock, against which workers' last_seen is measured.
nlohmann::json cluster_json(const analyze::ClusterView& view, const MasterInfo& info,
                            double now_seconds);
// For a terminal: a header, one row per worker, one per rank, the verdicts.
std::string cluster_table(const analyze::ClusterView& view, const MasterInfo& info);
// For a log: one line per interval.
std::string cluster_line(const analyze::ClusterView& view, double now_seconds);

}  // namespace memscope::report
