#include "analyze/system_health.hpp"

#include <gtest/gtest.h>

#include "core/units.hpp"

namespace memscope::analyze {
namespace {

SystemSample host(uint64_t total_gib, uint64_t available_gib) {
  SystemSample system;
  system.meminfo.total_bytes = total_gib * kGiB;
  system.meminfo.available_bytes = available_gib * kGiB;
  system.limit_bytes = system.meminfo.total_bytes;
  system.limit_source = "MemTotal";
  system.used_bytes = (total_gib - available_gib) * kGiB;
  return system;
}

const HealthCheck& find(const std::vector<HealthCheck>& checks, const std::string& name) {
  for (const auto& check : checks) {
    if (check.name == name) return check;
  }
  ADD_FAILURE() << "no check named " << name;
  return checks.front();
}

TEST(SystemHealth, ClassifyUsesInclusiveLowerBounds) {
  const Threshold threshold{80, 95};
  EXPECT_EQ(classify(79.9, threshold), Verdict::kOk);
  EXPECT_EQ(classify(80, threshold), Verdict::kWarning);
  EXPECT_EQ(classify(94.99, threshold), Verdict::kWarning);
  EXPECT_EQ(classify(95, threshold), Verdict::kCritical);
}

TEST(SystemHealth, MemoryVerdictFollowsUsedPercent) {
  // 64 GiB, 16 available: 75 % used.
  auto checks = check_system_health(host(64, 16), 100, 4194304);
  EXPECT_DOUBLE_EQ(*find(checks, "memory").value, 75.0);
  EXPECT_EQ(find(checks, "memory").verdict, Verdict::kOk);
  // 8 available: 87.5 % used.
  checks = check_system_health(host(64, 8), 100, 4194304);
  EXPECT_DOUBLE_EQ(*find(checks, "memory").value, 87.5);
  EXPECT_EQ(find(checks, "memory").verdict, Verdict::kWarning);
  EXPECT_EQ(overall_verdict(checks), Verdict::kWarning);
  // 2 available: 96.875 % used.
  checks = check_system_health(host(64, 2), 100, 4194304);
  EXPECT_EQ(find(checks, "memory").verdict, Verdict::kCritical);
  EXPECT_EQ(overall_verdict(checks), Verdict::kCritical);
}

TEST(SystemHealth, NotApplicableChecksAreOkWithoutValue) {
  const auto checks = check_system_health(host(64, 60), 10, std::nullopt);
  ASSERT_EQ(checks.size(), 6u);
  for (const char* name : {"cgroup", "swap", "pressure some", "pressure full", "processes"}) {
    EXPECT_FALSE(find(checks, name).value.has_value()) << name;
    EXPECT_EQ(find(checks, name).verdict, Verdict::kOk) << name;
  }
  EXPECT_EQ(find(checks, "swap").detail, "no swap configured");
  EXPECT_EQ(overall_verdict(checks), Verdict::kOk);
}

TEST(SystemHealth, SwapPressureCgroupAndProcessCount) {
  SystemSample system = host(64, 48);
  system.meminfo.swap_total_bytes = 8 * kGiB;
  system.meminfo.swap_free_bytes = 6 * kGiB;  // 25 % used: warning
  system.pressure.available = true;
  system.pressure.some.avg10 = 12.5;  // critical (>= 10)
  system.pressure.full.avg10 = 0.25;  // ok (< 0.5)
  system.limit_source = "cgroup:/job.slice";
  system.limit_bytes = 20 * kGiB;
  system.used_bytes = 17 * kGiB;  // 85 %: warning
  const auto checks = check_system_health(system, 850, 1000);
  EXPECT_DOUBLE_EQ(*find(checks, "swap").value, 25.0);
  EXPECT_EQ(find(checks, "swap").verdict, Verdict::kWarning);
  EXPECT_EQ(find(checks, "pressure some").verdict, Verdict::kCritical);
  EXPECT_EQ(find(checks, "pressure full").verdict, Verdict::kOk);
  EXPECT_DOUBLE_EQ(*find(checks, "cgroup").value, 85.0);
  EXPECT_EQ(find(checks, "cgroup").verdict, Verdict::kWarning);
  EXPECT_NE(find(checks, "cgroup").detail.find("/job.slice"), std::string::npos);
  EXPECT_DOUBLE_EQ(*find(checks, "processes").value, 85.0);
  EXPECT_EQ(find(checks, "processes").verdict, Verdict::kWarning);
  EXPECT_EQ(overall_verdict(checks), Verdict::kCritical);
}

TEST(SystemHealth, LargestByUssSkipsZombiesAndBreaksTiesByPid) {
  std::vector<ProcessSample> processes(4);
  processes[0].pid = 30;
  processes[0].uss_bytes = 100;
  processes[1].pid = 20;
  processes[1].uss_bytes = 100;
  processes[2].pid = 10;
  processes[2].uss_bytes = 50;
  processes[3].pid = 5;
  processes[3].uss_bytes = 500;
  processes[3].state = 'Z';
  const auto top = largest_by_uss(processes, 2);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].pid, 20);
  EXPECT_EQ(top[1].pid, 30);
}

TEST(SystemHealth, LargestBySwapLeavesOutUnswapped) {
  std::vector<ProcessSample> processes(3);
  processes[0].pid = 1;
  processes[0].swap_bytes = 0;
  processes[1].pid = 2;
  processes[1].swap_bytes = 10;
  processes[2].pid = 3;
  processes[2].swap_bytes = 30;
  const auto top = largest_by_swap(processes, 10);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].pid, 3);
  EXPECT_EQ(top[1].pid, 2);
}

TEST(SystemHealth, ProcStatCpuBusyExcludesIdleIowaitAndGuest) {
  // user nice system idle iowait irq softirq steal guest guest_nice
  const auto before = parse_proc_stat_cpu("cpu  100 0 50 800 50 0 0 0 40 0\ncpu0 1 2 3 4\n");
  ASSERT_TRUE(before.ok()) << before.message();
  EXPECT_EQ(before->busy, 150u);
  EXPECT_EQ(before->total, 1000u);
  const auto after = parse_proc_stat_cpu("cpu  200 0 100 1600 100 0 0 0 80 0\n");
  ASSERT_TRUE(after.ok());
  EXPECT_DOUBLE_EQ(cpu_busy_percent(*before, *after), 15.0);
  EXPECT_DOUBLE_EQ(cpu_busy_percent(*after, *before), 0.0);  // counters went back
  EXPECT_DOUBLE_EQ(cpu_busy_percent(*after, *after), 0.0);
  EXPECT_FALSE(parse_proc_stat_cpu("intr 1 2 3 4 5\n").ok());
  EXPECT_FALSE(parse_proc_stat_cpu("cpu 1 2 x 4 5\n").ok());
}

TEST(SystemHealth, ParsesProcSwaps) {
  const auto devices = parse_proc_swaps(
      "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
      "/dev/nvme0n1p3                          partition\t8388604\t\t1048576\t\t-2\n"
      "/swapfile                               file\t\t2097148\t\t0\t\t-3\n");
  ASSERT_TRUE(devices.ok()) << devices.message();
  ASSERT_EQ(devices->size(), 2u);
  EXPECT_EQ((*devices)[0].name, "/dev/nvme0n1p3");
  EXPECT_EQ((*devices)[0].type, "partition");
  EXPECT_EQ((*devices)[0].size_bytes, 8388604ull * 1024);
  EXPECT_EQ((*devices)[0].used_bytes, 1024u * 1024 * 1024);
  EXPECT_EQ((*devices)[0].priority, -2);
  EXPECT_EQ((*devices)[1].name, "/swapfile");
  EXPECT_TRUE(parse_proc_swaps("Filename Type Size Used Priority\n")->empty());
  EXPECT_FALSE(parse_proc_swaps("Filename Type Size Used Priority\n/x file 12\n").ok());
  EXPECT_FALSE(parse_proc_swaps("Filename Type Size Used Priority\n/x file a 1 -2\n").ok());
}

TEST(SystemHealth, SwapClearNeedsRoomForSwappedPagesPlusMargin) {
  MemInfo mem;
  mem.total_bytes = 64 * kGiB;  // margin: 10 % = 6.4 GiB (more than 1 GiB)
  mem.swap_total_bytes = 8 * kGiB;
  mem.swap_free_bytes = 4 * kGiB;   // 4 GiB swapped
  mem.available_bytes = 10 * kGiB;  // needs 10.4 GiB
  auto decision = decide_swap_clear(mem);
  EXPECT_FALSE(decision.allowed);
  EXPECT_FALSE(decision.nothing_swapped);
  EXPECT_EQ(decision.swapped_bytes, 4 * kGiB);
  EXPECT_EQ(decision.margin_bytes, 64 * kGiB / 10);
  EXPECT_NE(decision.reason.find("does not fit"), std::string::npos) << decision.reason;
  mem.available_bytes = 11 * kGiB;
  decision = decide_swap_clear(mem);
  EXPECT_TRUE(decision.allowed) << decision.reason;
  // Small machine: the margin is at least 1 GiB.
  mem.total_bytes = 4 * kGiB;
  mem.available_bytes = 4 * kGiB + kGiB - 1;
  decision = decide_swap_clear(mem);
  EXPECT_EQ(decision.margin_bytes, kGiB);
  EXPECT_FALSE(decision.allowed);
  mem.swap_free_bytes = mem.swap_total_bytes;
  decision = decide_swap_clear(mem);
  EXPECT_TRUE(decision.nothing_swapped);
  EXPECT_FALSE(decision.allowed);
}

}  // namespace
}  // namespace memscope::analyze
