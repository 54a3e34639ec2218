#include "report/process_rows.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace memscope::report {

ProcessRows select_process_rows(const analyze::PeakSummary& summary, size_t max_rows) {
  ProcessRows rows;
  const std::vector<analyze::TreeEntry> order = analyze::tree_order(summary.processes);
  if (order.size() <= max_rows) {
    rows.shown = order;
    return rows;
  }
  const auto& processes = summary.processes;
  std::vector<bool> keep(processes.size(), false);
  size_t kept = 0;
  // Roots first (the launcher says what ran), then the largest.
  for (const analyze::TreeEntry& entry : order) {
    if (entry.depth == 0 && kept < max_rows) {
      keep[entry.index] = true;
      ++kept;
    }
  }
  std::vector<size_t> by_uss(processes.size());
  for (size_t i = 0; i < by_uss.size(); ++i) by_uss[i] = i;
  std::sort(by_uss.begin(), by_uss.end(), [&](size_t a, size_t b) {
    if (processes[a].uss.bytes != processes[b].uss.bytes) {
      return processes[a].uss.bytes > processes[b].uss.bytes;
    }
    return a < b;
  });
  for (size_t index : by_uss) {
    if (kept >= max_rows) break;
    if (!keep[index]) {
      keep[index] = true;
      ++kept;
    }
  }
  for (const analyze::TreeEntry& entry : order) {
    if (keep[entry.index]) {
      rows.shown.push_back(entry);
    } else {
      ++rows.hidden_count;
      rows.hidden_peak_uss_bytes += processes[entry.index].uss.bytes;
    }
  }
  return rows;
}

std::string gpu_process_label(const analyze::PeakSummary& summary,
                              const analyze::GpuProcessPeak& process) {
  std::string name = fmt::format("pid {}", process.pid);
  if (process.pid <= 0x7fffffffU) {
    if (const auto* known =
            summary.find_process(static_cast<int>(process.pid), process.peak_used.t_seconds)) {
      name += " " + known->comm;
    }
  }
  return name;
}

}  // namespace memscope::report
