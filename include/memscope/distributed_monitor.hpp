// DistributedMemoryMonitor: the job-wide view of `memscope distributed --role master` inside a
// program. Either it pulls node agents itself (`memscope agent` or `memscope distributed
// --role worker` endpoints: GET /api/v1/snapshot) and reduces them as the master does, or it
// asks a running master for its view (GET /api/v1/cluster). poll() does one round; start() runs
// rounds on a background thread and calls the callback after each.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "memscope/result.hpp"

namespace memscope {

struct DistributedMonitorOptions {
  std::vector<std::string> agents;  // "HOST:PORT" of node agents; or
  std::string master;               // "HOST:PORT" of a master (exactly one of the two)
  std::string token;                // bearer token the endpoints require ("" = none)
  double interval_seconds = 5;      // between background rounds (>= 0.1)
  double timeout_seconds = 5;       // per request (> 0)
  int stale_after_intervals = 3;    // rounds a node may miss before it is stale (>= 1)
};

struct NodeMemory {
  std::string endpoint;
  std::string hostname;
  bool up = false;         // answered recently (not stale)
  std::string last_error;  // of the latest failed request
  uint64_t host_used_bytes = 0;
  uint64_t host_limit_bytes = 0;
  uint64_t gpu_used_bytes = 0;  // summed over its GPUs
  uint64_t gpu_limit_bytes = 0;
  std::optional<double> time_to_oom_seconds;  // soonest over its resources
};

struct RankMemory {
  int rank = 0;
  std::string endpoint;
  std::string hostname;
  uint64_t host_bytes = 0;  // USS of the rank's processes
  uint64_t gpu_bytes = 0;
  uint64_t used_bytes = 0;   // host + GPU
  uint64_t limit_bytes = 0;  // its node's GPU limit when it uses GPUs, else the host's
  bool stale = false;
  std::optional<double> growth_bytes_per_second;
  std::optional<double> time_to_oom_seconds;
};

struct ClusterSummary {
  std::vector<NodeMemory> nodes;  // by endpoint
  std::vector<RankMemory> ranks;  // by rank
  size_t nodes_up = 0;
  size_t nodes_stale = 0;
  // Imbalance across ranks (or nodes when no process carries a RANK): max / mean and the
  // coefficient of variation of memory used; none with fewer than two.
  std::optional<double> imbalance_max_over_mean;
  std::optional<double> imbalance_coefficient_of_variation;
  std::string bottleneck_endpoint;  // "" when none
  std::string bottleneck_resource;  // "host", "gpu0", ...
  std::string bottleneck_reason;
  std::optional<double> time_to_oom_seconds;  // the cluster's soonest
  std::vector<int> divergent_ranks;           // ranks using or growing far beyond their peers
  std::string json;  // the whole `memscope-distributed` document (docs/report-formats.md)
};

class DistributedMemoryMonitor {
 public:
  using Callback = std::function<void(const ClusterSummary& summary)>;

  // Checks the options (an error names the bad one: an endpoint that is not HOST:PORT, ...).
  static Result<std::unique_ptr<DistributedMemoryMonitor>> create(
      const DistributedMonitorOptions& options);
  ~DistributedMemoryMonitor();  // stops
  DistributedMemoryMonitor(const DistributedMemoryMonitor&) = delete;
  DistributedMemoryMonitor& operator=(const DistributedMemoryMonitor&) = delete;

  // One round now: every endpoint asked at once, each answer bounded by the timeout. Unreachable
  // agents are not an error (their nodes show last_error, then become stale); an unreachable or
  // malformed master is.
  Result<ClusterSummary> poll();
  // Rounds every interval on a background thread; the callback (optional) runs there after each
  // successful round; one that throws is caught, logged and counted.
  Status start(Callback callback = nullptr);
  void stop();  // joins the thread; idempotent
  bool running() const;
  std::optional<ClusterSummary> latest() const;  // of the last successful round
  uint64_t rounds() const;
  uint64_t callback_errors() const;

 private:
  DistributedMemoryMonitor();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace memscope
