// The terminal summary printed when `memscope run` ends and by `memscope report SESSION`: how
// the command ended, each process's peaks (tree order) with when they happened, the tree's
// peak, each GPU and its processes, the host. Fits 100 columns.
#pragma once

#include <cstddef>
#include <string>

#include "analyze/peaks.hpp"
#include "core/recording.hpp"

namespace memscope::report {

inline constexpr size_t kSummaryWidth = 100;
// Processes listed one by one; the rest are summarized in one line.
inline constexpr size_t kSummaryMaxProcesses = 25;

std::string render_summary(const analyze::PeakSummary& summary, const RecordingInfo& info);

}  // namespace memscope::report
