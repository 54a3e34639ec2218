// Parsers for the host-wide procfs files: /proc/meminfo, /proc/pressure/memory, /proc/vmstat.
// Pure functions over text; reading the files is the collectors' business.
#pragma once

#include <string_view>

#include "core/result.hpp"
#include "core/sample.hpp"

namespace memscope::procfs {

// /proc/meminfo ("MemTotal:  24683656 kB" lines), values in bytes. Fails when MemTotal is
// missing or malformed; any other field that is missing or malformed reads as 0, except
// MemAvailable (Linux >= 3.14), which is then estimated as MemFree + Buffers + Cached and
// *available_estimated set.
Result<MemInfo> parse_meminfo(std::string_view text, bool* available_estimated = nullptr);

// /proc/pressure/memory:
//   some avg10=0.00 avg60=0.00 avg300=0.00 total=0
//   full avg10=0.00 avg60=0.00 avg300=0.00 total=0
// Fails without a well-formed "some" line; a missing "full" line reads as zeros. The result has
// available == true.
Result<Pressure> parse_pressure(std::string_view text);

// /proc/vmstat ("name value" lines): oom_kill (has_oom_kill says whether the kernel has it) and
// pgmajfault. Fails when pgmajfault, present on every kernel, is missing or malformed.
Result<VmStat> parse_vmstat(std::string_view text);

}  // namespace memscope::procfs
