// ProcessCollector on this machine's own /proc: sanity, real processes that exit mid-sample,
// exec, and a real EACCES (as root, from a child that drops to nobody).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include "collect/linux/fault_file_access.hpp"
#include "collect/linux/process_collector.hpp"

namespace memscope::procfs {
namespace {

const ProcessSample* find(const std::vector<ProcessSample>& samples, int pid) {
  const auto it = std::find_if(samples.begin(), samples.end(),
                               [pid](const ProcessSample& s) { return s.pid == pid; });
  return it == samples.end() ? nullptr : &*it;
}

// A child blocked on a pipe until released; then it execs `sleep 30`, or exits.
class Child {
 public:
  Child() {
    if (pipe(release_) != 0) throw std::runtime_error("pipe");
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork");
    if (pid_ == 0) {
      close(release_[1]);
      char command = 0;
      if (read(release_[0], &command, 1) == 1 && command == 'e') {
        execl("/bin/sleep", "sleep", "30", static_cast<char*>(nullptr));
      }
      _exit(0);
    }
    close(release_[0]);
  }
  ~Child() {
    if (pid_ > 0) kill_and_reap();
    if (release_[1] >= 0) close(release_[1]);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  int pid() const { return pid_; }
  void exec_sleep() {
    const char command = 'e';
    if (write(release_[1], &command, 1) != 1) throw std::runtime_error("write");
  }
  void kill_and_reap() {
    ::kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  int release_[2] = {-1, -1};
  pid_t pid_ = -1;
};

std::string comm_of(int pid) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/comm");
  std::string comm;
  std::getline(file, comm);
  return comm;
}

TEST(ProcessCollectorLive, FindsItselfWithMemoryFigures) {
  ProcessCollector collector(Roots{});
  const auto samples = collector.collect(0.0, getpid());
  ASSERT_FALSE(samples.empty());
  const ProcessSample* self = find(samples, getpid());
  ASSERT_NE(self, nullptr);
  EXPECT_EQ(self->ppid, getppid());
  EXPECT_EQ(self->state, 'R');
  EXPECT_GT(self->rss_bytes, 0u);
  EXPECT_GT(self->pss_bytes, 0u);
  EXPECT_GT(self->uss_bytes, 0u);
  EXPECT_LE(self->uss_bytes, self->pss_bytes);
  EXPECT_TRUE(self->smaps_readable);
  EXPECT_THAT(self->cmdline, ::testing::HasSubstr("test_collect_linux"));
  EXPECT_GT(self->start_time_ticks, 0u);
}

TEST(ProcessCollectorLive, SamplesTheWholeHostWithoutKernelThreads) {
  ProcessCollector collector(Roots{});
  const auto samples = collector.collect(0.0);
  EXPECT_NE(find(samples, getpid()), nullptr);
  for (const auto& sample : samples) EXPECT_NE(sample.ppid, 2) << sample.pid << " " << sample.comm;
  const auto again = collector.collect(1.0);
  EXPECT_NE(find(again, getpid()), nullptr);
}

TEST(ProcessCollectorLive, ChildThatExitsBeforeItsFilesAreOpenedIsSkipped) {
  Child child;
  FaultFileAccess files;
  const std::string cmdline = "/proc/" + std::to_string(child.pid()) + "/cmdline";
  files.before_open = [&](const std::string& path) {
    if (path == cmdline) child.kill_and_reap();  // listed and stat read; gone before cmdline
  };
  ProcessCollector collector(Roots{}, {}, &files);
  const int child_pid = child.pid();
  const auto samples = collector.collect(0.0, getpid());
  EXPECT_NE(find(samples, getpid()), nullptr);
  EXPECT_EQ(find(samples, child_pid), nullptr);
}

TEST(ProcessCollectorLive, ChildThatExitsWhileTrackedIsSkippedAndItsDescriptorsClosed) {
  Child child;
  FaultFileAccess files;
  ProcessCollector collector(Roots{}, {}, &files);
  const int child_pid = child.pid();
  ASSERT_NE(find(collector.collect(0.0, getpid()), child_pid), nullptr);
  const std::string child_dir = "/proc/" + std::to_string(child_pid) + "/";
  ASSERT_GT(files.open_under(child_dir), 0u);

  // Reap it between the listing and the pread of its kept statm descriptor: ESRCH.
  const std::string statm = "/proc/" + std::to_string(child_pid) + "/statm";
  files.before_read = [&](const std::string& path) {
    if (path == statm) child.kill_and_reap();
  };
  const auto samples = collector.collect(1.0, getpid());
  EXPECT_NE(find(samples, getpid()), nullptr);
  EXPECT_EQ(find(samples, child_pid), nullptr);
  // Every descriptor kept for it is closed (counting only its own: which others the collector
  // keeps open for the test process depends on the sampling policy's timing).
  EXPECT_EQ(files.open_under(child_dir), 0u);
}

TEST(ProcessCollectorLive, ShortLivedChildrenComeAndGoWithoutHarm) {
  ProcessCollector collector(Roots{});
  for (int round = 0; round < 20; ++round) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) _exit(0);
    const auto samples = collector.collect(round, getpid());  // may or may not catch it
    EXPECT_NE(find(samples, getpid()), nullptr);
    waitpid(pid, nullptr, 0);
  }
}

TEST(ProcessCollectorLive, ExecIsFollowed) {
  Child child;
  ProcessCollector collector(Roots{});
  ASSERT_NE(find(collector.collect(0.0, getpid()), child.pid()), nullptr);
  child.exec_sleep();
  for (int tries = 0; tries < 200 && comm_of(child.pid()) != "sleep"; ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(comm_of(child.pid()), "sleep");
  // The RSS moved (a new, small program): smaps is re-read through a new descriptor, and the
  // new name and command line follow within a sample.
  (void)collector.collect(20.0, getpid());
  const auto samples = collector.collect(21.0, getpid());
  const ProcessSample* after = find(samples, child.pid());
  ASSERT_NE(after, nullptr);
  EXPECT_EQ(after->comm, "sleep");
  EXPECT_EQ(after->cmdline, "sleep 30");
  EXPECT_TRUE(after->smaps_readable);
  EXPECT_GT(after->pss_bytes, 0u);
}

TEST(ProcessCollectorLive, AnotherUsersProcessHasUnreadableSmaps) {
  if (getuid() != 0) GTEST_SKIP() << "needs root to drop to another user";
  // A child becomes nobody and samples this (root-owned) process: the kernel answers EACCES on
  // smaps_rollup, for real. The verdict comes back through the exit status.
  const pid_t parent = getpid();
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(10);
    ProcessCollector collector(Roots{});
    const auto samples = collector.collect(0.0, parent);
    const ProcessSample* root_owned = find(samples, parent);
    if (root_owned == nullptr) _exit(11);
    if (root_owned->smaps_readable) _exit(12);
    if (root_owned->rss_bytes == 0 || root_owned->pss_bytes != root_owned->rss_bytes ||
        root_owned->uss_bytes != root_owned->rss_bytes) {
      _exit(13);
    }
    if (root_owned->rank.has_value()) _exit(14);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10: setuid failed, 11: not found, 12: smaps readable, "
                                       "13: wrong fallback, 14: environ readable";
}

}  // namespace
}  // namespace memscope::procfs
