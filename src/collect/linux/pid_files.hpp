// Parsers for the per-process procfs files under /proc/PID/. Pure functions over text.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace memscope::procfs {

// The fields of /proc/PID/stat memscope uses.
struct PidStat {
  int pid = 0;
  std::string comm;  // may hold spaces and ')'
  char state = '?';
  int ppid = 0;
  uint64_t flags = 0;             // field 9, PF_* bits
  uint64_t start_time_ticks = 0;  // field 22, clock ticks after boot

  bool is_kernel_thread() const { return (flags & 0x00200000u) != 0; }  // PF_KTHREAD
};

// /proc/PID/stat: "PID (COMM) STATE PPID ...". COMM is whatever lies between the first '(' and
// the LAST ')', since a process may name itself "a) (b". Fails on anything truncated before
// field 22 or malformed.
Result<PidStat> parse_pid_stat(std::string_view text);

// /proc/PID/statm: the second field, resident pages.
Result<uint64_t> parse_statm_resident_pages(std::string_view text);

// /proc/PID/smaps_rollup, in bytes. USS is Private_Clean + Private_Dirty.
struct SmapsRollup {
  uint64_t rss_bytes = 0;
  uint64_t pss_bytes = 0;
  uint64_t uss_bytes = 0;
  uint64_t swap_bytes = 0;
};
// Fails when Rss or Pss is missing or malformed; other missing fields read as 0.
Result<SmapsRollup> parse_smaps_rollup(std::string_view text);

// The distributed-training rank variables of /proc/PID/environ (NUL-separated NAME=VALUE).
// A variable that is absent or not a whole non-negative number stays nullopt.
struct RankInfo {
  std::optional<int> rank;        // RANK
  std::optional<int> local_rank;  // LOCAL_RANK
  std::optional<int> world_size;  // WORLD_SIZE
};
RankInfo parse_environ_ranks(std::string_view environ);

// /proc/PID/cmdline: NUL separators become spaces; trailing separators are dropped.
std::string parse_cmdline(std::string_view raw);
// The same, into `out` (reusing its capacity).
void parse_cmdline_into(std::string_view raw, std::string& out);

// The memory cgroup lines of /proc/PID/cgroup ("hierarchy-ID:controllers:path").
struct CgroupMembership {
  std::optional<std::string> v2_path;         // "0::/x" (the unified hierarchy)
  std::optional<std::string> v1_memory_path;  // "N:memory:/x" or "N:cpu,memory:/x"
};
// Lines that are malformed are ignored; an input with none well-formed gives an empty result.
CgroupMembership parse_pid_cgroup(std::string_view text);

}  // namespace memscope::procfs
