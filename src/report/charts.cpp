#include "report/charts.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>

#include "core/units.hpp"

namespace memscope::report {
namespace {

using analyze::DownsampledSeries;
using Row = DownsampledSeries::Row;

// A chart from one recorded set of series, dropping the series that never had a value.
Chart make_chart(std::string id, std::string title, const DownsampledSeries& series) {
  Chart chart;
  chart.id = std::move(id);
  chart.title = std::move(title);
  std::vector<Row> rows = series.rows();
  const auto& names = series.names();
  std::vector<size_t> keep;
  for (size_t column = 0; column < names.size(); ++column) {
    const bool any = std::any_of(rows.begin(), rows.end(), [&](const Row& row) {
      return column < row.values.size() && !std::isnan(row.values[column]);
    });
    if (any) keep.push_back(column);
  }
  for (size_t column : keep) chart.labels.push_back(names[column]);
  chart.rows.reserve(rows.size());
  double max = 0;
  for (Row& row : rows) {
    Row kept{row.t_seconds, {}};
    kept.values.reserve(keep.size());
    for (size_t column : keep) {
      const double value =
          column < row.values.size() ? row.values[column] : DownsampledSeries::kMissing;
      if (!std::isnan(value)) max = std::max(max, value);
      kept.values.push_back(value);
    }
    chart.rows.push_back(std::move(kept));
  }
  const bool gib = max >= static_cast<double>(kGiB);
  chart.unit_bytes = gib ? kGiB : kMiB;
  chart.unit = gib ? "GiB" : "MiB";
  return chart;
}

std::optional<size_t> column_of(const Chart& chart, std::string_view label) {
  for (size_t i = 0; i < chart.labels.size(); ++i) {
    if (chart.labels[i] == label) return i;
  }
  return std::nullopt;
}

// Marks the series' highest point; `exact` is the peak as the summary knows it (its time is
// exact, the chart's row may be a downsampled bucket's).
void mark_peak(Chart& chart, std::string_view label, std::string_view what,
               const std::optional<analyze::Peak>& exact = std::nullopt) {
  const auto column = column_of(chart, label);
  if (!column) return;
  const Row* best = nullptr;
  for (const Row& row : chart.rows) {
    const double value = row.values[*column];
    if (!std::isnan(value) && (best == nullptr || value > best->values[*column])) best = &row;
  }
  if (best == nullptr || best->values[*column] <= 0) return;
  const double bytes = best->values[*column];
  const double when = exact && exact->seen ? exact->t_seconds : best->t_seconds;
  std::string text = fmt::format("peak {} {} at {}", what,
                                 format_bytes(static_cast<uint64_t>(bytes)), format_duration(when));
  // Peaks at the same instant (RSS and USS, say) share one marker rather than overlap.
  for (ChartPeak& peak : chart.peaks) {
    if (peak.t_seconds == best->t_seconds) {
      peak.text += fmt::format("; {}", text);
      return;
    }
  }
  chart.peaks.push_back({*column, best->t_seconds, bytes, std::move(text)});
}

// A limit or total, drawn dashed; hidden when the data stays under a quarter of it.
void mark_reference(Chart& chart, std::string_view label, uint64_t data_peak_bytes) {
  const auto column = column_of(chart, label);
  if (!column) return;
  chart.reference_lines.push_back(*column);
  double reference = 0;
  for (const Row& row : chart.rows) {
    if (!std::isnan(row.values[*column])) reference = std::max(reference, row.values[*column]);
  }
  if (reference > 4.0 * static_cast<double>(data_peak_bytes)) {
    chart.hidden.push_back(*column);
    chart.scale_note = fmt::format("{} {} not drawn (off the scale)", label,
                                   format_bytes(static_cast<uint64_t>(reference)));
    // The unit follows what is drawn.
    double max = 0;
    for (const Row& row : chart.rows) {
      for (size_t i = 0; i < row.values.size(); ++i) {
        if (i != *column && !std::isnan(row.values[i])) max = std::max(max, row.values[i]);
      }
    }
    const bool gib = max >= static_cast<double>(kGiB);
    chart.unit_bytes = gib ? kGiB : kMiB;
    chart.unit = gib ? "GiB" : "MiB";
  }
}

std::string peak_words(std::string_view what, const analyze::Peak& peak) {
  return fmt::format("{} {} at {}", what, format_bytes(peak.bytes),
                     format_duration(peak.t_seconds));
}

}  // namespace

std::vector<analyze::TrackedProcess> largest_processes(const analyze::PeakSummary& summary,
                                                       size_t count) {
  std::vector<const analyze::ProcessPeaks*> order;
  for (const auto& process : summary.processes) order.push_back(&process);
  std::stable_sort(order.begin(), order.end(),
                   [](const auto* a, const auto* b) { return a->uss.bytes > b->uss.bytes; });
  if (order.size() > count) order.resize(count);
  std::vector<analyze::TrackedProcess> out;
  for (const auto* process : order) {
    out.push_back(
        {process->pid, process->start_time_ticks,
         fmt::format("{} [{}]", process->comm.empty() ? "?" : process->comm, process->pid)});
  }
  return out;
}

std::vector<Chart> build_charts(const analyze::TimeSeriesRecorder& series,
                                const analyze::PeakSummary& summary) {
  using Recorder = analyze::TimeSeriesRecorder;
  std::vector<Chart> charts;
  if (series.sample_count() == 0) return charts;

  const analyze::HostPeaks& host = summary.host;
  Chart host_chart = make_chart("host", "Host memory", series.host());
  host_chart.subtitle =
      fmt::format("Used against the limit ({}); {}; swap peak {}.",
                  host.limit_source.empty() ? "MemTotal" : host.limit_source,
                  peak_words("peak used", host.peak_used), format_bytes(host.peak_swap_used.bytes));
  mark_reference(host_chart, Recorder::kHostLimit,
                 std::max(host.peak_used.bytes, host.peak_swap_used.bytes));
  mark_peak(host_chart, Recorder::kHostUsed, "used", host.peak_used);
  if (host.peak_swap_used.bytes > 0)
    mark_peak(host_chart, Recorder::kHostSwap, "swap", host.peak_swap_used);
  charts.push_back(std::move(host_chart));

  if (!summary.processes.empty()) {
    const analyze::TreePeaks& tree = summary.tree;
    Chart tree_chart = make_chart("tree", "Process tree (sum over its processes)", series.tree());
    tree_chart.subtitle = fmt::format("Peak {}; {}; {}.", peak_words("RSS", tree.rss),
                                      peak_words("PSS", tree.pss), peak_words("USS", tree.uss));
    mark_peak(tree_chart, Recorder::kTreeRss, "RSS", tree.rss);
    mark_peak(tree_chart, Recorder::kTreeUss, "USS", tree.uss);
    if (!tree_chart.labels.empty()) charts.push_back(std::move(tree_chart));
  }

  if (!series.process_uss().names().empty()) {
    Chart processes = make_chart("processes", "USS per process", series.process_uss());
    processes.stacked = true;
    processes.subtitle =
        "Private memory (USS) of the largest processes by peak USS, stacked; the rest summed as "
        "\"others\". The top edge is the tree's USS.";
    if (!processes.labels.empty()) charts.push_back(std::move(processes));
  }

  for (const analyze::DeviceSeries* device : series.devices()) {
    const analyze::DevicePeaks* peaks = nullptr;
    for (const auto& candidate : summary.devices) {
      if (candidate.index == device->index) peaks = &candidate;
    }
    Chart gpu = make_chart(
        fmt::format("gpu{}", device->index),
        fmt::format("GPU {}: {}", device->index, device->name.empty() ? "?" : device->name),
        device->memory);
    if (peaks != nullptr) {
      gpu.subtitle =
          fmt::format("Used (and reserved by the driver) against total {}; {}.",
                      format_bytes(peaks->total_bytes), peak_words("peak used", peaks->peak_used));
    }
    mark_reference(gpu, Recorder::kDeviceTotal, peaks != nullptr ? peaks->peak_used.bytes : 0);
    mark_peak(gpu, Recorder::kDeviceUsed, "used",
              peaks != nullptr ? std::optional<analyze::Peak>(peaks->peak_used) : std::nullopt);
    if (!gpu.labels.empty()) charts.push_back(std::move(gpu));
  }
  return charts;
}

nlohmann::json chart_json(const Chart& chart) {
  using nlohmann::json;
  const double unit = static_cast<double>(chart.unit_bytes == 0 ? kMiB : chart.unit_bytes);
  const auto scaled = [unit](double bytes) -> json {
    if (std::isnan(bytes)) return nullptr;
    return std::round(bytes / unit * 10000.0) / 10000.0;  // 0.0001 GiB is 100 KiB: plenty
  };
  json rows = json::array();
  for (const auto& row : chart.rows) {
    json out = json::array();
    out.push_back(std::round(row.t_seconds * 1000.0) / 1000.0);
    for (double value : row.values) out.push_back(scaled(value));
    rows.push_back(std::move(out));
  }
  json labels = json::array({"time (s)"});
  for (const auto& label : chart.labels) labels.push_back(label);
  json peaks = json::array();
  for (const ChartPeak& peak : chart.peaks) {
    peaks.push_back({{"series", chart.labels[peak.series]},
                     {"x", std::round(peak.t_seconds * 1000.0) / 1000.0},
                     {"text", peak.text}});
  }
  json reference = json::array();
  for (size_t column : chart.reference_lines) reference.push_back(chart.labels[column]);
  json hidden = json::array();
  for (size_t column : chart.hidden) hidden.push_back(chart.labels[column]);
  return {{"id", chart.id},          {"title", chart.title},   {"subtitle", chart.subtitle},
          {"unit", chart.unit},      {"labels", labels},       {"rows", std::move(rows)},
          {"peaks", peaks},          {"reference", reference}, {"hidden", hidden},
          {"stacked", chart.stacked}};
}

}  // namespace memscope::report
