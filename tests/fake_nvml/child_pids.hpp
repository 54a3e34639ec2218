// The direct children of the calling process, for scenario processes with "pid": "child".
#pragma once

#include <vector>

namespace memscope::fake_nvml {

// Sorted, without duplicates. Read from /proc/self/task/*/children where the kernel has
// CONFIG_PROC_CHILDREN, otherwise by scanning the parent pid field of every /proc/PID/stat.
std::vector<unsigned> child_pids();

}  // namespace memscope::fake_nvml
