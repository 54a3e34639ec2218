#include "core/process_tree.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace memscope {
namespace {

using ::testing::ElementsAre;

ProcessSample process(int pid, int ppid, uint64_t rss = 0, uint64_t pss = 0, uint64_t uss = 0,
                      uint64_t gpu = 0) {
  ProcessSample sample;
  sample.pid = pid;
  sample.ppid = ppid;
  sample.rss_bytes = rss;
  sample.pss_bytes = pss;
  sample.uss_bytes = uss;
  sample.swap_bytes = rss / 10;
  sample.gpu_bytes = gpu;
  return sample;
}

// torchrun (100) -> ranks 110, 111; rank 110 -> DataLoader workers 120, 121; unrelated 1, 50.
// Deliberately not in pid order.
std::vector<ProcessSample> training_job() {
  return {process(111, 100, 400, 300, 200, 7000),
          process(1, 0, 10, 5, 2),
          process(121, 110, 100, 40, 30),
          process(100, 1, 50, 20, 10),
          process(110, 100, 500, 350, 250, 8000),
          process(120, 110, 100, 40, 30),
          process(50, 1, 70, 60, 50)};
}

std::vector<int> pids_of(const std::vector<ProcessSample>& processes,
                         const std::vector<TreeRow>& rows) {
  std::vector<int> pids;
  for (const auto& row : rows) pids.push_back(processes[row.index].pid);
  return pids;
}

std::vector<int> depths_of(const std::vector<TreeRow>& rows) {
  std::vector<int> depths;
  for (const auto& row : rows) depths.push_back(row.depth);
  return depths;
}

TEST(ChildrenMap, ListsChildrenByPid) {
  const auto processes = training_job();
  const ChildrenMap children = children_map(processes);
  ASSERT_EQ(children.count(100), 1u);
  std::vector<int> kids;
  for (size_t index : children.at(100)) kids.push_back(processes[index].pid);
  EXPECT_THAT(kids, ElementsAre(110, 111));
  EXPECT_EQ(children.count(120), 0u);
}

TEST(TreeMembers, IsTheRootAndEveryDescendantDepthFirst) {
  const auto processes = training_job();
  EXPECT_THAT(tree_members(processes, 100), ElementsAre(100, 110, 120, 121, 111));
  EXPECT_THAT(tree_members(processes, 110), ElementsAre(110, 120, 121));
  EXPECT_THAT(tree_members(processes, 121), ElementsAre(121));
  EXPECT_TRUE(tree_members(processes, 999).empty());
}

TEST(TreeMembers, ListsDescendantsOfARootThatIsGone) {
  const auto processes = training_job();
  std::vector<ProcessSample> without_launcher;
  for (const auto& p : processes) {
    if (p.pid != 100) without_launcher.push_back(p);
  }
  EXPECT_THAT(tree_members(without_launcher, 100), ElementsAre(110, 120, 121, 111));
}

TEST(TreeMembers, ZeroMeansEveryProcess) { EXPECT_EQ(tree_members(training_job(), 0).size(), 7u); }

TEST(TreeOrder, ShowsTheLauncherThenItsWorkersIndented) {
  const auto processes = training_job();
  const auto rows = tree_order(processes, 100);
  EXPECT_THAT(pids_of(processes, rows), ElementsAre(100, 110, 120, 121, 111));
  EXPECT_THAT(depths_of(rows), ElementsAre(0, 1, 2, 2, 1));
}

TEST(TreeOrder, WholeForestStartsAtProcessesWithoutAParentInTheSample) {
  const auto processes = training_job();
  const auto rows = tree_order(processes);
  EXPECT_THAT(pids_of(processes, rows), ElementsAre(1, 50, 100, 110, 120, 121, 111));
  EXPECT_THAT(depths_of(rows), ElementsAre(0, 1, 1, 2, 3, 3, 2));
}

TEST(TreeOrder, SurvivesPpidCyclesAndSelfParents) {
  // 5 <-> 6 form a cycle; 7 is its own parent; 8 hangs off the cycle.
  const std::vector<ProcessSample> processes = {process(5, 6), process(6, 5), process(7, 7),
                                                process(8, 6)};
  const auto rows = tree_order(processes);
  EXPECT_EQ(rows.size(), 4u);
  EXPECT_THAT(tree_members(processes, 5), ElementsAre(5, 6, 8));
  EXPECT_THAT(tree_members(processes, 7), ElementsAre(7));
}

TEST(TreeOrder, DeepChainDoesNotOverflowTheStack) {
  std::vector<ProcessSample> chain;
  for (int pid = 1; pid <= 100000; ++pid) chain.push_back(process(pid, pid - 1));
  const auto rows = tree_order(chain, 1);
  ASSERT_EQ(rows.size(), 100000u);
  EXPECT_EQ(rows.back().depth, 99999);
}

TEST(TreeTotals, SumsTheTree) {
  const auto processes = training_job();
  const TreeTotals job = tree_totals(processes, 100);
  EXPECT_EQ(job.processes, 5u);
  EXPECT_EQ(job.rss_bytes, 50u + 500 + 100 + 100 + 400);
  EXPECT_EQ(job.pss_bytes, 20u + 350 + 40 + 40 + 300);
  EXPECT_EQ(job.uss_bytes, 10u + 250 + 30 + 30 + 200);
  EXPECT_EQ(job.swap_bytes, 5u + 50 + 10 + 10 + 40);
  EXPECT_EQ(job.gpu_bytes, 15000u);

  const TreeTotals all = tree_totals(processes);
  EXPECT_EQ(all.processes, 7u);
  EXPECT_EQ(all.rss_bytes, 1230u);
  EXPECT_EQ(tree_totals(processes, 999).processes, 0u);
  EXPECT_EQ(tree_totals({}, 0).rss_bytes, 0u);
}

}  // namespace
}  // namespace memscope
