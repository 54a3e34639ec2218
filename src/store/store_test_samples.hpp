// Test-only helpers shared by the store's *_test.cpp files: varied samples and field-by-field
// comparisons (core's value types have no operator==).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "core/recording.hpp"
#include "core/sample.hpp"
#include "store/session_reader.hpp"

namespace memscope::store::testing {

inline RecordingInfo make_info() {
  RecordingInfo info;
  info.command = {"python3", "train.py", "--batch-size", "64", "quote\"d \xc3\xa9"};
  info.hostname = "gpu-node-07";
  info.memscope_version = "0.1.0";
  info.start_unix_ms = 1'790'000'000'123;
  info.interval_seconds = 0.5;
  info.root_pid = 4242;
  info.device_filter = {0, 2};
  return info;
}

inline ProcessSample make_process(int i, double t) {
  ProcessSample process;
  process.pid = 1000 + i;
  process.ppid = i == 0 ? 1 : 1000;
  process.comm = i == 0 ? "python3" : "pt_data_worker";
  process.state = (i % 3 == 0) ? 'R' : 'S';
  process.start_time_ticks = 123456 + static_cast<uint64_t>(i);
  process.rss_bytes = static_cast<uint64_t>(i + 1) * 1'000'000 + static_cast<uint64_t>(t * 1000);
  process.smaps_readable = i % 4 != 3;
  process.pss_bytes = process.smaps_readable ? process.rss_bytes / 2 : process.rss_bytes;
  process.uss_bytes = process.smaps_readable ? process.rss_bytes / 3 : process.rss_bytes;
  process.swap_bytes = i % 5 == 0 ? 4096 : 0;
  process.smaps_age_seconds = i % 2 == 0 ? 0 : 2.5;
  process.cmdline = "python3 train.py --worker " + std::to_string(i);
  if (i % 2 == 0) {
    process.rank = i / 2;
    process.local_rank = 0;  // set to 0, distinct from unset
    process.world_size = 8;
  }
  process.gpu_bytes = i == 0 ? 3 * (uint64_t{1} << 30) : 0;
  return process;
}

inline DeviceSample make_device(int index, double t) {
  DeviceSample device;
  device.index = index;
  device.name = "NVIDIA H100 80GB HBM3";
  device.uuid = "GPU-0000000" + std::to_string(index);
  device.total_bytes = 80 * (uint64_t{1} << 30);
  device.used_bytes =
      static_cast<uint64_t>(index + 1) * (uint64_t{1} << 30) + static_cast<uint64_t>(t * 1e6);
  device.free_bytes = device.total_bytes - device.used_bytes;
  if (index % 2 == 0) {
    device.memory_api = "v2";
    device.reserved_bytes = 0;  // set to 0, distinct from unset
    device.utilization_percent = 97;
    device.memory_utilization_percent = 0;
    device.temperature_celsius = 61;
    device.power_watts = 512.25;
  } else {
    device.memory_api = "v1";
    device.ok = index != 3;
    device.errors = {"temperature: Not Supported", "power: GPU is lost"};
  }
  for (int p = 0; p < index + 1; ++p) {
    device.processes.push_back(
        GpuProcess{static_cast<unsigned>(1000 + p), static_cast<uint64_t>(p + 1) << 28, p == 1});
  }
  return device;
}

// A sample with `processes` processes and `devices` GPUs; the system part varies with `t`.
inline Sample make_sample(double t, int processes, int devices) {
  Sample sample;
  sample.t_seconds = t;
  sample.unix_ms = 1'790'000'000'123 + static_cast<int64_t>(t * 1000);
  SystemSample& system = sample.system;
  system.meminfo = {64ull << 30, 10ull << 30, 40ull << 30, 20ull << 30,
                    1ull << 20,  8ull << 30,  7ull << 30};
  system.pressure.available = true;
  system.pressure.some = {0.5 + t, 0.25, 0.125, 123456789};
  system.pressure.full = {0.0, 0.1, 0.2, 42};
  system.vmstat = {true, 3, 987654321};
  CgroupMemory& cgroup = system.cgroup.emplace();
  cgroup.version = 2;
  cgroup.path = "/user.slice/job.scope";
  cgroup.usage_bytes = 30ull << 30;
  cgroup.limit_bytes = 48ull << 30;
  cgroup.limit_path = "/user.slice";
  cgroup.oom_events = 1;
  cgroup.oom_kill_events = 1;
  cgroup.swap_usage_bytes = 0;
  system.limit_bytes = 48ull << 30;
  system.limit_source = "cgroup:/user.slice";
  system.used_bytes = 30ull << 30;
  for (int i = 0; i < processes; ++i) sample.processes.push_back(make_process(i, t));
  for (int i = 0; i < devices; ++i) sample.devices.push_back(make_device(i, t));
  return sample;
}

// The other shape: no cgroup, no PSI, notes, an unlimited-looking figure above 2^63.
inline Sample make_degraded_sample(double t) {
  Sample sample;
  sample.t_seconds = t;
  sample.unix_ms = -5;
  sample.system.meminfo.total_bytes = std::numeric_limits<uint64_t>::max();
  sample.system.vmstat.has_oom_kill = false;
  sample.system.limit_bytes = (uint64_t{1} << 63) + 7;
  sample.system.limit_source = "MemTotal";
  sample.system.notes = {"/proc/pressure/memory unavailable", "cgroup: \"none\"\n\xe2\x9c\x93"};
  ProcessSample process;  // every field at its default
  process.comm = std::string("nul\0inside", 10);
  sample.processes.push_back(process);
  DeviceSample device;  // every field at its default, no optionals
  sample.devices.push_back(device);
  return sample;
}

inline void expect_same(const ProcessSample& a, const ProcessSample& b) {
  EXPECT_EQ(a.pid, b.pid);
  EXPECT_EQ(a.ppid, b.ppid);
  EXPECT_EQ(a.comm, b.comm);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.start_time_ticks, b.start_time_ticks);
  EXPECT_EQ(a.rss_bytes, b.rss_bytes);
  EXPECT_EQ(a.pss_bytes, b.pss_bytes);
  EXPECT_EQ(a.uss_bytes, b.uss_bytes);
  EXPECT_EQ(a.swap_bytes, b.swap_bytes);
  EXPECT_EQ(a.smaps_readable, b.smaps_readable);
  EXPECT_EQ(a.smaps_age_seconds, b.smaps_age_seconds);
  EXPECT_EQ(a.cmdline, b.cmdline);
  EXPECT_EQ(a.rank, b.rank);
  EXPECT_EQ(a.local_rank, b.local_rank);
  EXPECT_EQ(a.world_size, b.world_size);
  EXPECT_EQ(a.gpu_bytes, b.gpu_bytes);
}

inline void expect_same(const DeviceSample& a, const DeviceSample& b) {
  EXPECT_EQ(a.index, b.index);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.uuid, b.uuid);
  EXPECT_EQ(a.ok, b.ok);
  EXPECT_EQ(a.errors, b.errors);
  EXPECT_EQ(a.total_bytes, b.total_bytes);
  EXPECT_EQ(a.used_bytes, b.used_bytes);
  EXPECT_EQ(a.free_bytes, b.free_bytes);
  EXPECT_EQ(a.reserved_bytes, b.reserved_bytes);
  EXPECT_EQ(a.memory_api, b.memory_api);
  EXPECT_EQ(a.utilization_percent, b.utilization_percent);
  EXPECT_EQ(a.memory_utilization_percent, b.memory_utilization_percent);
  EXPECT_EQ(a.temperature_celsius, b.temperature_celsius);
  EXPECT_EQ(a.power_watts, b.power_watts);
  ASSERT_EQ(a.processes.size(), b.processes.size());
  for (size_t i = 0; i < a.processes.size(); ++i) {
    EXPECT_EQ(a.processes[i].pid, b.processes[i].pid);
    EXPECT_EQ(a.processes[i].used_bytes, b.processes[i].used_bytes);
    EXPECT_EQ(a.processes[i].graphics, b.processes[i].graphics);
  }
}

inline void expect_same(const PressureLine& a, const PressureLine& b) {
  EXPECT_EQ(a.avg10, b.avg10);
  EXPECT_EQ(a.avg60, b.avg60);
  EXPECT_EQ(a.avg300, b.avg300);
  EXPECT_EQ(a.total_microseconds, b.total_microseconds);
}

inline void expect_same(const Sample& a, const Sample& b) {
  SCOPED_TRACE("sample at t=" + std::to_string(a.t_seconds));
  EXPECT_EQ(a.t_seconds, b.t_seconds);
  EXPECT_EQ(a.unix_ms, b.unix_ms);
  const SystemSample& x = a.system;
  const SystemSample& y = b.system;
  EXPECT_EQ(x.meminfo.total_bytes, y.meminfo.total_bytes);
  EXPECT_EQ(x.meminfo.free_bytes, y.meminfo.free_bytes);
  EXPECT_EQ(x.meminfo.available_bytes, y.meminfo.available_bytes);
  EXPECT_EQ(x.meminfo.cached_bytes, y.meminfo.cached_bytes);
  EXPECT_EQ(x.meminfo.shmem_bytes, y.meminfo.shmem_bytes);
  EXPECT_EQ(x.meminfo.swap_total_bytes, y.meminfo.swap_total_bytes);
  EXPECT_EQ(x.meminfo.swap_free_bytes, y.meminfo.swap_free_bytes);
  EXPECT_EQ(x.pressure.available, y.pressure.available);
  expect_same(x.pressure.some, y.pressure.some);
  expect_same(x.pressure.full, y.pressure.full);
  EXPECT_EQ(x.vmstat.has_oom_kill, y.vmstat.has_oom_kill);
  EXPECT_EQ(x.vmstat.oom_kill, y.vmstat.oom_kill);
  EXPECT_EQ(x.vmstat.pgmajfault, y.vmstat.pgmajfault);
  ASSERT_EQ(x.cgroup.has_value(), y.cgroup.has_value());
  if (x.cgroup) {
    EXPECT_EQ(x.cgroup->version, y.cgroup->version);
    EXPECT_EQ(x.cgroup->path, y.cgroup->path);
    EXPECT_EQ(x.cgroup->usage_bytes, y.cgroup->usage_bytes);
    EXPECT_EQ(x.cgroup->limit_bytes, y.cgroup->limit_bytes);
    EXPECT_EQ(x.cgroup->limit_path, y.cgroup->limit_path);
    EXPECT_EQ(x.cgroup->oom_events, y.cgroup->oom_events);
    EXPECT_EQ(x.cgroup->oom_kill_events, y.cgroup->oom_kill_events);
    EXPECT_EQ(x.cgroup->swap_usage_bytes, y.cgroup->swap_usage_bytes);
  }
  EXPECT_EQ(x.limit_bytes, y.limit_bytes);
  EXPECT_EQ(x.limit_source, y.limit_source);
  EXPECT_EQ(x.used_bytes, y.used_bytes);
  EXPECT_EQ(x.notes, y.notes);
  ASSERT_EQ(a.processes.size(), b.processes.size());
  for (size_t i = 0; i < a.processes.size(); ++i) expect_same(a.processes[i], b.processes[i]);
  ASSERT_EQ(a.devices.size(), b.devices.size());
  for (size_t i = 0; i < a.devices.size(); ++i) expect_same(a.devices[i], b.devices[i]);
}

inline void expect_same(const RecordingInfo& a, const RecordingInfo& b) {
  EXPECT_EQ(a.command, b.command);
  EXPECT_EQ(a.hostname, b.hostname);
  EXPECT_EQ(a.memscope_version, b.memscope_version);
  EXPECT_EQ(a.start_unix_ms, b.start_unix_ms);
  EXPECT_EQ(a.end_unix_ms, b.end_unix_ms);
  EXPECT_EQ(a.interval_seconds, b.interval_seconds);
  EXPECT_EQ(a.root_pid, b.root_pid);
  EXPECT_EQ(a.device_filter, b.device_filter);
  EXPECT_EQ(a.exit_code, b.exit_code);
  EXPECT_EQ(a.term_signal, b.term_signal);
  EXPECT_EQ(a.oom_killed, b.oom_killed);
  EXPECT_EQ(a.outcome, b.outcome);
}

inline std::vector<Sample> read_all(const SessionReader& reader) {
  std::vector<Sample> samples;
  const Status status = reader.for_each_sample([&](const Sample& sample) {
    samples.push_back(sample);
    return true;
  });
  EXPECT_TRUE(status.ok()) << status.message();
  return samples;
}

}  // namespace memscope::store::testing
