#include "report/summary_table.hpp"

#include <gtest/gtest.h>

#include <sstream>

#include "analyze/peaks.hpp"
#include "report/report_test_data.hpp"

namespace memscope::report {
namespace {

std::string summary_of(const testdata::Session& session) {
  analyze::PeakTracker tracker;
  for (const Sample& sample : session.samples) tracker.add(sample);
  return render_summary(tracker.summary(), session.info);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Display columns (UTF-8 continuation bytes take none).
size_t columns(const std::string& line) {
  size_t count = 0;
  for (char c : line) count += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
  return count;
}

TEST(RenderSummary, SaysHowItEndedAndListsTheTreeWithPeakTimes) {
  const std::string text = summary_of(testdata::make_session());
  EXPECT_NE(text.find("python3 train.py --note"), std::string::npos) << text;
  EXPECT_NE(text.find("exited with status 0 after 20.1s"), std::string::npos) << text;
  EXPECT_NE(text.find("200 samples every 0.1s"), std::string::npos) << text;
  // The launcher's peak RSS: 400 MiB + 180 MiB sawtooth top + 99.5 MiB leak = 679.5 MiB, at 19.9s.
  EXPECT_NE(text.find("679.5 MiB at 19.9s"), std::string::npos) << text;
  const auto lines = lines_of(text);
  size_t launcher = 0;
  size_t worker = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].find("    100 python3") == 0) launcher = i;
    if (lines[i].find("    101   pt_data_worker") == 0) worker = i;  // indented under it
  }
  EXPECT_GT(launcher, 0u) << text;
  EXPECT_EQ(worker, launcher + 1) << text;
  EXPECT_NE(text.find("all processes"), std::string::npos);
  EXPECT_NE(text.find("Fake H100"), std::string::npos);
  EXPECT_NE(text.find("80.0 GiB"), std::string::npos);
  EXPECT_NE(text.find("pid 100 python3"), std::string::npos) << text;
  EXPECT_NE(text.find("2.2 GiB at 0.9s"), std::string::npos) << text;  // its GPU peak
  EXPECT_NE(text.find("host   peak used"), std::string::npos);
  EXPECT_NE(text.find("limit from MemTotal"), std::string::npos) << text;
  EXPECT_EQ(text.find(" \n"), std::string::npos) << "trailing spaces";
  for (const std::string& line : lines) EXPECT_LE(columns(line), kSummaryWidth) << line;
}

TEST(RenderSummary, SummarizesProcessesBeyondTheLimit) {
  const std::string text = summary_of(testdata::make_session(20, 1000));
  EXPECT_NE(text.find("… 978 more processes, "), std::string::npos) << text;
  EXPECT_NE(text.find("peak USS together"), std::string::npos);
  const auto lines = lines_of(text);
  size_t helper_rows = 0;
  for (const std::string& line : lines) {
    EXPECT_LE(columns(line), kSummaryWidth) << line;
    if (line.find(" helper ") != std::string::npos) ++helper_rows;
  }
  EXPECT_EQ(helper_rows, kSummaryMaxProcesses - 3);
  // The launcher is always shown.
  EXPECT_NE(text.find("    100 python3"), std::string::npos);
}

TEST(RenderSummary, EmptyAndUnfinishedRecordings) {
  RecordingInfo info;
  info.command = {"sleep", "1"};
  const std::string text = render_summary(analyze::PeakSummary{}, info);
  EXPECT_NE(text.find("memscope: sleep 1"), std::string::npos);
  EXPECT_NE(text.find("did not finish"), std::string::npos);
  EXPECT_NE(text.find("no samples were recorded"), std::string::npos);
}

TEST(RenderSummary, MarksPssAndUssThatFellBackToRssAndOomKills) {
  testdata::Session session = testdata::make_session(5);
  for (Sample& sample : session.samples) sample.processes[2].smaps_readable = false;
  session.samples.back().system.vmstat.oom_kill = 1;
  session.info.oom_killed = true;
  const std::string text = summary_of(session);
  EXPECT_NE(text.find("pt_data_worker*"), std::string::npos) << text;
  EXPECT_NE(text.find("fell back to RSS"), std::string::npos);
  EXPECT_NE(text.find("OOM kills during the recording: 1 on the host"), std::string::npos) << text;
}

}  // namespace
}  // namespace memscope::report
