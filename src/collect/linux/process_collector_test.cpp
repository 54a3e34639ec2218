// ProcessCollector against the process-tree fixture and scratch trees: exact figures, tree
// selection, rank labels, and the sampling policy (what is re-read when), through Stats.
#include "collect/linux/process_collector.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <string>

#include "collect/linux/fault_file_access.hpp"
#include "test_support.hpp"

namespace memscope::procfs {
namespace {

using ::testing::ElementsAre;

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;
constexpr uint64_t kGiB = 1024 * kMiB;
const uint64_t kPage = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));

std::string process_tree_fixture() {
  return memscope::testing::test_data_dir() + "/linux/process-tree";
}

std::vector<int> pids_of(const std::vector<ProcessSample>& samples) {
  std::vector<int> pids;
  for (const auto& sample : samples) pids.push_back(sample.pid);
  return pids;
}

const ProcessSample& find(const std::vector<ProcessSample>& samples, int pid) {
  const auto it = std::find_if(samples.begin(), samples.end(),
                               [pid](const ProcessSample& s) { return s.pid == pid; });
  if (it == samples.end()) throw std::runtime_error("pid " + std::to_string(pid) + " not sampled");
  return *it;
}

ProcessCollector::Stats operator-(const ProcessCollector::Stats& a,
                                  const ProcessCollector::Stats& b) {
  return {a.stat_reads - b.stat_reads,       a.statm_reads - b.statm_reads,
          a.smaps_reads - b.smaps_reads,     a.environ_reads - b.environ_reads,
          a.cmdline_reads - b.cmdline_reads, a.opens - b.opens};
}

// The process-tree fixture, read with pid 1's smaps_rollup and environ denied (eacces.txt).
class ProcessTreeFixture : public ::testing::Test {
 protected:
  ProcessTreeFixture() { files_.deny_listed_in(process_tree_fixture()); }
  Roots roots() const {
    return {process_tree_fixture() + "/proc", process_tree_fixture() + "/sys"};
  }
  FaultFileAccess files_;
};

TEST_F(ProcessTreeFixture, SamplesEveryProcessWithExactFigures) {
  ProcessCollector collector(roots(), {}, &files_);
  const auto samples = collector.collect(0.0);
  // 2 is a kernel thread; 4198 and 4199 exited while being listed.
  EXPECT_THAT(pids_of(samples), ElementsAre(1, 900, 2210, 4100, 4110, 4111, 4120, 4121, 4122));

  const ProcessSample& rank0 = find(samples, 4110);
  EXPECT_EQ(rank0.ppid, 4100);
  EXPECT_EQ(rank0.comm, "python3");
  EXPECT_EQ(rank0.state, 'S');
  EXPECT_EQ(rank0.start_time_ticks, 10100u);
  EXPECT_EQ(rank0.rss_bytes, 524288 * kPage);
  EXPECT_EQ(rank0.pss_bytes, 1900000 * kKiB);
  EXPECT_EQ(rank0.uss_bytes, (50000 + 1700000) * kKiB);
  EXPECT_EQ(rank0.swap_bytes, 4096 * kKiB);
  EXPECT_TRUE(rank0.smaps_readable);
  EXPECT_EQ(rank0.smaps_age_seconds, 0.0);
  EXPECT_EQ(rank0.cmdline, "/usr/bin/python3 -u train.py --epochs 3");
  EXPECT_EQ(rank0.gpu_bytes, 0u);

  const ProcessSample& launcher = find(samples, 4100);
  EXPECT_EQ(launcher.comm, "torchrun");
  EXPECT_EQ(launcher.cmdline,
            "/usr/bin/python3 /usr/local/bin/torchrun --nproc_per_node=2 train.py");
  EXPECT_EQ(launcher.rss_bytes, 25600 * kPage);
  EXPECT_EQ(launcher.pss_bytes, 80000 * kKiB);
  EXPECT_EQ(launcher.uss_bytes, 70000 * kKiB);
  EXPECT_EQ(launcher.swap_bytes, 1024 * kKiB);
  EXPECT_FALSE(launcher.rank.has_value());

  EXPECT_EQ(find(samples, 4111).state, 'R');
  EXPECT_EQ(find(samples, 2210).comm, "evil) (name");
  EXPECT_EQ(find(samples, 2210).ppid, 900);
}

TEST_F(ProcessTreeFixture, UnreadableSmapsFallsBackToRss) {
  ProcessCollector collector(roots(), {}, &files_);
  const ProcessSample init = find(collector.collect(0.0), 1);
  EXPECT_FALSE(init.smaps_readable);
  EXPECT_EQ(init.rss_bytes, 3000 * kPage);
  EXPECT_EQ(init.pss_bytes, init.rss_bytes);
  EXPECT_EQ(init.uss_bytes, init.rss_bytes);
  EXPECT_EQ(init.swap_bytes, 0u);
  EXPECT_FALSE(init.rank.has_value());  // environ denied too
  EXPECT_EQ(init.cmdline, "/sbin/init splash");

  // The flag is kept: smaps_rollup is not tried again.
  const auto before = collector.stats();
  const ProcessSample again = find(collector.collect(20.0), 1);
  EXPECT_FALSE(again.smaps_readable);
  EXPECT_EQ(again.pss_bytes, again.rss_bytes);
  EXPECT_EQ((collector.stats() - before).smaps_reads, 7u);  // the 7 readable ones, by age
}

TEST_F(ProcessTreeFixture, ZombieIsReportedWithNoMemory) {
  ProcessCollector collector(roots(), {}, &files_);
  const ProcessSample zombie = find(collector.collect(0.0), 4122);
  EXPECT_EQ(zombie.state, 'Z');
  EXPECT_EQ(zombie.ppid, 4110);
  EXPECT_EQ(zombie.rss_bytes, 0u);
  EXPECT_EQ(zombie.pss_bytes, 0u);
  EXPECT_EQ(zombie.uss_bytes, 0u);
}

TEST_F(ProcessTreeFixture, RanksAreLabelledFromEnviron) {
  ProcessCollector collector(roots(), {}, &files_);
  const auto samples = collector.collect(0.0);
  for (int pid : {4110, 4120, 4121}) {  // rank 0 and the DataLoader workers it forked
    EXPECT_EQ(find(samples, pid).rank, 0) << pid;
    EXPECT_EQ(find(samples, pid).local_rank, 0) << pid;
    EXPECT_EQ(find(samples, pid).world_size, 2) << pid;
  }
  EXPECT_EQ(find(samples, 4111).rank, 1);
  EXPECT_EQ(find(samples, 4111).local_rank, 1);
  EXPECT_EQ(find(samples, 4111).world_size, 2);
  for (int pid : {1, 900, 2210, 4100, 4122}) EXPECT_FALSE(find(samples, pid).rank) << pid;
}

TEST_F(ProcessTreeFixture, EnvironIsNotReadWhenThePolicySaysSo) {
  ProcessCollector::Policy policy;
  policy.read_environ = false;
  ProcessCollector collector(roots(), policy, &files_);
  const auto samples = collector.collect(0.0);
  EXPECT_FALSE(find(samples, 4110).rank.has_value());
  EXPECT_EQ(collector.stats().environ_reads, 0u);
}

TEST_F(ProcessTreeFixture, SelectsTheTreeOfRootPid) {
  ProcessCollector collector(roots(), {}, &files_);
  const auto job = collector.collect(0.0, 4100);
  EXPECT_THAT(pids_of(job), ElementsAre(4100, 4110, 4111, 4120, 4121, 4122));
  // Every listed pid had its stat read once to learn its ppid (12 directories); only the tree's
  // memory was read: statm for 5 (not the zombie), smaps_rollup for the same 5.
  const auto stats = collector.stats();
  EXPECT_EQ(stats.stat_reads, 12u);
  EXPECT_EQ(stats.statm_reads, 5u);
  EXPECT_EQ(stats.smaps_reads, 5u);
  EXPECT_EQ(stats.cmdline_reads, 7u);  // and 4198's, which turned out to have exited
  EXPECT_EQ(stats.environ_reads, 6u);

  EXPECT_THAT(pids_of(collector.collect(1.0, 4110)), ElementsAre(4110, 4120, 4121, 4122));
  EXPECT_THAT(pids_of(collector.collect(2.0, 4120)), ElementsAre(4120));
  EXPECT_THAT(pids_of(collector.collect(3.0, 900)),
              ElementsAre(900, 2210, 4100, 4110, 4111, 4120, 4121, 4122));
  EXPECT_TRUE(collector.collect(4.0, 31337).empty());
}

TEST_F(ProcessTreeFixture, LeavingTheTreeClosesDescriptors) {
  ProcessCollector collector(roots(), {}, &files_);
  (void)collector.collect(0.0);
  EXPECT_EQ(collector.open_descriptors(), 15u);  // statm + smaps for 7, statm for pid 1
  (void)collector.collect(1.0, 4120);
  EXPECT_EQ(collector.open_descriptors(), 2u);
  EXPECT_EQ(files_.open_now(), 2u + 0u);
}

TEST(ProcessCollectorThisMachine, ReadsTheCapturedProcesses) {
  // tests/data/linux/this-machine, captured by capture.sh: its shell (14551), a sleeping child
  // started with rank variables (14557) and a python3 child holding 32 MiB (14558).
  const std::string dir = memscope::testing::test_data_dir() + "/linux/this-machine";
  ProcessCollector collector(Roots{dir + "/proc", dir + "/sys"}, {});
  const auto samples = collector.collect(0.0, 14551);
  EXPECT_THAT(pids_of(samples), ElementsAre(14551, 14557, 14558));

  const ProcessSample& shell = find(samples, 14551);
  EXPECT_EQ(shell.comm, "bash");
  EXPECT_EQ(shell.ppid, 14507);
  EXPECT_EQ(shell.start_time_ticks, 95538u);
  EXPECT_EQ(shell.cmdline, "bash tests/data/linux/capture.sh");
  EXPECT_EQ(shell.rss_bytes, 780 * kPage);
  EXPECT_EQ(shell.pss_bytes, 524 * kKiB);
  EXPECT_EQ(shell.uss_bytes, (12 + 316) * kKiB);
  EXPECT_FALSE(shell.rank.has_value());

  const ProcessSample& sleeper = find(samples, 14557);
  EXPECT_EQ(sleeper.comm, "sleep");
  EXPECT_EQ(sleeper.cmdline, "sleep 600");
  EXPECT_EQ(sleeper.rss_bytes, 421 * kPage);
  EXPECT_EQ(sleeper.pss_bytes, 208 * kKiB);
  EXPECT_EQ(sleeper.uss_bytes, (36 + 112) * kKiB);
  EXPECT_EQ(sleeper.rank, 0);
  EXPECT_EQ(sleeper.local_rank, 0);
  EXPECT_EQ(sleeper.world_size, 2);

  const ProcessSample& python = find(samples, 14558);
  EXPECT_EQ(python.comm, "python3");
  EXPECT_EQ(python.rss_bytes, 11595 * kPage);
  EXPECT_EQ(python.pss_bytes, 44378 * kKiB);
  EXPECT_EQ(python.uss_bytes, (4596 + 39636) * kKiB);
  EXPECT_GT(python.uss_bytes, 32 * kMiB);
  EXPECT_EQ(python.swap_bytes, 0u);
}

// --- the sampling policy, on scratch trees whose files the test rewrites ---------------------

class ScratchProcesses : public ::testing::Test {
 protected:
  std::string dir(int pid) const { return tree_.path() + "/proc/" + std::to_string(pid); }

  void write(int pid, const std::string& name, const std::string& text) {
    std::filesystem::create_directories(dir(pid));
    memscope::testing::write_file(dir(pid) + "/" + name, text);
  }
  void write_stat(int pid, int ppid, uint64_t start, const std::string& comm = "worker") {
    write(pid, "stat",
          std::to_string(pid) + " (" + comm + ") S " + std::to_string(ppid) +
              " 1 1 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 1 0 " + std::to_string(start) + " 0 0\n");
  }
  void write_rss(int pid, uint64_t bytes) {
    write(pid, "statm", "100000 " + std::to_string(bytes / kPage) + " 0 0 0 0 0\n");
  }
  void write_smaps(int pid, uint64_t pss_kb) {
    write(pid, "smaps_rollup",
          "00400000-7fff0000 ---p 00000000 00:00 0 [rollup]\nRss: 1 kB\nPss: " +
              std::to_string(pss_kb) +
              " kB\nPrivate_Clean: 0 kB\nPrivate_Dirty: 5 kB\nSwap: 0 kB\n");
  }
  // A process with rss bytes resident and a smaps_rollup saying PSS = pss_kb.
  void add(int pid, int ppid, uint64_t rss, uint64_t pss_kb = 100, uint64_t start = 0) {
    write_stat(pid, ppid, start == 0 ? static_cast<uint64_t>(pid) : start);
    write_rss(pid, rss);
    write_smaps(pid, pss_kb);
    write(pid, "cmdline", std::string("worker\0--id\0", 12) + std::to_string(pid));
    write(pid, "environ", std::string("RANK=", 5) + std::to_string(pid % 8) + std::string(1, '\0'));
  }
  Roots roots() const { return {tree_.path() + "/proc", tree_.path() + "/sys"}; }

  memscope::testing::TempDir tree_;
  FaultFileAccess files_;
};

TEST_F(ScratchProcesses, SteadyStateReadsOnlyStatmThroughKeptDescriptors) {
  for (int pid = 100; pid < 110; ++pid) add(pid, 1, 10 * kMiB);
  ProcessCollector collector(roots(), {}, &files_);
  ASSERT_EQ(collector.collect(0.0).size(), 10u);
  const auto first = collector.stats();
  EXPECT_EQ(first.stat_reads, 10u);
  EXPECT_EQ(first.cmdline_reads, 10u);
  EXPECT_EQ(first.environ_reads, 10u);
  EXPECT_EQ(first.statm_reads, 10u);
  EXPECT_EQ(first.smaps_reads, 10u);
  EXPECT_EQ(first.opens, 50u);
  EXPECT_EQ(collector.open_descriptors(), 20u);

  ASSERT_EQ(collector.collect(0.45).size(), 10u);  // before any stat refresh is due
  const auto steady = collector.stats() - first;
  EXPECT_EQ(steady.statm_reads, 10u);
  EXPECT_EQ(steady.opens, 0u);  // pread on kept descriptors
  EXPECT_EQ(steady.stat_reads, 0u);
  EXPECT_EQ(steady.smaps_reads, 0u);
  EXPECT_EQ(steady.cmdline_reads, 0u);
  EXPECT_EQ(steady.environ_reads, 0u);
}

TEST_F(ScratchProcesses, SmapsIsReReadWhenRssMovesMoreThanTheMinimum) {
  add(100, 1, 10 * kMiB, 700);  // 2 % of 10 MiB is below the 1 MiB minimum
  ProcessCollector collector(roots(), {}, &files_);
  EXPECT_EQ(find(collector.collect(0.0), 100).pss_bytes, 700 * kKiB);

  write_rss(100, 10 * kMiB + 512 * kKiB);  // +0.5 MiB: not enough
  write_smaps(100, 900);
  const ProcessSample small_move = find(collector.collect(1.0), 100);
  EXPECT_EQ(collector.stats().smaps_reads, 1u);
  EXPECT_EQ(small_move.rss_bytes, 10 * kMiB + 512 * kKiB);
  EXPECT_EQ(small_move.pss_bytes, 700 * kKiB);  // as of t=0
  EXPECT_DOUBLE_EQ(small_move.smaps_age_seconds, 1.0);

  write_rss(100, 11 * kMiB + 4 * kPage);  // more than 1 MiB above the RSS at the last smaps read
  const ProcessSample moved = find(collector.collect(2.0), 100);
  EXPECT_EQ(collector.stats().smaps_reads, 2u);
  EXPECT_EQ(moved.pss_bytes, 900 * kKiB);
  EXPECT_DOUBLE_EQ(moved.smaps_age_seconds, 0.0);

  write_rss(100, 10 * kMiB);  // and down again, by just over 1 MiB
  (void)collector.collect(3.0);
  EXPECT_EQ(collector.stats().smaps_reads, 3u);
}

TEST_F(ScratchProcesses, SmapsIsReReadWhenRssMovesMoreThanTheFraction) {
  add(100, 1, 1 * kGiB);  // 2 % of 1 GiB = 20.48 MiB
  ProcessCollector collector(roots(), {}, &files_);
  (void)collector.collect(0.0);
  write_rss(100, 1 * kGiB + 10 * kMiB);
  (void)collector.collect(1.0);
  EXPECT_EQ(collector.stats().smaps_reads, 1u);
  write_rss(100, 1 * kGiB + 20 * kMiB);
  (void)collector.collect(2.0);
  EXPECT_EQ(collector.stats().smaps_reads, 1u);
  write_rss(100, 1 * kGiB + 21 * kMiB);
  (void)collector.collect(3.0);
  EXPECT_EQ(collector.stats().smaps_reads, 2u);
}

TEST_F(ScratchProcesses, SmapsIsReReadWhenItGetsTooOld) {
  add(100, 1, 10 * kMiB);
  ProcessCollector collector(roots(), {}, &files_);
  (void)collector.collect(0.0);
  // The first age-based refresh comes within [0.1, 1) x smaps_max_age_seconds; never before.
  (void)collector.collect(0.99);
  EXPECT_EQ(collector.stats().smaps_reads, 1u);
  const ProcessSample aged = find(collector.collect(10.0), 100);
  EXPECT_EQ(collector.stats().smaps_reads, 2u);
  EXPECT_DOUBLE_EQ(aged.smaps_age_seconds, 0.0);
  // From then on every smaps_max_age_seconds.
  EXPECT_DOUBLE_EQ(find(collector.collect(19.9), 100).smaps_age_seconds, 9.9);
  EXPECT_EQ(collector.stats().smaps_reads, 2u);
  (void)collector.collect(20.0);
  EXPECT_EQ(collector.stats().smaps_reads, 3u);
}

TEST_F(ScratchProcesses, AgeRefreshesOfProcessesBornTogetherAreSpreadOut) {
  constexpr int kProcesses = 100;
  for (int pid = 1000; pid < 1000 + kProcesses; ++pid) add(pid, 1, 10 * kMiB);
  ProcessCollector collector(roots(), {}, &files_);
  (void)collector.collect(0.0);
  uint64_t total = 0, busiest = 0, last = collector.stats().smaps_reads;
  for (int second = 1; second <= 10; ++second) {
    (void)collector.collect(second);
    const uint64_t now = collector.stats().smaps_reads;
    total += now - last;
    busiest = std::max(busiest, now - last);
    last = now;
  }
  EXPECT_EQ(total, static_cast<uint64_t>(kProcesses));  // each once within the 10 s
  EXPECT_LE(busiest, static_cast<uint64_t>(kProcesses / 4)) << "refreshes bunch up";
}

TEST_F(ScratchProcesses, StatIsReReadOnItsPeriodForReparentingAndExec) {
  add(100, 1, 10 * kMiB);
  add(200, 100, 10 * kMiB);
  ProcessCollector collector(roots(), {}, &files_);
  EXPECT_THAT(pids_of(collector.collect(0.0, 100)), ElementsAre(100, 200));

  write_stat(200, 1, 200, "renamed");  // re-parented to init, and exec'd
  write(200, "cmdline", "newprogram");
  // The first refresh comes within [0.1, 1) x stat_refresh_seconds of being found; never before.
  EXPECT_THAT(pids_of(collector.collect(0.49, 100)), ElementsAre(100, 200));
  EXPECT_EQ(collector.stats().stat_reads, 2u);

  EXPECT_THAT(pids_of(collector.collect(5.0, 100)), ElementsAre(100));
  EXPECT_EQ(collector.stats().stat_reads, 4u);
  // From then on every stat_refresh_seconds, through a kept descriptor.
  const uint64_t opens = collector.stats().opens;
  (void)collector.collect(9.99, 100);
  EXPECT_EQ(collector.stats().stat_reads, 4u);
  (void)collector.collect(10.0, 100);
  EXPECT_EQ(collector.stats().stat_reads, 5u);
  EXPECT_EQ(collector.stats().opens, opens);
  const ProcessSample moved = find(collector.collect(5.5), 200);
  EXPECT_EQ(moved.ppid, 1);
  EXPECT_EQ(moved.comm, "renamed");
  EXPECT_EQ(moved.cmdline, "newprogram");  // comm changed: cmdline read again
}

TEST_F(ScratchProcesses, AnOrphanDoesNotJoinTheTreeThroughItsDeadParentsReusedPid) {
  add(100, 1, 10 * kMiB);  // the root
  add(150, 1, 10 * kMiB);  // an unrelated process...
  add(300, 150, 10 * kMiB);  // ...and its child
  ProcessCollector collector(roots(), {}, &files_);
  EXPECT_THAT(pids_of(collector.collect(0.0, 100)), ElementsAre(100));

  // 150 exits, 300 is re-parented to init, and the root forks a child that gets pid 150.
  std::filesystem::rename(dir(150), tree_.path() + "/old-150");  // a new inode, as in /proc
  write_stat(300, 1, 300);
  add(150, 100, 10 * kMiB, 100, 9150);
  EXPECT_THAT(pids_of(collector.collect(0.2, 100)), ElementsAre(100, 150));
  EXPECT_EQ(collector.stats().stat_reads, 5u) << "300's parent was read again before it joined";
  EXPECT_THAT(pids_of(collector.collect(0.3, 100)), ElementsAre(100, 150));
  EXPECT_EQ(collector.stats().stat_reads, 5u) << "and is known from then on";
}

TEST_F(ScratchProcesses, PidReuseIsDetectedByStartTime) {
  add(100, 1, 10 * kMiB, 700, 5555);
  ProcessCollector collector(roots(), {}, &files_);
  EXPECT_EQ(find(collector.collect(0.0), 100).start_time_ticks, 5555u);

  // Same pid, another process: a new directory (new inode) with another start time.
  std::filesystem::rename(dir(100), tree_.path() + "/old-100");
  add(100, 1, 20 * kMiB, 1500, 7777);
  const ProcessSample reused = find(collector.collect(1.0), 100);
  EXPECT_EQ(reused.start_time_ticks, 7777u);
  EXPECT_EQ(reused.rss_bytes, 20 * kMiB / kPage * kPage);
  EXPECT_EQ(reused.pss_bytes, 1500 * kKiB);
  EXPECT_EQ(collector.stats().cmdline_reads, 2u);

  // Same directory, rewritten in place: found at the next stat refresh (pid 100's first one
  // comes 0.82 x 5 s after it was found, at 1.0).
  write_stat(100, 1, 9999);
  write_smaps(100, 2500);
  EXPECT_EQ(find(collector.collect(2.0), 100).start_time_ticks, 7777u);
  const ProcessSample again = find(collector.collect(6.0), 100);
  EXPECT_EQ(again.start_time_ticks, 9999u);
  EXPECT_EQ(again.pss_bytes, 2500 * kKiB);
}

TEST_F(ScratchProcesses, VanishedProcessesAreDroppedAndTheirDescriptorsClosed) {
  add(100, 1, 10 * kMiB);
  add(101, 1, 10 * kMiB);
  ProcessCollector collector(roots(), {}, &files_);
  EXPECT_THAT(pids_of(collector.collect(0.0)), ElementsAre(100, 101));
  EXPECT_EQ(files_.open_now(), 4u);

  std::filesystem::remove_all(dir(101));
  EXPECT_THAT(pids_of(collector.collect(1.0)), ElementsAre(100));
  EXPECT_EQ(collector.tracked_processes(), 1u);
  EXPECT_EQ(files_.open_now(), 2u);
}

TEST_F(ScratchProcesses, ProcessExitingBetweenListingAndReadingIsSkippedSilently) {
  add(100, 1, 10 * kMiB);
  add(101, 1, 10 * kMiB);
  ProcessCollector collector(roots(), {}, &files_);
  (void)collector.collect(0.0);
  // A kept descriptor of a process that exited reads ESRCH.
  files_.fail_next_read(dir(101) + "/statm", ESRCH);
  EXPECT_THAT(pids_of(collector.collect(1.0)), ElementsAre(100));
  EXPECT_EQ(files_.open_now(), 2u);
  // New pid whose files are gone by the time they are opened.
  add(102, 1, 10 * kMiB);
  files_.before_open = [&](const std::string& path) {
    if (path == dir(102) + "/cmdline") std::filesystem::remove_all(dir(102));
  };
  EXPECT_THAT(pids_of(collector.collect(2.0)), ElementsAre(100, 101));
}

TEST_F(ScratchProcesses, ExecIsNoticedThroughTheKeptSmapsDescriptor) {
  add(100, 1, 10 * kMiB, 700);
  ProcessCollector collector(roots(), {}, &files_);
  (void)collector.collect(0.0);
  // After exec a kept smaps_rollup descriptor reads ESRCH (it holds the old address space).
  write_rss(100, 30 * kMiB);
  write_smaps(100, 5000);
  write_stat(100, 1, 100, "python3");
  write(100, "cmdline", "python3 train.py");
  files_.fail_next_read(dir(100) + "/smaps_rollup", ESRCH);
  const ProcessSample after = find(collector.collect(1.0), 100);
  EXPECT_EQ(after.pss_bytes, 5000 * kKiB);  // read through a fresh descriptor
  const ProcessSample renamed = find(collector.collect(2.0), 100);
  EXPECT_EQ(renamed.comm, "python3");
  EXPECT_EQ(renamed.cmdline, "python3 train.py");
}

TEST_F(ScratchProcesses, RunningOutOfDescriptorsFallsBackToOpenReadClose) {
  for (int pid = 100; pid < 108; ++pid) add(pid, 1, 10 * kMiB, static_cast<uint64_t>(pid));
  files_.set_max_open(5);
  ProcessCollector collector(roots(), {}, &files_);
  for (double t : {0.0, 1.0, 2.0}) {
    const auto samples = collector.collect(t);
    ASSERT_EQ(samples.size(), 8u) << t;
    for (const auto& sample : samples) {
      EXPECT_EQ(sample.rss_bytes, 10 * kMiB / kPage * kPage);
      EXPECT_EQ(sample.pss_bytes, static_cast<uint64_t>(sample.pid) * kKiB);
    }
    EXPECT_LE(files_.open_now(), 5u);
  }
}

TEST_F(ScratchProcesses, WithoutKeptDescriptorsEveryReadOpens) {
  for (int pid = 100; pid < 105; ++pid) add(pid, 1, 10 * kMiB);
  ProcessCollector::Policy policy;
  policy.keep_fds = false;
  ProcessCollector collector(roots(), policy, &files_);
  (void)collector.collect(0.0);
  const auto first = collector.stats();
  (void)collector.collect(0.45);
  EXPECT_EQ((collector.stats() - first).opens, 5u);  // statm only
  EXPECT_EQ(collector.open_descriptors(), 0u);
  EXPECT_EQ(files_.open_now(), 0u);
}

TEST_F(ScratchProcesses, GarbageFilesDoNotCrash) {
  add(100, 1, 10 * kMiB);
  write(101, "stat", "101 (x");
  write(102, "stat", std::string("\0\0\0\0", 4));
  add(103, 1, 10 * kMiB);
  write(103, "statm", "garbage");
  add(104, 1, 10 * kMiB);
  write(104, "smaps_rollup", "Rss: lots\n");
  write(105, "stat", "999 (liar) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5\n");  // pid mismatch
  ProcessCollector collector(roots(), {}, &files_);
  const auto samples = collector.collect(0.0);
  EXPECT_THAT(pids_of(samples), ElementsAre(100, 104));
  EXPECT_FALSE(find(samples, 104).smaps_readable);
  EXPECT_EQ(find(samples, 104).pss_bytes, find(samples, 104).rss_bytes);
}

TEST_F(ScratchProcesses, DescriptorsAreClosedWhenTheCollectorGoes) {
  for (int pid = 100; pid < 105; ++pid) add(pid, 1, 10 * kMiB);
  {
    ProcessCollector collector(roots(), {}, &files_);
    (void)collector.collect(0.0);
    EXPECT_EQ(files_.open_now(), 10u);
    ProcessCollector moved = std::move(collector);
    (void)moved.collect(1.0);
  }
  EXPECT_EQ(files_.open_now(), 0u);
}

TEST(ProcessCollectorDegrades, AMissingProcRootGivesNothingAndSaysWhy) {
  ProcessCollector collector(Roots{"/nonexistent/proc", "/nonexistent/sys"}, {});
  EXPECT_TRUE(collector.collect(0.0).empty());
  EXPECT_EQ(collector.listing_error(), "cannot list /nonexistent/proc: No such file or directory");
}

TEST_F(ScratchProcesses, CollectIntoReusesTheCallersVector) {
  for (int pid = 100; pid < 103; ++pid) add(pid, 1, 10 * kMiB);
  ProcessCollector collector(roots(), {}, &files_);
  std::vector<ProcessSample> out(10);
  collector.collect_into(0.0, 0, out);
  EXPECT_THAT(pids_of(out), ElementsAre(100, 101, 102));
  std::filesystem::remove_all(dir(101));
  collector.collect_into(1.0, 0, out);
  EXPECT_THAT(pids_of(out), ElementsAre(100, 102));
  EXPECT_EQ(out[1].cmdline, "worker --id 102");
}

}  // namespace
}  // namespace memscope::procfs
