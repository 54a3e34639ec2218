// memscope system status | cleanup | monitor | swap | kill end to end: fixture /proc trees
// (tests/data/system/) for the figures and verdicts, real processes for kill, and every refusal
// and bad input with its exit status.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace memscope::testing {
namespace {

std::string tree(const std::string& name) { return test_data_dir() + "/system/" + name + "/proc"; }

CommandResult system_in(const std::string& proc_root, std::vector<std::string> args) {
  args.insert(args.begin(), {memscope_binary(), "--proc-root", proc_root, "system"});
  return run_command(args, {}, 30);
}

nlohmann::json json_of(const CommandResult& result) {
  EXPECT_EQ(result.exit_code, 0) << result.err;
  return nlohmann::json::parse(result.out);
}

const nlohmann::json& check_named(const nlohmann::json& doc, const std::string& name) {
  for (const auto& check : doc["checks"]) {
    if (check["name"] == name) return check;
  }
  ADD_FAILURE() << "no check " << name;
  return doc;
}

size_t count_lines(const std::string& text) {
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

TEST(SystemStatus, HealthyTreeIsOkWithFiguresAndTopProcesses) {
  const auto result = system_in(tree("healthy"), {"status"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("memscope system status: ok\n"), std::string::npos) << result.out;
  EXPECT_TRUE(
      std::regex_search(result.out, std::regex(R"(memory +25\.0 % +ok +16\.0 GiB of 64\.0 GiB)")))
      << result.out;
  EXPECT_TRUE(std::regex_search(result.out, std::regex(R"(swap +12\.5 % +ok)"))) << result.out;
  // The largest by USS first: train.py (6 GiB), then serve.py (2 GiB).
  const auto train = result.out.find("python3 train.py");
  const auto serve = result.out.find("python3 serve.py");
  ASSERT_NE(train, std::string::npos) << result.out;
  EXPECT_LT(train, serve);
}

TEST(SystemStatus, JsonCarriesVerdictsThresholdsAndProcesses) {
  const auto doc = json_of(system_in(tree("healthy"), {"status", "--json", "--top", "2"}));
  EXPECT_EQ(doc["overall"], "ok");
  EXPECT_DOUBLE_EQ(check_named(doc, "memory")["value_percent"].get<double>(), 25.0);
  EXPECT_EQ(check_named(doc, "memory")["warning_percent"], 80.0);
  EXPECT_EQ(check_named(doc, "memory")["critical_percent"], 95.0);
  EXPECT_TRUE(check_named(doc, "cgroup")["value_percent"].is_null());
  EXPECT_EQ(doc["process_count"], 4);
  EXPECT_EQ(doc["top_processes_by"], "uss");
  ASSERT_EQ(doc["top_processes"].size(), 2u);
  EXPECT_EQ(doc["top_processes"][0]["pid"], 2001);
  EXPECT_EQ(doc["top_processes"][0]["uss_bytes"], 6ull << 30);
  EXPECT_EQ(doc["top_processes"][1]["pid"], 2002);
  EXPECT_DOUBLE_EQ(doc["pressure"]["some_avg10"].get<double>(), 0.10);
}

TEST(SystemStatus, StressedTreeIsCriticalLineByLine) {
  const auto doc = json_of(system_in(tree("stressed"), {"status", "--json"}));
  EXPECT_EQ(doc["overall"], "critical");
  EXPECT_EQ(check_named(doc, "memory")["verdict"], "critical");
  EXPECT_DOUBLE_EQ(check_named(doc, "swap")["value_percent"].get<double>(), 75.0);
  EXPECT_EQ(check_named(doc, "swap")["verdict"], "critical");
  EXPECT_EQ(check_named(doc, "pressure some")["verdict"], "critical");
  EXPECT_EQ(check_named(doc, "pressure full")["verdict"], "critical");
  EXPECT_EQ(check_named(doc, "processes")["verdict"], "ok");
}

TEST(SystemStatus, CgroupLimitIsCheckedAgainstItsOwnThresholds) {
  // The collectors' tree: a 2 GiB memory.max on /training.slice, tighter than MemTotal.
  const std::string root = test_data_dir() + "/linux/cgroup-v2-limit";
  const auto doc = json_of(run_command({memscope_binary(), "--proc-root", root + "/proc",
                                        "--sys-root", root + "/sys", "system", "status", "--json"},
                                       {}, 30));
  const auto& cgroup = check_named(doc, "cgroup");
  EXPECT_EQ(cgroup["verdict"], "warning");
  EXPECT_GT(cgroup["value_percent"].get<double>(), 80.0);
  EXPECT_NE(cgroup["detail"].get<std::string>().find("2.0 GiB limit used (/training.slice)"),
            std::string::npos)
      << cgroup["detail"];
  EXPECT_EQ(check_named(doc, "memory")["verdict"], "ok");
}

TEST(SystemStatus, CheckExitStatusFollowsTheOverallVerdict) {
  EXPECT_EQ(system_in(tree("healthy"), {"status", "--check"}).exit_code, 0);
  const auto warning = system_in(tree("warning"), {"status", "--check"});
  EXPECT_EQ(warning.exit_code, 5) << warning.out << warning.err;
  EXPECT_NE(warning.out.find("PSI unavailable"), std::string::npos) << warning.out;
  EXPECT_EQ(system_in(tree("stressed"), {"status", "--check"}).exit_code, 6);
  EXPECT_EQ(system_in(tree("stressed"), {"status"}).exit_code, 0);  // only --check says it
}

TEST(SystemCleanup, AsRootWritesTheKnobsOfItsProcRoot) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  TempDir copy;
  ASSERT_EQ(run_command({"cp", "-r", tree("healthy"), copy.path()}).exit_code, 0);
  const std::string root = copy.file("proc");
  const auto result = system_in(root, {"cleanup"});
  ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
  EXPECT_EQ(read_file(root + "/sys/vm/drop_caches"), "1");
  EXPECT_EQ(read_file(root + "/sys/vm/compact_memory"), "1");
  EXPECT_NE(result.out.find("MemAvailable: 48.0 GiB before, 48.0 GiB after"), std::string::npos)
      << result.out;
}

TEST(SystemCleanup, AsRootAFailedStepIsExitOne) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  TempDir copy;
  ASSERT_EQ(run_command({"cp", "-r", tree("healthy"), copy.path()}).exit_code, 0);
  const std::string root = copy.file("proc");
  ASSERT_EQ(unlink((root + "/sys/vm/compact_memory").c_str()), 0);
  const auto result = system_in(root, {"cleanup"});
  EXPECT_EQ(result.exit_code, 1) << result.out << result.err;
  EXPECT_EQ(read_file(root + "/sys/vm/drop_caches"), "1");
  EXPECT_NE(result.out.find("FAILED  compact memory"), std::string::npos) << result.out;
}

TEST(SystemCleanup, AsAUserExplainsAndChangesNothing) {
  std::vector<std::string> argv = {memscope_binary(), "--proc-root", tree("healthy"), "system",
                                   "cleanup"};
  if (geteuid() == 0) {
    if (run_command({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "true"})
            .exit_code != 0) {
      GTEST_SKIP() << "setpriv cannot drop to uid 65534 here";
    }
    argv.insert(argv.begin(), {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"});
  }
  const auto result = run_command(argv, {}, 30);
  EXPECT_EQ(result.exit_code, 4) << result.out << result.err;
  EXPECT_NE(result.err.find("needs root"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("write 1 to " + tree("healthy") + "/sys/vm/drop_caches"),
            std::string::npos)
      << result.err;
  EXPECT_EQ(read_file(tree("healthy") + "/sys/vm/drop_caches"), "0\n");
}

TEST(SystemCleanup, DryRunSaysWhatAndWritesNothing) {
  const auto result = system_in(tree("healthy"), {"cleanup", "--dry-run"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(
      result.out.find("compact memory: write 1 to " + tree("healthy") + "/sys/vm/compact_memory"),
      std::string::npos)
      << result.out;
  EXPECT_EQ(read_file(tree("healthy") + "/sys/vm/compact_memory"), "0\n");
}

const std::regex kMonitorLine(
    R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z 0\.0 75\.0 12\.5 0\.10 0\.00)");

TEST(SystemMonitor, LogGetsAHeaderOnceAndOneLinePerInterval) {
  TempDir dir;
  const std::string log = dir.file("monitor.log");
  auto result = system_in(tree("healthy"),
                          {"monitor", "--log", log, "--interval", "0.2", "--duration", "0.6"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_TRUE(result.out.empty()) << result.out;
  result = system_in(tree("healthy"),
                     {"monitor", "--log", log, "--interval", "0.2", "--duration", "0.4"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  std::istringstream lines(read_file(log));
  std::string line;
  std::getline(lines, line);
  EXPECT_EQ(line,
            "time cpu_percent mem_available_percent swap_used_percent psi_some_avg10 "
            "psi_full_avg10");
  size_t count = 0;
  while (std::getline(lines, line)) {
    ++count;
    EXPECT_TRUE(std::regex_match(line, kMonitorLine)) << line;
  }
  EXPECT_EQ(count, 5u);  // 3 + 2, no second header
}

TEST(SystemMonitor, StdoutWithoutPsiOrSwapShowsDashes) {
  const auto result =
      system_in(tree("warning"), {"monitor", "--interval", "0.1", "--duration", "0.2"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(count_lines(result.out), 3u) << result.out;
  EXPECT_TRUE(std::regex_search(result.out, std::regex(R"(Z 0\.0 15\.0 - - -\n)"))) << result.out;
}

TEST(SystemMonitor, SigtermOrSigintEndsAfterACompleteLineWithStatusZero) {
  for (const int signal_number : {SIGTERM, SIGINT}) {
    // Signalled once the header and a first line are in the log (a bounded poll, not a fixed
    // sleep: a sanitizer build takes a while to start), in the middle of the next interval.
    TempDir tmp;
    const std::string log = tmp.file("monitor.log");
    BackgroundCommand monitor({memscope_binary(), "--proc-root", tree("healthy"), "system",
                               "monitor", "--interval", "0.2", "--log", log});
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    auto lines_in_log = [&]() -> size_t {
      return std::filesystem::exists(log) ? count_lines(read_file(log)) : 0;
    };
    while (lines_in_log() < 2 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    monitor.signal(signal_number);
    const auto result = monitor.wait(10);
    EXPECT_EQ(result.exit_code, 0) << signal_number << ": " << result.err;
    const std::string text = read_file(log);
    ASSERT_GE(count_lines(text), 2u) << text;
    EXPECT_EQ(text.back(), '\n');
    EXPECT_TRUE(std::regex_search(text, kMonitorLine)) << text;
  }
}

TEST(SystemMonitor, BadIntervalAndUnwritableLogAreUsageErrors) {
  for (const std::string interval : {"0", "-1", "0.01", "nan", "abc", "100000"}) {
    const auto result = system_in(tree("healthy"), {"monitor", "--interval", interval});
    EXPECT_EQ(result.exit_code, 2) << interval << ": " << result.err;
  }
  EXPECT_NE(system_in(tree("healthy"), {"monitor", "--interval", "0"}).err.find("--interval 0:"),
            std::string::npos);
  const auto log = system_in(tree("healthy"), {"monitor", "--log", "/nonexistent-dir/m.log"});
  EXPECT_EQ(log.exit_code, 2);
  EXPECT_NE(log.err.find("cannot write log '/nonexistent-dir/m.log'"), std::string::npos)
      << log.err;
  EXPECT_EQ(system_in(tree("healthy"), {"monitor", "--duration", "-3"}).exit_code, 2);
}

TEST(System, UnknownOrMissingSubcommandIsUsage) {
  auto result = system_in(tree("healthy"), {});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("expected one of: status, cleanup, monitor, swap, kill"),
            std::string::npos)
      << result.err;
  result = system_in(tree("healthy"), {"bogus"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("bogus"), std::string::npos) << result.err;
}

TEST(SystemSwap, PerDeviceAndPerProcessSorted) {
  const auto doc = json_of(system_in(tree("stressed"), {"swap", "--json"}));
  EXPECT_EQ(doc["swap_total_bytes"], 8ull << 30);
  EXPECT_EQ(doc["swap_used_bytes"], 6ull << 30);
  ASSERT_EQ(doc["devices"].size(), 2u);
  EXPECT_EQ(doc["devices"][0]["name"], "/dev/nvme0n1p3");
  EXPECT_EQ(doc["devices"][0]["used_bytes"], 4ull << 30);
  EXPECT_EQ(doc["devices"][1]["name"], "/swapfile");
  EXPECT_EQ(doc["devices"][1]["type"], "file");
  ASSERT_EQ(doc["processes"].size(), 2u);  // bash and systemd have none
  EXPECT_EQ(doc["processes"][0]["pid"], 2001);
  EXPECT_EQ(doc["processes"][0]["swap_bytes"], 5ull << 30);
  EXPECT_EQ(doc["processes"][1]["pid"], 2002);

  const auto text = system_in(tree("healthy"), {"swap"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("Swap: 1.0 GiB of 8.0 GiB used"), std::string::npos) << text.out;
  EXPECT_LT(text.out.find("768.0 MiB"), text.out.find("256.0 MiB")) << text.out;
}

TEST(SystemSwap, ClearRefusesWhenRamCannotHoldTheSwappedPages) {
  const auto result = system_in(tree("stressed"), {"swap", "--clear"});
  EXPECT_EQ(result.exit_code, 4) << result.err;
  EXPECT_NE(result.err.find("--clear refused: 6.0 GiB swapped + 6.4 GiB margin does not fit in "
                            "2.0 GiB available"),
            std::string::npos)
      << result.err;
}

TEST(SystemSwap, ClearRefusesWhenACgroupCannotTakeBackItsSwappedPages) {
  // healthy's RAM check passes (1 GiB swapped, 48 GiB available), but pid 2001 (768 MiB in
  // swap) sits in a cgroup with 512 MiB of room: swapoff would OOM-kill it there.
  TempDir tmp;
  std::filesystem::copy(tree("healthy"), tmp.file("proc"), std::filesystem::copy_options::recursive);
  write_file(tmp.file("proc/2001/cgroup"), "0::/job.scope\n");
  std::filesystem::create_directories(tmp.file("sys/fs/cgroup/job.scope"));
  write_file(tmp.file("sys/fs/cgroup/cgroup.controllers"), "cpu memory pids\n");
  write_file(tmp.file("sys/fs/cgroup/job.scope/memory.max"), "8589934592\n");
  write_file(tmp.file("sys/fs/cgroup/job.scope/memory.current"), "8053063680\n");
  const auto result =
      run_command({memscope_binary(), "--proc-root", tmp.file("proc"), "--sys-root",
                   tmp.file("sys"), "system", "swap", "--clear"},
                  {}, 30);
  EXPECT_EQ(result.exit_code, 4) << result.err;
  EXPECT_NE(result.err.find("--clear refused: cgroup /job.scope has 768.0 MiB swapped out but "
                            "only 512.0 MiB of room under its limit 8.0 GiB"),
            std::string::npos)
      << result.err;

  // With room for it, the refusal is the fixture tree's (or root's) again.
  write_file(tmp.file("sys/fs/cgroup/job.scope/memory.current"), "1073741824\n");
  const auto roomy =
      run_command({memscope_binary(), "--proc-root", tmp.file("proc"), "--sys-root",
                   tmp.file("sys"), "system", "swap", "--clear"},
                  {}, 30);
  EXPECT_EQ(roomy.exit_code, 4) << roomy.err;
  EXPECT_EQ(roomy.err.find("cgroup /job.scope"), std::string::npos) << roomy.err;
}

TEST(SystemSwap, ClearFailsWhenMeminfoIsUnreadable) {
  TempDir tmp;
  std::filesystem::copy(tree("healthy"), tmp.file("proc"), std::filesystem::copy_options::recursive);
  std::filesystem::remove(tmp.file("proc/meminfo"));
  const auto result = system_in(tmp.file("proc"), {"swap", "--clear"});
  EXPECT_EQ(result.exit_code, 1) << result.err;
  EXPECT_NE(result.err.find("meminfo unreadable"), std::string::npos) << result.err;
}

TEST(SystemSwap, ClearNeverActsOnAFixtureTree) {
  const auto result = system_in(tree("healthy"), {"swap", "--clear"});
  EXPECT_EQ(result.exit_code, 4) << result.err;
  const std::string why = geteuid() == 0 ? "--proc-root is " + tree("healthy") : "needs root";
  EXPECT_NE(result.err.find(why), std::string::npos) << result.err;
}

TEST(SystemSwap, ClearWithNothingSwappedDoesNothing) {
  const auto result = system_in(tree("warning"), {"swap", "--clear"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("nothing is swapped out; nothing to do"), std::string::npos)
      << result.out;
}

TEST(SystemKill, FixtureDryRunNamesTheLargestMatch) {
  const auto result = system_in(tree("healthy"), {"kill", "--match", "python"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("dry run: would send SIGTERM to pid 2001 (python3, USS 6.0 GiB)"),
            std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("largest of 2 matching processes"), std::string::npos) << result.out;
}

TEST(SystemKill, BadInputs) {
  struct Case {
    std::vector<std::string> args;
    int exit_code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"kill"}, 2, "no --match and stdin is not a terminal"},
      {{"kill", "--match", "("}, 2, "--match '(' is not a regular expression"},
      {{"kill", "--match", "python", "--signal", "HUP"},
       2,
       "--signal 'HUP': expected TERM or KILL"},
      {{"kill", "--match", "^nothing-matches-this$"}, 1, "no process matches"},
      {{"kill", "--match", "systemd"}, 1, "only protected processes match"},  // pid 1
      {{"kill", "--match", "python", "--yes"}, 4, "--yes refused: --proc-root is"},
  };
  for (const auto& test : cases) {
    const auto result = system_in(tree("healthy"), test.args);
    EXPECT_EQ(result.exit_code, test.exit_code) << test.message << ": " << result.err;
    EXPECT_NE(result.err.find(test.message), std::string::npos) << result.err;
  }
}

// Two memscope_grow processes named by `exec -a` after a token only this test uses.
class GrowingPair {
 public:
  explicit GrowingPair(const std::string& token)
      : big_marker_(dir_.file("big")),
        small_marker_(dir_.file("small")),
        small_({"bash", "-c",
                "exec -a " + token + "-small " + grow_binary() + " 80 8 " + small_marker_ + " 60"}),
        big_({"bash", "-c",
              "exec -a " + token + "-big " + grow_binary() + " 320 64 " + big_marker_ + " 60"}) {
    // Both exec'd and holding their memory (8 and 64 MiB): a bounded poll of VmRSS, since a
    // loaded machine (or a sanitizer run) can take longer than the 0.2 s the growth needs.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while ((rss_mib(small_.pid()) < 8 || rss_mib(big_.pid()) < 64) &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  static uint64_t rss_mib(int pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) / 1024;
    }
    return 0;
  }
  bool alive(const BackgroundCommand& command) const { return kill(command.pid(), 0) == 0; }
  TempDir dir_;
  std::string big_marker_;
  std::string small_marker_;
  BackgroundCommand small_;  // started first: a lower pid does not decide for the big one
  BackgroundCommand big_;
};

std::string unique_token() {
  return "mstest" + std::to_string(getpid()) + "x" +
         std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
}

TEST(SystemKill, LiveDryRunKillsNothingAndYesKillsExactlyTheBiggest) {
  const std::string token = unique_token();
  GrowingPair pair(token);
  auto result = system_in("/proc", {"kill", "--match", token + "-(big|small)"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("would send SIGTERM to pid " + std::to_string(pair.big_.pid())),
            std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("largest of 2 matching processes"), std::string::npos) << result.out;
  EXPECT_TRUE(std::regex_search(result.out, std::regex(R"(USS (6[4-9]|7\d)\.\d MiB)")))
      << result.out;
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(pair.alive(pair.big_));
  EXPECT_TRUE(pair.alive(pair.small_));

  result = system_in("/proc", {"kill", "--match", token + "-(big|small)", "--yes"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("sent SIGTERM to pid " + std::to_string(pair.big_.pid())),
            std::string::npos)
      << result.out;
  const auto big = pair.big_.wait(10);
  EXPECT_EQ(big.exit_code, 0);  // memscope_grow exits 0 on SIGTERM, after writing its marker
  EXPECT_EQ(read_file(pair.big_marker_), "SIGNAL TERM 64\n");
  EXPECT_TRUE(pair.alive(pair.small_));
}

TEST(SystemKill, LiveNeverChoosesMemscopeItself) {
  // Only memscope's own command line holds this token: it matches, and is never chosen.
  const std::string token = unique_token() + "self";
  const auto result = system_in("/proc", {"kill", "--match", token, "--yes"});
  EXPECT_EQ(result.exit_code, 1) << result.out << result.err;
  EXPECT_NE(result.err.find("only protected processes match"), std::string::npos) << result.err;
}

TEST(SystemKill, LiveNeverChoosesAnotherMemscope) {
  // Another memscope (like `memscope run -- python train.py`, whose command line carries the
  // job's) matches the pattern and is never chosen.
  const std::string token = unique_token() + "other";
  TempDir tmp;
  BackgroundCommand other({memscope_binary(), "system", "monitor", "--interval", "1",
                           "--duration", "60", "--log", tmp.file(token + ".log")});
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (!std::filesystem::exists(tmp.file(token + ".log")) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const auto result = system_in("/proc", {"kill", "--match", token, "--yes"});
  EXPECT_EQ(result.exit_code, 1) << result.out << result.err;
  EXPECT_NE(result.err.find("only protected processes match"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find(std::to_string(other.pid())), std::string::npos) << result.err;
  EXPECT_EQ(::kill(other.pid(), 0), 0);  // still running
}

}  // namespace
}  // namespace memscope::testing
