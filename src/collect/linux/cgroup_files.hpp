// Parsers for the memory controller's files in cgroupfs, v2 (memory.current, memory.max,
// memory.events, memory.swap.current) and v1 (memory.usage_in_bytes, memory.limit_in_bytes,
// memory.oom_control, memory.failcnt). Pure functions over text.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "core/result.hpp"

namespace memscope::procfs {

// v1 reports "no limit" as PAGE_COUNTER_MAX pages, i.e. LONG_MAX rounded down to the page size
// (9223372036854771712 with 4 KiB pages, ...710272 with 64 KiB pages). Anything at or above
// 2^62 is treated as unlimited: no machine has 4 EiB.
constexpr uint64_t kV1UnlimitedThreshold = uint64_t{1} << 62;

// A file holding one byte count or counter: memory.current, memory.swap.current,
// memory.usage_in_bytes, memory.memsw.usage_in_bytes, memory.failcnt.
Result<uint64_t> parse_cgroup_counter(std::string_view text);

// v2 memory.max: a byte count, or "max" (nullopt: no limit).
Result<std::optional<uint64_t>> parse_memory_max(std::string_view text);

// v1 memory.limit_in_bytes: a byte count; nullopt when at or above kV1UnlimitedThreshold.
Result<std::optional<uint64_t>> parse_v1_limit(std::string_view text);

// v2 memory.events ("low 0\nhigh 0\nmax 57\noom 4\noom_kill 3\noom_group_kill 0").
struct MemoryEvents {
  uint64_t high = 0;
  uint64_t max = 0;
  uint64_t oom = 0;
  uint64_t oom_kill = 0;
};
// Fails when neither "oom" nor "oom_kill" is a well-formed line.
Result<MemoryEvents> parse_memory_events(std::string_view text);

// v1 memory.oom_control ("oom_kill_disable 0\nunder_oom 0\noom_kill 0"; oom_kill since 4.13).
struct OomControl {
  bool oom_kill_disable = false;
  bool under_oom = false;
  uint64_t oom_kill = 0;
};
// Fails when "under_oom" is missing or malformed.
Result<OomControl> parse_oom_control(std::string_view text);

}  // namespace memscope::procfs
