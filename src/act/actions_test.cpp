#include "act/actions.hpp"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

#include "core/units.hpp"
#include "test_support.hpp"

namespace memscope::act {
namespace {

using analyze::RiskLevel;
using ::testing::HasSubstr;
using testing::read_file;
using testing::TempDir;

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

uint64_t start_time_of(pid_t pid) {
  const std::string text = read_file("/proc/" + std::to_string(pid) + "/stat");
  std::istringstream fields(text.substr(text.rfind(')') + 1));
  std::vector<std::string> values{std::istream_iterator<std::string>(fields),
                                  std::istream_iterator<std::string>()};
  return std::stoull(values.at(19));
}

// The child's signal handler reports each signal as one byte on a pipe.
int g_report_fd = -1;
void report_signal(int signal_number) {
  const char byte = signal_number == SIGUSR1   ? 'U'
                    : signal_number == SIGUSR2 ? 'V'
                    : signal_number == SIGTERM ? 'T'
                                               : 'W';
  [[maybe_unused]] const ssize_t written = write(g_report_fd, &byte, 1);
}

enum class OnTerm { kDie, kIgnore, kReport };

// A forked child that reports SIGUSR1 ('U'), SIGUSR2 ('V'), SIGWINCH ('W') (and SIGTERM ('T')
// when asked) and otherwise waits; killed and reaped at the end of the test. Between fork and _exit
// the child only makes async-signal-safe calls.
class Child {
 public:
  explicit Child(OnTerm on_term) {
    int fds[2];
    EXPECT_EQ(pipe2(fds, O_CLOEXEC), 0);
    pid_ = fork();
    if (pid_ == 0) {
      close(fds[0]);
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      alarm(30);  // never outlives a stuck test
      g_report_fd = fds[1];
      struct sigaction action {};
      action.sa_handler = report_signal;
      sigemptyset(&action.sa_mask);
      sigaction(SIGUSR1, &action, nullptr);
      sigaction(SIGUSR2, &action, nullptr);
      sigaction(SIGWINCH, &action, nullptr);
      if (on_term == OnTerm::kReport) sigaction(SIGTERM, &action, nullptr);
      if (on_term == OnTerm::kIgnore) signal(SIGTERM, SIG_IGN);
      const char ready = 'R';
      [[maybe_unused]] const ssize_t written = write(fds[1], &ready, 1);
      for (;;) pause();
    }
    close(fds[1]);
    read_fd_ = fds[0];
    EXPECT_EQ(next_byte(), 'R');  // handlers are in place from here on
  }
  ~Child() {
    if (!reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(read_fd_);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }

  // The next signal reported, or 0 after `timeout` seconds.
  char next_byte(double timeout = 5) const {
    pollfd readable{read_fd_, POLLIN, 0};
    if (poll(&readable, 1, static_cast<int>(timeout * 1000)) != 1) return 0;
    char byte = 0;
    return read(read_fd_, &byte, 1) == 1 ? byte : '\0';
  }

  // SIGWINCH (28) as a marker: the next byte is 'W' only if nothing was received before it
  // (standard signals pending together are delivered lowest number first, so SIGUSR1, SIGUSR2
  // and SIGTERM sent before the marker are reported before it).
  bool received_nothing_else() const {
    kill(pid_, SIGWINCH);
    return next_byte() == 'W';
  }

  // The wait status once the child has exited, nothing if it still runs after `timeout`.
  std::optional<int> wait_status(double timeout = 5) {
    const double deadline = now() + timeout;
    do {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        reaped_ = true;
        return status;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    } while (now() < deadline);
    return std::nullopt;
  }

  ProcessSample sample(uint64_t pss_bytes = 512 * kMiB) const {
    ProcessSample process;
    process.pid = pid_;
    process.ppid = getpid();
    process.comm = "worker";
    process.start_time_ticks = start_time_of(pid_);
    process.pss_bytes = pss_bytes;
    process.rss_bytes = pss_bytes;
    return process;
  }

 private:
  pid_t pid_ = -1;
  int read_fd_ = -1;
  bool reaped_ = false;
};

analyze::Assessment gpu_critical() {
  analyze::Assessment cause;
  cause.resource = "gpu0";
  cause.kind = analyze::ResourceKind::kGpu;
  cause.level = RiskLevel::kCritical;
  cause.raw_level = RiskLevel::kCritical;
  cause.used_bytes = 77 * kGiB;
  cause.limit_bytes = 80 * kGiB;
  cause.usage_percent = 96.14;
  cause.growth_bytes_per_second = 1.5 * static_cast<double>(kMiB);
  cause.growing = true;
  cause.predicted_oom_seconds = 42.04;
  cause.confidence = 0.873;
  cause.recommendation = "reduce the batch size";
  return cause;
}

analyze::Assessment host_critical() {
  analyze::Assessment cause = gpu_critical();
  cause.resource = "host";
  cause.kind = analyze::ResourceKind::kHost;
  return cause;
}

ActionSpec spec(const std::string& text) {
  auto parsed = parse_action(text);
  EXPECT_TRUE(parsed.ok()) << text;
  return parsed.ok() ? *parsed : ActionSpec{};
}

// ---------------------------------------------------------------------------------------------

TEST(ActionParse, ValidSpecs) {
  struct Case {
    std::string text;
    RiskLevel level;
    ActionSpec::Kind kind;
    int signal;
    std::string command;
  };
  const std::vector<Case> cases = {
      {"critical=signal:USR1", RiskLevel::kCritical, ActionSpec::Kind::kSignal, SIGUSR1, ""},
      {"high=signal:SIGTERM", RiskLevel::kHigh, ActionSpec::Kind::kSignal, SIGTERM, ""},
      {"critical=signal:10", RiskLevel::kCritical, ActionSpec::Kind::kSignal, 10, ""},
      {"HIGH=signal:sigkill", RiskLevel::kHigh, ActionSpec::Kind::kSignal, SIGKILL, ""},
      {"critical=signal:STOP", RiskLevel::kCritical, ActionSpec::Kind::kSignal, SIGSTOP, ""},
      {"critical=signal:64", RiskLevel::kCritical, ActionSpec::Kind::kSignal, 64, ""},
      {"medium=signal:1", RiskLevel::kMedium, ActionSpec::Kind::kSignal, SIGHUP, ""},
      {"medium=exec:./save.sh --now", RiskLevel::kMedium, ActionSpec::Kind::kExec, 0,
       "./save.sh --now"},
      {"critical=exec:A=1 echo a:b", RiskLevel::kCritical, ActionSpec::Kind::kExec, 0,
       "A=1 echo a:b"},
  };
  for (const auto& c : cases) {
    const auto parsed = parse_action(c.text);
    ASSERT_TRUE(parsed.ok()) << c.text << ": " << parsed.message();
    EXPECT_EQ(parsed->level, c.level) << c.text;
    EXPECT_EQ(parsed->kind, c.kind) << c.text;
    EXPECT_EQ(parsed->signal, c.signal) << c.text;
    EXPECT_EQ(parsed->command, c.command) << c.text;
    EXPECT_EQ(parsed->text, c.text);
  }
}

TEST(ActionParse, Errors) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"critical", "no '='"},
      {"low=signal:USR1", "'low' is not an action level: actions fire on medium, high or critical"},
      {"urgent=signal:USR1", "unknown level 'urgent' (valid: medium, high, critical)"},
      {"=signal:USR1", "unknown level ''"},
      {"critical=kill:9", "unknown action 'kill' (valid: signal:SIG, exec:CMD)"},
      {"critical=signal", "no signal given"},
      {"critical=signal:", "no signal given"},
      {"critical=signal:FOO", "unknown signal 'FOO'"},
      {"critical=signal:-1", "unknown signal '-1'"},
      {"critical=signal:0", "signal number 0 is out of range 1..64"},
      {"critical=signal:65", "signal number 65 is out of range 1..64"},
      {"critical=signal:99999", "out of range 1..64"},
      {"critical=exec:", "empty command after 'exec:'"},
      {"critical=exec:   ", "empty command"},
  };
  for (const auto& [text, message] : cases) {
    const auto parsed = parse_action(text);
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_THAT(parsed.message(), HasSubstr(message)) << text;
    EXPECT_EQ(parsed.message().rfind("--on '" + text + "': ", 0), 0U) << parsed.message();
  }
}

// ---------------------------------------------------------------------------------------------

ProcessSample process(int pid, int ppid, uint64_t pss_mib, uint64_t gpu_mib = 0) {
  ProcessSample p;
  p.pid = pid;
  p.ppid = ppid;
  p.comm = "p" + std::to_string(pid);
  p.pss_bytes = pss_mib * kMiB;
  p.gpu_bytes = gpu_mib * kMiB;
  return p;
}

// 100 -> 101 -> 102, 100 -> 103; 200 -> 201 is another tree, larger on every count.
const std::vector<ProcessSample> kProcesses = {
    process(1, 0, 5000),           process(100, 1, 10, 0),     process(101, 100, 50, 900),
    process(102, 101, 70, 0),      process(103, 100, 20, 100), process(200, 1, 9000, 9000),
    process(201, 200, 8000, 8000),
};

std::optional<int> victim(pid_t root, bool by_gpu, const std::vector<pid_t>& excluded,
                          const std::vector<ProcessSample>& processes = kProcesses) {
  const auto chosen = ActionRunner::choose_victim(processes, root, by_gpu, excluded);
  return chosen ? std::optional<int>(chosen->pid) : std::nullopt;
}

TEST(ChooseVictim, LargestOfTheTreeByPss) {
  EXPECT_EQ(victim(100, false, {}), 102);  // a grandchild, by ppid links
  EXPECT_EQ(victim(101, false, {}), 102);  // a subtree
  EXPECT_EQ(victim(103, false, {}), 103);  // the root itself
  EXPECT_EQ(victim(200, false, {}), 200);
}

TEST(ChooseVictim, LargestByGpuMemory) {
  EXPECT_EQ(victim(100, true, {}), 101);
  // Without per-process GPU data, PSS decides.
  const std::vector<ProcessSample> no_gpu = {process(10, 1, 1), process(11, 10, 3),
                                             process(12, 10, 2)};
  EXPECT_EQ(victim(10, true, {}, no_gpu), 11);
}

TEST(ChooseVictim, ExcludesPid1SelfAndAncestors) {
  EXPECT_EQ(victim(100, false, {102}), 101);
  EXPECT_EQ(victim(100, false, {102, 101}), 103);
  EXPECT_EQ(victim(100, false, {100, 101, 102, 103}), std::nullopt);
  // pid 1 is never chosen, even as the root of the tree and unlisted.
  EXPECT_EQ(victim(1, false, {}), 200);
  EXPECT_EQ(victim(1, false, {200, 201}), 102);
}

TEST(ChooseVictim, NothingOutsideTheTree) {
  EXPECT_EQ(victim(0, false, {}), std::nullopt);
  EXPECT_EQ(victim(999, false, {}), std::nullopt);
  EXPECT_EQ(victim(100, false, {}, {}), std::nullopt);
  // A parent loop in a torn sample ends the walk.
  const std::vector<ProcessSample> loop = {process(5, 6, 1), process(6, 5, 2)};
  EXPECT_EQ(victim(5, false, {}, loop), 6);
}

TEST(ChooseVictim, TiesGoToTheLowerPid) {
  const std::vector<ProcessSample> tied = {process(12, 10, 5), process(10, 1, 5),
                                           process(11, 10, 5)};
  EXPECT_EQ(victim(10, false, {}, tied), 10);
}

// ---------------------------------------------------------------------------------------------

TEST(Actions, EnvironmentFormatsNumbersPlainly) {
  const auto variables = action_environment(gpu_critical(), 4242);
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"MEMSCOPE_LEVEL", "critical"},
      {"MEMSCOPE_RESOURCE", "gpu0"},
      {"MEMSCOPE_USAGE_PERCENT", "96.1"},
      {"MEMSCOPE_USED_BYTES", std::to_string(77 * kGiB)},
      {"MEMSCOPE_LIMIT_BYTES", std::to_string(80 * kGiB)},
      {"MEMSCOPE_GROWTH_MB_PER_SEC", "1.500"},
      {"MEMSCOPE_PREDICTED_OOM_SECONDS", "42.0"},
      {"MEMSCOPE_CONFIDENCE", "0.87"},
      {"MEMSCOPE_TARGET_PID", "4242"},
      {"MEMSCOPE_RECOMMENDATION", "reduce the batch size"},
  };
  EXPECT_EQ(variables, expected);

  analyze::Assessment flat = gpu_critical();
  flat.growing = false;
  flat.predicted_oom_seconds.reset();
  flat.growth_bytes_per_second = -1;
  for (const auto& [name, value] : action_environment(flat, 0)) {
    if (name == "MEMSCOPE_PREDICTED_OOM_SECONDS" || name == "MEMSCOPE_TARGET_PID") {
      EXPECT_EQ(value, "") << name;
    }
    if (name == "MEMSCOPE_GROWTH_MB_PER_SEC") {
      EXPECT_EQ(value, "0.000");
    }
  }
}

TEST(Actions, SignalOncePerUpwardCrossingAndAgainAfterRearming) {
  Child child(OnTerm::kDie);
  ActionRunner runner({spec("critical=signal:USR1")}, {}, false, {child.pid()});
  const auto cause = gpu_critical();

  auto records = runner.on_level_change(RiskLevel::kHigh, RiskLevel::kCritical, cause, {}, 12.5);
  ASSERT_EQ(records.size(), 1U);
  EXPECT_EQ(records[0].action, "signal SIGUSR1 to pid " + std::to_string(child.pid()));
  EXPECT_TRUE(records[0].ok) << records[0].error;
  EXPECT_FALSE(records[0].dry_run);
  EXPECT_EQ(records[0].pid, child.pid());
  EXPECT_EQ(records[0].t_seconds, 12.5);
  EXPECT_EQ(records[0].resource, "gpu0");
  EXPECT_EQ(records[0].level, RiskLevel::kCritical);
  EXPECT_EQ(child.next_byte(), 'U');

  // Critical again without having dropped below it: nothing.
  EXPECT_TRUE(
      runner.on_level_change(RiskLevel::kMedium, RiskLevel::kCritical, cause, {}, 13).empty());
  EXPECT_TRUE(child.received_nothing_else());

  // Below critical re-arms it.
  EXPECT_TRUE(
      runner.on_level_change(RiskLevel::kCritical, RiskLevel::kHigh, cause, {}, 14).empty());
  records = runner.on_level_change(RiskLevel::kHigh, RiskLevel::kCritical, cause, {}, 15);
  ASSERT_EQ(records.size(), 1U);
  EXPECT_TRUE(records[0].ok) << records[0].error;
  EXPECT_EQ(child.next_byte(), 'U');
  EXPECT_TRUE(child.received_nothing_else());
}

TEST(Actions, EveryLevelCrossedFiresInOneCall) {
  Child child(OnTerm::kReport);
  // Distinct signals: two SIGUSR1 sent back to back may merge into one delivery.
  ActionRunner runner(
      {spec("medium=signal:USR1"), spec("high=signal:USR2"), spec("critical=signal:TERM")}, {},
      false, {child.pid()});
  const auto records =
      runner.on_level_change(RiskLevel::kMedium, RiskLevel::kCritical, gpu_critical(), {}, 1);
  ASSERT_EQ(records.size(), 2U);  // high and critical; medium was not crossed
  std::string received{child.next_byte(), child.next_byte()};
  std::sort(received.begin(), received.end());
  EXPECT_EQ(received, "TV");
  EXPECT_TRUE(child.received_nothing_else());
}

TEST(Actions, DryRunSendsAndStartsNothing) {
  Child child(OnTerm::kReport);
  TempDir dir;
  ActionRunner runner({spec("high=signal:USR1"), spec("critical=exec:touch " + dir.file("ran"))},
                      {true, 0.1}, true, {child.pid()});
  const std::string pid = std::to_string(child.pid());
  const auto records = runner.on_level_change(RiskLevel::kLow, RiskLevel::kCritical, gpu_critical(),
                                              {child.sample()}, 3);
  ASSERT_EQ(records.size(), 3U);
  EXPECT_EQ(records[0].action, "would send SIGUSR1 to pid " + pid);
  EXPECT_EQ(records[1].action, "would exec: touch " + dir.file("ran"));
  EXPECT_EQ(records[2].action, "kill: would send SIGTERM to pid " + pid + " (worker, 0 B GPU)");
  for (const auto& record : records) {
    EXPECT_TRUE(record.dry_run);
    EXPECT_TRUE(record.ok) << record.error;
  }
  EXPECT_TRUE(runner.tick(100).empty());  // no SIGKILL follows a SIGTERM never sent
  EXPECT_TRUE(child.received_nothing_else());
  EXPECT_FALSE(std::ifstream(dir.file("ran")).good());
}

TEST(Actions, NoTargetMeansNoSignalAndNoKill) {
  for (const bool dry_run : {false, true}) {
    ActionRunner runner({spec("critical=signal:USR1")}, {true, 0.1}, dry_run, {0});
    const auto records = runner.on_level_change(RiskLevel::kHigh, RiskLevel::kCritical,
                                                host_critical(), {process(100, 1, 10)}, 1);
    ASSERT_EQ(records.size(), 2U);
    EXPECT_FALSE(records[0].ok);
    EXPECT_EQ(records[0].error, "no target process to signal");
    EXPECT_FALSE(records[1].ok);
    EXPECT_EQ(records[1].error, "no target process tree to stop");
  }
}

TEST(Actions, SignalToAGoneProcessIsAnErrorRecord) {
  const pid_t never_a_pid = (1 << 22) + 1;  // above PID_MAX_LIMIT
  ActionRunner runner({spec("critical=signal:TERM")}, {}, false, {never_a_pid});
  const auto records =
      runner.on_level_change(RiskLevel::kHigh, RiskLevel::kCritical, host_critical(), {}, 1);
  ASSERT_EQ(records.size(), 1U);
  EXPECT_FALSE(records[0].ok);
  EXPECT_THAT(records[0].error, HasSubstr("no such process"));
}

TEST(Actions, ExecGetsTheAssessmentInItsEnvironment) {
  TempDir dir;
  ASSERT_EQ(setenv("MEMSCOPE_LEVEL", "stale", 1), 0);  // replaced, not duplicated
  ActionRunner runner({spec("critical=exec:env > " + dir.file("tmp") + " && mv " + dir.file("tmp") +
                            " " + dir.file("env"))},
                      {}, false, {4242});
  const auto records =
      runner.on_level_change(RiskLevel::kHigh, RiskLevel::kCritical, gpu_critical(), {}, 1);
  unsetenv("MEMSCOPE_LEVEL");
  ASSERT_EQ(records.size(), 1U);
  EXPECT_TRUE(records[0].ok) << records[0].error;
  EXPECT_THAT(records[0].action, HasSubstr("exec: env > "));
  const pid_t pid = records[0].pid;
  ASSERT_GT(pid, 0);

  // Reaped by tick: a zero exit records nothing, and the pid is gone (not a zombie).
  std::vector<ActionRecord> ticked;
  const double deadline = now() + 5;
  while (kill(pid, 0) == 0 && now() < deadline) {
    const auto more = runner.tick(now());
    ticked.insert(ticked.end(), more.begin(), more.end());
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_NE(kill(pid, 0), 0) << "the command was not reaped";
  EXPECT_TRUE(ticked.empty());

  const std::string env = read_file(dir.file("env"));
  for (const char* line :
       {"\nMEMSCOPE_LEVEL=critical\n", "\nMEMSCOPE_RESOURCE=gpu0\n",
        "\nMEMSCOPE_USAGE_PERCENT=96.1\n", "\nMEMSCOPE_PREDICTED_OOM_SECONDS=42.0\n",
        "\nMEMSCOPE_TARGET_PID=4242\n", "\nMEMSCOPE_RECOMMENDATION=reduce the batch size\n",
        "PATH="}) {
    EXPECT_THAT("\n" + env, HasSubstr(line));
  }
  EXPECT_THAT(env, ::testing::Not(HasSubstr("MEMSCOPE_LEVEL=stale")));
}

TEST(Actions, FailingCommandIsRecordedByTick) {
  ActionRunner runner({spec("critical=exec:exit 3")}, {}, false, {});
  const auto started =
      runner.on_level_change(RiskLevel::kHigh, RiskLevel::kCritical, host_critical(), {}, 1);
  ASSERT_EQ(started.size(), 1U);
  ASSERT_TRUE(started[0].ok) << started[0].error;
  std::vector<ActionRecord> records;
  for (const double deadline = now() + 5; records.empty() && now() < deadline;) {
    records = runner.tick(7);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(records.size(), 1U);
  EXPECT_FALSE(records[0].ok);
  EXPECT_EQ(records[0].error, "exec: exit 3 exited with status 3");
  EXPECT_EQ(records[0].pid, started[0].pid);
  EXPECT_EQ(records[0].t_seconds, 7);
  EXPECT_EQ(records[0].resource, "host");
  EXPECT_EQ(records[0].level, RiskLevel::kCritical);
  EXPECT_TRUE(runner.tick(8).empty());
}

TEST(Actions, KillSendsSigkillAfterTheGracePeriod) {
  Child child(OnTerm::kIgnore);
  ActionRunner runner({}, {true, 0.2}, false, {child.pid()});
  const double sent = now();
  const auto records = runner.on_level_change(RiskLevel::kHigh, RiskLevel::kCritical,
                                              host_critical(), {child.sample()}, sent);
  ASSERT_EQ(records.size(), 1U);
  EXPECT_TRUE(records[0].ok) << records[0].error;
  EXPECT_EQ(records[0].action,
            "kill: SIGTERM to pid " + std::to_string(child.pid()) + " (worker, 512.0 MiB)");
  EXPECT_EQ(records[0].pid, child.pid());

  std::vector<ActionRecord> killed;
  for (const double deadline = sent + 5; killed.empty() && now() < deadline;) {
    killed = runner.tick(now());
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(killed.size(), 1U);
  EXPECT_TRUE(killed[0].ok) << killed[0].error;
  EXPECT_THAT(killed[0].action, HasSubstr("SIGKILL to pid " + std::to_string(child.pid())));
  EXPECT_GE(killed[0].t_seconds, sent + 0.2);
  const auto status = child.wait_status();
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL);
  EXPECT_TRUE(runner.tick(now()).empty());
}

TEST(Actions, KillNoSigkillWhenSigtermWasEnough) {
  Child child(OnTerm::kDie);
  ActionRunner runner({}, {true, 0.2}, false, {child.pid()});
  const auto records = runner.on_level_change(RiskLevel::kHigh, RiskLevel::kCritical,
                                              host_critical(), {child.sample()}, 10);
  ASSERT_EQ(records.size(), 1U);
  EXPECT_TRUE(records[0].ok) << records[0].error;
  const auto status = child.wait_status();
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGTERM);
  EXPECT_TRUE(runner.tick(100).empty());
}

TEST(Actions, KillFiresOncePerCrossingOfCritical) {
  ActionRunner runner({}, {true, 5}, true, {100});
  const auto cause = host_critical();
  const auto fire = [&](RiskLevel from, RiskLevel to) {
    return runner.on_level_change(from, to, cause, kProcesses, 1).size();
  };
  EXPECT_EQ(fire(RiskLevel::kLow, RiskLevel::kHigh), 0U);
  EXPECT_EQ(fire(RiskLevel::kHigh, RiskLevel::kCritical), 1U);
  EXPECT_EQ(fire(RiskLevel::kHigh, RiskLevel::kCritical), 0U);
  EXPECT_EQ(fire(RiskLevel::kCritical, RiskLevel::kMedium), 0U);
  EXPECT_EQ(fire(RiskLevel::kMedium, RiskLevel::kCritical), 1U);
}

TEST(Actions, KillRefusesARecycledPid) {
  Child child(OnTerm::kReport);
  ProcessSample stale = child.sample();
  stale.start_time_ticks += 1;  // the sample saw another process under this pid
  ActionRunner runner({}, {true, 0.2}, false, {child.pid()});
  const auto records =
      runner.on_level_change(RiskLevel::kHigh, RiskLevel::kCritical, host_critical(), {stale}, 1);
  ASSERT_EQ(records.size(), 1U);
  EXPECT_FALSE(records[0].ok);
  EXPECT_THAT(records[0].error, HasSubstr("pid " + std::to_string(child.pid()) + " was recycled"));
  EXPECT_TRUE(runner.tick(100).empty());
  EXPECT_TRUE(child.received_nothing_else());
}

}  // namespace
}  // namespace memscope::act
