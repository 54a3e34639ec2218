#include "collect/linux/pid_files.hpp"

#include <gtest/gtest.h>

#include <string>

#include "collect/linux/hostile_inputs.hpp"

namespace memscope::procfs {
namespace {

using namespace std::string_literals;

constexpr const char* kStat =
    "9930 (cat) R 9926 9926 8202 0 -1 4194304 97 0 0 0 0 0 0 0 20 0 1 0 46304 3133440 375 "
    "18446744073709551615 94197731766272 94197731786153 140728134962352 0 0 0 0 0 0 0 0 0 17 0 "
    "0 0 0 0 0\n";

constexpr const char* kSmapsRollup =
    "56200011b000-7ffe695b3000 ---p 00000000 00:00 0                          [rollup]\n"
    "Rss:                1696 kB\n"
    "Pss:                 432 kB\n"
    "Pss_Dirty:           112 kB\n"
    "Shared_Clean:       1500 kB\n"
    "Shared_Dirty:          0 kB\n"
    "Private_Clean:        84 kB\n"
    "Private_Dirty:       112 kB\n"
    "Swap:                 16 kB\n"
    "SwapPss:               8 kB\n";

TEST(ParsePidStat, ReadsPidCommStatePpidFlagsAndStartTime) {
  auto stat = parse_pid_stat(kStat);
  ASSERT_TRUE(stat.ok()) << stat.message();
  EXPECT_EQ(stat->pid, 9930);
  EXPECT_EQ(stat->comm, "cat");
  EXPECT_EQ(stat->state, 'R');
  EXPECT_EQ(stat->ppid, 9926);
  EXPECT_EQ(stat->flags, 4194304u);
  EXPECT_EQ(stat->start_time_ticks, 46304u);
  EXPECT_FALSE(stat->is_kernel_thread());
}

TEST(ParsePidStat, CommMayHoldSpacesAndParentheses) {
  auto stat = parse_pid_stat(
      "77 (evil) (name S 1 2 3) S 42 77 77 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 999 0 0\n");
  ASSERT_TRUE(stat.ok()) << stat.message();
  EXPECT_EQ(stat->comm, "evil) (name S 1 2 3");
  EXPECT_EQ(stat->state, 'S');
  EXPECT_EQ(stat->ppid, 42);
  EXPECT_EQ(stat->start_time_ticks, 999u);

  auto empty = parse_pid_stat("5 () Z 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 12");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->comm, "");
  EXPECT_EQ(empty->state, 'Z');
}

TEST(ParsePidStat, RecognisesKernelThreads) {
  auto stat = parse_pid_stat(
      "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 13 0 0 18446744073709551615");
  ASSERT_TRUE(stat.ok());
  EXPECT_TRUE(stat->is_kernel_thread());
  EXPECT_EQ(stat->ppid, 0);
}

TEST(ParsePidStat, RejectsTruncatedOrMalformedInput) {
  for (const char* bad : {"", "9930", "9930 (cat", "9930 cat) R 1", "(cat) R 1 2",
                          "x (cat) R 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5",
                          "0 (cat) R 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5",
                          "9930 (cat) R 9926 9926 8202 0 -1 4194304 97 0 0 0 0 0 0 0 20 0 1 0",
                          "9930 (cat) RR 9926 9926 8202 0 -1 4194304 97 0 0 0 0 0 0 0 20 0 1 0 5",
                          "9930 (cat) R -3 9926 8202 0 -1 4194304 97 0 0 0 0 0 0 0 20 0 1 0 5",
                          "9930 (cat) R 1 1 1 0 -1 4194304 97 0 0 0 0 0 0 0 20 0 1 0 5x",
                          "9930 ) R ( 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5"}) {
    EXPECT_FALSE(parse_pid_stat(bad).ok()) << bad;
  }
}

TEST(ParseStatm, ReadsResidentPages) {
  auto pages = parse_statm_resident_pages("765 428 399 5 0 123 0\n");
  ASSERT_TRUE(pages.ok());
  EXPECT_EQ(*pages, 428u);
  for (const char* bad : {"", "765", "765 x 1", "x 428", "-1 -2"}) {
    EXPECT_FALSE(parse_statm_resident_pages(bad).ok()) << bad;
  }
}

TEST(ParseSmapsRollup, ReadsRssPssUssAndSwapInBytes) {
  auto rollup = parse_smaps_rollup(kSmapsRollup);
  ASSERT_TRUE(rollup.ok()) << rollup.message();
  EXPECT_EQ(rollup->rss_bytes, 1696u * 1024);
  EXPECT_EQ(rollup->pss_bytes, 432u * 1024);
  EXPECT_EQ(rollup->uss_bytes, (84u + 112u) * 1024);
  EXPECT_EQ(rollup->swap_bytes, 16u * 1024);
}

TEST(ParseSmapsRollup, RejectsInputWithoutRssAndPss) {
  for (const char* bad : {"", "Rss: 5 kB\n", "Pss: 5 kB\n", "Rss: x kB\nPss: 1 kB\n",
                          "[rollup]\nRss 5 kB\nPss 5 kB\n"}) {
    EXPECT_FALSE(parse_smaps_rollup(bad).ok()) << bad;
  }
}

TEST(ParseEnviron, FindsRankVariables) {
  const std::string environ =
      "PATH=/usr/bin\0RANK=3\0LOCAL_RANK=1\0WORLD_SIZE=8\0MASTER_ADDR=10.0.0.1\0"s;
  const RankInfo ranks = parse_environ_ranks(environ);
  EXPECT_EQ(ranks.rank, 3);
  EXPECT_EQ(ranks.local_rank, 1);
  EXPECT_EQ(ranks.world_size, 8);
}

TEST(ParseEnviron, IgnoresLookalikesAndBadValues) {
  const std::string environ =
      "GROUP_RANK=2\0RANKS=5\0XRANK=4\0LOCAL_RANK=-1\0WORLD_SIZE=8x\0RANK\0=3\0"s;
  const RankInfo ranks = parse_environ_ranks(environ);
  EXPECT_FALSE(ranks.rank);
  EXPECT_FALSE(ranks.local_rank);
  EXPECT_FALSE(ranks.world_size);
  // Without a final NUL (a truncated read) the last variable still counts.
  EXPECT_EQ(parse_environ_ranks("A=1\0RANK=7"s).rank, 7);
  EXPECT_FALSE(parse_environ_ranks("").rank);
}

TEST(ParseCmdline, TurnsNulsIntoSpaces) {
  EXPECT_EQ(parse_cmdline("python\0-u\0train.py\0--lr=0.1\0"s), "python -u train.py --lr=0.1");
  EXPECT_EQ(parse_cmdline("nginx: worker process"), "nginx: worker process");
  EXPECT_EQ(parse_cmdline(""), "");
  EXPECT_EQ(parse_cmdline("\0\0"s), "");
  EXPECT_EQ(parse_cmdline("a\0\0b"s), "a  b");
}

TEST(ParsePidCgroup, ReadsTheV2Path) {
  const CgroupMembership m = parse_pid_cgroup("0::/user.slice/user-1000.slice/session-2.scope\n");
  EXPECT_EQ(m.v2_path, "/user.slice/user-1000.slice/session-2.scope");
  EXPECT_FALSE(m.v1_memory_path);
  EXPECT_EQ(parse_pid_cgroup("0::/\n").v2_path, "/");
}

TEST(ParsePidCgroup, ReadsTheV1MemoryControllerAloneOrCombined) {
  const CgroupMembership hybrid =
      parse_pid_cgroup("9:name=systemd:/\n8:pids:/\n4:memory:/process_api/62cb\n1:cpu:/\n0::/\n");
  EXPECT_EQ(hybrid.v1_memory_path, "/process_api/62cb");
  EXPECT_EQ(hybrid.v2_path, "/");
  EXPECT_EQ(parse_pid_cgroup("5:cpu,memory,pids:/kubepods/pod1/c1\n").v1_memory_path,
            "/kubepods/pod1/c1");
  EXPECT_EQ(parse_pid_cgroup("5:memory,cpu:/a\n").v1_memory_path, "/a");
  EXPECT_FALSE(parse_pid_cgroup("5:memory_x,nomemory:/a\n").v1_memory_path);
  EXPECT_FALSE(parse_pid_cgroup("3:cpu,cpuacct:/a\n").v1_memory_path);
}

TEST(ParsePidCgroup, PathsMayHoldColons) {
  EXPECT_EQ(parse_pid_cgroup("0::/system.slice/a:b.service\n").v2_path,
            "/system.slice/a:b.service");
}

TEST(ParsePidCgroup, IgnoresMalformedLines) {
  const CgroupMembership m =
      parse_pid_cgroup("garbage\n0:/x\nx::/y\n0::relative\n4:memory:\n0::\n\n");
  EXPECT_FALSE(m.v2_path);
  EXPECT_FALSE(m.v1_memory_path);
}

TEST(PidFileParsers, SurviveEveryTruncationAndGarbage) {
  for_each_hostile_variant(kStat, [](std::string_view text) { (void)parse_pid_stat(text); });
  for_each_hostile_variant("765 428 399 5 0 123 0\n",
                           [](std::string_view t) { (void)parse_statm_resident_pages(t); });
  for_each_hostile_variant(kSmapsRollup, [](std::string_view t) { (void)parse_smaps_rollup(t); });
  for_each_hostile_variant("A=1\0RANK=3\0LOCAL_RANK=1\0WORLD_SIZE=8\0"s,
                           [](std::string_view t) { (void)parse_environ_ranks(t); });
  for_each_hostile_variant("python\0-u\0train.py\0"s,
                           [](std::string_view t) { (void)parse_cmdline(t); });
  for_each_hostile_variant("9:name=systemd:/\n4:cpu,memory:/a/b\n0::/c\n",
                           [](std::string_view t) { (void)parse_pid_cgroup(t); });
}

}  // namespace
}  // namespace memscope::procfs
