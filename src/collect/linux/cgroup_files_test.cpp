#include "collect/linux/cgroup_files.hpp"

#include <gtest/gtest.h>

#include "collect/linux/hostile_inputs.hpp"

namespace memscope::procfs {
namespace {

TEST(ParseCgroupCounter, ReadsOneNumber) {
  EXPECT_EQ(*parse_cgroup_counter("4386816\n"), 4386816u);
  for (const char* bad : {"", "\n", "max", "12 13", "-1", "1e9", "99999999999999999999"}) {
    EXPECT_FALSE(parse_cgroup_counter(bad).ok()) << bad;
  }
}

TEST(ParseMemoryMax, MaxMeansUnlimited) {
  auto unlimited = parse_memory_max("max\n");
  ASSERT_TRUE(unlimited.ok());
  EXPECT_FALSE(*unlimited);
  auto limited = parse_memory_max("2147483648\n");
  ASSERT_TRUE(limited.ok());
  EXPECT_EQ(**limited, 2147483648u);
  for (const char* bad : {"", "MAX", "max max", "2G", "-1"}) {
    EXPECT_FALSE(parse_memory_max(bad).ok()) << bad;
  }
}

TEST(ParseV1Limit, HugeValuesMeanUnlimited) {
  for (const char* unlimited :
       {"9223372036854771712\n", "9223372036854710272\n", "4611686018427387904"}) {
    auto limit = parse_v1_limit(unlimited);
    ASSERT_TRUE(limit.ok()) << unlimited;
    EXPECT_FALSE(*limit) << unlimited;
  }
  auto limit = parse_v1_limit("1073741824\n");
  ASSERT_TRUE(limit.ok());
  EXPECT_EQ(**limit, 1073741824u);
  EXPECT_EQ(**parse_v1_limit("4611686018427387903"), 4611686018427387903u);
  EXPECT_FALSE(parse_v1_limit("max").ok());
  EXPECT_FALSE(parse_v1_limit("").ok());
}

TEST(ParseMemoryEvents, ReadsOomAndOomKill) {
  auto events =
      parse_memory_events("low 0\nhigh 12\nmax 57\noom 4\noom_kill 3\noom_group_kill 0\n");
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->high, 12u);
  EXPECT_EQ(events->max, 57u);
  EXPECT_EQ(events->oom, 4u);
  EXPECT_EQ(events->oom_kill, 3u);
  for (const char* bad : {"", "low 0\nhigh 1\n", "oom x\noom_kill\n", "oom 1 2\n"}) {
    EXPECT_FALSE(parse_memory_events(bad).ok()) << bad;
  }
}

TEST(ParseOomControl, ReadsUnderOomAndOomKill) {
  auto control = parse_oom_control("oom_kill_disable 1\nunder_oom 1\noom_kill 2\n");
  ASSERT_TRUE(control.ok());
  EXPECT_TRUE(control->oom_kill_disable);
  EXPECT_TRUE(control->under_oom);
  EXPECT_EQ(control->oom_kill, 2u);
  auto old_kernel = parse_oom_control("oom_kill_disable 0\nunder_oom 0\n");
  ASSERT_TRUE(old_kernel.ok());
  EXPECT_EQ(old_kernel->oom_kill, 0u);
  for (const char* bad : {"", "oom_kill 3\n", "under_oom yes\n"}) {
    EXPECT_FALSE(parse_oom_control(bad).ok()) << bad;
  }
}

TEST(CgroupFileParsers, SurviveEveryTruncationAndGarbage) {
  for_each_hostile_variant("2147483648\n", [](std::string_view t) {
    (void)parse_cgroup_counter(t);
    (void)parse_memory_max(t);
    (void)parse_v1_limit(t);
  });
  for_each_hostile_variant("low 0\nhigh 12\nmax 57\noom 4\noom_kill 3\n",
                           [](std::string_view t) { (void)parse_memory_events(t); });
  for_each_hostile_variant("oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
                           [](std::string_view t) { (void)parse_oom_control(t); });
}

}  // namespace
}  // namespace memscope::procfs
