// Reading NVML's running-process lists (any struct version) and merging them per device.
#pragma once

#include <vector>

#include "collect/nvml/nvml_api.hpp"
#include "core/sample.hpp"

namespace memscope::nvml {

// One entry of a running-process list, whatever struct version it came in.
struct RawGpuProcess {
  unsigned pid = 0;
  unsigned long long used_bytes = 0;  // may be NVML_VALUE_NOT_AVAILABLE
};

// The two-call pattern: ask for the count with a NULL buffer, allocate with headroom, ask again,
// and retry a few times when processes started in between (NVML_ERROR_INSUFFICIENT_SIZE again).
// On NVML_SUCCESS `out` holds the list; on any other code it is empty.
nvmlReturn_t read_process_list(nvmlDeviceGetRunningProcesses_v1_fn fn, nvmlDevice_t device,
                               std::vector<RawGpuProcess>* out);
nvmlReturn_t read_process_list(nvmlDeviceGetRunningProcesses_v2_fn fn, nvmlDevice_t device,
                               std::vector<RawGpuProcess>* out);

// One GpuProcess per pid, sorted by pid. Within one list a pid's entries are summed (one per MIG
// instance it uses); a pid in both lists is counted once, with the larger figure, because both
// lists report the same allocation. NVML_VALUE_NOT_AVAILABLE counts as 0 bytes: the process is
// still shown as using the GPU.
std::vector<GpuProcess> merge_gpu_processes(const std::vector<RawGpuProcess>& compute,
                                            const std::vector<RawGpuProcess>& graphics);

}  // namespace memscope::nvml
