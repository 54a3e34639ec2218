#include "collect/linux/system_files.hpp"

#include <gtest/gtest.h>

#include <string>

#include "collect/linux/hostile_inputs.hpp"

namespace memscope::procfs {
namespace {

constexpr const char* kMeminfo =
    "MemTotal:       24683656 kB\n"
    "MemFree:        23995580 kB\n"
    "MemAvailable:   24296640 kB\n"
    "Buffers:           13164 kB\n"
    "Cached:           409672 kB\n"
    "SwapCached:            0 kB\n"
    "Shmem:              8952 kB\n"
    "SwapTotal:       2097148 kB\n"
    "SwapFree:        2000000 kB\n"
    "HugePages_Total:       0\n"
    "Hugepagesize:       2048 kB\n";

TEST(ParseMeminfo, ReadsTheFieldsInBytes) {
  bool estimated = true;
  auto info = parse_meminfo(kMeminfo, &estimated);
  ASSERT_TRUE(info.ok()) << info.message();
  EXPECT_EQ(info->total_bytes, 24683656ull * 1024);
  EXPECT_EQ(info->free_bytes, 23995580ull * 1024);
  EXPECT_EQ(info->available_bytes, 24296640ull * 1024);
  EXPECT_EQ(info->cached_bytes, 409672ull * 1024);
  EXPECT_EQ(info->shmem_bytes, 8952ull * 1024);
  EXPECT_EQ(info->swap_total_bytes, 2097148ull * 1024);
  EXPECT_EQ(info->swap_free_bytes, 2000000ull * 1024);
  EXPECT_FALSE(estimated);
}

TEST(ParseMeminfo, EstimatesMemAvailableOnOldKernels) {
  bool estimated = false;
  auto info = parse_meminfo("MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 10 kB\nCached: 200 kB\n",
                            &estimated);
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(estimated);
  EXPECT_EQ(info->available_bytes, 310u * 1024);
}

TEST(ParseMeminfo, RejectsInputWithoutMemTotal) {
  for (const char* bad : {"", "MemFree: 10 kB\n", "MemTotal: lots kB\n", "MemTotal:\n",
                          "MemTotal: -5 kB\n", "MemTotal: 99999999999999999999 kB\n"}) {
    EXPECT_FALSE(parse_meminfo(bad).ok()) << bad;
  }
}

TEST(ParseMeminfo, MalformedOtherFieldsReadAsZero) {
  auto info = parse_meminfo("MemTotal: 1000 kB\nMemAvailable: 500 kB\nShmem: x kB\nCached 5 kB\n");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->shmem_bytes, 0u);
  EXPECT_EQ(info->cached_bytes, 0u);
  EXPECT_EQ(info->available_bytes, 500u * 1024);
}

TEST(ParsePressure, ReadsSomeAndFull) {
  auto pressure = parse_pressure(
      "some avg10=1.50 avg60=0.25 avg300=0.00 total=123456\n"
      "full avg10=0.75 avg60=0.10 avg300=0.01 total=6543\n");
  ASSERT_TRUE(pressure.ok()) << pressure.message();
  EXPECT_TRUE(pressure->available);
  EXPECT_DOUBLE_EQ(pressure->some.avg10, 1.5);
  EXPECT_DOUBLE_EQ(pressure->some.avg60, 0.25);
  EXPECT_DOUBLE_EQ(pressure->some.avg300, 0.0);
  EXPECT_EQ(pressure->some.total_microseconds, 123456u);
  EXPECT_DOUBLE_EQ(pressure->full.avg10, 0.75);
  EXPECT_DOUBLE_EQ(pressure->full.avg300, 0.01);
  EXPECT_EQ(pressure->full.total_microseconds, 6543u);
}

TEST(ParsePressure, FullIsOptional) {
  auto pressure = parse_pressure("some avg10=0.00 avg60=0.00 avg300=0.00 total=5");
  ASSERT_TRUE(pressure.ok());
  EXPECT_EQ(pressure->full.total_microseconds, 0u);
}

TEST(ParsePressure, RejectsMalformedLines) {
  for (const char* bad :
       {"", "full avg10=0.00 avg60=0.00 avg300=0.00 total=5\n",
        "some avg10=0.00 avg60=0.00 avg300=0.00\n", "some avg10=x avg60=0.00 avg300=0.00 total=5",
        "some avg10=nan avg60=0.00 avg300=0.00 total=5",
        "some avg10=-1 avg60=0.00 avg300=0.00 total=5",
        "some avg10=0.00 avg60=0.00 avg300=0.00 total=-5", "some avg10 avg60 avg300 total",
        "some avg10=0.00 avg60=0.00 avg300=0.00 total=5\nfull avg10=0.00 total=1\n"}) {
    EXPECT_FALSE(parse_pressure(bad).ok()) << bad;
  }
}

TEST(ParseVmstat, ReadsOomKillAndMajorFaults) {
  auto vmstat = parse_vmstat("nr_free_pages 1325588\npgmajfault 1320\noom_kill 4\npgfault 99\n");
  ASSERT_TRUE(vmstat.ok());
  EXPECT_TRUE(vmstat->has_oom_kill);
  EXPECT_EQ(vmstat->oom_kill, 4u);
  EXPECT_EQ(vmstat->pgmajfault, 1320u);
}

TEST(ParseVmstat, OldKernelsHaveNoOomKill) {
  auto vmstat = parse_vmstat("pgmajfault 7\n");
  ASSERT_TRUE(vmstat.ok());
  EXPECT_FALSE(vmstat->has_oom_kill);
  EXPECT_EQ(vmstat->oom_kill, 0u);
}

TEST(ParseVmstat, RejectsInputWithoutMajorFaults) {
  for (const char* bad :
       {"", "oom_kill 1\n", "pgmajfault\n", "pgmajfault x\n", "pgmajfault 1 2\n"}) {
    EXPECT_FALSE(parse_vmstat(bad).ok()) << bad;
  }
}

TEST(SystemFileParsers, SurviveEveryTruncationAndGarbage) {
  const std::string pressure = "some avg10=1.50 avg60=0.25 avg300=0.00 total=123456\n";
  for_each_hostile_variant(kMeminfo, [](std::string_view text) { (void)parse_meminfo(text); });
  for_each_hostile_variant(pressure, [](std::string_view text) { (void)parse_pressure(text); });
  for_each_hostile_variant("pgmajfault 1320\noom_kill 4\n",
                           [](std::string_view text) { (void)parse_vmstat(text); });
}

}  // namespace
}  // namespace memscope::procfs
