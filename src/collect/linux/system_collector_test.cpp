#include "collect/linux/system_collector.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "collect/linux/fault_file_access.hpp"
#include "test_support.hpp"

namespace memscope::procfs {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;
constexpr uint64_t kGiB = 1024 * kMiB;

std::string fixture(const std::string& name) {
  return memscope::testing::test_data_dir() + "/linux/" + name;
}

Roots roots_of(const std::string& dir) { return Roots{dir + "/proc", dir + "/sys"}; }

SystemSample collect_fixture(const std::string& name, int pid = 0) {
  SystemCollector collector(roots_of(fixture(name)));
  return collector.collect(pid);
}

// A scratch <proc>/<sys> tree for cases no fixture needs to keep.
class ScratchTree {
 public:
  void write(const std::string& relative, const std::string& text) {
    const std::string path = dir_.file(relative);
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    memscope::testing::write_file(path, text);
  }
  void good_proc_files() {
    write("proc/meminfo", "MemTotal: 1048576 kB\nMemFree: 524288 kB\nMemAvailable: 786432 kB\n");
    write("proc/pressure/memory", "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
    write("proc/vmstat", "pgmajfault 1\noom_kill 0\n");
  }
  Roots roots() const { return roots_of(dir_.path()); }
  const std::string& path() const { return dir_.path(); }

 private:
  memscope::testing::TempDir dir_;
};

TEST(SystemCollectorCgroupV1, ReadsTheKubernetesStyleHierarchy) {
  const SystemSample sample = collect_fixture("cgroup-v1");
  EXPECT_THAT(sample.notes, IsEmpty());
  EXPECT_EQ(sample.meminfo.total_bytes, 16 * kGiB);
  EXPECT_EQ(sample.meminfo.free_bytes, 8 * kGiB);
  EXPECT_EQ(sample.meminfo.available_bytes, 12 * kGiB);
  EXPECT_EQ(sample.meminfo.cached_bytes, 4 * kGiB);
  EXPECT_EQ(sample.meminfo.shmem_bytes, 64 * kMiB);
  EXPECT_EQ(sample.meminfo.swap_total_bytes, 0u);
  EXPECT_TRUE(sample.pressure.available);
  EXPECT_DOUBLE_EQ(sample.pressure.some.avg10, 0.50);
  EXPECT_DOUBLE_EQ(sample.pressure.full.avg300, 0.01);
  EXPECT_EQ(sample.pressure.some.total_microseconds, 1234567u);
  EXPECT_EQ(sample.vmstat.pgmajfault, 4321u);
  EXPECT_EQ(sample.vmstat.oom_kill, 2u);

  ASSERT_TRUE(sample.cgroup.has_value());
  const CgroupMemory& cgroup = *sample.cgroup;
  EXPECT_EQ(cgroup.version, 1);
  EXPECT_EQ(cgroup.path, "/kubepods/burstable/pod7f3a/ctr1");
  EXPECT_EQ(cgroup.usage_bytes, 768 * kMiB);
  ASSERT_TRUE(cgroup.limit_bytes.has_value());
  EXPECT_EQ(*cgroup.limit_bytes, 1 * kGiB);  // the leaf's 1 GiB beats the pod's 1.5 GiB
  EXPECT_EQ(cgroup.limit_path, "/kubepods/burstable/pod7f3a/ctr1");
  EXPECT_EQ(cgroup.oom_events, 17u);  // failcnt
  EXPECT_EQ(cgroup.oom_kill_events, 2u);
  EXPECT_EQ(cgroup.swap_usage_bytes, 32 * kMiB);  // memsw - usage

  EXPECT_EQ(sample.limit_bytes, 1 * kGiB);
  EXPECT_EQ(sample.limit_source, "cgroup:/kubepods/burstable/pod7f3a/ctr1");
  EXPECT_EQ(sample.used_bytes, 768 * kMiB);
}

TEST(SystemCollectorCgroupV1, CombinedControllersAndATighterParent) {
  const SystemSample sample = collect_fixture("cgroup-v1", 3001);  // "5:cpu,memory:/batch/job9"
  ASSERT_TRUE(sample.cgroup.has_value());
  EXPECT_EQ(sample.cgroup->path, "/batch/job9");
  EXPECT_EQ(sample.cgroup->usage_bytes, 200000000u);
  EXPECT_EQ(*sample.cgroup->limit_bytes, 256 * kMiB);
  EXPECT_EQ(sample.cgroup->limit_path, "/batch");
  EXPECT_EQ(sample.cgroup->oom_events, 3u);
  EXPECT_EQ(sample.limit_source, "cgroup:/batch");
  EXPECT_EQ(sample.limit_bytes, 256 * kMiB);
  EXPECT_EQ(sample.used_bytes, 250000000u);  // /batch's usage: the one its limit counts
  EXPECT_THAT(sample.notes, Contains("cgroup /batch/job9 is under OOM now"));
}

TEST(SystemCollectorCgroupV2, TheParentsLimitIsTheTightest) {
  const SystemSample sample = collect_fixture("cgroup-v2-limit");
  EXPECT_THAT(sample.notes, IsEmpty());
  EXPECT_EQ(sample.meminfo.total_bytes, 32 * kGiB);
  EXPECT_EQ(sample.meminfo.available_bytes, 20 * kGiB);
  EXPECT_EQ(sample.meminfo.swap_total_bytes, 8 * kGiB);
  EXPECT_EQ(sample.meminfo.swap_free_bytes, 8000000 * kKiB);
  EXPECT_DOUBLE_EQ(sample.pressure.some.avg10, 12.34);
  EXPECT_DOUBLE_EQ(sample.pressure.some.avg60, 5.67);
  EXPECT_DOUBLE_EQ(sample.pressure.full.avg10, 8.90);
  EXPECT_EQ(sample.pressure.full.total_microseconds, 123456789u);
  EXPECT_EQ(sample.vmstat.oom_kill, 3u);
  EXPECT_EQ(sample.vmstat.pgmajfault, 98765u);

  ASSERT_TRUE(sample.cgroup.has_value());
  EXPECT_EQ(sample.cgroup->version, 2);
  EXPECT_EQ(sample.cgroup->path, "/training.slice/job-42.scope");
  EXPECT_EQ(sample.cgroup->usage_bytes, 1800000000u);
  EXPECT_EQ(*sample.cgroup->limit_bytes, 2 * kGiB);
  EXPECT_EQ(sample.cgroup->limit_path, "/training.slice");
  EXPECT_EQ(sample.cgroup->oom_events, 4u);
  EXPECT_EQ(sample.cgroup->oom_kill_events, 3u);
  EXPECT_EQ(sample.cgroup->swap_usage_bytes, 1 * kMiB);
  EXPECT_EQ(sample.limit_bytes, 2 * kGiB);
  EXPECT_EQ(sample.limit_source, "cgroup:/training.slice");
  EXPECT_EQ(sample.used_bytes, 2000000000u);
}

TEST(SystemCollectorNoPsi, PressureIsUnavailableWithANoteNotAnError) {
  const SystemSample sample = collect_fixture("no-psi");
  EXPECT_FALSE(sample.pressure.available);
  EXPECT_EQ(sample.pressure.some.total_microseconds, 0u);
  EXPECT_THAT(sample.notes, ::testing::ElementsAre("memory pressure (PSI) unavailable"));
  EXPECT_EQ(sample.meminfo.total_bytes, 8 * kGiB);
  EXPECT_EQ(sample.vmstat.pgmajfault, 55u);
  // No limit anywhere ("max"): RAM is the limit.
  ASSERT_TRUE(sample.cgroup.has_value());
  EXPECT_EQ(sample.cgroup->version, 2);
  EXPECT_EQ(sample.cgroup->usage_bytes, 1234567890u);
  EXPECT_FALSE(sample.cgroup->limit_bytes.has_value());
  EXPECT_EQ(sample.cgroup->limit_path, "");
  EXPECT_EQ(sample.limit_bytes, 8 * kGiB);
  EXPECT_EQ(sample.limit_source, "MemTotal");
  EXPECT_EQ(sample.used_bytes, 8 * kGiB - 2 * kGiB);
}

TEST(SystemCollectorContainer, NamespaceRootTakesTheLimitAtTheMountRoot) {
  const SystemSample sample = collect_fixture("container-v2-root");
  EXPECT_THAT(sample.notes, IsEmpty());
  ASSERT_TRUE(sample.cgroup.has_value());
  EXPECT_EQ(sample.cgroup->path, "/");
  EXPECT_EQ(sample.cgroup->usage_bytes, 512 * kMiB);
  EXPECT_EQ(sample.cgroup->limit_path, "/");
  EXPECT_EQ(sample.cgroup->oom_kill_events, 1u);
  EXPECT_EQ(sample.limit_bytes, 1 * kGiB);
  EXPECT_EQ(sample.limit_source, "cgroup:/");
  EXPECT_EQ(sample.used_bytes, 512 * kMiB);
}

TEST(SystemCollectorThisMachine, ReadsTheCapturedTree) {
  // Numbers from tests/data/linux/this-machine, captured by capture.sh (a hybrid host: memory
  // on cgroup v1, no limit set anywhere).
  const SystemSample sample = collect_fixture("this-machine");
  EXPECT_THAT(sample.notes, IsEmpty());
  EXPECT_EQ(sample.meminfo.total_bytes, 24683656 * kKiB);
  EXPECT_EQ(sample.meminfo.free_bytes, 22976656 * kKiB);
  EXPECT_EQ(sample.meminfo.available_bytes, 23437220 * kKiB);
  EXPECT_EQ(sample.meminfo.cached_bytes, 518612 * kKiB);
  EXPECT_EQ(sample.meminfo.shmem_bytes, 8952 * kKiB);
  EXPECT_TRUE(sample.pressure.available);
  EXPECT_EQ(sample.pressure.some.total_microseconds, 6847u);
  EXPECT_EQ(sample.pressure.full.total_microseconds, 5979u);
  EXPECT_EQ(sample.vmstat.pgmajfault, 1989u);
  EXPECT_TRUE(sample.vmstat.has_oom_kill);
  EXPECT_EQ(sample.vmstat.oom_kill, 1u);
  ASSERT_TRUE(sample.cgroup.has_value());
  EXPECT_EQ(sample.cgroup->version, 1);
  EXPECT_EQ(sample.cgroup->path, "/process_api/62cbc991f68e295337ad40210c8a766d");
  EXPECT_EQ(sample.cgroup->usage_bytes, 66973696u);
  EXPECT_EQ(sample.cgroup->swap_usage_bytes, 67076096u - 66973696u);
  EXPECT_FALSE(sample.cgroup->limit_bytes.has_value());  // 9223372036854771712 everywhere
  EXPECT_EQ(sample.limit_source, "MemTotal");
  EXPECT_EQ(sample.limit_bytes, 24683656 * kKiB);
  EXPECT_EQ(sample.used_bytes, (24683656 - 23437220) * kKiB);
}

TEST(SystemCollectorDegrades, MissingProcFilesGiveNotesNotCrashes) {
  memscope::testing::TempDir empty;
  SystemCollector collector(roots_of(empty.path()));
  const SystemSample sample = collector.collect();
  EXPECT_EQ(sample.meminfo.total_bytes, 0u);
  EXPECT_FALSE(sample.pressure.available);
  EXPECT_FALSE(sample.cgroup.has_value());
  EXPECT_EQ(sample.limit_bytes, 0u);
  EXPECT_EQ(sample.limit_source, "MemTotal");
  EXPECT_EQ(sample.notes.size(), 4u);
  EXPECT_THAT(sample.notes, Contains(HasSubstr("/proc/meminfo unreadable: No such file")));
  EXPECT_THAT(sample.notes, Contains("memory pressure (PSI) unavailable"));
  EXPECT_THAT(sample.notes, Contains(HasSubstr("/proc/vmstat unreadable")));
  EXPECT_THAT(sample.notes, Contains(HasSubstr("/proc/self/cgroup unreadable")));
}

TEST(SystemCollectorDegrades, GarbageFilesGiveNotes) {
  ScratchTree tree;
  tree.write("proc/meminfo", "\x01\x02garbage\nMemTotal: lots\n");
  tree.write("proc/pressure/memory", "some avg10=oops\n");
  tree.write("proc/vmstat", std::string("\0\0\0", 3));
  tree.write("proc/self/cgroup", "0::/job\n");
  tree.write("sys/fs/cgroup/job/memory.current", "many bytes\n");
  SystemCollector collector(tree.roots());
  const SystemSample sample = collector.collect();
  EXPECT_EQ(sample.notes.size(), 4u);
  EXPECT_THAT(sample.notes, Contains(HasSubstr("meminfo: no valid MemTotal line")));
  EXPECT_THAT(sample.notes, Contains(HasSubstr("memory pressure (PSI) unavailable: ")));
  EXPECT_THAT(sample.notes, Contains(HasSubstr("vmstat: no valid pgmajfault line")));
  EXPECT_THAT(sample.notes, Contains(HasSubstr("job/memory.current: not a byte count")));
  EXPECT_FALSE(sample.pressure.available);
  EXPECT_FALSE(sample.cgroup.has_value());
}

TEST(SystemCollectorDegrades, MalformedLimitIsNotedAndSkipped) {
  ScratchTree tree;
  tree.good_proc_files();
  tree.write("proc/self/cgroup", "0::/a/b\n");
  tree.write("sys/fs/cgroup/a/memory.max", "half a gig\n");
  tree.write("sys/fs/cgroup/a/memory.current", "100\n");
  tree.write("sys/fs/cgroup/a/b/memory.max", "max\n");
  tree.write("sys/fs/cgroup/a/b/memory.current", "50\n");
  SystemCollector collector(tree.roots());
  const SystemSample sample = collector.collect();
  ASSERT_TRUE(sample.cgroup.has_value());
  EXPECT_FALSE(sample.cgroup->limit_bytes.has_value());
  EXPECT_THAT(sample.notes, Contains(HasSubstr("a/memory.max: memory.max is neither")));
  EXPECT_EQ(sample.limit_source, "MemTotal");
}

TEST(SystemCollectorDegrades, UnreadableLimitIsNoted) {
  ScratchTree tree;
  tree.good_proc_files();
  tree.write("proc/self/cgroup", "0::/a\n");
  tree.write("sys/fs/cgroup/a/memory.max", "1000\n");
  tree.write("sys/fs/cgroup/a/memory.current", "100\n");
  FaultFileAccess files;
  files.deny(tree.path() + "/sys/fs/cgroup/a/memory.max");
  SystemCollector collector(tree.roots(), &files);
  const SystemSample sample = collector.collect();
  EXPECT_THAT(sample.notes, Contains(HasSubstr("a/memory.max unreadable: Permission denied")));
  EXPECT_EQ(sample.limit_source, "MemTotal");
}

TEST(SystemCollectorCgroupPaths, ContainerWithoutNamespaceFallsBackToTheMountRoot) {
  // The container sees its host path but only its own cgroup is mounted.
  ScratchTree tree;
  tree.good_proc_files();
  tree.write("proc/self/cgroup", "0::/system.slice/docker-0123abcd.scope\n");
  tree.write("sys/fs/cgroup/memory.current", "300\n");
  tree.write("sys/fs/cgroup/memory.max", "1000\n");
  SystemCollector collector(tree.roots());
  const SystemSample sample = collector.collect();
  ASSERT_TRUE(sample.cgroup.has_value());
  EXPECT_EQ(sample.cgroup->path, "/system.slice/docker-0123abcd.scope");
  EXPECT_EQ(sample.cgroup->usage_bytes, 300u);
  EXPECT_EQ(sample.cgroup->limit_path, "/system.slice/docker-0123abcd.scope");
  EXPECT_EQ(sample.limit_bytes, 1000u);
  EXPECT_EQ(sample.used_bytes, 300u);
  EXPECT_THAT(sample.notes, Contains(HasSubstr("using the mount root")));
}

TEST(SystemCollectorCgroupPaths, HybridHostsKeepV2UnderUnified) {
  ScratchTree tree;
  tree.good_proc_files();
  tree.write("proc/self/cgroup", "1:name=systemd:/x\n0::/x\n");
  tree.write("sys/fs/cgroup/unified/x/memory.current", "400\n");
  tree.write("sys/fs/cgroup/unified/x/memory.max", "800\n");
  SystemCollector collector(tree.roots());
  const SystemSample sample = collector.collect();
  EXPECT_THAT(sample.notes, IsEmpty());
  ASSERT_TRUE(sample.cgroup.has_value());
  EXPECT_EQ(sample.cgroup->version, 2);
  EXPECT_EQ(sample.limit_bytes, 800u);
  EXPECT_EQ(sample.limit_source, "cgroup:/x");
}

TEST(SystemCollectorCgroupPaths, HostRootCgroupMeansNoCgroupLimit) {
  ScratchTree tree;
  tree.good_proc_files();
  tree.write("proc/self/cgroup", "0::/\n");
  tree.write("sys/fs/cgroup/cgroup.controllers", "memory\n");
  SystemCollector collector(tree.roots());
  const SystemSample sample = collector.collect();
  EXPECT_THAT(sample.notes, IsEmpty());
  EXPECT_FALSE(sample.cgroup.has_value());
  EXPECT_EQ(sample.limit_source, "MemTotal");
  EXPECT_EQ(sample.limit_bytes, 1 * kGiB);
  EXPECT_EQ(sample.used_bytes, 256 * kMiB);
}

TEST(SystemCollectorCgroupPaths, ACgroupOutsideOurNamespaceIsNotFollowed) {
  ScratchTree tree;
  tree.good_proc_files();
  tree.write("proc/77/cgroup", "0::/../../other.slice\n");
  SystemCollector collector(tree.roots());
  const SystemSample sample = collector.collect(77);
  EXPECT_FALSE(sample.cgroup.has_value());
  EXPECT_THAT(sample.notes, Contains(HasSubstr("outside this cgroup namespace")));
}

TEST(SystemCollectorCgroupPaths, ALimitAboveRamLeavesRamAsTheLimit) {
  ScratchTree tree;
  tree.good_proc_files();  // 1 GiB of RAM
  tree.write("proc/self/cgroup", "0::/big\n");
  tree.write("sys/fs/cgroup/big/memory.current", "100\n");
  tree.write("sys/fs/cgroup/big/memory.max", "4294967296\n");
  SystemCollector collector(tree.roots());
  const SystemSample sample = collector.collect();
  ASSERT_TRUE(sample.cgroup.has_value());
  EXPECT_EQ(*sample.cgroup->limit_bytes, 4 * kGiB);
  EXPECT_EQ(sample.limit_source, "MemTotal");
  EXPECT_EQ(sample.limit_bytes, 1 * kGiB);
  EXPECT_EQ(sample.used_bytes, 256 * kMiB);
}

TEST(SystemCollectorLive, AnExitedProcessKeepsTheCgroupItDiedIn) {
  // A zombie's /proc/PID/cgroup names the root cgroups and a reaped pid has none; the limit
  // that killed a job is the one of the cgroup it was in while alive.
  int to_child[2];
  ASSERT_EQ(pipe(to_child), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(to_child[1]);
    char byte = 0;
    ssize_t ignored = read(to_child[0], &byte, 1);
    (void)ignored;
    _exit(0);
  }
  SystemCollector collector(Roots{});
  const SystemSample alive = collector.collect(child);
  const SystemSample self = collector.collect(0);
  close(to_child[1]);  // the child exits and stays a zombie until reaped
  for (int i = 0; i < 200; ++i) {
    std::string stat;
    if (read_file(system_file_access(), "/proc/" + std::to_string(child) + "/stat", stat, 4096) == 0 &&
        stat.find(") Z ") != std::string::npos) {
      break;
    }
    usleep(10000);
  }
  const SystemSample zombie = collector.collect(child);
  waitpid(child, nullptr, 0);
  const SystemSample reaped = collector.collect(child);
  ASSERT_EQ(alive.cgroup.has_value(), self.cgroup.has_value());
  for (const SystemSample* after : {&zombie, &reaped}) {
    ASSERT_EQ(after->cgroup.has_value(), alive.cgroup.has_value());
    if (alive.cgroup) {
      EXPECT_EQ(after->cgroup->path, alive.cgroup->path);
    }
    EXPECT_EQ(after->limit_source, alive.limit_source);
  }
  close(to_child[0]);
}

TEST(SystemCollectorLive, ReadsThisMachine) {
  SystemCollector collector(Roots{});
  const SystemSample sample = collector.collect();
  EXPECT_GT(sample.meminfo.total_bytes, 0u);
  EXPECT_GT(sample.meminfo.available_bytes, 0u);
  EXPECT_GT(sample.limit_bytes, 0u);
  EXPECT_LE(sample.limit_bytes, sample.meminfo.total_bytes);
  EXPECT_GT(sample.used_bytes, 0u);
  EXPECT_FALSE(sample.limit_source.empty());
  for (const auto& note : sample.notes) {
    EXPECT_THAT(note, ::testing::Not(HasSubstr("meminfo"))) << note;
  }
}

}  // namespace
}  // namespace memscope::procfs
