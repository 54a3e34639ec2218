// Every error path of the command line, end to end: arguments in, exit status and messages out.
// Nothing here may start sampling: each case must fail fast.
#include <gtest/gtest.h>

#include <ostream>
#include <regex>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace memscope::testing {
namespace {

struct ErrorCase {
  const char* name;
  std::vector<std::string> args;  // after the binary; "{tmp}" becomes a fresh directory
  int exit_code;
  const char* stderr_pattern;     // ECMAScript regex searched in stderr
};

void PrintTo(const ErrorCase& c, std::ostream* out) { *out << c.name; }

class CliErrors : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(CliErrors, ExitsWithTheDocumentedStatusAndSaysWhy) {
  const ErrorCase& c = GetParam();
  TempDir tmp;
  write_file(tmp.file("text.db"), "this is not a session\n");
  write_file(tmp.file("empty.db"), "");
  std::vector<std::string> argv = {memscope_binary()};
  for (std::string arg : c.args) {
    const auto at = arg.find("{tmp}");
    if (at != std::string::npos) arg.replace(at, 5, tmp.path());
    argv.push_back(arg);
  }
  const auto result = run_command(argv, {{"MEMSCOPE_NVML_LIBRARY", fake_nvml_library()},
                                         {"MEMSCOPE_FAKE_NVML_SCENARIO",
                                          test_data_dir() + "/nvml/one_gpu.json"}},
                                  30);
  EXPECT_EQ(result.exit_code, c.exit_code) << "stderr: " << result.err;
  EXPECT_TRUE(std::regex_search(result.err, std::regex(c.stderr_pattern)))
      << "stderr was: " << result.err;
}

const ErrorCase kCases[] = {
    {"NoSubcommand", {}, 2, "subcommand"},
    {"UnknownSubcommand", {"frobnicate"}, 2, "frobnicate"},
    {"UnknownFlag", {"profile", "--bogus"}, 2, "--bogus"},
    {"ProfileZeroDuration", {"profile", "--duration", "0"}, 2, "--duration must be positive"},
    {"ProfileNegativeDuration", {"profile", "--duration", "-3"}, 2, "--duration must be positive"},
    {"ProfileZeroInterval", {"profile", "--interval", "0"}, 2, "--interval must be positive"},
    {"ProfileNotANumber", {"profile", "--duration", "soon"}, 2, "soon"},
    {"ProfileMissingDevice", {"profile", "--devices", "7", "--duration", "1"}, 2,
     "GPU 7 does not exist: this machine has 1 GPU"},
    {"ProfileDeviceWithoutNvml",
     {"--nvml-library", "/nonexistent/libnvidia-ml.so.1", "profile", "--devices", "0"}, 2,
     "GPU 0 does not exist: no NVIDIA GPU"},
    {"ProfileUnwritableOutput", {"profile", "--output", "/nonexistent/dir/p.json"}, 2,
     "cannot write '/nonexistent/dir/p.json'"},
    {"ProfileUnwritablePlot", {"profile", "--plot", "/nonexistent/dir/p.html"}, 2,
     "cannot write '/nonexistent/dir/p.html'"},
    {"ProfileUnknownPlotKind", {"profile", "--output", "{tmp}/p.json", "--plot", "{tmp}/p.xyz"}, 2,
     "p.xyz"},
    {"RunNoCommand", {"run"}, 2, "command"},
    {"RunTooShortInterval", {"run", "--interval", "0.01", "--", "true"}, 2,
     "--interval must be at least 0.1"},
    {"RunMissingDevice", {"run", "--devices", "3", "--", "true"}, 2, "GPU 3 does not exist"},
    {"RunUnwritableSession", {"run", "--output", "/nonexistent/dir/s.db", "--", "true"}, 2,
     "/nonexistent/dir/s.db"},
    {"RunUnwritableHtml", {"run", "--output", "{tmp}/s.db", "--html", "/nonexistent/r.html", "--", "true"},
     2, "cannot write '/nonexistent/r.html'"},
    {"RunCommandNotFound", {"run", "--output", "{tmp}/s.db", "--", "/nonexistent/train"}, 127,
     "cannot run '/nonexistent/train': command not found"},
    {"RunCommandNotExecutable", {"run", "--output", "{tmp}/s.db", "--", "{tmp}/text.db"}, 126,
     "cannot run .*: Permission denied"},
    {"ReportMissingFile", {"report", "{tmp}/missing.db"}, 3, "missing.db"},
    {"ReportTextFile", {"report", "{tmp}/text.db"}, 3, "is not a memscope session"},
    {"ReportEmptyFile", {"report", "{tmp}/empty.db"}, 3, "empty.db"},
    {"ReportNoSession", {"report"}, 2, "session"},
};

INSTANTIATE_TEST_SUITE_P(Table, CliErrors, ::testing::ValuesIn(kCases),
                         [](const auto& test) { return std::string(test.param.name); });

TEST(CliHelp, ListsEverySubcommandAndTheExitStatuses) {
  const auto result = run_command({memscope_binary(), "--help"});
  EXPECT_EQ(result.exit_code, 0);
  for (const char* word : {"run", "profile", "report", "EXIT STATUS", "128+N"}) {
    EXPECT_NE(result.out.find(word), std::string::npos) << word;
  }
  const auto sub = run_command({memscope_binary(), "profile", "--help"});
  EXPECT_EQ(sub.exit_code, 0);
  EXPECT_NE(sub.out.find("--duration"), std::string::npos) << sub.out;
}

}  // namespace
}  // namespace memscope::testing
