#include "analyze/cluster.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

namespace memscope::analyze {
namespace {

constexpr uint64_t kMiB = 1ULL << 20;
constexpr uint64_t kGiB = 1ULL << 30;

ClusterRank rank_of(int rank, uint64_t host_bytes, uint64_t gpu_bytes = 0, int pid = 0) {
  ClusterRank r;
  r.rank = rank;
  r.pids = {pid == 0 ? 1000 + rank : pid};
  r.host_bytes = host_bytes;
  r.gpu_bytes = gpu_bytes;
  return r;
}

NodeReport node(const std::string& hostname, std::vector<ClusterRank> ranks,
                uint64_t host_used = 10 * kGiB, uint64_t host_limit = 64 * kGiB) {
  NodeReport report;
  report.hostname = hostname;
  report.host_used_bytes = host_used;
  report.host_limit_bytes = host_limit;
  report.resources.push_back({"host", "low", host_used, host_limit, std::nullopt});
  report.ranks = std::move(ranks);
  return report;
}

TEST(ClusterStats, MedianMadAndSlope) {
  EXPECT_DOUBLE_EQ(median({3, 1, 2}), 2);
  EXPECT_DOUBLE_EQ(median({4, 1, 3, 2}), 2.5);
  EXPECT_DOUBLE_EQ(median({}), 0);
  EXPECT_DOUBLE_EQ(median_absolute_deviation({1, 2, 3, 100}, 2.5), 1);
  EXPECT_FALSE(slope({{0, 1}, {1, 2}}));
  EXPECT_FALSE(slope({{1, 1}, {1, 2}, {1, 3}}));
  const auto s = slope({{0, 10}, {1, 12}, {2, 14}, {3, 16}});
  ASSERT_TRUE(s);
  EXPECT_NEAR(*s, 2.0, 1e-9);
}

TEST(ClusterTracker, ImbalanceIsMaxOverMeanAndCoefficientOfVariation) {
  ClusterTracker tracker;
  tracker.register_worker("a:1", "a", 10, 0);
  tracker.register_worker("b:1", "b", 11, 0);
  tracker.observe("a:1", node("a", {rank_of(0, 1 * kGiB), rank_of(1, 1 * kGiB)}), 1);
  tracker.observe("b:1", node("b", {rank_of(2, 1 * kGiB), rank_of(3, 3 * kGiB)}), 1);
  const ClusterView view = tracker.view();
  ASSERT_TRUE(view.imbalance);
  EXPECT_EQ(view.imbalance->basis, "ranks");
  EXPECT_EQ(view.imbalance->count, 4U);
  // mean 1.5 GiB, max 3 GiB; deviations -0.5,-0.5,-0.5,1.5 GiB: sigma sqrt(0.75) GiB
  EXPECT_NEAR(view.imbalance->max_over_mean, 2.0, 1e-9);
  EXPECT_NEAR(view.imbalance->coefficient_of_variation, std::sqrt(0.75) / 1.5, 1e-9);
  ASSERT_EQ(view.ranks.size(), 4U);
  EXPECT_EQ(view.ranks[3].figures.rank, 3);
  EXPECT_EQ(view.ranks[3].hostname, "b");
}

TEST(ClusterTracker, ImbalanceFallsBackToNodesWithoutRanks) {
  ClusterTracker tracker;
  tracker.register_worker("a:1", "a", 10, 0);
  tracker.register_worker("b:1", "b", 11, 0);
  tracker.observe("a:1", node("a", {}, 2 * kGiB), 1);
  tracker.observe("b:1", node("b", {}, 6 * kGiB), 1);
  const ClusterView view = tracker.view();
  ASSERT_TRUE(view.imbalance);
  EXPECT_EQ(view.imbalance->basis, "nodes");
  EXPECT_NEAR(view.imbalance->max_over_mean, 1.5, 1e-9);
}

TEST(ClusterTracker, BottleneckIsTheSoonestOomThenTheLeastHeadroom) {
  ClusterTracker tracker;
  for (const char* e : {"a:1", "b:1", "c:1"}) tracker.register_worker(e, e, 1, 0);
  NodeReport a = node("a", {rank_of(0, kGiB)}, 60 * kGiB);  // least headroom, not growing
  NodeReport b = node("b", {rank_of(1, kGiB)});
  b.resources.push_back({"gpu0", "high", 70 * kGiB, 80 * kGiB, 300.0});
  NodeReport c = node("c", {rank_of(2, kGiB)});
  c.resources.push_back({"gpu1", "high", 70 * kGiB, 80 * kGiB, 900.0});
  tracker.observe("a:1", a, 1);
  tracker.observe("b:1", b, 1);
  tracker.observe("c:1", c, 1);
  ClusterView view = tracker.view();
  ASSERT_TRUE(view.bottleneck);
  EXPECT_EQ(view.bottleneck->endpoint, "b:1");
  EXPECT_EQ(view.bottleneck->resource, "gpu0");
  ASSERT_TRUE(view.cluster_time_to_oom_seconds);
  EXPECT_DOUBLE_EQ(*view.cluster_time_to_oom_seconds, 300.0);

  // No forecast anywhere: the least headroom wins.
  ClusterTracker flat;
  for (const char* e : {"a:1", "b:1"}) flat.register_worker(e, e, 1, 0);
  flat.observe("a:1", node("a", {rank_of(0, kGiB)}, 60 * kGiB), 1);
  flat.observe("b:1", node("b", {rank_of(1, 5 * kGiB)}, 10 * kGiB), 1);
  view = flat.view();
  ASSERT_TRUE(view.bottleneck);
  EXPECT_EQ(view.bottleneck->endpoint, "a:1");
  EXPECT_EQ(view.bottleneck->resource, "host");
  EXPECT_FALSE(view.cluster_time_to_oom_seconds);
}

TEST(ClusterTracker, NodesSharingAMachineTieBreakOnTheirRanksMemory) {
  ClusterTracker tracker;
  for (const char* e : {"a:1", "b:1"}) tracker.register_worker(e, e, 1, 0);
  tracker.observe("a:1", node("a", {rank_of(0, kGiB), rank_of(1, kGiB)}, 30 * kGiB), 1);
  tracker.observe("b:1", node("b", {rank_of(2, kGiB), rank_of(3, 4 * kGiB)}, 30 * kGiB + kMiB), 1);
  const ClusterView view = tracker.view();
  ASSERT_TRUE(view.bottleneck);
  EXPECT_EQ(view.bottleneck->endpoint, "b:1");
}

TEST(ClusterTracker, DivergentRankByLevelNeedsThreePeersAndAMargin) {
  ClusterTracker tracker;
  for (const char* e : {"a:1", "b:1"}) tracker.register_worker(e, e, 1, 0);
  tracker.observe("a:1", node("a", {rank_of(0, 500 * kMiB), rank_of(1, 520 * kMiB)}), 1);
  tracker.observe("b:1", node("b", {rank_of(2, 510 * kMiB), rank_of(3, 2 * kGiB)}), 1);
  ClusterView view = tracker.view();
  ASSERT_EQ(view.divergent.size(), 1U);
  EXPECT_EQ(view.divergent[0].rank, 3);
  EXPECT_EQ(view.divergent[0].hostname, "b");
  EXPECT_EQ(view.divergent[0].kind, "level");

  // Within 25 % of the median: nobody diverges.
  tracker.observe("b:1", node("b", {rank_of(2, 510 * kMiB), rank_of(3, 600 * kMiB)}), 2);
  EXPECT_TRUE(tracker.view().divergent.empty());

  // Two ranks cannot tell which one is odd.
  ClusterTracker pair;
  pair.register_worker("a:1", "a", 1, 0);
  pair.observe("a:1", node("a", {rank_of(0, 500 * kMiB), rank_of(1, 5 * kGiB)}), 1);
  EXPECT_TRUE(pair.view().divergent.empty());
}

TEST(ClusterTracker, DivergentRankByGrowth) {
  ClusterTracker tracker;
  tracker.register_worker("a:1", "a", 1, 0);
  for (int t = 0; t < 10; ++t) {
    const auto step = static_cast<uint64_t>(t);
    tracker.observe(
        "a:1",
        node("a", {rank_of(0, kGiB + step * kMiB / 10), rank_of(1, kGiB),
                   rank_of(2, kGiB + (step % 2) * kMiB), rank_of(3, kGiB + step * 8 * kMiB)}),
        t);
  }
  const ClusterView view = tracker.view();
  ASSERT_EQ(view.divergent.size(), 1U);
  EXPECT_EQ(view.divergent[0].rank, 3);
  EXPECT_EQ(view.divergent[0].kind, "growth");
  EXPECT_NEAR(view.divergent[0].value, 8.0 * kMiB, 1.0);
}

TEST(ClusterTracker, StaleAfterMissedIntervalsThenUpAgain) {
  ClusterParams params;
  params.stale_after_intervals = 2;
  ClusterTracker tracker(params);
  EXPECT_TRUE(tracker.register_worker("a:1", "a", 1, 0));
  EXPECT_FALSE(tracker.register_worker("a:1", "a", 1, 0));
  tracker.register_worker("b:1", "b", 2, 0);
  tracker.observe("a:1", node("a", {rank_of(0, kGiB)}), 1);
  tracker.observe("b:1", node("b", {rank_of(1, 8 * kGiB)}), 1);
  EXPECT_TRUE(tracker.end_interval().empty());
  tracker.observe("a:1", node("a", {rank_of(0, kGiB)}), 2);
  tracker.fail("b:1", "connection refused");
  EXPECT_TRUE(tracker.end_interval().empty());  // one miss: still up
  tracker.observe("a:1", node("a", {rank_of(0, kGiB)}), 3);
  auto changes = tracker.end_interval();
  ASSERT_EQ(changes.size(), 1U);
  EXPECT_EQ(changes[0].endpoint, "b:1");
  EXPECT_EQ(changes[0].to, WorkerState::kStale);
  ClusterView view = tracker.view();
  EXPECT_EQ(view.workers_stale, 1U);
  EXPECT_EQ(view.workers.size(), 2U);  // reported, never dropped
  EXPECT_EQ(view.workers[1].last_error, "connection refused");
  EXPECT_EQ(view.workers[1].missed_intervals, 2);
  ASSERT_EQ(view.ranks.size(), 2U);
  EXPECT_TRUE(view.ranks[1].stale);
  ASSERT_TRUE(view.bottleneck);
  EXPECT_EQ(view.bottleneck->endpoint, "a:1");  // stale figures are left out
  tracker.observe("b:1", node("b", {rank_of(1, kGiB)}), 4);
  changes = tracker.end_interval();
  ASSERT_EQ(changes.size(), 1U);
  EXPECT_EQ(changes[0].to, WorkerState::kUp);
  view = tracker.view();
  EXPECT_EQ(view.workers_up, 2U);
  EXPECT_EQ(view.workers[1].last_error, "");
}

TEST(ClusterTracker, UnregisteredAnswersAndDuplicateProcessesCountOnce) {
  ClusterTracker tracker;
  tracker.observe("x:1", node("x", {rank_of(0, kGiB)}), 1);
  EXPECT_TRUE(tracker.view().workers.empty());
  tracker.register_worker("h:1", "h", 1, 0);
  tracker.register_worker("h:2", "h", 2, 0);
  tracker.observe("h:1", node("h", {rank_of(0, kGiB, 0, 77)}), 1);
  tracker.observe("h:2", node("h", {rank_of(0, kGiB, 0, 77)}), 1);
  EXPECT_EQ(tracker.view().ranks.size(), 1U);
}

TEST(ClusterTracker, AWorkerRestartedOnAnotherPortOwnsItsRanksNotItsDeadFormerSelf) {
  ClusterParams params;
  params.stale_after_intervals = 1;
  ClusterTracker tracker(params);
  // The dead endpoint sorts first ("h:1" < "h:2").
  tracker.register_worker("h:1", "h", 1, 0);
  tracker.observe("h:1", node("h", {rank_of(0, kGiB, 0, 77), rank_of(1, kGiB, 0, 78)}), 1);
  tracker.end_interval();
  tracker.register_worker("h:2", "h", 2, 2);  // restarted on a new port; h:1 never answers again
  tracker.observe("h:2", node("h", {rank_of(0, 3 * kGiB, 0, 77), rank_of(1, kGiB, 0, 78)}), 2);
  tracker.end_interval();
  const ClusterView view = tracker.view();
  ASSERT_EQ(view.workers.size(), 2U);
  EXPECT_EQ(view.workers[0].state, WorkerState::kStale);
  ASSERT_EQ(view.ranks.size(), 2U);
  for (const RankView& rank : view.ranks) {
    EXPECT_EQ(rank.endpoint, "h:2") << rank.figures.rank;
    EXPECT_FALSE(rank.stale) << rank.figures.rank;
  }
  EXPECT_EQ(view.ranks[0].figures.host_bytes, 3 * kGiB);  // the live worker's figures
  ASSERT_TRUE(view.imbalance);
  EXPECT_EQ(view.imbalance->count, 2U);
}

}  // namespace
}  // namespace memscope::analyze
