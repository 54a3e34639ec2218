// `memscope interactive` / `memscope top` without a terminal and with bad options: exit status
// and message. The full-screen behaviour is tested in tmux by interactive_test.sh.
#include <gtest/gtest.h>

#include "test_support.hpp"

namespace memscope::testing {
namespace {

struct Case {
  std::vector<std::string> args;
  int exit_code;
  std::string stderr_part;
};

TEST(Interactive, RefusesBadInputWithADocumentedStatus) {
  const std::vector<Case> cases = {
      // run_command gives stdin /dev/null and pipes for stdout/stderr: no terminal.
      {{"interactive"}, 2, "memscope interactive: needs a terminal"},
      {{"top"}, 2, "memscope interactive: needs a terminal"},
      {{"interactive", "--no-gpu"}, 2, "needs a terminal"},
      {{"interactive", "--interval", "0.05"}, 2, "--interval must be between 0.1 and 86400 seconds"},
      {{"top", "--interval", "0"}, 2, "--interval must be between 0.1 and 86400 seconds"},
      {{"interactive", "--interval", "-1"}, 2, "--interval must be between 0.1 and 86400 seconds"},
      {{"interactive", "--interval", "nan"}, 2, "--interval"},
      {{"interactive", "--interval", "soon"}, 2, "--interval"},
      {{"interactive", "--interval", "3e6"}, 2, "--interval must be between 0.1 and 86400 seconds"},
      {{"interactive", "--no-such-flag"}, 2, "no-such-flag"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> argv = {memscope_binary()};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    const CommandResult result = run_command(argv, {{"NO_COLOR", "1"}}, 30);
    std::string joined;
    for (const auto& arg : c.args) joined += arg + " ";
    EXPECT_EQ(result.exit_code, c.exit_code) << joined << "\n" << result.err;
    EXPECT_NE(result.err.find(c.stderr_part), std::string::npos) << joined << "\n" << result.err;
    EXPECT_TRUE(result.out.empty()) << joined << "\n" << result.out;
  }
}

TEST(Interactive, HelpListsTheKeysAndExitStatus) {
  for (const char* name : {"interactive", "top"}) {
    const CommandResult result = run_command({memscope_binary(), name, "--help"}, {}, 30);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    for (const char* part : {"--interval", "KEYS", "filter", "SIGTERM", "EXIT STATUS",
                             "interactive, top: 2"}) {
      EXPECT_NE(result.out.find(part), std::string::npos) << name << ": " << part;
    }
  }
  const CommandResult top_level = run_command({memscope_binary(), "--help"}, {}, 30);
  EXPECT_NE(top_level.out.find("interactive"), std::string::npos);
  EXPECT_NE(top_level.out.find("top"), std::string::npos);
}

}  // namespace
}  // namespace memscope::testing
