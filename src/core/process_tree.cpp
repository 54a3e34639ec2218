#include "core/process_tree.hpp"

#include <algorithm>
#include <unordered_set>

namespace memscope {
namespace {

// Pre-order walk from `pid` (already emitted at `depth`) over its children, iteratively so a
// deep chain cannot overflow the stack.
void walk(const std::vector<ProcessSample>& processes, const ChildrenMap& children, int pid,
          int depth, std::unordered_set<int>& seen, std::vector<TreeRow>& rows) {
  struct Frame {
    const std::vector<size_t>* kids;
    size_t next;
    int depth;
  };
  std::vector<Frame> stack;
  if (const auto found = children.find(pid); found != children.end()) {
    stack.push_back({&found->second, 0, depth + 1});
  }
  while (!stack.empty()) {
    Frame& frame = stack.back();
    if (frame.next == frame.kids->size()) {
      stack.pop_back();
      continue;
    }
    const size_t index = (*frame.kids)[frame.next++];
    const int child_depth = frame.depth;
    const int child = processes[index].pid;
    if (!seen.insert(child).second) continue;
    rows.push_back({index, child_depth});
    if (const auto found = children.find(child); found != children.end()) {
      stack.push_back({&found->second, 0, child_depth + 1});  // invalidates `frame`
    }
  }
}

}  // namespace

ChildrenMap children_map(const std::vector<ProcessSample>& processes) {
  ChildrenMap children;
  for (size_t i = 0; i < processes.size(); ++i) {
    if (processes[i].ppid == processes[i].pid) continue;
    children[processes[i].ppid].push_back(i);
  }
  for (auto& [ppid, kids] : children) {
    std::sort(kids.begin(), kids.end(),
              [&](size_t a, size_t b) { return processes[a].pid < processes[b].pid; });
  }
  return children;
}

std::vector<TreeRow> tree_order(const std::vector<ProcessSample>& processes, int root_pid) {
  const ChildrenMap children = children_map(processes);
  std::vector<TreeRow> rows;
  std::unordered_set<int> seen;
  std::unordered_map<int, size_t> index_of;
  for (size_t i = 0; i < processes.size(); ++i) index_of.emplace(processes[i].pid, i);

  if (root_pid != 0) {
    int depth = 0;
    if (const auto root = index_of.find(root_pid); root != index_of.end()) {
      rows.push_back({root->second, 0});
    } else {
      depth = -1;  // absent root: its children are the top level
    }
    seen.insert(root_pid);
    walk(processes, children, root_pid, depth, seen, rows);
    return rows;
  }

  std::vector<size_t> roots;
  for (size_t i = 0; i < processes.size(); ++i) {
    const ProcessSample& process = processes[i];
    if (process.ppid == process.pid || index_of.find(process.ppid) == index_of.end()) {
      roots.push_back(i);
    }
  }
  std::sort(roots.begin(), roots.end(),
            [&](size_t a, size_t b) { return processes[a].pid < processes[b].pid; });
  for (size_t index : roots) {
    if (!seen.insert(processes[index].pid).second) continue;
    rows.push_back({index, 0});
    walk(processes, children, processes[index].pid, 0, seen, rows);
  }
  // Whatever is left sits on a ppid cycle with no way in: show it rather than lose it.
  for (size_t i = 0; i < processes.size(); ++i) {
    if (!seen.insert(processes[i].pid).second) continue;
    rows.push_back({i, 0});
    walk(processes, children, processes[i].pid, 0, seen, rows);
  }
  return rows;
}

std::vector<int> tree_members(const std::vector<ProcessSample>& processes, int root_pid) {
  std::vector<int> members;
  for (const TreeRow& row : tree_order(processes, root_pid)) {
    members.push_back(processes[row.index].pid);
  }
  return members;
}

TreeTotals tree_totals(const std::vector<ProcessSample>& processes, int root_pid) {
  TreeTotals totals;
  auto add = [&totals](const ProcessSample& process) {
    ++totals.processes;
    totals.rss_bytes += process.rss_bytes;
    totals.pss_bytes += process.pss_bytes;
    totals.uss_bytes += process.uss_bytes;
    totals.swap_bytes += process.swap_bytes;
    totals.gpu_bytes += process.gpu_bytes;
  };
  if (root_pid == 0) {
    for (const ProcessSample& process : processes) add(process);
    return totals;
  }
  for (const TreeRow& row : tree_order(processes, root_pid)) add(processes[row.index]);
  return totals;
}

}  // namespace memscope
