// What a scrape costs the agent: renders /metrics (and the /api/v1/snapshot JSON the master
// pulls) from an AgentState of G GPUs and P processes, built here with plausible figures (every
// process on a GPU with a rank, an OOM assessment per resource, a leak verdict per process and
// GPU process), R times, and prints the time per render: median, p99, min, mean, and the size.
// The goal of issue 6 is under 2 ms for 8 GPUs x 200 processes.
//
// usage: metrics_render [--gpus 8] [--processes 200] [--renders 2000]
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "report/prometheus.hpp"

namespace {

using memscope::report::AgentState;

AgentState make_state(int gpus, int processes) {
  AgentState state;
  state.hostname = "gpu-node-01";
  state.endpoint = "10.0.0.1:9400";
  state.start_unix_ms = 1'700'000'000'000;
  state.samples_taken = 3600;
  state.sample_duration_seconds = 0.012;
  memscope::Sample& sample = state.sample;
  sample.t_seconds = 3600;
  sample.unix_ms = state.start_unix_ms + 3'600'000;
  auto& system = sample.system;
  system.meminfo.total_bytes = 2048ULL << 30;
  system.meminfo.available_bytes = 1500ULL << 30;
  system.meminfo.swap_total_bytes = 8ULL << 30;
  system.meminfo.swap_free_bytes = 8ULL << 30;
  system.limit_bytes = system.meminfo.total_bytes;
  system.limit_source = "MemTotal";
  system.used_bytes = system.meminfo.total_bytes - system.meminfo.available_bytes;
  system.pressure.available = true;
  system.vmstat.has_oom_kill = true;
  memscope::CgroupMemory cgroup;
  cgroup.version = 2;
  cgroup.path = "/system.slice/slurmstepd.scope/job_4242";
  cgroup.limit_path = cgroup.path;
  cgroup.usage_bytes = system.used_bytes;
  cgroup.limit_bytes = 1800ULL << 30;
  system.cgroup = cgroup;

  for (int g = 0; g < gpus; ++g) {
    memscope::DeviceSample device;
    device.index = g;
    device.name = "NVIDIA H100 80GB HBM3";
    device.uuid = fmt::format("GPU-fa4e0000-0000-4000-8000-{:012x}", g);
    device.total_bytes = 81559ULL << 20;
    device.used_bytes = (30000ULL + 1000ULL * static_cast<unsigned>(g)) << 20;
    device.free_bytes = device.total_bytes - device.used_bytes;
    device.utilization_percent = 90U;
    sample.devices.push_back(device);

    memscope::analyze::Assessment gpu;
    gpu.resource = fmt::format("gpu{}", g);
    gpu.kind = memscope::analyze::ResourceKind::kGpu;
    gpu.level = memscope::analyze::RiskLevel::kMedium;
    gpu.used_bytes = device.used_bytes;
    gpu.limit_bytes = device.total_bytes;
    gpu.growth_bytes_per_second = 1234.5 * (g + 1);
    gpu.predicted_oom_seconds = 7200.0 / (g + 1);
    gpu.confidence = 0.8;
    state.assessments.push_back(gpu);
  }
  memscope::analyze::Assessment host;
  host.resource = "host";
  host.used_bytes = system.used_bytes;
  host.limit_bytes = system.limit_bytes;
  host.confidence = 0.5;
  state.assessments.insert(state.assessments.begin(), host);

  for (int i = 0; i < processes; ++i) {
    memscope::ProcessSample process;
    process.pid = 100000 + i;
    process.ppid = 1;
    process.comm = i % 8 == 0 ? "python" : "pt_data_worker";
    process.rss_bytes = (2ULL << 30) + 4096ULL * static_cast<unsigned>(i);
    process.pss_bytes = process.rss_bytes / 2;
    process.uss_bytes = process.rss_bytes / 3;
    process.rank = i % 64;
    process.local_rank = i % 8;
    process.world_size = 64;
    process.gpu_bytes = i % 8 == 0 ? (20ULL << 30) : 0;
    sample.processes.push_back(process);

    memscope::analyze::LeakVerdict leak;
    leak.pid = process.pid;
    leak.comm = process.comm;
    leak.memory = "uss";
    leak.verdict = i % 50 == 0 ? "leak suspected" : "no growth";
    leak.growth_bytes_per_second = 17.25 * i;
    state.leaks.push_back(leak);
    if (process.gpu_bytes > 0) {
      leak.memory = fmt::format("gpu{}", i % gpus);
      state.leaks.push_back(leak);
    }
  }
  return state;
}

struct Timing {
  double median_ms, p99_ms, min_ms, mean_ms;
  size_t bytes;
};

template <typename Render>
Timing time_renders(int renders, Render render) {
  std::vector<double> ms;
  ms.reserve(static_cast<size_t>(renders));
  size_t bytes = 0;
  for (int i = 0; i < renders; ++i) {
    const auto start = std::chrono::steady_clock::now();
    const std::string text = render();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                     .count());
    bytes = text.size();
  }
  double sum = 0;
  for (double m : ms) sum += m;
  std::sort(ms.begin(), ms.end());
  const auto at = [&ms](double q) {
    return ms[std::min(ms.size() - 1, static_cast<size_t>(q * static_cast<double>(ms.size())))];
  };
  return {at(0.5), at(0.99), ms.front(), sum / static_cast<double>(ms.size()), bytes};
}

int parse_count(const char* flag, const char* value) {
  char* end = nullptr;
  const long parsed = value == nullptr ? 0 : std::strtol(value, &end, 10);
  if (value == nullptr || *end != '\0' || parsed <= 0 || parsed > 1'000'000) {
    std::fprintf(stderr, "metrics_render: %s needs a positive count\n", flag);
    std::exit(2);
  }
  return static_cast<int>(parsed);
}

}  // namespace

int main(int argc, char** argv) {
  int gpus = 8;
  int processes = 200;
  int renders = 2000;
  for (int i = 1; i < argc; i += 2) {  // every flag takes a value
    const std::string_view arg = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    if (arg == "--gpus") {
      gpus = parse_count("--gpus", value);
    } else if (arg == "--processes") {
      processes = parse_count("--processes", value);
    } else if (arg == "--renders") {
      renders = parse_count("--renders", value);
    } else {
      std::fprintf(stderr, "usage: metrics_render [--gpus 8] [--processes 200] [--renders 2000]\n");
      return 2;
    }
  }
  const AgentState state = make_state(gpus, processes);
  const Timing metrics = time_renders(renders, [&state] {
    return memscope::report::prometheus_text(state);
  });
  const Timing snapshot = time_renders(renders, [&state] {
    return memscope::report::snapshot_json(state).dump();
  });
  fmt::print("{} GPUs x {} processes ({} leak rows), {} renders each, steady_clock per render:\n\n",
             gpus, processes, state.leaks.size(), renders);
  fmt::print("| render | median ms | p99 ms | min ms | mean ms | bytes |\n");
  fmt::print("|---|---:|---:|---:|---:|---:|\n");
  for (const auto& [name, t] : {std::pair<const char*, const Timing&>{"/metrics", metrics},
                                {"/api/v1/snapshot", snapshot}}) {
    fmt::print("| {} | {:.3f} | {:.3f} | {:.3f} | {:.3f} | {} |\n", name, t.median_ms, t.p99_ms,
               t.min_ms, t.mean_ms, t.bytes);
  }
  fmt::print("\n/metrics median {:.3f} ms: {} the goal of < 2 ms\n", metrics.median_ms,
             metrics.median_ms < 2 ? "meets" : "MISSES");
  return 0;
}
