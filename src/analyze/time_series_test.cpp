#include "analyze/time_series.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>

#include "core/units.hpp"

namespace memscope::analyze {
namespace {

ProcessSample process(int pid, uint64_t uss_mib) {
  ProcessSample p;
  p.pid = pid;
  p.comm = fmt::format("p{}", pid);
  p.start_time_ticks = 7;
  p.rss_bytes = 2 * uss_mib * kMiB;
  p.pss_bytes = uss_mib * kMiB + kMiB;
  p.uss_bytes = uss_mib * kMiB;
  return p;
}

Sample sample(double t, std::vector<ProcessSample> processes) {
  Sample s;
  s.t_seconds = t;
  s.system.used_bytes = 3 * kGiB;
  s.system.limit_bytes = 8 * kGiB;
  s.system.meminfo.swap_total_bytes = kGiB;
  s.system.meminfo.swap_free_bytes = kGiB / 2;
  s.processes = std::move(processes);
  return s;
}

TEST(TimeSeriesRecorder, RecordsHostAndTreeSums) {
  TimeSeriesRecorder recorder;
  recorder.add(sample(0, {process(1, 10), process(2, 20)}));
  recorder.add(sample(1, {process(1, 15)}));
  const auto host = recorder.host().rows();
  ASSERT_EQ(host.size(), 2u);
  EXPECT_DOUBLE_EQ(host[0].values[0], static_cast<double>(3 * kGiB));
  EXPECT_DOUBLE_EQ(host[0].values[1], static_cast<double>(8 * kGiB));
  EXPECT_DOUBLE_EQ(host[0].values[2], static_cast<double>(kGiB / 2));
  const auto tree = recorder.tree().rows();
  EXPECT_EQ(recorder.tree().names(), (std::vector<std::string>{"RSS", "PSS", "USS"}));
  EXPECT_DOUBLE_EQ(tree[0].values[2], static_cast<double>(30 * kMiB));
  EXPECT_DOUBLE_EQ(tree[1].values[2], static_cast<double>(15 * kMiB));
  EXPECT_TRUE(recorder.process_uss().names().empty());
  EXPECT_TRUE(recorder.devices().empty());
}

TEST(TimeSeriesRecorder, TrackedProcessesGetSeriesTheRestAreSummed) {
  TimeSeriesOptions options;
  options.processes = {{2, 7, "p2 [2]"}};
  TimeSeriesRecorder recorder(options);
  recorder.add(sample(0, {process(1, 10), process(2, 20), process(3, 5)}));
  recorder.add(sample(1, {process(2, 25)}));
  EXPECT_EQ(recorder.process_uss().names(), (std::vector<std::string>{"p2 [2]", "others"}));
  const auto rows = recorder.process_uss().rows();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_DOUBLE_EQ(rows[0].values[0], static_cast<double>(20 * kMiB));
  EXPECT_DOUBLE_EQ(rows[0].values[1], static_cast<double>(15 * kMiB));
  EXPECT_DOUBLE_EQ(rows[1].values[0], static_cast<double>(25 * kMiB));
  EXPECT_TRUE(std::isnan(rows[1].values[1]));
}

TEST(TimeSeriesRecorder, DevicesWithTheirProcessesAndGaps) {
  TimeSeriesOptions options;
  options.max_gpu_processes = 1;
  TimeSeriesRecorder recorder(options);
  Sample s = sample(0, {process(42, 1)});
  DeviceSample device;
  device.index = 1;
  device.name = "Fake GPU";
  device.total_bytes = 16 * kGiB;
  device.used_bytes = 4 * kGiB;
  device.reserved_bytes = 300 * kMiB;
  device.processes = {{42, kGiB, false}, {43, 2 * kGiB, false}};
  s.devices = {device};
  recorder.add(s);
  s.t_seconds = 1;
  s.devices[0].ok = false;
  recorder.add(s);
  const auto devices = recorder.devices();
  ASSERT_EQ(devices.size(), 1u);
  EXPECT_EQ(devices[0]->index, 1);
  EXPECT_EQ(devices[0]->name, "Fake GPU");
  EXPECT_EQ(devices[0]->memory.names(),
            (std::vector<std::string>{"used", "reserved", "total", "p42 [42]", "other processes"}));
  const auto rows = devices[0]->memory.rows();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_DOUBLE_EQ(rows[0].values[0], static_cast<double>(4 * kGiB));
  EXPECT_DOUBLE_EQ(rows[0].values[3], static_cast<double>(kGiB));
  EXPECT_DOUBLE_EQ(rows[0].values[4], static_cast<double>(2 * kGiB));
  EXPECT_TRUE(std::isnan(rows[1].values[0]));
}

}  // namespace
}  // namespace memscope::analyze
