// One full sample of host, processes and GPUs: the collectors of collect/linux and collect/nvml
// put together, with each process's GPU memory attributed from the devices' process lists.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "collect/linux/process_collector.hpp"
#include "collect/linux/system_collector.hpp"
#include "collect/nvml/nvml_collector.hpp"
#include "core/result.hpp"
#include "core/sample.hpp"

namespace memscope {

struct SamplerOptions {
  procfs::Roots roots;
  procfs::ProcessCollector::Policy policy;
  bool use_gpus = true;
  std::string nvml_library;  // empty: $MEMSCOPE_NVML_LIBRARY, else libnvidia-ml.so.1
  std::vector<int> devices;  // GPUs to sample; empty = all
};

class Sampler {
 public:
  // Fails only for a device index that does not exist. No NVML at all is not an error: the
  // sampler works host-only and says so in notes().
  static Result<std::unique_ptr<Sampler>> create(const SamplerOptions& options);

  // root_pid 0 samples every process on the host; otherwise the tree rooted there. The
  // cgroup limits that apply are those of cgroup_pid (0: memscope's own).
  void set_scope(int root_pid, int cgroup_pid);
  // Off: samples carry no processes (host and GPUs only), e.g. `memscope oom` without a target.
  void set_process_sampling(bool enabled) { process_sampling_ = enabled; }
  Sample sample(double t_seconds, int64_t unix_ms);
  // Host and cgroup figures only, without walking processes or GPUs (cheap).
  SystemSample sample_system(int cgroup_pid) { return system_.collect(cgroup_pid); }

  bool has_gpus() const { return nvml_ != nullptr; }
  int device_count() const { return nvml_ ? nvml_->device_count() : 0; }
  const std::vector<std::string>& notes() const { return notes_; }
  procfs::ProcessCollector::Stats process_stats() const { return processes_.stats(); }

 private:
  Sampler(const SamplerOptions& options, std::unique_ptr<nvml::NvmlCollector> nvml,
          std::vector<std::string> notes);

  procfs::SystemCollector system_;
  procfs::ProcessCollector processes_;
  std::unique_ptr<nvml::NvmlCollector> nvml_;
  std::vector<int> devices_;
  std::vector<std::string> notes_;
  bool process_sampling_ = true;
  int root_pid_ = 0;
  int cgroup_pid_ = 0;
};

// Sets each process's gpu_bytes from the devices' per-process figures.
void attribute_gpu_memory(std::vector<ProcessSample>& processes,
                          const std::vector<DeviceSample>& devices);

}  // namespace memscope
