// The charts of a recording, ready to draw (by dygraphs in HTML pages, by gnuplot in images):
// host memory against its limit, the process tree's RSS/PSS/USS, the largest processes' USS,
// and each GPU's memory with its processes. Values stay in bytes; each chart picks the unit
// (MiB or GiB) its axis is labelled in.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "analyze/downsample.hpp"
#include "analyze/peaks.hpp"
#include "analyze/time_series.hpp"

namespace memscope::report {

struct ChartPeak {
  size_t series = 0;     // column in Chart::labels
  double t_seconds = 0;  // x of the row holding the peak (its downsampled time)
  double bytes = 0;
  std::string text;  // "peak used 1.2 GiB at 12.3s" (the exact time from the summary)
};

struct Chart {
  std::string id;  // "host", "tree", "processes", "gpu0", ...
  std::string title;
  std::string subtitle;                               // what the lines are, peaks in words
  std::vector<std::string> labels;                    // one per series
  std::vector<analyze::DownsampledSeries::Row> rows;  // values in bytes, NaN where missing
  std::vector<ChartPeak> peaks;
  std::vector<size_t> reference_lines;  // limits and totals: drawn dashed
  // Reference lines far above the data (a GPU's total when 2 GiB of 80 are used) would flatten
  // it: not drawn at first (HTML offers a checkbox), and scale_note says so.
  std::vector<size_t> hidden;
  std::string scale_note;
  bool stacked = false;
  uint64_t unit_bytes = 0;  // kMiB or kGiB
  std::string unit;         // "MiB" or "GiB"
};

// The processes a session's per-process chart shows: the `count` largest by peak USS.
std::vector<analyze::TrackedProcess> largest_processes(const analyze::PeakSummary& summary,
                                                       size_t count);

// Charts in page order; a chart without data (no processes, say) is left out.
std::vector<Chart> build_charts(const analyze::TimeSeriesRecorder& series,
                                const analyze::PeakSummary& summary);

// What the HTML page's script reads: values in the chart's unit, null where missing.
nlohmann::json chart_json(const Chart& chart);

}  // namespace memscope::report
