#include "analyze/cluster.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace memscope::analyze {
namespace {

constexpr double kMadToSigma = 1.4826;  // MAD of a normal sample times this: its sigma

std::string mib(double bytes) { return fmt::format("{:.0f} MiB", bytes / (1024.0 * 1024.0)); }

std::optional<double> soonest(const std::vector<ClusterResource>& resources,
                              const std::vector<std::string>& only = {}) {
  std::optional<double> best;
  for (const ClusterResource& r : resources) {
    if (!only.empty() && std::find(only.begin(), only.end(), r.resource) == only.end()) continue;
    if (r.time_to_oom_seconds && (!best || *r.time_to_oom_seconds < *best)) {
      best = r.time_to_oom_seconds;
    }
  }
  return best;
}

// Least (limit - used) / limit over the node's resources, and which resource that is; the
// host and GPU totals when it has no assessment yet.
std::pair<std::optional<double>, std::string> least_headroom(const NodeReport& report) {
  std::optional<double> best;
  std::string which;
  auto consider = [&](const std::string& name, uint64_t used, uint64_t limit) {
    if (limit == 0) return;
    const double ratio =
        (static_cast<double>(limit) - static_cast<double>(used)) / static_cast<double>(limit);
    if (!best || ratio < *best) {
      best = ratio;
      which = name;
    }
  };
  for (const ClusterResource& r : report.resources)
    consider(r.resource, r.used_bytes, r.limit_bytes);
  if (report.resources.empty()) {
    consider("host", report.host_used_bytes, report.host_limit_bytes);
    consider("gpus", report.gpu_used_bytes, report.gpu_limit_bytes);
  }
  return {best, which};
}

uint64_t ranks_memory(const NodeReport& report) {
  uint64_t total = 0;
  for (const ClusterRank& r : report.ranks) total += r.memory_bytes();
  return total;
}

std::optional<Imbalance> imbalance_of(std::string basis, const std::vector<double>& values) {
  if (values.size() < 2) return std::nullopt;
  Imbalance out;
  out.basis = std::move(basis);
  out.count = values.size();
  double sum = 0;
  for (double v : values) sum += v;
  out.mean_bytes = sum / static_cast<double>(values.size());
  out.max_bytes = *std::max_element(values.begin(), values.end());
  if (out.mean_bytes <= 0) return out;
  double squares = 0;
  for (double v : values) squares += (v - out.mean_bytes) * (v - out.mean_bytes);
  out.max_over_mean = out.max_bytes / out.mean_bytes;
  out.coefficient_of_variation =
      std::sqrt(squares / static_cast<double>(values.size())) / out.mean_bytes;
  return out;
}

}  // namespace

const char* to_string(WorkerState state) { return state == WorkerState::kUp ? "up" : "stale"; }

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  const size_t mid = values.size() / 2;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(mid), values.end());
  const double upper = values[mid];
  if (values.size() % 2 == 1) return upper;
  const double lower =
      *std::max_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(mid));
  return (lower + upper) / 2;
}

double median_absolute_deviation(const std::vector<double>& values, double center) {
  std::vector<double> deviations;
  deviations.reserve(values.size());
  for (double v : values) deviations.push_back(std::fabs(v - center));
  return median(std::move(deviations));
}

std::optional<double> slope(const std::deque<std::pair<double, double>>& points) {
  if (points.size() < 3) return std::nullopt;
  double mean_t = 0;
  double mean_v = 0;
  for (const auto& [t, v] : points) {
    mean_t += t;
    mean_v += v;
  }
  const auto n = static_cast<double>(points.size());
  mean_t /= n;
  mean_v /= n;
  double covariance = 0;
  double variance = 0;
  for (const auto& [t, v] : points) {
    covariance += (t - mean_t) * (v - mean_v);
    variance += (t - mean_t) * (t - mean_t);
  }
  if (variance <= 0) return std::nullopt;
  return covariance / variance;
}

ClusterTracker::ClusterTracker(ClusterParams params) : params_(params) {}

bool ClusterTracker::register_worker(const std::string& endpoint, const std::string& hostname,
                                     int pid, double now) {
  auto [it, inserted] = workers_.try_emplace(endpoint);
  WorkerView& view = it->second.view;
  if (inserted) {
    view.endpoint = endpoint;
    view.registered_at = now;
  }
  if (!view.latest || view.hostname.empty()) view.hostname = hostname;
  if (view.pid != pid && !inserted)
    history_.erase(history_.lower_bound({endpoint, INT32_MIN}),
                   history_.upper_bound({endpoint, INT32_MAX}));
  view.pid = pid;
  return inserted;
}

void ClusterTracker::observe(const std::string& endpoint, NodeReport report, double now) {
  auto it = workers_.find(endpoint);
  if (it == workers_.end()) return;  // answers only count for registered workers
  Worker& worker = it->second;
  worker.answered_this_interval = true;
  worker.view.missed_intervals = 0;
  if (worker.view.state != WorkerState::kUp) {
    changes_.push_back({endpoint, worker.view.state, WorkerState::kUp});
    worker.view.state = WorkerState::kUp;
  }
  worker.view.last_seen = now;
  worker.view.last_error.clear();
  if (!report.hostname.empty()) worker.view.hostname = report.hostname;
  for (const ClusterRank& rank : report.ranks) {
    auto& points = history_[{endpoint, rank.rank}];
    points.emplace_back(now, static_cast<double>(rank.memory_bytes()));
    while (points.size() > params_.growth_window) points.pop_front();
  }
  worker.view.time_to_oom_seconds = soonest(report.resources);
  worker.view.headroom_ratio = least_headroom(report).first;
  worker.view.latest = std::move(report);
}

void ClusterTracker::fail(const std::string& endpoint, std::string error) {
  auto it = workers_.find(endpoint);
  if (it != workers_.end()) it->second.view.last_error = std::move(error);
}

std::vector<StateChange> ClusterTracker::end_interval() {
  std::vector<StateChange> changes;
  changes.swap(changes_);
  for (auto& [endpoint, worker] : workers_) {
    WorkerView& view = worker.view;
    const WorkerState before = view.state;
    if (!worker.answered_this_interval) ++view.missed_intervals;
    worker.answered_this_interval = false;
    view.state = view.missed_intervals >= params_.stale_after_intervals ? WorkerState::kStale
                                                                        : WorkerState::kUp;
    if (view.state != before) changes.push_back({endpoint, before, view.state});
  }
  return changes;
}

std::vector<std::string> ClusterTracker::endpoints() const {
  std::vector<std::string> out;
  out.reserve(workers_.size());
  for (const auto& [endpoint, worker] : workers_) out.push_back(endpoint);
  return out;
}

ClusterView ClusterTracker::view() const {
  ClusterView out;
  for (const auto& [endpoint, worker] : workers_) {
    out.workers.push_back(worker.view);
    if (worker.view.state == WorkerState::kUp) {
      ++out.workers_up;
    } else {
      ++out.workers_stale;
    }
  }
  // Ranks; a process two workers on one host both report counts once: the report of a worker
  // that is up wins over a stale one's, then the most recent (a worker restarted on another
  // port reports the same processes as its dead former self).
  std::vector<const WorkerView*> by_preference;
  for (const WorkerView& w : out.workers) by_preference.push_back(&w);
  std::stable_sort(by_preference.begin(), by_preference.end(),
                   [](const WorkerView* a, const WorkerView* b) {
                     const bool a_up = a->state == WorkerState::kUp;
                     const bool b_up = b->state == WorkerState::kUp;
                     if (a_up != b_up) return a_up;
                     return a->last_seen.value_or(-1) > b->last_seen.value_or(-1);
                   });
  std::map<std::pair<std::string, int>, bool> seen;  // (hostname, root pid)
  for (const WorkerView* worker : by_preference) {
    const WorkerView& w = *worker;
    if (!w.latest) continue;
    for (const ClusterRank& rank : w.latest->ranks) {
      const int root = rank.pids.empty() ? -rank.rank : rank.pids.front();
      if (!seen.emplace(std::make_pair(w.latest->hostname, root), true).second) continue;
      RankView view;
      view.figures = rank;
      view.endpoint = w.endpoint;
      view.hostname = w.hostname;
      view.stale = w.state == WorkerState::kStale;
      if (auto h = history_.find({w.endpoint, rank.rank}); h != history_.end()) {
        view.growth_bytes_per_second = slope(h->second);
      }
      std::vector<std::string> used = {"host"};
      for (int gpu : rank.gpus) used.push_back(fmt::format("gpu{}", gpu));
      view.time_to_oom_seconds = soonest(w.latest->resources, used);
      out.ranks.push_back(std::move(view));
    }
  }
  std::stable_sort(out.ranks.begin(), out.ranks.end(), [](const RankView& a, const RankView& b) {
    return a.figures.rank < b.figures.rank;
  });

  // Imbalance over the live ranks (or nodes when no process carries a rank).
  std::vector<double> levels;
  for (const RankView& r : out.ranks) {
    if (!r.stale) levels.push_back(static_cast<double>(r.figures.memory_bytes()));
  }
  if (!levels.empty()) {
    out.imbalance = imbalance_of("ranks", levels);
  } else {
    std::vector<double> nodes;
    for (const WorkerView& w : out.workers) {
      if (w.latest && w.state == WorkerState::kUp) {
        nodes.push_back(static_cast<double>(w.latest->gpu_count > 0 ? w.latest->gpu_used_bytes
                                                                    : w.latest->host_used_bytes));
      }
    }
    out.imbalance = imbalance_of("nodes", nodes);
  }

  // Bottleneck: the soonest time to OOM; without one, the least headroom; ties go to the node
  // whose ranks use more (nodes sharing one machine see the same host figures).
  const WorkerView* best = nullptr;
  auto better = [&](const WorkerView& a, const WorkerView& b) {
    if (a.time_to_oom_seconds || b.time_to_oom_seconds) {
      if (!b.time_to_oom_seconds) return true;
      if (!a.time_to_oom_seconds) return false;
      const double ta = *a.time_to_oom_seconds;
      const double tb = *b.time_to_oom_seconds;
      if (std::fabs(ta - tb) > params_.tie_time_fraction * std::max(ta, tb)) return ta < tb;
    } else if (a.headroom_ratio && b.headroom_ratio &&
               std::fabs(*a.headroom_ratio - *b.headroom_ratio) > params_.tie_headroom) {
      return *a.headroom_ratio < *b.headroom_ratio;
    } else if (a.headroom_ratio.has_value() != b.headroom_ratio.has_value()) {
      return a.headroom_ratio.has_value();
    }
    return ranks_memory(*a.latest) > ranks_memory(*b.latest);
  };
  for (const WorkerView& w : out.workers) {
    if (!w.latest || w.state != WorkerState::kUp) continue;
    if (best == nullptr || better(w, *best)) best = &w;
    if (w.time_to_oom_seconds && (!out.cluster_time_to_oom_seconds ||
                                  *w.time_to_oom_seconds < *out.cluster_time_to_oom_seconds)) {
      out.cluster_time_to_oom_seconds = w.time_to_oom_seconds;
    }
  }
  if (best != nullptr) {
    Bottleneck b;
    b.endpoint = best->endpoint;
    b.hostname = best->hostname;
    b.time_to_oom_seconds = best->time_to_oom_seconds;
    b.headroom_ratio = best->headroom_ratio;
    const auto [headroom, which] = least_headroom(*best->latest);
    b.resource = which;
    if (best->time_to_oom_seconds) {
      for (const ClusterResource& r : best->latest->resources) {
        if (r.time_to_oom_seconds == best->time_to_oom_seconds) b.resource = r.resource;
      }
      b.reason = fmt::format("{} runs out first: {} in {:.0f} s", best->hostname, b.resource,
                             *best->time_to_oom_seconds);
    } else if (headroom) {
      b.reason = fmt::format("{} has the least headroom: {} {:.0f}% free, its ranks use {}",
                             best->hostname, which, *headroom * 100,
                             mib(static_cast<double>(ranks_memory(*best->latest))));
    } else {
      b.reason = fmt::format("{}: its ranks use the most memory", best->hostname);
    }
    out.bottleneck = std::move(b);
  }

  // Divergent ranks: far above the peers' median in level or in growth (high side only: the
  // rank that uses or gains more is the one that will fail). Needs 3 live ranks.
  std::vector<const RankView*> live;
  for (const RankView& r : out.ranks) {
    if (!r.stale) live.push_back(&r);
  }
  if (live.size() >= 3) {
    const double level_median = median(levels);
    const double level_spread =
        kMadToSigma * median_absolute_deviation(levels, level_median) * params_.outlier_mad_factor;
    const double level_threshold =
        std::max({level_spread, params_.level_min_fraction * level_median,
                  static_cast<double>(params_.level_min_bytes)});
    std::vector<double> growths;
    for (const RankView* r : live) {
      if (r->growth_bytes_per_second) growths.push_back(*r->growth_bytes_per_second);
    }
    const double growth_median = median(growths);
    const double growth_threshold =
        std::max(kMadToSigma * median_absolute_deviation(growths, growth_median) *
                     params_.outlier_mad_factor,
                 params_.growth_min_bytes_per_second);
    for (const RankView* r : live) {
      const auto level = static_cast<double>(r->figures.memory_bytes());
      if (level - level_median > level_threshold) {
        out.divergent.push_back(
            {r->figures.rank, r->endpoint, r->hostname, "level", level, level_median,
             level_threshold,
             fmt::format("rank {} on {} uses {}, its peers' median is {}", r->figures.rank,
                         r->hostname, mib(level), mib(level_median))});
      }
      if (growths.size() >= 3 && r->growth_bytes_per_second &&
          *r->growth_bytes_per_second - growth_median > growth_threshold) {
        out.divergent.push_back(
            {r->figures.rank, r->endpoint, r->hostname, "growth", *r->growth_bytes_per_second,
             growth_median, growth_threshold,
             fmt::format("rank {} on {} grows {}/min, its peers' median is {}/min", r->figures.rank,
                         r->hostname, mib(*r->growth_bytes_per_second * 60),
                         mib(growth_median * 60))});
      }
    }
  }
  return out;
}

}  // namespace memscope::analyze
