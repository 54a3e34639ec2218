#include "analyze/peaks.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "core/units.hpp"

namespace memscope::analyze {
namespace {

ProcessSample process(int pid, int ppid, uint64_t rss_mib, uint64_t uss_mib,
                      uint64_t start_time = 100) {
  ProcessSample p;
  p.pid = pid;
  p.ppid = ppid;
  p.comm = fmt::format("proc{}", pid);
  p.start_time_ticks = start_time;
  p.rss_bytes = rss_mib * kMiB;
  p.pss_bytes = (rss_mib + uss_mib) / 2 * kMiB;
  p.uss_bytes = uss_mib * kMiB;
  return p;
}

Sample at(double t, std::vector<ProcessSample> processes = {}) {
  Sample sample;
  sample.t_seconds = t;
  sample.unix_ms = 1'700'000'000'000 + static_cast<int64_t>(t * 1000);
  sample.system.meminfo.total_bytes = 16 * kGiB;
  sample.system.limit_bytes = 16 * kGiB;
  sample.system.limit_source = "MemTotal";
  sample.processes = std::move(processes);
  return sample;
}

DeviceSample device(int index, uint64_t used_mib, unsigned busy,
                    std::vector<GpuProcess> processes = {}) {
  DeviceSample d;
  d.index = index;
  d.name = "Fake GPU";
  d.uuid = fmt::format("GPU-{}", index);
  d.total_bytes = 1024 * kMiB;
  d.used_bytes = used_mib * kMiB;
  d.free_bytes = d.total_bytes - d.used_bytes;
  d.reserved_bytes = 10 * kMiB;
  d.memory_api = "v2";
  d.utilization_percent = busy;
  d.processes = std::move(processes);
  return d;
}

TEST(PeakTracker, EmptyTrackerHasAnEmptySummary) {
  const PeakSummary summary = PeakTracker().summary();
  EXPECT_EQ(summary.sample_count, 0u);
  EXPECT_TRUE(summary.processes.empty());
  EXPECT_TRUE(summary.devices.empty());
  EXPECT_FALSE(summary.host.peak_used.seen);
}

TEST(PeakTracker, KeepsEachProcessPeakAndWhenItHappened) {
  PeakTracker tracker;
  tracker.add(at(0.5, {process(10, 1, 100, 50), process(11, 10, 20, 10)}));
  tracker.add(at(1.0, {process(10, 1, 300, 40), process(11, 10, 25, 30)}));
  tracker.add(at(1.5, {process(10, 1, 200, 80)}));
  const PeakSummary summary = tracker.summary();

  EXPECT_EQ(summary.sample_count, 3u);
  EXPECT_DOUBLE_EQ(summary.first_t_seconds, 0.5);
  EXPECT_DOUBLE_EQ(summary.duration_seconds, 1.0);
  ASSERT_EQ(summary.processes.size(), 2u);
  const ProcessPeaks& launcher = summary.processes[0];
  EXPECT_EQ(launcher.pid, 10);
  EXPECT_EQ(launcher.rss.bytes, 300 * kMiB);
  EXPECT_DOUBLE_EQ(launcher.rss.t_seconds, 1.0);
  EXPECT_EQ(launcher.uss.bytes, 80 * kMiB);
  EXPECT_DOUBLE_EQ(launcher.uss.t_seconds, 1.5);
  EXPECT_EQ(launcher.last.rss_bytes, 200 * kMiB);
  EXPECT_EQ(launcher.sample_count, 3u);

  const ProcessPeaks& child = summary.processes[1];
  EXPECT_DOUBLE_EQ(child.first_seen_seconds, 0.5);
  EXPECT_DOUBLE_EQ(child.last_seen_seconds, 1.0);
  EXPECT_EQ(child.uss.bytes, 30 * kMiB);

  // The tree: sums per sample, peak of the sums (not the sum of the peaks).
  EXPECT_EQ(summary.tree.rss.bytes, 325 * kMiB);
  EXPECT_DOUBLE_EQ(summary.tree.rss.t_seconds, 1.0);
  EXPECT_EQ(summary.tree.uss.bytes, 80 * kMiB);
  EXPECT_DOUBLE_EQ(summary.tree.uss.t_seconds, 1.5);
  EXPECT_EQ(summary.tree.max_process_count, 2u);
}

TEST(PeakTracker, EarliestTimeWinsWhenAPeakIsReachedAgain) {
  PeakTracker tracker;
  tracker.add(at(1, {process(10, 1, 100, 50)}));
  tracker.add(at(2, {process(10, 1, 100, 50)}));
  EXPECT_DOUBLE_EQ(tracker.summary().processes[0].rss.t_seconds, 1.0);
}

TEST(PeakTracker, AReusedPidIsADifferentProcess) {
  PeakTracker tracker;
  tracker.add(at(1, {process(10, 1, 500, 400, /*start_time=*/100)}));
  tracker.add(at(2, {process(10, 1, 50, 40, /*start_time=*/900)}));
  const PeakSummary summary = tracker.summary();
  ASSERT_EQ(summary.processes.size(), 2u);
  EXPECT_EQ(summary.processes[0].rss.bytes, 500 * kMiB);
  EXPECT_EQ(summary.processes[1].rss.bytes, 50 * kMiB);
  EXPECT_EQ(summary.find_process(10, 1.0), &summary.processes[0]);
  EXPECT_EQ(summary.find_process(10, 2.0), &summary.processes[1]);
  EXPECT_EQ(summary.find_process(10), &summary.processes[1]);
  EXPECT_EQ(summary.find_process(11), nullptr);
}

TEST(PeakTracker, RemembersUnreadableSmapsRanksAndExecs) {
  PeakTracker tracker;
  ProcessSample p = process(10, 1, 100, 100);
  p.smaps_readable = false;
  tracker.add(at(1, {p}));
  p.smaps_readable = true;
  p.comm = "python3";
  p.cmdline = "python3 train.py";
  p.rank = 3;
  p.world_size = 8;
  tracker.add(at(2, {p}));
  const PeakSummary summary = tracker.summary();
  const ProcessPeaks& peaks = summary.processes[0];
  EXPECT_TRUE(peaks.smaps_ever_unreadable);
  EXPECT_EQ(peaks.comm, "python3");
  EXPECT_EQ(peaks.cmdline, "python3 train.py");
  EXPECT_EQ(peaks.rank, 3);
  EXPECT_EQ(peaks.world_size, 8);
  EXPECT_FALSE(peaks.local_rank.has_value());
}

TEST(PeakTracker, MemoryGrowsWithDistinctProcessesNotWithSamples) {
  PeakTracker tracker;
  std::vector<ProcessSample> processes;
  for (int pid = 1; pid <= 1000; ++pid) processes.push_back(process(pid, 1, 10, 5));
  for (int i = 0; i < 200; ++i) {
    Sample sample = at(i * 0.1, processes);
    sample.devices.push_back(device(0, 100 + static_cast<uint64_t>(i), 50, {{7, kMiB, false}}));
    tracker.add(sample);
  }
  EXPECT_EQ(tracker.process_count(), 1000u);
  const PeakSummary summary = tracker.summary();
  EXPECT_EQ(summary.sample_count, 200u);
  EXPECT_EQ(summary.processes.size(), 1000u);
  ASSERT_EQ(summary.devices.size(), 1u);
  EXPECT_EQ(summary.devices[0].processes.size(), 1u);
  EXPECT_EQ(summary.tree.rss.bytes, 1000 * 10 * kMiB);
}

TEST(PeakTracker, DevicePeaksUtilizationAndGpuProcesses) {
  PeakTracker tracker;
  Sample s1 = at(1);
  s1.devices = {device(0, 256, 20, {{42, 100 * kMiB, false}}), device(1, 0, 0)};
  Sample s2 = at(2);
  s2.devices = {device(0, 768, 80, {{42, 300 * kMiB, false}, {43, 50 * kMiB, false}}),
                device(1, 0, 0)};
  s2.devices[0].reserved_bytes = 20 * kMiB;
  Sample s3 = at(3);
  s3.devices = {device(0, 512, 50, {{43, 60 * kMiB, false}})};
  s3.devices.push_back(DeviceSample{});
  s3.devices[1].index = 1;
  s3.devices[1].ok = false;
  s3.devices[1].errors = {"GPU is lost"};
  tracker.add(s1);
  tracker.add(s2);
  tracker.add(s3);
  const PeakSummary summary = tracker.summary();
  ASSERT_EQ(summary.devices.size(), 2u);
  const DevicePeaks& gpu0 = summary.devices[0];
  EXPECT_EQ(gpu0.index, 0);
  EXPECT_EQ(gpu0.name, "Fake GPU");
  EXPECT_EQ(gpu0.memory_api, "v2");
  EXPECT_EQ(gpu0.total_bytes, 1024 * kMiB);
  EXPECT_EQ(gpu0.peak_used.bytes, 768 * kMiB);
  EXPECT_DOUBLE_EQ(gpu0.peak_used.t_seconds, 2.0);
  EXPECT_TRUE(gpu0.has_reserved);
  EXPECT_EQ(gpu0.peak_reserved.bytes, 20 * kMiB);
  EXPECT_DOUBLE_EQ(gpu0.avg_memory_percent, 50.0);
  EXPECT_DOUBLE_EQ(gpu0.max_memory_percent, 75.0);
  EXPECT_DOUBLE_EQ(*gpu0.avg_gpu_utilization_percent, 50.0);
  EXPECT_DOUBLE_EQ(*gpu0.max_gpu_utilization_percent, 80.0);
  EXPECT_EQ(gpu0.sample_count, 3u);
  EXPECT_EQ(gpu0.last.used_bytes, 512 * kMiB);
  ASSERT_EQ(gpu0.processes.size(), 2u);
  EXPECT_EQ(gpu0.processes[0].pid, 42u);
  EXPECT_EQ(gpu0.processes[0].peak_used.bytes, 300 * kMiB);
  EXPECT_DOUBLE_EQ(gpu0.processes[0].peak_used.t_seconds, 2.0);
  EXPECT_EQ(gpu0.processes[0].last_used_bytes, 0u);
  EXPECT_EQ(gpu0.processes[1].last_used_bytes, 60 * kMiB);

  const DevicePeaks& gpu1 = summary.devices[1];
  EXPECT_EQ(gpu1.sample_count, 3u);
  EXPECT_EQ(gpu1.unreadable_count, 1u);
  EXPECT_FALSE(gpu1.last.ok);
  EXPECT_EQ(gpu1.name, "Fake GPU");  // kept from the readable samples
}

TEST(PeakTracker, HostPeakSwapPressureAndOomKillDeltas) {
  PeakTracker tracker;
  for (int i = 0; i < 4; ++i) {
    Sample sample = at(i);
    SystemSample& system = sample.system;
    system.used_bytes = (i == 2 ? 12 : 4) * kGiB;
    system.meminfo.swap_total_bytes = 2 * kGiB;
    system.meminfo.swap_free_bytes = (i == 3 ? 1 : 2) * kGiB;
    system.pressure.available = true;
    system.pressure.some.avg10 = i * 1.5;
    system.pressure.full.avg10 = i == 1 ? 7.0 : 0.0;
    system.vmstat.has_oom_kill = true;
    system.vmstat.oom_kill = 5 + (i >= 3 ? 2u : 0u);
    CgroupMemory cgroup;
    cgroup.version = 2;
    cgroup.oom_kill_events = i >= 2 ? 1 : 0;
    system.cgroup = cgroup;
    if (i == 3) {
      system.limit_bytes = 8 * kGiB;
      system.limit_source = "cgroup:/job";
    }
    tracker.add(sample);
  }
  const PeakSummary summary = tracker.summary();
  const HostPeaks& host = summary.host;
  EXPECT_EQ(host.peak_used.bytes, 12 * kGiB);
  EXPECT_DOUBLE_EQ(host.peak_used.t_seconds, 2.0);
  EXPECT_EQ(host.limit_at_peak_bytes, 16 * kGiB);
  EXPECT_EQ(host.limit_bytes, 8 * kGiB);
  EXPECT_EQ(host.limit_source, "cgroup:/job");
  EXPECT_EQ(host.mem_total_bytes, 16 * kGiB);
  EXPECT_EQ(host.peak_swap_used.bytes, 1 * kGiB);
  EXPECT_DOUBLE_EQ(host.peak_swap_used.t_seconds, 3.0);
  EXPECT_TRUE(host.pressure_available);
  EXPECT_DOUBLE_EQ(host.max_some_avg10, 4.5);
  EXPECT_DOUBLE_EQ(host.max_full_avg10, 7.0);
  EXPECT_TRUE(host.has_vmstat_oom_kill);
  EXPECT_EQ(host.vmstat_oom_kill_delta, 2u);
  EXPECT_TRUE(host.has_cgroup);
  EXPECT_EQ(host.cgroup_oom_kill_delta, 1u);
}

TEST(TreeOrder, LauncherFirstChildrenIndentedDepthFirst) {
  PeakTracker tracker;
  // 1 (outside) -> 10 -> {11 -> 13, 12};  20 is an unrelated root that appears later.
  tracker.add(at(0, {process(10, 1, 1, 1), process(12, 10, 1, 1), process(11, 10, 1, 1)}));
  tracker.add(at(1, {process(10, 1, 1, 1), process(13, 11, 1, 1), process(20, 2, 1, 1)}));
  const PeakSummary summary = tracker.summary();
  std::vector<std::pair<int, int>> seen;
  for (const TreeEntry& entry : tree_order(summary.processes)) {
    seen.emplace_back(summary.processes[entry.index].pid, entry.depth);
  }
  const std::vector<std::pair<int, int>> expected = {{10, 0}, {11, 1}, {13, 2}, {12, 1}, {20, 0}};
  EXPECT_EQ(seen, expected);
}

TEST(TreeOrder, SurvivesParentCyclesFromInconsistentInput) {
  std::vector<ProcessPeaks> processes(2);
  processes[0].pid = 1;
  processes[0].ppid = 2;
  processes[1].pid = 2;
  processes[1].ppid = 1;
  EXPECT_EQ(tree_order(processes).size(), 2u);
}

}  // namespace
}  // namespace memscope::analyze
