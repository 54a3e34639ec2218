#include "collect/linux/cgroup_files.hpp"

#include "collect/linux/text_scan.hpp"

namespace memscope::procfs {

Result<uint64_t> parse_cgroup_counter(std::string_view text) {
  const auto value = to_u64(trim(text));
  if (!value) return make_error("not a byte count");
  return *value;
}

Result<std::optional<uint64_t>> parse_memory_max(std::string_view text) {
  const std::string_view value = trim(text);
  if (value == "max") return std::optional<uint64_t>();
  const auto bytes = to_u64(value);
  if (!bytes) return make_error("memory.max is neither a byte count nor \"max\"");
  return std::optional<uint64_t>(*bytes);
}

Result<std::optional<uint64_t>> parse_v1_limit(std::string_view text) {
  const auto bytes = to_u64(trim(text));
  if (!bytes) return make_error("memory.limit_in_bytes is not a byte count");
  if (*bytes >= kV1UnlimitedThreshold) return std::optional<uint64_t>();
  return std::optional<uint64_t>(*bytes);
}

Result<MemoryEvents> parse_memory_events(std::string_view text) {
  MemoryEvents events;
  bool seen = false;
  for (std::string_view rest = text; !rest.empty();) {
    std::string_view line = next_line(rest);
    const std::string_view name = next_field(line);
    const auto value = to_u64(next_field(line));
    if (!value || !next_field(line).empty()) continue;
    if (name == "high") {
      events.high = *value;
    } else if (name == "max") {
      events.max = *value;
    } else if (name == "oom") {
      events.oom = *value;
      seen = true;
    } else if (name == "oom_kill") {
      events.oom_kill = *value;
      seen = true;
    }
  }
  if (!seen) return make_error("memory.events has no oom or oom_kill line");
  return events;
}

Result<OomControl> parse_oom_control(std::string_view text) {
  OomControl control;
  bool seen_under_oom = false;
  for (std::string_view rest = text; !rest.empty();) {
    std::string_view line = next_line(rest);
    const std::string_view name = next_field(line);
    const auto value = to_u64(next_field(line));
    if (!value || !next_field(line).empty()) continue;
    if (name == "oom_kill_disable") {
      control.oom_kill_disable = *value != 0;
    } else if (name == "under_oom") {
      control.under_oom = *value != 0;
      seen_under_oom = true;
    } else if (name == "oom_kill") {
      control.oom_kill = *value;
    }
  }
  if (!seen_under_oom) return make_error("memory.oom_control has no under_oom line");
  return control;
}

}  // namespace memscope::procfs
