#include "report/plot.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

#include "report/gnuplot.hpp"
#include "report/report_test_data.hpp"
#include "test_support.hpp"

namespace memscope::report {
namespace {

using memscope::testing::read_file;
using memscope::testing::TempDir;

struct Recorded {
  analyze::TimeSeriesRecorder series;
  analyze::PeakSummary summary;
  RecordingInfo info;
};

Recorded record(int count) {
  const testdata::Session session = testdata::make_session(count);
  Recorded out;
  analyze::PeakTracker tracker;
  for (const Sample& sample : session.samples) {
    tracker.add(sample);
    out.series.add(sample);
  }
  out.summary = tracker.summary();
  out.info.interval_seconds = 0.1;
  return out;
}

bool have_gnuplot() { return find_gnuplot().ok(); }

TEST(PlotPath, AcceptsHtmlSvgPngOnly) {
  EXPECT_EQ(*plot_format("a/b.HTML"), PlotFormat::kHtml);
  EXPECT_EQ(*plot_format("b.htm"), PlotFormat::kHtml);
  EXPECT_EQ(*plot_format("b.svg"), PlotFormat::kSvg);
  EXPECT_EQ(*plot_format("b.png"), PlotFormat::kPng);
  for (const char* bad : {"plot.jpg", "plot", "dir.svg/plot"}) {
    auto format = plot_format(bad);
    ASSERT_FALSE(format.ok()) << bad;
    EXPECT_NE(format.message().find(".html"), std::string::npos);
    EXPECT_NE(format.message().find(bad), std::string::npos);
  }
  EXPECT_TRUE(check_plot_path("p.html", {"/nonexistent/gnuplot"}).ok());
}

TEST(PlotPath, MissingGnuplotNamesThePackage) {
  const PlotOptions options{"/nonexistent/gnuplot"};
  const Status status = check_plot_path("p.svg", options);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("gnuplot-nox"), std::string::npos) << status.message();
  const Recorded recorded = record(10);
  TempDir dir;
  const Status written = write_plot(dir.file("p.png"), recorded.series, recorded.summary,
                                    recorded.info, {"no-such-gnuplot-anywhere"});
  ASSERT_FALSE(written.ok());
  EXPECT_NE(written.message().find("gnuplot-nox"), std::string::npos);
}

TEST(Plot, UnwritablePathIsAClearError) {
  const Recorded recorded = record(10);
  for (const char* path : {"/nonexistent-dir/p.html", "/nonexistent-dir/p.svg"}) {
    if (std::string(path).ends_with(".svg") && !have_gnuplot()) continue;
    const Status status = write_plot(path, recorded.series, recorded.summary, recorded.info);
    ASSERT_FALSE(status.ok()) << path;
    EXPECT_NE(status.message().find(fmt::format("cannot write '{}'", path)), std::string::npos)
        << status.message();
  }
}

TEST(Plot, HtmlPlotIsTheDygraphsPage) {
  const Recorded recorded = record(50);
  TempDir dir;
  ASSERT_TRUE(
      write_plot(dir.file("p.html"), recorded.series, recorded.summary, recorded.info).ok());
  const std::string html = read_file(dir.file("p.html"));
  EXPECT_NE(html.find("id=\"chart-host\""), std::string::npos);
  EXPECT_NE(html.find("id=\"chart-gpu0\""), std::string::npos);
  EXPECT_NE(html.find("Dygraph"), std::string::npos);
}

TEST(Plot, SvgAndPngAreDrawnByGnuplot) {
  if (!have_gnuplot()) GTEST_SKIP() << "gnuplot not installed";
  const Recorded recorded = record(120);
  TempDir dir;
  const char* keep = std::getenv("MEMSCOPE_REPORT_SAMPLE_DIR");
  const std::string out = keep != nullptr && *keep != '\0' ? keep : dir.path();
  const Status svg =
      write_plot(out + "/plot.svg", recorded.series, recorded.summary, recorded.info);
  ASSERT_TRUE(svg.ok()) << svg.message();
  const std::string text = read_file(out + "/plot.svg");
  EXPECT_NE(text.find("<svg"), std::string::npos);
  EXPECT_NE(text.find("peak used"), std::string::npos);
  EXPECT_NE(text.find("memory (GiB)"), std::string::npos);
  const Status png =
      write_plot(out + "/plot.png", recorded.series, recorded.summary, recorded.info);
  ASSERT_TRUE(png.ok()) << png.message();
  EXPECT_EQ(read_file(out + "/plot.png").substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
}

TEST(GnuplotScript, QuotesUntrustedLabelsAndMarksPeaks) {
  Chart chart;
  chart.id = "x";
  chart.title = "it's a title";
  chart.labels = {"used", "evil' ; system('rm -rf /') ; '"};
  chart.rows = {{0, {kGiB * 1.0, 2.0 * kGiB}},
                {1, {kGiB * 3.0, analyze::DownsampledSeries::kMissing}}};
  chart.unit_bytes = kGiB;
  chart.unit = "GiB";
  chart.peaks = {{0, 1, 3.0 * kGiB, "peak used 3.0 GiB at 1.0s"}};
  const std::string script = gnuplot_script({chart}, "t", "svg", "/tmp/d", "/tmp/d/plot.svg");
  EXPECT_NE(script.find("set title 'it''s a title'"), std::string::npos) << script;
  EXPECT_NE(script.find("title 'evil'' ; system(''rm -rf /'') ; '''"), std::string::npos) << script;
  EXPECT_NE(script.find("set label 1 'peak used 3.0 GiB at 1.0s' at 1.000,3"), std::string::npos)
      << script;
  EXPECT_EQ(gnuplot_data(chart),
            "# time\tused\tevil' ; system('rm -rf /') ; '\n0.000\t1\t2\n1.000\t3\t?\n");
}

}  // namespace
}  // namespace memscope::report
