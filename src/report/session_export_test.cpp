#include "report/session_export.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "report/report_test_data.hpp"
#include "test_support.hpp"

namespace memscope::report {
namespace {

using memscope::testing::read_file;
using memscope::testing::TempDir;
using nlohmann::json;

TEST(SessionJson, ParsesBackWithRecordingSummaryEventsAndEverySample) {
  TempDir dir;
  const testdata::Session session = testdata::make_session(50);
  ASSERT_TRUE(
      write_session_json(dir.file("s.json"), session.info, session.events, session.stream()).ok());
  const json doc = json::parse(read_file(dir.file("s.json")));
  EXPECT_EQ(doc["report"], "memscope-session");
  EXPECT_EQ(doc["schema_version"], 1);
  EXPECT_EQ(doc["recording"]["command"][3], testdata::kEvilArgument);
  EXPECT_EQ(doc["recording"]["outcome"], "exited with status 0");
  EXPECT_EQ(doc["recording"]["exit_code"], 0);
  EXPECT_TRUE(doc["recording"]["term_signal"].is_null());
  EXPECT_EQ(doc["recording"]["start"], "2025-11-23T17:46:40.000Z");
  EXPECT_EQ(doc["summary"]["sample_count"], 50);
  EXPECT_EQ(doc["summary"]["processes"].size(), 3u);
  EXPECT_EQ(doc["summary"]["processes"][0]["comm"], "python3");
  EXPECT_TRUE(doc["summary"]["tree"]["peak_uss_bytes"].is_number_unsigned());
  EXPECT_EQ(doc["summary"]["devices"][0]["name"], "Fake H100");
  EXPECT_EQ(doc["events"].size(), 2u);
  EXPECT_EQ(doc["events"][1]["kind"], "exit");
  ASSERT_EQ(doc["samples"].size(), 50u);
  const json& sample = doc["samples"][7];
  EXPECT_DOUBLE_EQ(sample["t_seconds"].get<double>(), 0.7);
  EXPECT_EQ(sample["timestamp"], "2025-11-23T17:46:40.700Z");
  EXPECT_TRUE(sample["host"]["used_bytes"].is_number_unsigned());
  EXPECT_EQ(sample["devices"][0]["index"], 0);
  ASSERT_EQ(sample["processes"].size(), 3u);
  for (const char* key :
       {"pid", "rss_bytes", "pss_bytes", "uss_bytes", "swap_bytes", "gpu_bytes"}) {
    EXPECT_TRUE(sample["processes"][0].contains(key)) << key;
  }
  EXPECT_EQ(sample["processes"][0]["rss_bytes"].get<uint64_t>(),
            session.samples[7].processes[0].rss_bytes);
}

TEST(SessionJson, WritesSamplesOnePerLineAsTheyStream) {
  TempDir dir;
  const testdata::Session session = testdata::make_session(10);
  ASSERT_TRUE(write_session_json(dir.file("s.json"), session.info, {}, session.stream()).ok());
  const std::string text = read_file(dir.file("s.json"));
  size_t sample_lines = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("{") && line.find("\"t_seconds\":") != std::string::npos) ++sample_lines;
  }
  EXPECT_EQ(sample_lines, 10u);
}

TEST(SessionCsv, HasTheTracesHeaderAndOneRowPerProcessPerSample) {
  TempDir dir;
  testdata::Session session = testdata::make_session(4);
  session.samples[0].processes[1].comm = "odd, \"name\"";
  ASSERT_TRUE(
      write_session_csv(dir.file("s.csv"), session.info, session.events, session.stream()).ok());
  std::istringstream in(read_file(dir.file("s.csv")));
  std::string header;
  std::getline(in, header);
  EXPECT_EQ(header.rfind("t,pid,ppid,comm,rss_bytes,pss_bytes,uss_bytes,swap_bytes", 0), 0u);
  EXPECT_EQ(header, kCsvHeader);
  std::vector<std::string> rows;
  for (std::string line; std::getline(in, line);) rows.push_back(line);
  ASSERT_EQ(rows.size(), 12u);
  const ProcessSample& launcher = session.samples[1].processes[0];
  EXPECT_EQ(rows[3], fmt::format("0.100,100,1,python3,{},{},{},0,{}", launcher.rss_bytes,
                                 launcher.pss_bytes, launcher.uss_bytes, launcher.gpu_bytes));
  EXPECT_EQ(rows[1].find("0.000,101,100,\"odd, \"\"name\"\"\","), 0u) << rows[1];
}

TEST(SessionHtml, IsSelfContainedAndEscapesTheCommandLine) {
  TempDir dir;
  const testdata::Session session = testdata::make_session(300);
  ASSERT_TRUE(
      write_session_html(dir.file("r.html"), session.info, session.events, session.stream()).ok());
  const std::string html = read_file(dir.file("r.html"));
  // No script or stylesheet from anywhere but the page itself.
  EXPECT_FALSE(std::regex_search(html, std::regex(R"(<script[^>]*\ssrc\s*=)", std::regex::icase)));
  EXPECT_FALSE(std::regex_search(html, std::regex(R"(<link[^>]*\shref\s*=)", std::regex::icase)));
  EXPECT_FALSE(
      std::regex_search(html, std::regex(R"((src|href)\s*=\s*["']?https?://)", std::regex::icase)));
  EXPECT_EQ(html.find("sourceMappingURL"), std::string::npos);
  // The library is inlined.
  EXPECT_NE(html.find("Dygraph"), std::string::npos);
  EXPECT_NE(html.find(".dygraph-legend"), std::string::npos);
  // The hostile argument shows up only escaped: never as markup, never ending a script.
  EXPECT_EQ(html.find("<b>bold"), std::string::npos);
  EXPECT_NE(html.find("&lt;/script&gt;&lt;b&gt;bold"), std::string::npos);
  size_t script_ends = 0;
  for (size_t at = html.find("</script>"); at != std::string::npos;
       at = html.find("</script>", at + 1)) {
    ++script_ends;
  }
  EXPECT_EQ(script_ends, 3u);  // data, dygraphs, ours
  // Summary table, charts (host, tree, per process, one GPU) and their data.
  EXPECT_NE(html.find("<table class=\"summary processes\">"), std::string::npos);
  for (const char* id : {"chart-host", "chart-tree", "chart-processes", "chart-gpu0"}) {
    EXPECT_NE(html.find(fmt::format("id=\"{}\"", id)), std::string::npos) << id;
  }
  EXPECT_NE(html.find("pt_data_worker [101]"), std::string::npos);
  EXPECT_NE(html.find("peak used"), std::string::npos);
}

TEST(SessionHtml, DownsamplesLongRecordingsKeepingThePeak) {
  TempDir dir;
  testdata::Session session = testdata::make_session(12'000);
  session.samples[7'777].system.used_bytes = 15 * kGiB;  // one spike
  ASSERT_TRUE(write_session_html(dir.file("r.html"), session.info, {}, session.stream()).ok());
  const std::string html = read_file(dir.file("r.html"));
  const size_t start = html.find("id=\"memscope-data\">") + 19;
  const json data = json::parse(html.substr(start, html.find("</script>", start) - start));
  const json& host = data["charts"][0];
  EXPECT_EQ(host["id"], "host");
  EXPECT_LE(host["rows"].size(), kChartMaxPoints);
  EXPECT_EQ(host["unit"], "GiB");
  double max = 0;
  for (const json& row : host["rows"]) max = std::max(max, row[1].get<double>());
  EXPECT_DOUBLE_EQ(max, 15.0);
  ASSERT_FALSE(host["peaks"].empty());
  EXPECT_EQ(host["peaks"][0]["series"], "used");
  EXPECT_NE(host["peaks"][0]["text"].get<std::string>().find("15.0 GiB at 12m57s"),
            std::string::npos)
      << host["peaks"][0];
  EXPECT_NE(html.find("downsampled"), std::string::npos);
}

TEST(SessionExport, UnwritablePathsAndStreamErrorsAreClearErrors) {
  const testdata::Session session = testdata::make_session(3);
  using Writer = Status (*)(const std::string&, const RecordingInfo&,
                            const std::vector<RecordingEvent>&, const SampleStream&);
  for (Writer write :
       {Writer{&write_session_json}, Writer{&write_session_csv}, Writer{&write_session_html}}) {
    const Status status =
        write("/nonexistent-dir/out.file", session.info, session.events, session.stream());
    ASSERT_FALSE(status.ok());
    EXPECT_NE(status.message().find("cannot write '/nonexistent-dir/out.file'"), std::string::npos)
        << status.message();
    EXPECT_NE(status.message().find("No such file or directory"), std::string::npos);
  }
  TempDir dir;
  const SampleStream broken = [](const SampleVisitor&) -> Status {
    return make_error("session.db: database disk image is malformed");
  };
  const Status status = write_session_json(dir.file("s.json"), session.info, {}, broken);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.message(), "session.db: database disk image is malformed");
}

TEST(SessionHtml, AnEmptyRecordingStillMakesAPage) {
  TempDir dir;
  testdata::Session session = testdata::make_session(1);
  session.samples.clear();
  ASSERT_TRUE(write_session_html(dir.file("r.html"), session.info, {}, session.stream()).ok());
  EXPECT_NE(read_file(dir.file("r.html")).find("No samples were recorded"), std::string::npos);
}

// For looking at the page by eye: MEMSCOPE_REPORT_SAMPLE_DIR=dir keeps dir/session.html.
TEST(SessionHtml, WritesASamplePageWhenAsked) {
  const char* keep = std::getenv("MEMSCOPE_REPORT_SAMPLE_DIR");
  if (keep == nullptr || *keep == '\0') GTEST_SKIP() << "MEMSCOPE_REPORT_SAMPLE_DIR not set";
  const testdata::Session session = testdata::make_session(600, 12);
  ASSERT_TRUE(write_session_html(std::string(keep) + "/session.html", session.info, session.events,
                                 session.stream())
                  .ok());
}

}  // namespace
}  // namespace memscope::report
