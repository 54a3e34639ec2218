// The DistributedMemoryMonitor's ClusterSummary from a `memscope-distributed` document (the
// master's /api/v1/cluster answer, or the one the monitor builds itself from agents). Pure.
#pragma once

#include <nlohmann/json.hpp>

#include "core/result.hpp"
#include "memscope/distributed_monitor.hpp"

namespace memscope::api {

// An error names the member that is missing or of the wrong type.
Result<ClusterSummary> summary_from_cluster_json(const nlohmann::json& document);

}  // namespace memscope::api
