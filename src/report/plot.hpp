// `memscope profile --plot FILE`: memory over time per GPU and for the host, peaks marked.
// FILE ending .html: the same self-contained dygraphs page as session reports; .svg or .png:
// drawn by gnuplot (Debian package gnuplot-nox).
#pragma once

#include <string>

#include "analyze/peaks.hpp"
#include "analyze/time_series.hpp"
#include "core/recording.hpp"
#include "core/result.hpp"

namespace memscope::report {

struct PlotOptions {
  // gnuplot to run for .svg/.png: a path, or a name looked up on PATH.
  std::string gnuplot = "gnuplot";
};

enum class PlotFormat { kHtml, kSvg, kPng };

// The format FILE's extension asks for (case-insensitive); an error listing the accepted ones.
Result<PlotFormat> plot_format(const std::string& path);
// Before profiling starts: the extension is known and, for .svg/.png, gnuplot is installed.
Status check_plot_path(const std::string& path, const PlotOptions& options = {});
// series: what the profile recorded (host, devices, and the process tree if it sampled one).
Status write_plot(const std::string& path, const analyze::TimeSeriesRecorder& series,
                  const analyze::PeakSummary& summary, const RecordingInfo& info,
                  const PlotOptions& options = {});

}  // namespace memscope::report
