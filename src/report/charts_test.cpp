#include "report/charts.hpp"

#include <gtest/gtest.h>

#include "report/report_test_data.hpp"

namespace memscope::report {
namespace {

TEST(BuildCharts, HostTreeProcessesAndDevicesWithPeaks) {
  const testdata::Session session = testdata::make_session(100, 2);
  analyze::PeakTracker tracker;
  for (const Sample& sample : session.samples) tracker.add(sample);
  const analyze::PeakSummary summary = tracker.summary();
  analyze::TimeSeriesOptions options;
  options.processes = largest_processes(summary, 2);
  ASSERT_EQ(options.processes.size(), 2u);
  EXPECT_EQ(options.processes[0].label, "python3 [100]");
  analyze::TimeSeriesRecorder series(options);
  for (const Sample& sample : session.samples) series.add(sample);

  const std::vector<Chart> charts = build_charts(series, summary);
  ASSERT_EQ(charts.size(), 4u);
  EXPECT_EQ(charts[0].id, "host");
  EXPECT_EQ(charts[0].unit, "GiB");
  EXPECT_EQ(charts[0].labels, (std::vector<std::string>{"used", "limit", "swap used"}));
  ASSERT_EQ(charts[0].reference_lines, std::vector<size_t>{1});
  ASSERT_EQ(charts[0].peaks.size(), 1u);  // no swap used: no swap peak
  EXPECT_EQ(charts[0].peaks[0].bytes, static_cast<double>(summary.host.peak_used.bytes));
  EXPECT_NE(charts[0].peaks[0].text.find("at 9.9s"), std::string::npos) << charts[0].peaks[0].text;

  EXPECT_EQ(charts[1].id, "tree");
  EXPECT_EQ(charts[1].unit, "GiB");  // the tree's RSS passes 1 GiB
  // RSS and USS peak at the same instant: one marker says both.
  ASSERT_EQ(charts[1].peaks.size(), 1u);
  EXPECT_NE(charts[1].peaks[0].text.find("; peak USS"), std::string::npos)
      << charts[1].peaks[0].text;
  EXPECT_EQ(charts[2].id, "processes");
  EXPECT_TRUE(charts[2].stacked);
  EXPECT_EQ(charts[2].labels.back(), "others");
  EXPECT_EQ(charts[3].id, "gpu0");
  EXPECT_EQ(charts[3].title, "GPU 0: Fake H100");
  EXPECT_EQ(charts[3].labels,
            (std::vector<std::string>{"used", "reserved", "total", "python3 [100]"}));
  EXPECT_EQ(charts[3].reference_lines, std::vector<size_t>{2});

  const nlohmann::json json = chart_json(charts[3]);
  EXPECT_EQ(json["labels"][0], "time (s)");
  EXPECT_EQ(json["unit"], "GiB");
  EXPECT_DOUBLE_EQ(json["rows"][0][3].get<double>(), 80.0);
  EXPECT_EQ(json["reference"][0], "total");
  EXPECT_EQ(json["peaks"][0]["series"], "used");
}

TEST(BuildCharts, NoSamplesNoCharts) {
  EXPECT_TRUE(build_charts(analyze::TimeSeriesRecorder{}, analyze::PeakSummary{}).empty());
}

}  // namespace
}  // namespace memscope::report
