#include "act/system_actions.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sstream>

#include "act/actions.hpp"
#include "test_support.hpp"

namespace memscope::act {
namespace {

using memscope::testing::read_file;
using memscope::testing::TempDir;
using memscope::testing::write_file;

TEST(SystemActions, CleanupWritesOneIntoBothKnobs) {
  TempDir root;
  ASSERT_EQ(mkdir(root.file("sys").c_str(), 0755), 0);
  ASSERT_EQ(mkdir(root.file("sys/vm").c_str(), 0755), 0);
  write_file(root.file("sys/vm/drop_caches"), "0\n");
  write_file(root.file("sys/vm/compact_memory"), "0\n");
  const auto steps = run_cleanup(root.path());
  ASSERT_EQ(steps.size(), 3u);
  for (const auto& step : steps) EXPECT_TRUE(step.ok) << step.action << ": " << step.error;
  EXPECT_EQ(read_file(root.file("sys/vm/drop_caches")), "1");
  EXPECT_EQ(read_file(root.file("sys/vm/compact_memory")), "1");
}

TEST(SystemActions, CleanupStepFailsAloneAndNamesThePath) {
  TempDir root;
  ASSERT_EQ(mkdir(root.file("sys").c_str(), 0755), 0);
  ASSERT_EQ(mkdir(root.file("sys/vm").c_str(), 0755), 0);
  write_file(root.file("sys/vm/drop_caches"), "0\n");  // no compact_memory
  const auto steps = run_cleanup(root.path());
  ASSERT_EQ(steps.size(), 3u);
  EXPECT_TRUE(steps[1].ok);
  EXPECT_EQ(read_file(root.file("sys/vm/drop_caches")), "1");
  EXPECT_FALSE(steps[2].ok);
  EXPECT_NE(steps[2].error.find(root.file("sys/vm/compact_memory")), std::string::npos)
      << steps[2].error;
  EXPECT_FALSE(steps[2].error.find("No such file") == std::string::npos) << steps[2].error;
}

TEST(SystemActions, ShellCommandStatus) {
  EXPECT_EQ(*run_shell_command("true"), 0);
  EXPECT_EQ(*run_shell_command("exit 3"), 3);
  EXPECT_EQ(*run_shell_command("kill -9 $$"), 128 + SIGKILL);
  EXPECT_EQ(*run_shell_command("read line; test -z \"$line\""), 0);  // stdin is /dev/null
}

TEST(SystemActions, ParsesKillSignal) {
  EXPECT_EQ(*parse_kill_signal("TERM"), SIGTERM);
  EXPECT_EQ(*parse_kill_signal("sigkill"), SIGKILL);
  EXPECT_EQ(*parse_kill_signal("9"), SIGKILL);
  EXPECT_EQ(*parse_kill_signal("15"), SIGTERM);
  const auto bad = parse_kill_signal("HUP");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.message(), "--signal 'HUP': expected TERM or KILL");
}

ProcessSample process(int pid, const std::string& comm, const std::string& cmdline, uint64_t uss,
                      char state = 'S') {
  ProcessSample sample;
  sample.pid = pid;
  sample.comm = comm;
  sample.cmdline = cmdline;
  sample.uss_bytes = uss;
  sample.state = state;
  return sample;
}

TEST(SystemActions, KillTargetIsTheLargestAllowedMatch) {
  const std::vector<ProcessSample> processes = {
      process(1, "systemd", "/sbin/init", 900),
      process(100, "python3", "python3 train.py", 500),
      process(101, "python3", "python3 serve.py", 700),
      process(102, "bash", "bash -c python3 helper", 50),  // matches by command line
      process(103, "python3", "python3 zombie.py", 5000, 'Z'),
      process(104, "python3", "python3 memscope-parent.py", 800),
  };
  const std::regex pattern("python");
  auto choice = choose_kill_target(processes, &pattern, {1, 104});
  ASSERT_TRUE(choice.victim);
  EXPECT_EQ(choice.victim->pid, 101);
  EXPECT_EQ(choice.matched, 4u);  // 100, 101, 102, 104; not the zombie
  EXPECT_EQ(choice.protected_matches, std::vector<int>{104});

  const std::regex train("train\\.py$");
  choice = choose_kill_target(processes, &train, {1});
  ASSERT_TRUE(choice.victim);
  EXPECT_EQ(choice.victim->pid, 100);

  const std::regex nothing("^nosuchthing$");
  choice = choose_kill_target(processes, &nothing, {1});
  EXPECT_FALSE(choice.victim);
  EXPECT_EQ(choice.matched, 0u);

  // No pattern: every process; pid 1 excluded leaves 104 as the largest.
  choice = choose_kill_target(processes, nullptr, {1});
  ASSERT_TRUE(choice.victim);
  EXPECT_EQ(choice.victim->pid, 104);
  // Only protected matches: none chosen.
  const std::regex init("init");
  choice = choose_kill_target(processes, &init, {1});
  EXPECT_FALSE(choice.victim);
  EXPECT_EQ(choice.matched, 1u);
}

TEST(SystemActions, KillMatchOnAHugeCommandLineLooksAtItsStartAndDoesNotOverflowTheStack) {
  // 64 KiB of classpath after the program: std::regex recursing per character over all of it
  // would overflow the stack with 'python.*train'.
  const std::string classpath(64 * 1024, 'x');
  const std::vector<ProcessSample> processes = {
      process(200, "java", "java -cp " + classpath + " python-train", 900),
      process(201, "python3", "python3 train.py --config " + classpath, 100),
  };
  const std::regex pattern("python.*train");
  const auto choice = choose_kill_target(processes, &pattern, {1});
  ASSERT_TRUE(choice.victim);
  EXPECT_EQ(choice.victim->pid, 201);  // 200's match lies past the first 4 KiB
  EXPECT_EQ(choice.matched, 1u);
}

uint64_t start_ticks(pid_t pid) {
  const std::string text = read_file("/proc/" + std::to_string(pid) + "/stat");
  std::istringstream rest(text.substr(text.rfind(')') + 2));
  std::string field;
  for (int i = 3; i < 22; ++i) rest >> field;
  uint64_t ticks = 0;
  rest >> ticks;
  return ticks;
}

TEST(SystemActions, SignalChecksTheStartTimeFirst) {
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    pause();
    _exit(0);
  }
  const uint64_t ticks = start_ticks(child);
  ASSERT_GT(ticks, 0u);
  const Status wrong = signal_verified(child, ticks + 1, SIGTERM);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.message().find("not sent"), std::string::npos) << wrong.message();
  int status = 0;
  EXPECT_EQ(waitpid(child, &status, WNOHANG), 0);  // still running
  const Status right = signal_verified(child, ticks, SIGTERM);
  EXPECT_TRUE(right.ok()) << right.message();
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
  const Status gone = signal_verified(child, ticks, SIGTERM);
  EXPECT_FALSE(gone.ok());
}

}  // namespace
}  // namespace memscope::act
