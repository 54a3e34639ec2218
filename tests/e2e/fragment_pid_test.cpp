// `memscope fragment --pid`: the glibc heap of a process running under the allocation tracker,
// end to end — a busy program answers from its allocation path, a quiet one from the tracker's
// compressor thread, and every error path has its documented exit status.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace memscope::testing {
namespace {

using ::testing::HasSubstr;

// `memscope leak --enable-tracking -- track_heap 20 [quiet]` in the background, its output (and
// track_heap's "track_heap pid N" line) in a file; the tracked program is killed at the end.
class TrackedHeap {
 public:
  TrackedHeap(bool quiet, bool compressor_thread)
      : memscope_({"/bin/sh", "-c", "exec \"$0\" leak --enable-tracking --trace-dir \"$1\" -- \"$2\" 20 $3 >\"$4\" 2>&1",
                   memscope_binary(), dir_.path(), track_heap_binary(), quiet ? "quiet" : "",
                   dir_.file("out")},
                  compressor_thread ? std::map<std::string, std::string>{}
                                    : std::map<std::string, std::string>{{"MEMSCOPE_TRACK_THREAD", "0"}}) {
    const std::regex line("track_heap pid ([0-9]+)");
    for (int i = 0; i < 600 && pid_ == 0; ++i) {
      std::smatch match;
      const std::string out =
          std::filesystem::exists(dir_.file("out")) ? read_file(dir_.file("out")) : std::string();
      if (std::regex_search(out, match, line)) pid_ = std::stoi(match[1]);
      else std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ~TrackedHeap() {
    if (pid_ > 0) kill(pid_, SIGKILL);
  }
  TrackedHeap(const TrackedHeap&) = delete;
  TrackedHeap& operator=(const TrackedHeap&) = delete;
  int pid() const { return pid_; }
  const TempDir& dir() const { return dir_; }

 private:
  TempDir dir_;
  BackgroundCommand memscope_;
  int pid_ = 0;
};

CommandResult fragment(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {memscope_binary(), "fragment"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, {}, 60);
}

std::vector<std::string> heap_files(const TempDir& dir) {
  std::vector<std::string> found;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    const std::string name = entry.path().filename().string();
    if (name.find(".heap") != std::string::npos) found.push_back(name);
  }
  return found;
}

void expect_a_fragmented_heap(const nlohmann::json& report, int pid) {
  EXPECT_EQ(report.at("report"), "memscope-fragment");
  EXPECT_EQ(report.at("schema_version"), 1);
  EXPECT_EQ(report.at("mode"), "heap");
  EXPECT_EQ(report.at("pid"), pid);
  ASSERT_GE(report.at("arenas").size(), 2u);  // the main thread's and the second thread's
  for (const auto& arena : report.at("arenas")) {
    // track_heap frees every other block of 2,000 in each arena.
    EXPECT_GE(arena.at("free_chunks").get<uint64_t>(), 500u) << arena.dump();
    EXPECT_GT(arena.at("free_bytes").get<uint64_t>(), 1u << 20) << arena.dump();
    EXPECT_GT(arena.at("in_use_bytes").get<uint64_t>(), 1u << 20) << arena.dump();
    EXPECT_FALSE(arena.at("free_sizes").empty());
  }
  const auto& totals = report.at("totals");
  EXPECT_GT(totals.at("free_bytes").get<uint64_t>(), 0u);
  EXPECT_GT(totals.at("in_use_bytes").get<uint64_t>(), 0u);
  EXPECT_EQ(totals.at("system_bytes").get<uint64_t>(),
            report.at("mallinfo2").at("arena_bytes").get<uint64_t>());
  const uint64_t keepcost = report.at("mallinfo2").at("keepcost_bytes").get<uint64_t>();
  EXPECT_EQ(totals.at("top_chunk_releasable_bytes").get<uint64_t>(), keepcost);
  // Every tenth block is 24,000 bytes: freed ones leave whole pages to trim.
  EXPECT_GT(report.at("trim_estimate_bytes").get<uint64_t>(), keepcost);
}

TEST(FragmentPid, BusyProgramAnswersFromItsAllocations) {
  TrackedHeap tracked(/*quiet=*/false, /*compressor_thread=*/false);
  ASSERT_GT(tracked.pid(), 0) << read_file(tracked.dir().file("out"));
  const std::string json = tracked.dir().file("heap.json");
  const auto result = fragment({"--pid", std::to_string(tracked.pid()), "--output", json});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.out, HasSubstr(fmt::format("process {}: glibc heap, ", tracked.pid())));
  EXPECT_THAT(result.out, HasSubstr("top chunk (releasable): "));
  EXPECT_THAT(result.out, HasSubstr("malloc_trim would return about "));
  expect_a_fragmented_heap(nlohmann::json::parse(read_file(json)), tracked.pid());
  EXPECT_THAT(heap_files(tracked.dir()), ::testing::IsEmpty());  // request and answer removed
}

TEST(FragmentPid, QuietProgramAnswersFromTheCompressorThread) {
  TrackedHeap tracked(/*quiet=*/true, /*compressor_thread=*/true);
  ASSERT_GT(tracked.pid(), 0) << read_file(tracked.dir().file("out"));
  const std::string json = tracked.dir().file("heap.json");
  const auto result = fragment({"--pid", std::to_string(tracked.pid()), "--output", json});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  expect_a_fragmented_heap(nlohmann::json::parse(read_file(json)), tracked.pid());
}

TEST(FragmentPid, ProgramThatNeverLooksDoesNotAnswer) {
  TrackedHeap tracked(/*quiet=*/true, /*compressor_thread=*/false);
  ASSERT_GT(tracked.pid(), 0) << read_file(tracked.dir().file("out"));
  const auto result = fragment({"--pid", std::to_string(tracked.pid()), "--wait", "1"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(result.err, fmt::format("memscope fragment: process {} did not answer within 1 s (the "
                                    "tracker answers when the program allocates or frees, at most "
                                    "once a second, or from its compressor thread)\n",
                                    tracked.pid()));
  EXPECT_THAT(heap_files(tracked.dir()), ::testing::IsEmpty());  // the request is taken back
}

TEST(FragmentPid, ProcessNotUnderTheTracker) {
  BackgroundCommand sleeper({"sleep", "30"});
  const auto result = fragment({"--pid", std::to_string(sleeper.pid())});
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_EQ(result.err, fmt::format("memscope fragment: process {} is not running under the "
                                    "allocation tracker (start it with memscope leak "
                                    "--enable-tracking)\n",
                                    sleeper.pid()));
}

TEST(FragmentPid, NoSuchProcess) {
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);  // reaped: its pid names no process now
  const auto result = fragment({"--pid", std::to_string(child)});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_EQ(result.err, fmt::format("memscope fragment: --pid {0}: no process {0}\n", child));
}

TEST(FragmentPid, UsageErrors) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--pid", "1", "--snapshot", "x.pickle"},
       "give one of --snapshot FILE, --compare A B, --simulate FILE, --pid PID"},
      {{}, "give one of --snapshot FILE, --compare A B, --simulate FILE, --pid PID"},
      {{"--pid", "-4"}, "--pid -4 is not a process id"},
      {{"--snapshot", "x.pickle", "--wait", "2"}, "--wait goes with --pid"},
      {{"--pid", "1", "--wait", "-1"}, "--wait must be 0 or more seconds (got -1)"},
  };
  for (const Case& c : cases) {
    const auto result = fragment(c.args);
    EXPECT_EQ(result.exit_code, 2) << c.message;
    EXPECT_EQ(result.err, "memscope fragment: " + c.message + "\n");
  }
}

}  // namespace
}  // namespace memscope::testing
