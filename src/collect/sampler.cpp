#include "collect/sampler.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_map>

namespace memscope {

Result<std::unique_ptr<Sampler>> Sampler::create(const SamplerOptions& options) {
  std::unique_ptr<nvml::NvmlCollector> gpus;
  std::vector<std::string> notes;
  if (options.use_gpus) {
    auto opened = nvml::NvmlCollector::open(options.nvml_library);
    if (opened) {
      gpus = std::move(*opened);
    } else {
      notes.push_back(opened.message());
    }
  }
  const int available = gpus ? gpus->device_count() : 0;
  for (int index : options.devices) {
    if (index < 0 || index >= available) {
      return make_error(
          available == 0
              ? fmt::format("GPU {} does not exist: no NVIDIA GPU is available ({})", index,
                            notes.empty() ? "NVML found no devices" : notes.back())
              : fmt::format("GPU {} does not exist: this machine has {} GPU{} (0..{})", index,
                            available, available == 1 ? "" : "s", available - 1));
    }
  }
  return std::unique_ptr<Sampler>(new Sampler(options, std::move(gpus), std::move(notes)));
}

Sampler::Sampler(const SamplerOptions& options, std::unique_ptr<nvml::NvmlCollector> nvml,
                 std::vector<std::string> notes)
    : system_(options.roots),
      processes_(options.roots, options.policy),
      nvml_(std::move(nvml)),
      devices_(options.devices),
      notes_(std::move(notes)) {}

void Sampler::set_scope(int root_pid, int cgroup_pid) {
  root_pid_ = root_pid;
  cgroup_pid_ = cgroup_pid;
}

Sample Sampler::sample(double t_seconds, int64_t unix_ms) {
  Sample sample;
  sample.t_seconds = t_seconds;
  sample.unix_ms = unix_ms;
  sample.system = system_.collect(cgroup_pid_);
  if (process_sampling_) sample.processes = processes_.collect(t_seconds, root_pid_);
  if (nvml_) sample.devices = nvml_->collect(devices_);
  attribute_gpu_memory(sample.processes, sample.devices);
  return sample;
}

void attribute_gpu_memory(std::vector<ProcessSample>& processes,
                          const std::vector<DeviceSample>& devices) {
  std::unordered_map<unsigned, uint64_t> gpu_by_pid;
  for (const auto& device : devices) {
    for (const auto& process : device.processes) gpu_by_pid[process.pid] += process.used_bytes;
  }
  if (gpu_by_pid.empty()) return;
  for (auto& process : processes) {
    const auto found = gpu_by_pid.find(static_cast<unsigned>(process.pid));
    if (found != gpu_by_pid.end()) process.gpu_bytes = found->second;
  }
}

}  // namespace memscope
