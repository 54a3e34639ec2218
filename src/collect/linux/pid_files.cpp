#include "collect/linux/pid_files.hpp"

#include <limits>

#include "collect/linux/text_scan.hpp"

namespace memscope::procfs {
namespace {

// The value of NAME= in a NUL-separated environment block, as a non-negative int.
std::optional<int> environ_int(std::string_view value) {
  const auto number = to_int(value);
  if (!number || *number < 0) return std::nullopt;
  return number;
}

}  // namespace

Result<PidStat> parse_pid_stat(std::string_view text) {
  const size_t open = text.find('(');
  const size_t close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open) {
    return make_error("stat: no \"(comm)\"");
  }
  PidStat stat;
  const auto pid = to_int(trim(text.substr(0, open)));
  if (!pid || *pid <= 0) return make_error("stat: malformed pid");
  stat.pid = *pid;
  stat.comm.assign(text.substr(open + 1, close - open - 1));

  // Fields after the comm are numbered from 3 (state) in proc(5).
  std::string_view rest = text.substr(close + 1);
  const std::string_view state = next_field(rest);
  if (state.size() != 1) return make_error("stat: malformed state");
  stat.state = state[0];
  for (int field = 4; field <= 22; ++field) {
    const std::string_view token = next_field(rest);
    if (token.empty()) return make_error("stat: truncated before field 22");
    if (field == 4) {
      const auto ppid = to_int(token);
      if (!ppid || *ppid < 0) return make_error("stat: malformed ppid");
      stat.ppid = *ppid;
    } else if (field == 9) {
      const auto flags = to_u64(token);
      if (!flags) return make_error("stat: malformed flags");
      stat.flags = *flags;
    } else if (field == 22) {
      const auto start = to_u64(token);
      if (!start) return make_error("stat: malformed starttime");
      stat.start_time_ticks = *start;
    }
  }
  return stat;
}

Result<uint64_t> parse_statm_resident_pages(std::string_view text) {
  std::string_view rest = text;
  if (!to_u64(next_field(rest))) return make_error("statm: malformed size");
  const auto resident = to_u64(next_field(rest));
  if (!resident) return make_error("statm: malformed resident");
  return *resident;
}

Result<SmapsRollup> parse_smaps_rollup(std::string_view text) {
  SmapsRollup rollup;
  bool has_rss = false, has_pss = false;
  uint64_t private_clean = 0, private_dirty = 0;
  for (std::string_view rest = text; !rest.empty();) {
    std::string_view key, value;
    if (!split_key_value(next_line(rest), key, value)) continue;
    // The header line "56200011b000-7ffe695b3000 ---p ... [rollup]" has no "Key:" form we use.
    if (key != "Rss" && key != "Pss" && key != "Private_Clean" && key != "Private_Dirty" &&
        key != "Swap") {
      continue;
    }
    const auto bytes = kb_value_to_bytes(value);
    if (!bytes) continue;
    if (key == "Rss") {
      rollup.rss_bytes = *bytes;
      has_rss = true;
    } else if (key == "Pss") {
      rollup.pss_bytes = *bytes;
      has_pss = true;
    } else if (key == "Private_Clean") {
      private_clean = *bytes;
    } else if (key == "Private_Dirty") {
      private_dirty = *bytes;
    } else {
      rollup.swap_bytes = *bytes;
    }
  }
  if (!has_rss || !has_pss) return make_error("smaps_rollup: no valid Rss and Pss lines");
  rollup.uss_bytes = private_clean > std::numeric_limits<uint64_t>::max() - private_dirty
                         ? std::numeric_limits<uint64_t>::max()
                         : private_clean + private_dirty;
  return rollup;
}

RankInfo parse_environ_ranks(std::string_view environ) {
  RankInfo ranks;
  while (!environ.empty()) {
    const size_t end = environ.find('\0');
    const std::string_view entry = environ.substr(0, end);
    environ = end == std::string_view::npos ? std::string_view() : environ.substr(end + 1);
    const size_t equals = entry.find('=');
    if (equals == std::string_view::npos) continue;
    const std::string_view name = entry.substr(0, equals);
    const std::string_view value = entry.substr(equals + 1);
    if (name == "RANK") {
      ranks.rank = environ_int(value);
    } else if (name == "LOCAL_RANK") {
      ranks.local_rank = environ_int(value);
    } else if (name == "WORLD_SIZE") {
      ranks.world_size = environ_int(value);
    }
  }
  return ranks;
}

void parse_cmdline_into(std::string_view raw, std::string& out) {
  while (!raw.empty() && raw.back() == '\0') raw.remove_suffix(1);
  out.assign(raw);
  for (char& c : out) {
    if (c == '\0') c = ' ';
  }
}

std::string parse_cmdline(std::string_view raw) {
  std::string out;
  parse_cmdline_into(raw, out);
  return out;
}

CgroupMembership parse_pid_cgroup(std::string_view text) {
  CgroupMembership membership;
  for (std::string_view rest = text; !rest.empty();) {
    const std::string_view line = next_line(rest);
    // The path may itself contain ':', so split at the first two only.
    const size_t first = line.find(':');
    if (first == std::string_view::npos) continue;
    const size_t second = line.find(':', first + 1);
    if (second == std::string_view::npos) continue;
    const std::string_view hierarchy = line.substr(0, first);
    const std::string_view controllers = line.substr(first + 1, second - first - 1);
    const std::string_view path = line.substr(second + 1);
    if (!to_u64(hierarchy) || path.empty() || path.front() != '/') continue;
    if (hierarchy == "0" && controllers.empty()) {
      membership.v2_path.emplace(path);
      continue;
    }
    for (std::string_view list = controllers; !list.empty();) {
      const size_t comma = list.find(',');
      if (list.substr(0, comma) == "memory") {
        membership.v1_memory_path.emplace(path);
        break;
      }
      list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    }
  }
  return membership;
}

}  // namespace memscope::procfs
