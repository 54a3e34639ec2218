#include "collect/nvml/nvml_processes.hpp"

#include <algorithm>
#include <map>

namespace memscope::nvml {
namespace {

// Attempts after the counting call; each one re-sizes to what the driver last asked for.
constexpr int kMaxAttempts = 4;

template <class Info, class Fn>
nvmlReturn_t read_list(Fn fn, nvmlDevice_t device, std::vector<RawGpuProcess>* out) {
  out->clear();
  std::vector<Info> buffer;
  unsigned count = 0;
  nvmlReturn_t rc = fn(device, &count, nullptr);
  for (int attempt = 0; attempt < kMaxAttempts && rc == NVML_ERROR_INSUFFICIENT_SIZE; ++attempt) {
    // Headroom, so that a process starting between the two calls does not cost another round.
    buffer.resize(static_cast<size_t>(count) + count / 4 + 4);
    count = static_cast<unsigned>(buffer.size());
    rc = fn(device, &count, buffer.data());
  }
  if (rc != NVML_SUCCESS) return rc;
  const size_t filled = std::min(static_cast<size_t>(count), buffer.size());
  out->reserve(filled);
  for (size_t i = 0; i < filled; ++i) {
    out->push_back(RawGpuProcess{buffer[i].pid, buffer[i].usedGpuMemory});
  }
  return NVML_SUCCESS;
}

uint64_t known_bytes(unsigned long long used) {
  return used == NVML_VALUE_NOT_AVAILABLE ? 0 : static_cast<uint64_t>(used);
}

// pid -> bytes, summed within the list.
std::map<unsigned, uint64_t> sum_by_pid(const std::vector<RawGpuProcess>& list) {
  std::map<unsigned, uint64_t> sums;
  for (const RawGpuProcess& entry : list) sums[entry.pid] += known_bytes(entry.used_bytes);
  return sums;
}

}  // namespace

nvmlReturn_t read_process_list(nvmlDeviceGetRunningProcesses_v1_fn fn, nvmlDevice_t device,
                               std::vector<RawGpuProcess>* out) {
  return read_list<nvmlProcessInfo_v1_t>(fn, device, out);
}

nvmlReturn_t read_process_list(nvmlDeviceGetRunningProcesses_v2_fn fn, nvmlDevice_t device,
                               std::vector<RawGpuProcess>* out) {
  return read_list<nvmlProcessInfo_v2_t>(fn, device, out);
}

std::vector<GpuProcess> merge_gpu_processes(const std::vector<RawGpuProcess>& compute,
                                            const std::vector<RawGpuProcess>& graphics) {
  std::map<unsigned, GpuProcess> merged;
  for (const auto& [pid, bytes] : sum_by_pid(compute)) {
    merged[pid] = GpuProcess{pid, bytes, false};
  }
  for (const auto& [pid, bytes] : sum_by_pid(graphics)) {
    auto [it, inserted] = merged.try_emplace(pid, GpuProcess{pid, bytes, true});
    if (!inserted) it->second.used_bytes = std::max(it->second.used_bytes, bytes);
  }
  std::vector<GpuProcess> result;
  result.reserve(merged.size());
  for (auto& [pid, process] : merged) result.push_back(process);
  return result;
}

}  // namespace memscope::nvml
