// A synthetic recording for the report tests: a launcher and two workers in training-like steps
// (sawtooth plus a slow leak), one GPU used by the launcher, a command line that tries to break
// out of HTML.
#pragma once

#include <fmt/format.h>

#include <cmath>
#include <vector>

#include "core/recording.hpp"
#include "core/result.hpp"
#include "core/sample.hpp"
#include "core/units.hpp"
#include "report/session_export.hpp"

namespace memscope::report::testdata {

inline constexpr const char* kEvilArgument = "</script><b>bold</b>";

struct Session {
  RecordingInfo info;
  std::vector<RecordingEvent> events;
  std::vector<Sample> samples;

  SampleStream stream() const {
    return [this](const SampleVisitor& visit) -> Status {
      for (const Sample& sample : samples) {
        if (!visit(sample)) break;
      }
      return {};
    };
  }
};

inline ProcessSample process(int pid, int ppid, const char* comm, uint64_t rss, uint64_t uss) {
  ProcessSample p;
  p.pid = pid;
  p.ppid = ppid;
  p.comm = comm;
  p.start_time_ticks = 1000 + static_cast<uint64_t>(pid);
  p.rss_bytes = rss;
  p.pss_bytes = (rss + uss) / 2;
  p.uss_bytes = uss;
  p.cmdline = comm;
  return p;
}

// count samples every 0.1 s; extra_processes short-lived helpers on top.
inline Session make_session(int count = 200, int extra_processes = 0) {
  Session session;
  RecordingInfo& info = session.info;
  info.command = {"python3", "train.py", "--note", kEvilArgument};
  info.hostname = "testhost";
  info.memscope_version = "0.1.0";
  info.start_unix_ms = 1'763'920'000'000;
  info.end_unix_ms = info.start_unix_ms + count * 100 + 50;
  info.interval_seconds = 0.1;
  info.root_pid = 100;
  info.exit_code = 0;
  info.outcome = "exited with status 0";
  session.events = {{0, "start", "recording python3"},
                    {count * 0.1, "exit", "exited with status 0"}};
  for (int i = 0; i < count; ++i) {
    Sample s;
    s.t_seconds = i * 0.1;
    s.unix_ms = info.start_unix_ms + i * 100;
    const double phase = static_cast<double>(i % 10);
    const uint64_t step = static_cast<uint64_t>(phase * 20.0) * kMiB;  // sawtooth
    const uint64_t leak = static_cast<uint64_t>(i) * 512 * kKiB;       // slow leak
    s.system.meminfo.total_bytes = 16 * kGiB;
    s.system.meminfo.available_bytes = 10 * kGiB - step - leak;
    s.system.meminfo.swap_total_bytes = 2 * kGiB;
    s.system.meminfo.swap_free_bytes = 2 * kGiB;
    s.system.limit_bytes = 16 * kGiB;
    s.system.limit_source = "MemTotal";
    s.system.used_bytes = 6 * kGiB + step + leak;
    s.system.pressure.available = true;
    s.system.vmstat.has_oom_kill = true;
    ProcessSample launcher =
        process(100, 1, "python3", 400 * kMiB + step + leak, 300 * kMiB + step + leak);
    launcher.cmdline = fmt::format("python3 train.py --note {}", kEvilArgument);
    launcher.gpu_bytes = 2 * kGiB + step;
    s.processes.push_back(launcher);
    s.processes.push_back(process(101, 100, "pt_data_worker", 200 * kMiB,
                                  20 * kMiB + static_cast<uint64_t>(i) * 64 * kKiB));
    s.processes.push_back(process(102, 100, "pt_data_worker", 200 * kMiB, 25 * kMiB));
    for (int e = 0; e < extra_processes; ++e) {
      s.processes.push_back(
          process(1000 + e, 102, "helper", 8 * kMiB, 4 * kMiB + static_cast<uint64_t>(e) * kKiB));
    }
    DeviceSample gpu;
    gpu.index = 0;
    gpu.name = "Fake H100";
    gpu.uuid = "GPU-00000000-1111";
    gpu.total_bytes = 80 * kGiB;
    gpu.used_bytes = 2 * kGiB + step + 300 * kMiB;
    gpu.free_bytes = gpu.total_bytes - gpu.used_bytes;
    gpu.reserved_bytes = 300 * kMiB;
    gpu.memory_api = "v2";
    gpu.utilization_percent = static_cast<unsigned>(40 + i % 50);
    gpu.processes = {{100, 2 * kGiB + step, false}};
    s.devices.push_back(gpu);
    session.samples.push_back(std::move(s));
  }
  return session;
}

}  // namespace memscope::report::testdata
