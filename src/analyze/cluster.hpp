// The distributed master's view of a job: what each worker (a node agent) last reported, reduced
// to per-node and per-rank figures, and what follows from them across the job: imbalance of
// memory across ranks, the bottleneck node, the cluster's time to OOM (the soonest), ranks whose
// memory diverges from their peers (a rank-local leak), and workers gone stale.
//
// Pure: the master feeds it registrations, answers, failures and interval ends with their times;
// it never does I/O. Robust statistics (median, MAD) so one outlier cannot hide itself by
// moving the reference it is compared with.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace memscope::analyze {

// One rank as a worker reports it: the processes that carry the same RANK on that node (a rank
// and, e.g., its data-loader workers), summed.
struct ClusterRank {
  int rank = 0;
  std::optional<int> local_rank;
  std::optional<int> world_size;
  std::vector<int> pids;    // the rank's root process first
  std::string comm;         // of the root process
  uint64_t host_bytes = 0;  // USS summed (RSS where USS is unknown)
  uint64_t gpu_bytes = 0;   // summed over GPUs
  std::vector<int> gpus;    // indices of the GPUs its processes use
  uint64_t memory_bytes() const { return host_bytes + gpu_bytes; }
};

// One OOM assessment of a node ("host", "gpu0", ...).
struct ClusterResource {
  std::string resource;
  std::string level;  // low .. critical
  uint64_t used_bytes = 0;
  uint64_t limit_bytes = 0;
  std::optional<double> time_to_oom_seconds;  // none: not growing towards the limit
};

// One worker's latest answer, reduced.
struct NodeReport {
  std::string hostname;
  int64_t time_unix_ms = 0;
  uint64_t host_used_bytes = 0;
  uint64_t host_limit_bytes = 0;
  uint64_t gpu_used_bytes = 0;  // summed over its GPUs
  uint64_t gpu_limit_bytes = 0;
  size_t gpu_count = 0;
  std::vector<ClusterResource> resources;
  std::vector<ClusterRank> ranks;
};

struct ClusterParams {
  int stale_after_intervals = 3;           // missed intervals before a worker is stale
  size_t growth_window = 60;               // samples per rank kept for its growth
  double outlier_mad_factor = 3.5;         // deviation in robust standard deviations (1.4826 MAD)
  double level_min_fraction = 0.25;        // and at least this share above the peers' median
  uint64_t level_min_bytes = 64ULL << 20;  // and at least this much
  double growth_min_bytes_per_second = (1ULL << 20) / 60.0;  // 1 MiB/min
  double tie_headroom = 0.02;      // headroom ratios closer than this are a tie
  double tie_time_fraction = 0.1;  // times to OOM within 10 % are a tie
};

enum class WorkerState { kUp, kStale };
const char* to_string(WorkerState state);

struct StateChange {
  std::string endpoint;
  WorkerState from = WorkerState::kUp;
  WorkerState to = WorkerState::kUp;
};

struct WorkerView {
  std::string endpoint;
  std::string hostname;  // as registered, replaced by the report's
  int pid = 0;           // the worker process, as registered
  WorkerState state = WorkerState::kUp;
  int missed_intervals = 0;
  std::optional<double> last_seen;  // master time of the latest answer
  double registered_at = 0;
  std::string last_error;  // of the latest failed pull
  std::optional<NodeReport> latest;
  std::optional<double> time_to_oom_seconds;  // soonest over its resources
  std::optional<double> headroom_ratio;       // least (limit - used) / limit over its resources
};

struct RankView {
  ClusterRank figures;
  std::string endpoint;
  std::string hostname;
  bool stale = false;  // from a stale worker: shown, left out of the job's statistics
  std::optional<double> growth_bytes_per_second;
  std::optional<double> time_to_oom_seconds;  // its node's, for the host and the GPUs it uses
};

struct Imbalance {
  std::string basis;  // "ranks", or "nodes" when no process carries a rank
  size_t count = 0;
  double mean_bytes = 0;
  double max_bytes = 0;
  double max_over_mean = 0;
  double coefficient_of_variation = 0;  // population standard deviation / mean
};

struct Bottleneck {
  std::string endpoint;
  std::string hostname;
  std::string resource;
  std::optional<double> time_to_oom_seconds;
  std::optional<double> headroom_ratio;
  std::string reason;
};

struct Divergence {
  int rank = 0;
  std::string endpoint;
  std::string hostname;
  std::string kind;  // "level" (uses far more than its peers) or "growth" (grows faster)
  double value = 0;  // bytes, or bytes per second
  double peer_median = 0;
  double threshold = 0;  // what `value - peer_median` had to exceed
  std::string reason;
};

struct ClusterView {
  std::vector<WorkerView> workers;  // by endpoint
  std::vector<RankView> ranks;      // by rank
  size_t workers_up = 0;
  size_t workers_stale = 0;
  std::optional<Imbalance> imbalance;
  std::optional<Bottleneck> bottleneck;
  std::optional<double> cluster_time_to_oom_seconds;
  std::vector<Divergence> divergent;
};

// Median and robust spread of a sample (the median absolute deviation, unscaled).
double median(std::vector<double> values);
double median_absolute_deviation(const std::vector<double>& values, double center);
// Least-squares slope of (time, value) points; none below 3 points or a zero time span.
std::optional<double> slope(const std::deque<std::pair<double, double>>& points);

class ClusterTracker {
 public:
  explicit ClusterTracker(ClusterParams params = {});

  // A worker announced itself (again): true when the endpoint is new. Never changes its state.
  bool register_worker(const std::string& endpoint, const std::string& hostname, int pid,
                       double now);
  // A pull answered: the worker is up again, its figures replaced.
  void observe(const std::string& endpoint, NodeReport report, double now);
  // A pull failed; the error is kept for the report. Staleness counts at interval ends.
  void fail(const std::string& endpoint, std::string error);
  // Ends an interval: a worker that did not answer in it misses one; after
  // stale_after_intervals misses in a row it is stale. Returns the state changes since the
  // previous call (a stale worker is up again as soon as it answers).
  std::vector<StateChange> end_interval();

  ClusterView view() const;
  size_t worker_count() const { return workers_.size(); }
  bool knows(const std::string& endpoint) const { return workers_.count(endpoint) != 0; }
  std::vector<std::string> endpoints() const;

 private:
  struct Worker {
    WorkerView view;
    bool answered_this_interval = false;
  };
  ClusterParams params_;
  std::map<std::string, Worker> workers_;
  std::vector<StateChange> changes_;
  // Per rank (endpoint, rank): (master time, memory bytes), oldest first.
  std::map<std::pair<std::string, int>, std::deque<std::pair<double, double>>> history_;
};

}  // namespace memscope::analyze
