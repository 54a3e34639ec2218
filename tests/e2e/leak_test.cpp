// `memscope leak` trend verdicts end to end: the recorded traces get the right verdict, a real
// growing process is a suspected leak, every bad input fails fast with the documented status.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <ostream>
#include <regex>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace memscope::testing {
namespace {

nlohmann::json run_leak(const std::vector<std::string>& args, const TempDir& tmp,
                        double timeout = 60) {
  std::vector<std::string> argv = {memscope_binary(), "leak", "--output", tmp.file("leak.json")};
  argv.insert(argv.end(), args.begin(), args.end());
  const auto result = run_command(argv, {}, timeout);
  EXPECT_EQ(result.exit_code, 0) << result.err;
  return nlohmann::json::parse(read_file(tmp.file("leak.json")));
}

std::vector<std::string> verdicts_of(const nlohmann::json& report) {
  std::vector<std::string> out;
  for (const auto& p : report.at("processes")) out.push_back(p.at("verdict"));
  return out;
}

TEST(LeakVerdicts, LeakTraceIsASuspectedLeak) {
  TempDir tmp;
  const auto report = run_leak({"--csv", shared_dir() + "/traces/A_leak.csv"}, tmp);
  EXPECT_EQ(report.at("report"), "memscope-leak");
  ASSERT_EQ(report.at("processes").size(), 1u);
  const auto& p = report.at("processes")[0];
  EXPECT_EQ(p.at("verdict"), "leak suspected");
  // ~11 MiB/s in the trace's README: 600-720 MiB per minute.
  EXPECT_GT(p.at("growth_mb_per_min").get<double>(), 550);
  EXPECT_LT(p.at("growth_mb_per_min").get<double>(), 750);
  EXPECT_GT(p.at("projected_growth_bytes_per_hour").get<double>(), 30.0 * (1ull << 30));
  EXPECT_GE(p.at("confidence").get<double>(), 0.5);
}

TEST(LeakVerdicts, StableAndWarmupTracesAreNoLeak) {
  for (const char* trace : {"A_stable.csv", "A_warmup.csv"}) {
    TempDir tmp;
    const auto report = run_leak({"--csv", shared_dir() + "/traces/" + trace}, tmp);
    for (const auto& verdict : verdicts_of(report)) {
      EXPECT_NE(verdict, "leak suspected") << trace;
    }
  }
}

TEST(LeakVerdicts, DataLoaderWorkersPlateauedNotLeak) {
  TempDir tmp;
  const auto report = run_leak({"--csv", shared_dir() + "/traces/A_loader.csv"}, tmp);
  int workers = 0;
  for (const auto& p : report.at("processes")) {
    EXPECT_NE(p.at("verdict"), "leak suspected") << p.dump();
    if (p.at("pid") != 16896) {  // the workers (the trace's README: USS 19 -> 93 MiB)
      ++workers;
      EXPECT_EQ(p.at("verdict"), "growth plateaued") << p.dump();
      EXPECT_NE(p.at("reason").get<std::string>().find("copy-on-read"), std::string::npos);
    }
  }
  EXPECT_EQ(workers, 2);
}

TEST(LeakVerdicts, SessionWithAGpuLeakNamesTheGpuProcess) {
  TempDir tmp;
  const auto report =
      run_leak({"--session", test_data_dir() + "/sessions/gpu_leak_under_sawtooth.db"}, tmp);
  // The recorded `sleep` is the fake GPU's process: its GPU memory leaks (peaks +0.5 GiB/s),
  // its host memory does not.
  int gpu_rows = 0;
  for (const auto& p : report.at("processes")) {
    if (p.at("memory") == "gpu0") {
      ++gpu_rows;
      EXPECT_EQ(p.at("verdict"), "leak suspected") << p.dump();
    } else {
      EXPECT_EQ(p.at("memory"), "uss");
      EXPECT_EQ(p.at("verdict"), "no growth") << p.dump();
    }
  }
  EXPECT_EQ(gpu_rows, 1);
}

TEST(LeakLive, AGrowingProcessIsASuspectedLeak) {
  TempDir tmp;
  // 20 MiB/s up to 520 MiB (26 s), then holds 1 s and exits.
  const auto report = run_leak(
      {"--interval", "0.2", "--no-gpu", "--", grow_binary(), "20", "520", tmp.file("marker"), "1"},
      tmp, 90);
  ASSERT_FALSE(report.at("processes").empty());
  const auto& p = report.at("processes")[0];
  EXPECT_EQ(p.at("verdict"), "leak suspected") << p.dump();
  EXPECT_GT(p.at("growth_mb_per_min").get<double>(), 900);
  EXPECT_GT(p.at("rss_bytes").get<double>(), 0);
}

struct ErrorCase {
  const char* name;
  std::vector<std::string> args;
  int exit_code;
  const char* stderr_pattern;
};

void PrintTo(const ErrorCase& c, std::ostream* out) { *out << c.name; }

class LeakErrors : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(LeakErrors, ExitsWithTheDocumentedStatusAndSaysWhy) {
  const ErrorCase& c = GetParam();
  TempDir tmp;
  write_file(tmp.file("text.db"), "this is not a session\n");
  write_file(tmp.file("bad.csv"), "t,pid,rss_bytes\n0,1,2\n");
  write_file(tmp.file("back.csv"), "t,pid,pss_bytes\n1,1,2\n0.5,1,2\n");
  std::vector<std::string> argv = {memscope_binary(), "leak"};
  for (std::string arg : c.args) {
    const auto at = arg.find("{tmp}");
    if (at != std::string::npos) arg.replace(at, 5, tmp.path());
    argv.push_back(arg);
  }
  const auto result = run_command(argv, {}, 30);
  EXPECT_EQ(result.exit_code, c.exit_code) << "stderr: " << result.err;
  EXPECT_TRUE(std::regex_search(result.err, std::regex(c.stderr_pattern)))
      << "stderr was: " << result.err;
}

const ErrorCase kLeakCases[] = {
    {"NoSource", {}, 2, "give one of"},
    {"TwoSources", {"--pid", "1", "--csv", "{tmp}/bad.csv"}, 2, "give one of"},
    {"ZeroThreshold", {"--threshold", "0", "--csv", "{tmp}/bad.csv"}, 2, "--threshold"},
    {"BadInterval", {"--interval", "0.01", "--pid", "1"}, 2, "--interval"},
    {"NoSuchPid", {"--pid", "4000000"}, 2, "no such process"},
    {"TrackingOfAPid", {"--enable-tracking", "--pid", "1"}, 2, "give the command after --"},
    {"FlamegraphWithoutTracking", {"--flamegraph", "{tmp}/fg", "--pid", "1"}, 2, "--flamegraph"},
    {"ZeroTop", {"--top", "0", "--trace", "{tmp}/missing.mst"}, 2, "--top"},
    {"MissingTrace", {"--trace", "{tmp}/missing.mst"}, 3, "missing.mst"},
    {"MissingCsv", {"--csv", "{tmp}/missing.csv"}, 3, "missing.csv"},
    {"CsvMissingColumn", {"--csv", "{tmp}/bad.csv"}, 3, "pss_bytes"},
    {"CsvTimeBackwards", {"--csv", "{tmp}/back.csv"}, 3, "backwards"},
    {"SessionNotOurs", {"--session", "{tmp}/text.db"}, 3, "text.db"},
    {"UnwritableOutput",
     {"--output", "/nonexistent/dir/l.json", "--csv", "{tmp}/bad.csv"},
     2,
     "/nonexistent/dir"},
    {"CommandNotFound", {"--no-gpu", "--", "/nonexistent/program"}, 127, "command not found"},
};

INSTANTIATE_TEST_SUITE_P(Leak, LeakErrors, ::testing::ValuesIn(kLeakCases),
                         [](const ::testing::TestParamInfo<ErrorCase>& param) {
                           return std::string(param.param.name);
                         });

}  // namespace
}  // namespace memscope::testing
