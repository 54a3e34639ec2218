// `memscope run` end to end: the demo's process tree, exit statuses, signals, durability under
// SIGKILL, detection of the kernel OOM killer, and memscope's own memory on a big tree.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "store/session_reader.hpp"
#include "test_support.hpp"

namespace memscope::testing {
namespace {

std::map<std::string, std::string> fake_gpu(const std::string& scenario) {
  return {{"MEMSCOPE_NVML_LIBRARY", fake_nvml_library()},
          {"MEMSCOPE_FAKE_NVML_SCENARIO", test_data_dir() + "/nvml/" + scenario}};
}

std::vector<Sample> all_samples(const store::SessionReader& reader) {
  std::vector<Sample> samples;
  EXPECT_TRUE(reader.for_each_sample([&samples](const Sample& sample) {
    samples.push_back(sample);
    return true;
  }).ok());
  return samples;
}

TEST(Run, RecordsTheDemoTreeWithWorkersAndTheGpuAndExitsWithItsStatus) {
  TempDir tmp;
  // In the sanitizer build LeakSanitizer checks the demo at its exit from a clone of it — a
  // third child with the demo's name: not the demo's, so off for this test.
  auto env = fake_gpu("child_process.json");
  env["ASAN_OPTIONS"] = "detect_leaks=0";
  const auto result = run_command({memscope_binary(), "run", "--interval", "0.1", "--output",
                                   tmp.file("s.db"), "--", demo_binary(), "12", "60", "256"},
                                  env, 60);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("exited with status 0"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("memscope_demo"), std::string::npos) << result.err;
  EXPECT_NE(result.out.find("demo: step 10/12"), std::string::npos) << "stdio is inherited";

  auto reader = store::SessionReader::open(tmp.file("s.db"));
  ASSERT_TRUE(reader.ok()) << reader.message();
  EXPECT_EQ(reader->info().command.back(), "256");
  EXPECT_EQ(reader->info().exit_code, 0);
  const auto samples = all_samples(*reader);
  ASSERT_GE(samples.size(), 5u);
  const int root = reader->info().root_pid;
  std::set<int> workers;
  std::string seen;  // for the message: each child's pid, comm and state as sampled
  std::map<int, uint64_t> worker_peak_uss;
  bool gpu_matched = false;
  for (const auto& sample : samples) {
    for (const auto& process : sample.processes) {
      if (process.ppid == root) {
        if (workers.insert(process.pid).second) {
          seen += " " + std::to_string(process.pid) + " " + process.comm + " " + process.state;
        }
        if (process.state == 'Z') {
          EXPECT_EQ(process.uss_bytes, 0u) << "a zombie holds no memory";
        } else {
          worker_peak_uss[process.pid] = std::max(worker_peak_uss[process.pid], process.uss_bytes);
        }
      }
      if (process.pid == root && process.gpu_bytes > 0) gpu_matched = true;
    }
    EXPECT_EQ(sample.devices.size(), 1u);
  }
  EXPECT_EQ(workers.size(), 2u) << "the demo forks two workers; seen:" << seen;
  for (const auto& [pid, uss] : worker_peak_uss) {
    // Its own 16 MiB buffer, caught by a 1 s sample while being touched or after (on a loaded
    // machine a sample can land mid-way): most of it.
    EXPECT_GT(uss, 8u << 20) << "worker " << pid << " touches a 16 MiB buffer of its own";
  }
  EXPECT_TRUE(gpu_matched) << "the fake GPU's 'child' process is the recorded command";
}

TEST(Run, ExitsWithTheCommandsStatusOr128PlusSignal) {
  TempDir tmp;
  auto exited = run_command({memscope_binary(), "--nvml-library", "/nonexistent", "run", "--output",
                             tmp.file("a.db"), "--", "sh", "-c", "exit 3"});
  EXPECT_EQ(exited.exit_code, 3) << exited.err;
  EXPECT_NE(exited.err.find("exited with status 3"), std::string::npos) << exited.err;
  auto killed = run_command({memscope_binary(), "--nvml-library", "/nonexistent", "run", "--output",
                             tmp.file("b.db"), "--", "sh", "-c", "kill -TERM $$"});
  EXPECT_EQ(killed.exit_code, 143) << killed.err;
  EXPECT_NE(killed.err.find("killed by signal 15 (SIGTERM)"), std::string::npos) << killed.err;
  EXPECT_NE(killed.err.find("NVML not available"), std::string::npos)
      << "no NVML is one informational line: " << killed.err;
}

TEST(Run, ForwardsSigtermToTheCommand) {
  TempDir tmp;
  BackgroundCommand memscope({memscope_binary(), "--nvml-library", "/nonexistent", "run",
                              "--interval", "0.1", "--output", tmp.file("s.db"), "--", "sleep", "30"});
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  memscope.signal(SIGTERM);
  const auto result = memscope.wait(20);
  EXPECT_EQ(result.exit_code, 143) << result.err;
  auto reader = store::SessionReader::open(tmp.file("s.db"));
  ASSERT_TRUE(reader.ok()) << reader.message();
  EXPECT_EQ(reader->info().term_signal, SIGTERM);
  bool forwarded = false;
  for (const auto& event : reader->events()) {
    if (event.kind == "signal" && event.message.find("forwarded") != std::string::npos) forwarded = true;
  }
  EXPECT_TRUE(forwarded);
}

TEST(Run, SessionSurvivesSigkillOfMemscopeWithEverySampleUpToTheLastSecond) {
  TempDir tmp;
  BackgroundCommand memscope({memscope_binary(), "--nvml-library", "/nonexistent", "run",
                              "--interval", "0.1", "--output", tmp.file("s.db"), "--", "sleep", "30"});
  std::this_thread::sleep_for(std::chrono::milliseconds(3000));
  memscope.signal_group(SIGKILL);  // memscope and the sleep with it
  memscope.wait(10);
  auto reader = store::SessionReader::open(tmp.file("s.db"));
  ASSERT_TRUE(reader.ok()) << reader.message();
  EXPECT_EQ(reader->info().end_unix_ms, 0) << "the recorder died: no end";
  const auto samples = all_samples(*reader);
  ASSERT_FALSE(samples.empty());
  // ~30 samples were taken in 3 s; at most the last second's may be missing.
  EXPECT_GE(samples.size(), 15u);
  EXPECT_GE(samples.back().t_seconds, 1.5);
}

// A memory cgroup of our own with a small limit, where the kernel OOM killer really fires.
class OomCgroup {
 public:
  OomCgroup() {
    std::ifstream self("/proc/self/cgroup");
    std::string line;
    while (std::getline(self, line)) {
      const auto first = line.find(':');
      const auto second = line.find(':', first + 1);
      if (first == std::string::npos || second == std::string::npos) continue;
      const std::string controllers = line.substr(first + 1, second - first - 1);
      const std::string path = line.substr(second + 1);
      if (controllers.find("memory") != std::string::npos) {
        dir_ = "/sys/fs/cgroup/memory" + path + "/memscope-oom-test-" + std::to_string(getpid());
        limit_file_ = "memory.limit_in_bytes";
      } else if (controllers.empty() && dir_.empty()) {
        dir_ = "/sys/fs/cgroup" + path + "/memscope-oom-test-" + std::to_string(getpid());
        limit_file_ = "memory.max";
      }
    }
    if (dir_.empty() || mkdir(dir_.c_str(), 0755) != 0) {
      dir_.clear();
      return;
    }
    std::ofstream limit(dir_ + "/" + limit_file_);
    limit << (96 << 20);
    limit.close();
    if (!limit) {
      rmdir(dir_.c_str());
      dir_.clear();
    }
  }
  ~OomCgroup() {
    if (!dir_.empty()) rmdir(dir_.c_str());
  }
  bool ok() const { return !dir_.empty(); }
  std::string procs() const { return dir_ + "/cgroup.procs"; }

 private:
  std::string dir_;
  std::string limit_file_;
};

TEST(Run, SaysWhenTheKernelOomKillerEndedTheCommand) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "under AddressSanitizer memscope itself outgrows the 96 MiB cgroup";
#endif
  OomCgroup cgroup;
  if (!cgroup.ok()) GTEST_SKIP() << "cannot create a memory cgroup with a limit here";
  TempDir tmp;
  // memscope and the command both live in the limited cgroup, as in a container.
  const std::string script = "echo $$ > " + cgroup.procs() + " && exec " + memscope_binary() +
                             " --nvml-library /nonexistent run --interval 0.1 --output " +
                             tmp.file("s.db") + " -- " + demo_binary() + " 400 20 8192";
  const auto result = run_command({"sh", "-c", script}, {}, 120);
  EXPECT_EQ(result.exit_code, 137) << result.err;
  EXPECT_NE(result.err.find("OOM killer"), std::string::npos) << result.err;
  auto reader = store::SessionReader::open(tmp.file("s.db"));
  ASSERT_TRUE(reader.ok()) << reader.message();
  EXPECT_TRUE(reader->info().oom_killed);
  const auto samples = all_samples(*reader);
  ASSERT_FALSE(samples.empty());
  const SystemSample& last = samples.back().system;
  std::string notes;
  for (const auto& note : last.notes) notes += note + "; ";
  EXPECT_EQ(last.limit_bytes, 96u << 20)
      << "the cgroup limit is the tightest, also in the last sample; source " << last.limit_source
      << ", cgroup " << (last.cgroup ? last.cgroup->path : "none") << ", notes: " << notes
      << " (sample at " << samples.back().t_seconds << " s of " << samples.size() << ")";
}

TEST(Run, OwnMemoryStaysSmallWhileRecordingAThousandProcesses) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer's shadow memory makes RSS meaningless";
#endif
  TempDir tmp;
  const auto result = run_command({memscope_binary(), "--nvml-library", "/nonexistent", "run",
                                   "--interval", "0.5", "--output", tmp.file("s.db"), "--",
                                   spawn_tree_binary(), "1000", "8", "64"},
                                  {}, 120);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  auto reader = store::SessionReader::open(tmp.file("s.db"));
  ASSERT_TRUE(reader.ok()) << reader.message();
  size_t most_processes = 0;
  ASSERT_TRUE(reader->for_each_sample([&most_processes](const Sample& sample) {
    most_processes = std::max(most_processes, sample.processes.size());
    return true;
  }).ok());
  EXPECT_GE(most_processes, 1001u);
  uint64_t own_rss = 0;
  for (const auto& event : reader->events()) {
    if (event.kind == "memscope-rss") own_rss = std::stoull(event.message);
  }
  ASSERT_GT(own_rss, 0u);
  EXPECT_LT(own_rss, 30ull << 20) << "memscope's own peak RSS while recording 1,000 processes";
}

}  // namespace
}  // namespace memscope::testing
