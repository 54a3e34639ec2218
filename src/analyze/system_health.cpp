#include "analyze/system_health.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "core/units.hpp"

namespace memscope::analyze {
namespace {

double percent_of(uint64_t part, uint64_t whole) {
  return whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
}

HealthCheck measured(std::string name, double value, Threshold threshold, std::string detail) {
  HealthCheck check;
  check.name = std::move(name);
  check.value = value;
  check.threshold = threshold;
  check.verdict = classify(value, threshold);
  check.detail = std::move(detail);
  return check;
}

HealthCheck not_applicable(std::string name, std::string why) {
  HealthCheck check;
  check.name = std::move(name);
  check.detail = std::move(why);
  return check;
}

std::vector<std::string_view> fields_of(std::string_view line) {
  std::vector<std::string_view> fields;
  while (true) {
    const auto start = line.find_first_not_of(" \t");
    if (start == std::string_view::npos) break;
    line.remove_prefix(start);
    const auto end = std::min(line.find_first_of(" \t"), line.size());
    fields.push_back(line.substr(0, end));
    line.remove_prefix(end);
  }
  return fields;
}

template <class Number>
bool parse_number(std::string_view text, Number& out) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
  return error == std::errc() && end == text.data() + text.size();
}

}  // namespace

const char* verdict_name(Verdict verdict) {
  switch (verdict) {
    case Verdict::kOk:
      return "ok";
    case Verdict::kWarning:
      return "warning";
    case Verdict::kCritical:
      return "critical";
  }
  return "ok";
}

Verdict classify(double value, Threshold threshold) {
  if (value >= threshold.critical) return Verdict::kCritical;
  if (value >= threshold.warning) return Verdict::kWarning;
  return Verdict::kOk;
}

std::vector<HealthCheck> check_system_health(const SystemSample& system, size_t process_count,
                                             std::optional<uint64_t> pid_max,
                                             const HealthThresholds& thresholds) {
  std::vector<HealthCheck> checks;
  const MemInfo& mem = system.meminfo;
  const uint64_t used = mem.total_bytes - std::min(mem.available_bytes, mem.total_bytes);
  checks.push_back(
      measured("memory", percent_of(used, mem.total_bytes), thresholds.memory_used_percent,
               fmt::format("{} of {} used, {} available", format_bytes(used),
                           format_bytes(mem.total_bytes), format_bytes(mem.available_bytes))));

  if (system.limit_source.rfind("cgroup:", 0) == 0 && system.limit_bytes > 0) {
    checks.push_back(measured(
        "cgroup", percent_of(system.used_bytes, system.limit_bytes), thresholds.cgroup_used_percent,
        fmt::format("{} of {} limit used ({})", format_bytes(system.used_bytes),
                    format_bytes(system.limit_bytes), system.limit_source.substr(7))));
  } else {
    checks.push_back(not_applicable(
        "cgroup", system.cgroup
                      ? fmt::format("no memory limit below MemTotal ({})",
                                    system.cgroup->path.empty() ? "/" : system.cgroup->path)
                      : "no memory cgroup found"));
  }

  if (mem.swap_total_bytes == 0) {
    checks.push_back(not_applicable("swap", "no swap configured"));
  } else {
    const uint64_t swapped =
        mem.swap_total_bytes - std::min(mem.swap_free_bytes, mem.swap_total_bytes);
    checks.push_back(measured(
        "swap", percent_of(swapped, mem.swap_total_bytes), thresholds.swap_used_percent,
        fmt::format("{} of {} used", format_bytes(swapped), format_bytes(mem.swap_total_bytes))));
  }

  if (!system.pressure.available) {
    checks.push_back(not_applicable("pressure some", "PSI unavailable (/proc/pressure/memory)"));
    checks.push_back(not_applicable("pressure full", "PSI unavailable (/proc/pressure/memory)"));
  } else {
    const PressureLine& some = system.pressure.some;
    const PressureLine& full = system.pressure.full;
    checks.push_back(
        measured("pressure some", some.avg10, thresholds.pressure_some_avg10,
                 fmt::format("avg10 {:.2f} % avg60 {:.2f} % of time some task waited for memory",
                             some.avg10, some.avg60)));
    checks.push_back(
        measured("pressure full", full.avg10, thresholds.pressure_full_avg10,
                 fmt::format("avg10 {:.2f} % avg60 {:.2f} % of time all tasks waited for memory",
                             full.avg10, full.avg60)));
  }

  if (pid_max && *pid_max > 0) {
    checks.push_back(measured("processes", percent_of(process_count, *pid_max),
                              thresholds.process_count_percent,
                              fmt::format("{} processes, pid_max {}", process_count, *pid_max)));
  } else {
    checks.push_back(
        not_applicable("processes", fmt::format("{} processes (pid_max unknown)", process_count)));
  }
  return checks;
}

Verdict overall_verdict(const std::vector<HealthCheck>& checks) {
  Verdict worst = Verdict::kOk;
  for (const auto& check : checks) worst = std::max(worst, check.verdict);
  return worst;
}

std::vector<ProcessSample> largest_by_uss(const std::vector<ProcessSample>& processes,
                                          size_t count) {
  std::vector<ProcessSample> live;
  for (const auto& process : processes) {
    if (process.state != 'Z') live.push_back(process);
  }
  std::sort(live.begin(), live.end(), [](const ProcessSample& a, const ProcessSample& b) {
    return a.uss_bytes != b.uss_bytes ? a.uss_bytes > b.uss_bytes : a.pid < b.pid;
  });
  if (live.size() > count) live.resize(count);
  return live;
}

std::vector<ProcessSample> largest_by_swap(const std::vector<ProcessSample>& processes,
                                           size_t count) {
  std::vector<ProcessSample> swapped;
  for (const auto& process : processes) {
    if (process.swap_bytes > 0) swapped.push_back(process);
  }
  std::sort(swapped.begin(), swapped.end(), [](const ProcessSample& a, const ProcessSample& b) {
    return a.swap_bytes != b.swap_bytes ? a.swap_bytes > b.swap_bytes : a.pid < b.pid;
  });
  if (swapped.size() > count) swapped.resize(count);
  return swapped;
}

Result<CpuTimes> parse_proc_stat_cpu(std::string_view text) {
  const auto line_end = text.find('\n');
  const auto fields = fields_of(text.substr(0, line_end));
  if (fields.size() < 5 || fields[0] != "cpu") {
    return make_error("/proc/stat: the first line is not the aggregate 'cpu' line");
  }
  // user nice system idle iowait irq softirq steal guest guest_nice: guest and guest_nice are
  // already part of user and nice.
  CpuTimes times;
  for (size_t i = 1; i < fields.size() && i <= 8; ++i) {
    uint64_t ticks = 0;
    if (!parse_number(fields[i], ticks)) {
      return make_error(fmt::format("/proc/stat: cpu field {} '{}' is not a number", i, fields[i]));
    }
    times.total += ticks;
    if (i != 4 && i != 5) times.busy += ticks;  // 4 idle, 5 iowait
  }
  return times;
}

double cpu_busy_percent(const CpuTimes& before, const CpuTimes& after) {
  if (after.total <= before.total || after.busy < before.busy) return 0.0;
  const uint64_t busy = after.busy - before.busy;
  return std::min(100.0, percent_of(busy, after.total - before.total));
}

Result<std::vector<SwapDevice>> parse_proc_swaps(std::string_view text) {
  std::vector<SwapDevice> devices;
  bool header = true;
  while (!text.empty()) {
    const auto end = std::min(text.find('\n'), text.size());
    const std::string_view line = text.substr(0, end);
    text.remove_prefix(std::min(end + 1, text.size()));
    if (header) {
      header = false;
      if (line.rfind("Filename", 0) == 0) continue;
    }
    const auto fields = fields_of(line);
    if (fields.empty()) continue;
    if (fields.size() < 5) {
      return make_error(
          fmt::format("/proc/swaps: line '{}' has {} fields, expected 5", line, fields.size()));
    }
    SwapDevice device;
    device.name = std::string(fields[0]);
    device.type = std::string(fields[1]);
    uint64_t size_kib = 0;
    uint64_t used_kib = 0;
    if (!parse_number(fields[2], size_kib) || !parse_number(fields[3], used_kib) ||
        !parse_number(fields[4], device.priority)) {
      return make_error(
          fmt::format("/proc/swaps: line '{}' has a field that is not a number", line));
    }
    device.size_bytes = size_kib * kKiB;
    device.used_bytes = used_kib * kKiB;
    devices.push_back(std::move(device));
  }
  return devices;
}

SwapClearDecision decide_swap_clear(const MemInfo& meminfo) {
  SwapClearDecision decision;
  decision.swapped_bytes =
      meminfo.swap_total_bytes - std::min(meminfo.swap_free_bytes, meminfo.swap_total_bytes);
  decision.available_bytes = meminfo.available_bytes;
  decision.margin_bytes = std::max<uint64_t>(kGiB, meminfo.total_bytes / 10);
  if (decision.swapped_bytes == 0) {
    decision.nothing_swapped = true;
    decision.reason = "nothing is swapped out";
    return decision;
  }
  const uint64_t needed = decision.swapped_bytes + decision.margin_bytes;
  decision.allowed = decision.available_bytes >= needed;
  decision.reason = fmt::format(
      "{} swapped + {} margin {} {} available (MemAvailable)", format_bytes(decision.swapped_bytes),
      format_bytes(decision.margin_bytes), decision.allowed ? "fits in" : "does not fit in",
      format_bytes(decision.available_bytes));
  return decision;
}

}  // namespace memscope::analyze
