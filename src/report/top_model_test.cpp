#include "report/top_model.hpp"

#include <gtest/gtest.h>

#include "core/units.hpp"

namespace memscope::report {
namespace {

ProcessSample process(int pid, int ppid, const std::string& comm, uint64_t rss,
                      uint64_t gpu = 0) {
  ProcessSample p;
  p.pid = pid;
  p.ppid = ppid;
  p.comm = comm;
  p.cmdline = "/usr/bin/" + comm + " --flag";
  p.start_time_ticks = static_cast<uint64_t>(pid) * 10;
  p.rss_bytes = rss;
  p.pss_bytes = rss / 2;
  p.uss_bytes = rss / 4;
  p.gpu_bytes = gpu;
  return p;
}

std::vector<int> pids(const std::vector<ProcessRow>& rows) {
  std::vector<int> out;
  for (const ProcessRow& row : rows) out.push_back(row.pid);
  return out;
}

// pid 10 "launcher" (small) with children 11 "worker" (big) and 12 "Alpha" (mid, most GPU);
// pid 20 "zeta" an unrelated process.
Sample family(double t = 0) {
  Sample sample;
  sample.t_seconds = t;
  sample.processes = {process(10, 1, "launcher", 100 * kMiB),
                      process(11, 10, "worker", 900 * kMiB, 1 * kGiB),
                      process(12, 10, "Alpha", 500 * kMiB, 8 * kGiB),
                      process(20, 1, "zeta", 300 * kMiB)};
  return sample;
}

TEST(HistoryRing, KeepsTheNewestValuesOldestFirst) {
  HistoryRing ring(3);
  for (int i = 1; i <= 5; ++i) ring.push(i, i * 10.0);
  EXPECT_EQ(ring.size(), 3u);
  EXPECT_EQ(ring.values(), (std::vector<double>{30, 40, 50}));
  EXPECT_EQ(ring.time(0), 3.0);
}

TEST(HistoryRing, SlopeIsTheLeastSquaresFitOverTheWindow) {
  HistoryRing ring(100);
  EXPECT_FALSE(ring.slope(10).has_value());
  ring.push(0, 1000);
  EXPECT_FALSE(ring.slope(10).has_value());
  // A jump long ago, then a steady 5 per second: the window sees only the steady part.
  ring.push(1, 100000);
  for (int t = 20; t <= 30; ++t) ring.push(t, 5.0 * t);
  ASSERT_TRUE(ring.slope(10).has_value());
  EXPECT_NEAR(*ring.slope(10), 5.0, 1e-9);
  EXPECT_LT(*ring.slope(100), 0.0);  // the whole series falls from 100000
}

TEST(SortKey, KeysMapToColumns) {
  EXPECT_EQ(sort_key_for('m'), SortKey::kMemory);
  EXPECT_EQ(sort_key_for('g'), SortKey::kGpu);
  EXPECT_EQ(sort_key_for('r'), SortKey::kGrowth);
  EXPECT_EQ(sort_key_for('p'), SortKey::kPid);
  EXPECT_EQ(sort_key_for('n'), SortKey::kName);
  EXPECT_FALSE(sort_key_for('x').has_value());
  EXPECT_STREQ(to_string(SortKey::kGrowth), "growth");
}

TEST(TopModel, SortsByEachKey) {
  TopModel model;
  model.update(family(), {});
  EXPECT_EQ(pids(model.visible_rows()), (std::vector<int>{11, 12, 20, 10}));  // memory
  model.set_sort(SortKey::kGpu);
  EXPECT_EQ(pids(model.visible_rows()), (std::vector<int>{12, 11, 20, 10}));
  model.set_sort(SortKey::kPid);
  EXPECT_EQ(pids(model.visible_rows()), (std::vector<int>{10, 11, 12, 20}));
  model.set_sort(SortKey::kName);  // case-insensitive
  EXPECT_EQ(pids(model.visible_rows()), (std::vector<int>{12, 10, 11, 20}));
}

TEST(TopModel, GrowthComesFromTheHistoryAndSortsUnknownLast) {
  TopModel model;
  Sample first = family(0);
  model.update(first, {});
  EXPECT_FALSE(model.find(11)->growth_bytes_per_second.has_value());
  Sample second = family(2);
  second.processes[3].rss_bytes += 20 * kMiB;  // zeta: +10 MiB/s
  second.processes[0].rss_bytes -= 2 * kMiB;   // launcher: -1 MiB/s
  second.processes.push_back(process(30, 1, "newcomer", 1 * kMiB));
  model.update(second, {});
  ASSERT_TRUE(model.find(20)->growth_bytes_per_second.has_value());
  EXPECT_NEAR(*model.find(20)->growth_bytes_per_second, 10.0 * kMiB, 1);
  EXPECT_NEAR(*model.find(10)->growth_bytes_per_second, -1.0 * kMiB, 1);
  model.set_sort(SortKey::kGrowth);
  const std::vector<int> order = pids(model.visible_rows());
  EXPECT_EQ(order.front(), 20);
  EXPECT_EQ(order.back(), 30);  // one point: growth unknown
  ASSERT_NE(model.process_history(20), nullptr);
  EXPECT_EQ(model.process_history(20)->size(), 2u);
}

TEST(TopModel, ARecycledPidStartsANewHistory) {
  TopModel model;
  model.update(family(0), {});
  Sample second = family(1);
  second.processes[3].start_time_ticks += 1;  // pid 20 is another process now
  model.update(second, {});
  EXPECT_EQ(model.process_history(20)->size(), 1u);
  EXPECT_EQ(model.process_history(11)->size(), 2u);
  Sample third = family(2);
  third.processes.pop_back();  // pid 20 gone
  model.update(third, {});
  EXPECT_EQ(model.process_history(20), nullptr);
  EXPECT_EQ(model.find(20), nullptr);
}

TEST(TopModel, FilterMatchesNameOrCommandLineIgnoringCase) {
  TopModel model;
  model.update(family(), {});
  model.set_filter("WORK");
  EXPECT_EQ(pids(model.visible_rows()), (std::vector<int>{11}));
  model.set_filter("usr/bin/ze");
  EXPECT_EQ(pids(model.visible_rows()), (std::vector<int>{20}));
  model.set_filter("nothing-like-this");
  EXPECT_TRUE(model.visible_rows().empty());
  model.set_filter("");
  EXPECT_EQ(model.visible_rows().size(), 4u);
}

TEST(TopModel, TreeViewPutsChildrenUnderTheirParent) {
  TopModel model;
  model.update(family(), {});
  model.set_tree(true);
  // Roots by memory: zeta (300) before launcher (100); children by memory under launcher.
  const auto rows = model.visible_rows();
  EXPECT_EQ(pids(rows), (std::vector<int>{20, 10, 11, 12}));
  EXPECT_EQ(rows[0].depth, 0);
  EXPECT_EQ(rows[1].depth, 0);
  EXPECT_EQ(rows[2].depth, 1);
  EXPECT_EQ(rows[3].depth, 1);
  model.set_sort(SortKey::kName);
  EXPECT_EQ(pids(model.visible_rows()), (std::vector<int>{10, 12, 11, 20}));
  // A child whose parent is filtered out becomes a root.
  model.set_filter("alpha");
  const auto filtered = model.visible_rows();
  ASSERT_EQ(filtered.size(), 1u);
  EXPECT_EQ(filtered[0].depth, 0);
}

TEST(TopModel, TreeViewSurvivesAParentCycle) {
  Sample sample;
  sample.processes = {process(5, 6, "a", kMiB), process(6, 5, "b", kMiB),
                      process(7, 7, "self-parent", kMiB)};
  TopModel model;
  model.update(sample, {});
  model.set_tree(true);
  EXPECT_EQ(model.visible_rows().size(), 3u);
}

TEST(TopModel, AttachesTheForecastOfEachResource) {
  Sample sample = family();
  DeviceSample gpu;
  gpu.index = 1;
  gpu.total_bytes = 80 * kGiB;
  gpu.used_bytes = 40 * kGiB;
  sample.devices.push_back(gpu);
  sample.system.limit_bytes = 64 * kGiB;
  sample.system.used_bytes = 16 * kGiB;
  analyze::Assessment host;
  host.resource = "host";
  host.limit_bytes = 64 * kGiB;
  analyze::Assessment device;
  device.resource = "gpu1";
  device.limit_bytes = 80 * kGiB;
  device.predicted_oom_seconds = 125;
  TopModel model;
  model.update(sample, {host, device});
  ASSERT_EQ(model.devices().size(), 1u);
  ASSERT_TRUE(model.devices()[0].forecast.has_value());
  EXPECT_EQ(time_to_oom_cell(model.devices()[0].forecast), "2m05s");
  EXPECT_EQ(time_to_oom_cell(model.host().forecast), "none");
  ASSERT_NE(model.device_history(1), nullptr);
  EXPECT_EQ(model.device_history(1)->values(), (std::vector<double>{40.0 * kGiB}));
  EXPECT_EQ(model.device_history(0), nullptr);
}

constexpr const char* kSmaps =
    "55d0c0000000-55d0c0021000 rw-p 00000000 00:00 0                          [heap]\n"
    "Size:                132 kB\n"
    "Rss:                 100 kB\n"
    "Pss:                 100 kB\n"
    "Swap:                  4 kB\n"
    "VmFlags: rd wr mr mw me ac sd\n"
    "7f0000000000-7f0010000000 rw-p 00000000 00:00 0 \n"
    "Rss:                2048 kB\n"
    "Pss:                2048 kB\n"
    "Swap:                 16 kB\n"
    "7f0010000000-7f0010100000 r-xp 00000000 08:01 1234                       /usr/lib/libc.so.6\n"
    "Rss:                 800 kB\n"
    "Pss:                 200 kB\n"
    "7f0020000000-7f0020100000 rw-s 00000000 00:1a 99                         /dev/shm/torch_1\n"
    "Rss:                 512 kB\n"
    "Pss:                 256 kB\n"
    "7f0030000000-7f0030100000 rw-s 00000000 00:01 77                         /memfd:pool (deleted)\n"
    "Rss:                  64 kB\n"
    "Pss:                  64 kB\n"
    "7f0040000000-7f0040100000 rw-s 00000000 00:00 0 \n"
    "Rss:                  32 kB\n"
    "Pss:                  16 kB\n"
    "7f0050000000-7f0050100000 rw-s 00000000 00:05 11                         /dev/nvidiactl\n"
    "Rss:                   8 kB\n"
    "Pss:                   8 kB\n"
    "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]\n"
    "Rss:                  24 kB\n"
    "Pss:                  24 kB\n"
    "7ffd10000000-7ffd10002000 r-xp 00000000 00:00 0                          [vdso]\n"
    "Rss:                   4 kB\n"
    "Pss:                   0 kB\n";

TEST(SmapsBreakdown, SumsEachKindOfMapping) {
  const auto parsed = parse_smaps_breakdown(kSmaps);
  ASSERT_TRUE(parsed) << parsed.message();
  EXPECT_EQ(parsed->mappings, 9u);
  EXPECT_EQ(parsed->heap_bytes, 100 * kKiB);
  EXPECT_EQ(parsed->anon_bytes, 2048 * kKiB);
  EXPECT_EQ(parsed->file_bytes, 800 * kKiB);
  EXPECT_EQ(parsed->shmem_bytes, (512 + 64 + 32) * kKiB);
  EXPECT_EQ(parsed->stack_bytes, 24 * kKiB);
  EXPECT_EQ(parsed->other_bytes, (8 + 4) * kKiB);
  EXPECT_EQ(parsed->rss_bytes, (100 + 2048 + 800 + 608 + 24 + 12) * kKiB);
  EXPECT_EQ(parsed->pss_bytes, (100 + 2048 + 200 + 256 + 64 + 16 + 8 + 24) * kKiB);
  EXPECT_EQ(parsed->swap_bytes, 20 * kKiB);
}

TEST(SmapsBreakdown, RefusesMalformedOrEmptyInput) {
  EXPECT_FALSE(parse_smaps_breakdown(""));
  EXPECT_FALSE(parse_smaps_breakdown("Rss: 4 kB\n"));  // no mapping header
  const auto bad = parse_smaps_breakdown(
      "00400000-00401000 r-xp 00000000 08:01 1 /bin/x\nRss: lots kB\n");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.message().find("line 2"), std::string::npos) << bad.message();
}

TEST(Cells, FitToTheirWidth) {
  EXPECT_EQ(fit_left("abc", 5), "abc  ");
  EXPECT_EQ(fit_left("abcdef", 4), "abc~");
  EXPECT_EQ(fit_right("abc", 5), "  abc");
  EXPECT_EQ(fit_right("abcdef", 4), "abc~");
  EXPECT_EQ(fit_left("a\tb", 3), "a?b");  // control characters never reach the terminal
  EXPECT_EQ(fit_left("x", 0), "");
}

TEST(Cells, ShortBytesAndRates) {
  EXPECT_EQ(short_bytes(0), "0");
  EXPECT_EQ(short_bytes(512), "512B");
  EXPECT_EQ(short_bytes(812 * kKiB), "812K");
  EXPECT_EQ(short_bytes(1536 * kMiB), "1.5G");
  EXPECT_EQ(short_bytes(80 * kGiB), "80G");
  EXPECT_EQ(short_bytes(1000 * kMiB), "1.0G");  // never 4 digits
  EXPECT_LE(short_bytes(999 * kGiB).size(), 5u);
  EXPECT_EQ(short_rate(std::nullopt), "-");
  EXPECT_EQ(short_rate(100.0), "0/s");
  EXPECT_EQ(short_rate(1.5 * kMiB), "+1.5M/s");
  EXPECT_EQ(short_rate(-300.0 * kKiB), "-300K/s");
}

TEST(Cells, BarsAndSparklines) {
  EXPECT_EQ(bar(0.5, 12), "[#####.....]");
  EXPECT_EQ(bar(2.0, 6), "[####]");
  EXPECT_EQ(bar(-1.0, 6), "[....]");
  EXPECT_EQ(sparkline_levels({1, 1, 1}, 10), (std::vector<int>{0, 0, 0}));
  EXPECT_EQ(sparkline_levels({0, 7, 14}, 10), (std::vector<int>{0, 4, 7}));
  // Only the last `width` values, scaled among themselves.
  EXPECT_EQ(sparkline_levels({1000, 0, 7}, 2), (std::vector<int>{0, 7}));
}

TEST(Cells, TableLinesHaveExactlyTheWidth) {
  TopModel model;
  model.update(family(), {});
  for (size_t width : {60u, 80u, 132u}) {
    EXPECT_EQ(process_header(width, SortKey::kMemory).size(), width);
    for (const ProcessRow& row : model.visible_rows()) {
      EXPECT_EQ(process_line(row, width, false).size(), width);
    }
  }
  EXPECT_NE(process_header(80, SortKey::kGpu).find("GPU*"), std::string::npos);
  EXPECT_EQ(process_header(80, SortKey::kGpu).find("RSS*"), std::string::npos);
  const std::string line = process_line(*model.find(12), 80, false);
  EXPECT_NE(line.find("Alpha"), std::string::npos);
  EXPECT_NE(line.find("500M"), std::string::npos);
  EXPECT_NE(line.find("8.0G"), std::string::npos);
}

TEST(Cells, TreeLinesIndentChildren) {
  TopModel model;
  model.update(family(), {});
  model.set_tree(true);
  const auto rows = model.visible_rows();
  EXPECT_NE(process_line(rows[2], 80, true).find("`-worker"), std::string::npos);
  EXPECT_EQ(process_line(rows[1], 80, true).find("`-"), std::string::npos);
}

TEST(Cells, RankShowsRankOrLocalRank) {
  Sample sample = family();
  sample.processes[1].rank = 3;
  sample.processes[2].local_rank = 1;
  TopModel model;
  model.update(sample, {});
  EXPECT_NE(process_line(*model.find(11), 80, false).find("    3 "), std::string::npos);
  EXPECT_NE(process_line(*model.find(12), 80, false).find("   l1 "), std::string::npos);
}

TEST(Cells, DeviceAndHostLines) {
  DeviceRow gpu;
  gpu.device.index = 0;
  gpu.device.name = "NVIDIA A100-SXM4-80GB";
  gpu.device.total_bytes = 80 * kGiB;
  gpu.device.used_bytes = 40 * kGiB;
  gpu.device.reserved_bytes = 531 * kMiB;
  gpu.device.utilization_percent = 98;
  gpu.device.temperature_celsius = 61;
  for (size_t width : {80u, 120u}) {
    const std::string line = device_line(gpu, width);
    EXPECT_EQ(line.size(), width);
    for (const char* part : {"GPU0", "40G/80G", "50%", "531M", "98%", "61C", "oom -"}) {
      EXPECT_NE(line.find(part), std::string::npos) << part << " in: " << line;
    }
  }
  gpu.device.ok = false;
  gpu.device.errors = {"GPU is lost"};
  EXPECT_NE(device_line(gpu, 80).find("GPU is lost"), std::string::npos);

  HostRow host;
  host.system.limit_bytes = 16 * kGiB;
  host.system.used_bytes = 12 * kGiB;
  host.system.limit_source = "cgroup:/job";
  host.system.pressure.available = true;
  host.system.pressure.some.avg10 = 0.25;
  host.system.meminfo.swap_total_bytes = 4 * kGiB;
  host.system.meminfo.swap_free_bytes = 3 * kGiB;
  analyze::Assessment forecast;
  forecast.limit_bytes = 16 * kGiB;
  forecast.predicted_oom_seconds = 42;
  host.forecast = forecast;
  const std::string memory = host_memory_line(host, 80);
  EXPECT_EQ(memory.size(), 80u);
  for (const char* part : {"Mem ", "12G/16G", "75%", "cgroup", "psi 0.25/0.00", "oom 42.0s"}) {
    EXPECT_NE(memory.find(part), std::string::npos) << part << " in: " << memory;
  }
  const std::string swap = host_swap_line(host, 80);
  EXPECT_EQ(swap.size(), 80u);
  EXPECT_NE(swap.find("1.0G/4.0G"), std::string::npos) << swap;
  EXPECT_NE(swap.find("25%"), std::string::npos) << swap;
  host.system.meminfo.swap_total_bytes = 0;
  EXPECT_NE(host_swap_line(host, 80).find("no swap"), std::string::npos);
}

}  // namespace
}  // namespace memscope::report
