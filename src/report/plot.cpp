#include "report/plot.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "core/units.hpp"
#include "report/charts.hpp"
#include "report/gnuplot.hpp"
#include "report/html_page.hpp"
#include "report/output_file.hpp"
#include "report/summary_json.hpp"

namespace memscope::report {
namespace {

std::string lowercase_extension(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  const size_t dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  std::string extension = path.substr(dot);
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return extension;
}

std::string plot_title(const analyze::PeakSummary& summary, const RecordingInfo& info) {
  std::string title =
      info.command.empty() ? "memscope profile" : "memscope: " + command_line(info.command);
  if (summary.sample_count > 0) {
    title +=
        fmt::format(" ({} samples over {}, from {})", summary.sample_count,
                    format_duration(summary.duration_seconds), rfc3339_utc(summary.first_unix_ms));
  }
  return title;
}

}  // namespace

Result<PlotFormat> plot_format(const std::string& path) {
  const std::string extension = lowercase_extension(path);
  if (extension == ".html" || extension == ".htm") return PlotFormat::kHtml;
  if (extension == ".svg") return PlotFormat::kSvg;
  if (extension == ".png") return PlotFormat::kPng;
  return make_error(fmt::format(
      "cannot plot to '{}': the file name must end in .html (interactive), .svg or .png", path));
}

Status check_plot_path(const std::string& path, const PlotOptions& options) {
  auto format = plot_format(path);
  if (!format) return format.error();
  if (*format != PlotFormat::kHtml) {
    auto gnuplot = find_gnuplot(options.gnuplot);
    if (!gnuplot) return gnuplot.error();
  }
  return {};
}

Status write_plot(const std::string& path, const analyze::TimeSeriesRecorder& series,
                  const analyze::PeakSummary& summary, const RecordingInfo& info,
                  const PlotOptions& options) {
  auto format = plot_format(path);
  if (!format) return format.error();
  const std::vector<Chart> charts = build_charts(series, summary);
  if (*format == PlotFormat::kHtml) {
    HtmlPage page;
    page.title =
        info.command.empty() ? std::string("memscope profile") : command_line(info.command);
    page.facts.push_back({"duration", format_duration(summary.duration_seconds)});
    if (summary.sample_count > 0)
      page.facts.push_back({"started", rfc3339_utc(summary.first_unix_ms)});
    page.facts.push_back(
        {"samples", fmt::format("{} every {}s", summary.sample_count, info.interval_seconds)});
    if (!info.hostname.empty()) page.facts.push_back({"host", info.hostname});
    if (!info.outcome.empty()) page.facts.push_back({"outcome", info.outcome});
    page.summary_html = summary_html(summary);
    page.charts = charts;
    return write_file(path, render_html_page(page));
  }
  return render_with_gnuplot(charts, plot_title(summary, info),
                             *format == PlotFormat::kSvg ? "svg" : "png", path, options.gnuplot);
}

}  // namespace memscope::report
