#include "collect/linux/system_files.hpp"

#include <charconv>
#include <cmath>
#include <optional>
#include <string>

#include "collect/linux/text_scan.hpp"

namespace memscope::procfs {
namespace {

std::optional<double> to_double(std::string_view token) {
  double value = 0;
  if (token.empty()) return std::nullopt;
  const auto [end, error] = std::from_chars(token.data(), token.data() + token.size(), value);
  if (error != std::errc() || end != token.data() + token.size()) return std::nullopt;
  if (!std::isfinite(value) || value < 0) return std::nullopt;
  return value;
}

// "avg10=0.00 avg60=0.00 avg300=0.00 total=0" after the "some"/"full" word.
std::optional<PressureLine> parse_pressure_fields(std::string_view rest) {
  PressureLine line;
  bool seen_avg10 = false, seen_avg60 = false, seen_avg300 = false, seen_total = false;
  for (std::string_view field = next_field(rest); !field.empty(); field = next_field(rest)) {
    const size_t equals = field.find('=');
    if (equals == std::string_view::npos) return std::nullopt;
    const std::string_view name = field.substr(0, equals);
    const std::string_view value = field.substr(equals + 1);
    if (name == "total") {
      const auto total = to_u64(value);
      if (!total) return std::nullopt;
      line.total_microseconds = *total;
      seen_total = true;
      continue;
    }
    const auto average = to_double(value);
    if (!average) return std::nullopt;
    if (name == "avg10") {
      line.avg10 = *average;
      seen_avg10 = true;
    } else if (name == "avg60") {
      line.avg60 = *average;
      seen_avg60 = true;
    } else if (name == "avg300") {
      line.avg300 = *average;
      seen_avg300 = true;
    }
  }
  if (!(seen_avg10 && seen_avg60 && seen_avg300 && seen_total)) return std::nullopt;
  return line;
}

}  // namespace

Result<MemInfo> parse_meminfo(std::string_view text, bool* available_estimated) {
  MemInfo info;
  bool has_total = false, has_available = false;
  uint64_t buffers = 0;
  for (std::string_view rest = text; !rest.empty();) {
    std::string_view key, value;
    if (!split_key_value(next_line(rest), key, value)) continue;
    const auto bytes = kb_value_to_bytes(value);
    if (!bytes) continue;
    if (key == "MemTotal") {
      info.total_bytes = *bytes;
      has_total = true;
    } else if (key == "MemFree") {
      info.free_bytes = *bytes;
    } else if (key == "MemAvailable") {
      info.available_bytes = *bytes;
      has_available = true;
    } else if (key == "Buffers") {
      buffers = *bytes;
    } else if (key == "Cached") {
      info.cached_bytes = *bytes;
    } else if (key == "Shmem") {
      info.shmem_bytes = *bytes;
    } else if (key == "SwapTotal") {
      info.swap_total_bytes = *bytes;
    } else if (key == "SwapFree") {
      info.swap_free_bytes = *bytes;
    }
  }
  if (!has_total) return make_error("meminfo: no valid MemTotal line");
  if (!has_available) {
    // Saturating: garbage must not overflow into a small number.
    uint64_t estimate = info.free_bytes;
    for (uint64_t part : {buffers, info.cached_bytes}) {
      estimate = part > UINT64_MAX - estimate ? UINT64_MAX : estimate + part;
    }
    info.available_bytes = estimate < info.total_bytes ? estimate : info.total_bytes;
  }
  if (available_estimated != nullptr) *available_estimated = !has_available;
  return info;
}

Result<Pressure> parse_pressure(std::string_view text) {
  Pressure pressure;
  bool has_some = false;
  for (std::string_view rest = text; !rest.empty();) {
    std::string_view line = next_line(rest);
    const std::string_view kind = next_field(line);
    if (kind != "some" && kind != "full") continue;
    const auto fields = parse_pressure_fields(line);
    if (!fields) return make_error("pressure: malformed \"" + std::string(kind) + "\" line");
    if (kind == "some") {
      pressure.some = *fields;
      has_some = true;
    } else {
      pressure.full = *fields;
    }
  }
  if (!has_some) return make_error("pressure: no \"some\" line");
  pressure.available = true;
  return pressure;
}

Result<VmStat> parse_vmstat(std::string_view text) {
  VmStat vmstat;
  bool has_pgmajfault = false;
  for (std::string_view rest = text; !rest.empty();) {
    std::string_view line = next_line(rest);
    const std::string_view name = next_field(line);
    if (name != "oom_kill" && name != "pgmajfault") continue;
    const auto value = to_u64(next_field(line));
    if (!value || !next_field(line).empty()) continue;
    if (name == "oom_kill") {
      vmstat.oom_kill = *value;
      vmstat.has_oom_kill = true;
    } else {
      vmstat.pgmajfault = *value;
      has_pgmajfault = true;
    }
  }
  if (!has_pgmajfault) return make_error("vmstat: no valid pgmajfault line");
  return vmstat;
}

}  // namespace memscope::procfs
