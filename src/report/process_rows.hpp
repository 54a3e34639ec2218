// Which processes a summary shows, and in what order: all of them in tree order (launcher
// first, children under their parent) while they fit; past max_rows, the largest by peak USS
// (always with the roots), still in tree order, and the rest counted and summed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "analyze/peaks.hpp"

namespace memscope::report {

struct ProcessRows {
  std::vector<analyze::TreeEntry> shown;  // indices into PeakSummary::processes, with depth
  size_t hidden_count = 0;
  uint64_t hidden_peak_uss_bytes = 0;  // the sum of the hidden processes' peak USS
};

ProcessRows select_process_rows(const analyze::PeakSummary& summary, size_t max_rows);

// "pid 4242 python3": a GPU process named by the recorded process alive at its peak, if any.
std::string gpu_process_label(const analyze::PeakSummary& summary,
                              const analyze::GpuProcessPeak& process);

}  // namespace memscope::report
