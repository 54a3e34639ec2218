// How many descriptors the process collector may keep open between samples.
#pragma once

#include <cstddef>

namespace memscope::procfs {

// Raises the RLIMIT_NOFILE soft limit to the hard limit (capped at what the kernel accepts),
// once per program; returns the soft limit in force afterwards.
size_t raise_open_file_limit();

// Descriptors left to the rest of the program when the collector sizes its budget.
constexpr size_t kReservedDescriptors = 256;

}  // namespace memscope::procfs
