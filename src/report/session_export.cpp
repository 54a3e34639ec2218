#include "report/session_export.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "analyze/peaks.hpp"
#include "analyze/time_series.hpp"
#include "core/units.hpp"
#include "report/charts.hpp"
#include "report/escape.hpp"
#include "report/html_page.hpp"
#include "report/output_file.hpp"
#include "report/summary_json.hpp"

namespace memscope::report {
namespace {

std::string dump(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<analyze::PeakSummary> peaks_of(const SampleStream& stream) {
  analyze::PeakTracker tracker;
  Status streamed = stream([&tracker](const Sample& sample) {
    tracker.add(sample);
    return true;
  });
  if (!streamed) return streamed.error();
  return tracker.summary();
}

std::vector<HtmlFact> session_facts(const RecordingInfo& info,
                                    const analyze::PeakSummary& summary) {
  std::vector<HtmlFact> facts;
  facts.push_back(
      {"outcome", info.outcome.empty() ? "did not finish (no outcome recorded)" : info.outcome});
  const double seconds = info.end_unix_ms > info.start_unix_ms && info.start_unix_ms > 0
                             ? static_cast<double>(info.end_unix_ms - info.start_unix_ms) / 1000.0
                             : summary.duration_seconds;
  facts.push_back({"duration", format_duration(seconds)});
  if (info.start_unix_ms > 0) facts.push_back({"started", rfc3339_utc(info.start_unix_ms)});
  if (info.end_unix_ms > 0) facts.push_back({"ended", rfc3339_utc(info.end_unix_ms)});
  facts.push_back(
      {"samples", fmt::format("{} every {}s", summary.sample_count, info.interval_seconds)});
  if (!info.hostname.empty()) facts.push_back({"host", info.hostname});
  if (info.root_pid > 0) facts.push_back({"root pid", std::to_string(info.root_pid)});
  if (!info.memscope_version.empty()) facts.push_back({"memscope", info.memscope_version});
  return facts;
}

}  // namespace

Status write_session_json(const std::string& path, const RecordingInfo& info,
                          const std::vector<RecordingEvent>& events, const SampleStream& stream) {
  auto file = OutputFile::open(path);
  if (!file) return file.error();
  auto summary = peaks_of(stream);
  if (!summary) return summary.error();
  // The samples array is written one sample per line as they stream by.
  file->write(fmt::format("{{\"report\":\"memscope-session\",\"schema_version\":{},\n",
                          kSessionSchemaVersion));
  file->write("\"recording\":" + dump(recording_json(info)) + ",\n");
  file->write("\"summary\":" + dump(summary_json(*summary)) + ",\n");
  file->write("\"events\":" + dump(events_json(events)) + ",\n");
  file->write("\"samples\":[");
  bool first = true;
  Status streamed = stream([&](const Sample& sample) {
    file->write(first ? "\n" : ",\n");
    first = false;
    file->write(dump(sample_json(sample)));
    return true;
  });
  if (!streamed) return streamed.error();
  file->write("\n]}\n");
  return file->close();
}

Status write_session_csv(const std::string& path, const RecordingInfo& /*info*/,
                         const std::vector<RecordingEvent>& /*events*/,
                         const SampleStream& stream) {
  auto file = OutputFile::open(path);
  if (!file) return file.error();
  file->write(kCsvHeader);
  file->write("\n");
  std::string rows;
  Status streamed = stream([&](const Sample& sample) {
    rows.clear();
    for (const ProcessSample& process : sample.processes) {
      fmt::format_to(std::back_inserter(rows), "{:.3f},{},{},{},{},{},{},{},{}\n", sample.t_seconds,
                     process.pid, process.ppid, csv_field(process.comm), process.rss_bytes,
                     process.pss_bytes, process.uss_bytes, process.swap_bytes, process.gpu_bytes);
    }
    file->write(rows);
    return true;
  });
  if (!streamed) return streamed.error();
  return file->close();
}

Status write_session_html(const std::string& path, const RecordingInfo& info,
                          const std::vector<RecordingEvent>& events, const SampleStream& stream) {
  auto file = OutputFile::open(path);
  if (!file) return file.error();
  auto summary = peaks_of(stream);
  if (!summary) return summary.error();
  // Second pass: the charts, now that the largest processes are known.
  analyze::TimeSeriesOptions options;
  options.max_points = kChartMaxPoints;
  options.processes = largest_processes(*summary, kChartProcesses);
  analyze::TimeSeriesRecorder series(options);
  Status streamed = stream([&series](const Sample& sample) {
    series.add(sample);
    return true;
  });
  if (!streamed) return streamed.error();

  HtmlPage page;
  page.title =
      info.command.empty() ? std::string("(no command recorded)") : command_line(info.command);
  page.facts = session_facts(info, *summary);
  page.summary_html = summary_html(*summary);
  page.events = events;
  page.charts = build_charts(series, *summary);
  if (series.host().rows_per_bucket() > 1) {
    page.notes.push_back(fmt::format(
        "Charts are downsampled to at most {} points per line: each point pair is the lowest and "
        "highest value of {} consecutive samples, so peaks are exact and their time is within {}.",
        kChartMaxPoints, series.host().rows_per_bucket(),
        format_duration(static_cast<double>(series.host().rows_per_bucket()) *
                        info.interval_seconds)));
  }
  file->write(render_html_page(page));
  return file->close();
}

}  // namespace memscope::report
