// Process trees over one sample's processes: who is whose child, which processes form a job
// (a launcher and everything it started), the order to show them in, and what they add up to.
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "core/sample.hpp"

namespace memscope {

// ppid -> indices into `processes` of its children, each list ordered by pid.
using ChildrenMap = std::unordered_map<int, std::vector<size_t>>;
ChildrenMap children_map(const std::vector<ProcessSample>& processes);

// root_pid and every descendant by ppid, depth first (children in pid order). root_pid comes
// first when it is among the processes; its descendants are listed even when it is not.
// root_pid 0: every process, in tree_order.
std::vector<int> tree_members(const std::vector<ProcessSample>& processes, int root_pid);

// One row of a tree display: processes[index], indented by depth (the root is 0).
struct TreeRow {
  size_t index = 0;
  int depth = 0;
};
// Depth-first display order. root_pid 0: the whole forest, each root being a process whose
// parent is not among `processes` (roots in pid order). Otherwise the tree of root_pid as in
// tree_members. Every process appears at most once, even with ppid cycles in bad input.
std::vector<TreeRow> tree_order(const std::vector<ProcessSample>& processes, int root_pid = 0);

// What a tree adds up to. PSS adds up to the memory the tree really uses; RSS double-counts
// shared pages; USS is what would be freed if all of them exited.
struct TreeTotals {
  size_t processes = 0;
  uint64_t rss_bytes = 0;
  uint64_t pss_bytes = 0;
  uint64_t uss_bytes = 0;
  uint64_t swap_bytes = 0;
  uint64_t gpu_bytes = 0;
};
// Over the tree of root_pid (tree_members), or over every process when root_pid is 0.
TreeTotals tree_totals(const std::vector<ProcessSample>& processes, int root_pid = 0);

}  // namespace memscope
