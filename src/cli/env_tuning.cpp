#include "cli/env_tuning.hpp"

#include <fmt/format.h>
#include <glob.h>
#include <sched.h>
#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <cstdlib>
#include <iostream>
#include <system_error>
#include <nlohmann/json.hpp>

#include "cli/common.hpp"
#include "collect/linux/file_access.hpp"
#include "collect/linux/system_collector.hpp"
#include "collect/nvml/nvml_collector.hpp"

namespace memscope::cli {
namespace {

constexpr size_t kMaxSmallFileBytes = 64 * 1024;
constexpr size_t kMaxReportBytes = 64 * 1024 * 1024;

std::string_view trimmed(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t' || text.front() == '\n')) {
    text.remove_prefix(1);
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\n')) {
    text.remove_suffix(1);
  }
  return text;
}

std::optional<int64_t> parse_int(std::string_view text) {
  int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<std::string> read_small(const std::string& path) {
  return read_small_file(path, kMaxSmallFileBytes);
}

// "/a/b" -> "/a" -> "/".
std::string parent_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
}

// The cgroup path of the cpu controller in /proc/self/cgroup: v1 "N:cpu,cpuacct:/x" wins (a
// controller sits on one hierarchy only), else v2 "0::/x". version 0 when neither.
struct CpuCgroup {
  int version = 0;
  std::string path;
};
CpuCgroup cpu_cgroup_of(std::string_view text) {
  CpuCgroup v2;
  while (!text.empty()) {
    const size_t newline = text.find('\n');
    const std::string_view line = text.substr(0, newline);
    text = newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
    const size_t first = line.find(':');
    const size_t second = first == std::string_view::npos ? first : line.find(':', first + 1);
    if (second == std::string_view::npos) continue;
    const std::string_view controllers = line.substr(first + 1, second - first - 1);
    const std::string path(line.substr(second + 1));
    if (controllers.empty() && line.substr(0, first) == "0") {
      v2 = {2, path};
      continue;
    }
    for (size_t start = 0; start <= controllers.size();) {
      size_t end = controllers.find(',', start);
      if (end == std::string_view::npos) end = controllers.size();
      if (controllers.substr(start, end - start) == "cpu") return {1, path};
      start = end + 1;
    }
  }
  return v2;
}

unsigned affinity_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
  return static_cast<unsigned>(CPU_COUNT(&set));
}

// torch/version.py in the usual install locations: a virtualenv, pip's and Debian's.
std::pair<std::string, std::string> detect_torch_version() {
  std::vector<std::string> patterns;
  if (const char* venv = std::getenv("VIRTUAL_ENV"); venv != nullptr && *venv != '\0') {
    patterns.push_back(fmt::format("{}/lib/python3*/site-packages/torch/version.py", venv));
  }
  if (const char* conda = std::getenv("CONDA_PREFIX"); conda != nullptr && *conda != '\0') {
    patterns.push_back(fmt::format("{}/lib/python3*/site-packages/torch/version.py", conda));
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    patterns.push_back(fmt::format("{}/.local/lib/python3*/site-packages/torch/version.py", home));
  }
  patterns.emplace_back("/usr/local/lib/python3*/dist-packages/torch/version.py");
  patterns.emplace_back("/usr/local/lib/python3*/site-packages/torch/version.py");
  patterns.emplace_back("/usr/lib/python3/dist-packages/torch/version.py");
  for (const std::string& pattern : patterns) {
    glob_t found{};
    if (glob(pattern.c_str(), 0, nullptr, &found) == 0) {
      for (size_t i = 0; i < found.gl_pathc; ++i) {
        const std::string path = found.gl_pathv[i];
        if (const auto text = read_small(path)) {
          std::string version = analyze::parse_torch_version_py(*text);
          if (!version.empty()) {
            globfree(&found);
            return {version, path};
          }
        }
      }
    }
    globfree(&found);
  }
  return {};
}

uint64_t json_u64(const nlohmann::json& object, const char* key) {
  const auto it = object.find(key);
  return it != object.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}

}  // namespace

Result<std::optional<double>> parse_cpu_max(std::string_view text) {
  text = trimmed(text);
  const size_t space = text.find(' ');
  const std::string_view quota = text.substr(0, space);
  const std::string_view period_text =
      space == std::string_view::npos ? std::string_view("100000") : text.substr(space + 1);
  const auto period = parse_int(period_text);
  if (!period || *period <= 0) {
    return make_error(fmt::format("cpu.max '{}': expected 'QUOTA PERIOD'", text));
  }
  if (quota == "max") return std::optional<double>{};
  const auto quota_us = parse_int(quota);
  if (!quota_us || *quota_us <= 0) {
    return make_error(fmt::format("cpu.max '{}': expected 'max' or a positive quota", text));
  }
  return std::optional<double>(static_cast<double>(*quota_us) / static_cast<double>(*period));
}

Result<std::optional<double>> parse_cfs_quota(std::string_view quota_text,
                                              std::string_view period_text) {
  const auto quota = parse_int(trimmed(quota_text));
  const auto period = parse_int(trimmed(period_text));
  if (!quota || *quota == 0 || *quota < -1) {
    return make_error(fmt::format("cpu.cfs_quota_us '{}': expected -1 or a positive number",
                                  trimmed(quota_text)));
  }
  if (*quota == -1) return std::optional<double>{};
  if (!period || *period <= 0) {
    return make_error(fmt::format("cpu.cfs_period_us '{}': expected a positive number",
                                  trimmed(period_text)));
  }
  return std::optional<double>(static_cast<double>(*quota) / static_cast<double>(*period));
}

Result<unsigned> parse_cpu_list(std::string_view text) {
  text = trimmed(text);
  unsigned count = 0;
  const std::string original(text);
  while (!text.empty()) {
    const size_t comma = text.find(',');
    const std::string_view range = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    const size_t dash = range.find('-');
    const auto first = parse_int(range.substr(0, dash));
    const auto last = dash == std::string_view::npos ? first : parse_int(range.substr(dash + 1));
    if (!first || !last || *first < 0 || *last < *first || *last - *first > 1 << 20) {
      return make_error(fmt::format("CPU list '{}': expected ranges like 0-3,8", original));
    }
    count += static_cast<unsigned>(*last - *first + 1);
  }
  if (count == 0) return make_error(fmt::format("CPU list '{}' is empty", original));
  return count;
}

std::optional<CpuQuota> read_cpu_quota(const procfs::Roots& roots,
                                       std::vector<std::string>& notes) {
  const std::string membership_file = roots.proc + "/self/cgroup";
  const auto membership = read_small(membership_file);
  if (!membership) {
    notes.push_back(fmt::format("{} unreadable: CPU quota unknown", membership_file));
    return std::nullopt;
  }
  const CpuCgroup cgroup = cpu_cgroup_of(*membership);
  if (cgroup.version == 0) return std::nullopt;
  std::string base = roots.sys + (cgroup.version == 1 ? "/fs/cgroup/cpu" : "/fs/cgroup");
  if (cgroup.version == 2 && !read_small(base + "/cgroup.controllers") &&
      read_small(roots.sys + "/fs/cgroup/unified/cgroup.controllers")) {
    base = roots.sys + "/fs/cgroup/unified";  // a hybrid host
  }
  std::string path = cgroup.path.empty() ? "/" : cgroup.path;
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  const auto dir = [&base](const std::string& p) { return p == "/" ? base : base + p; };
  // A container without its own cgroup namespace sees the host's path but has only its own
  // cgroup mounted: then the mount root is its cgroup.
  struct stat info {};
  if (stat(dir(path).c_str(), &info) != 0) path = "/";

  std::optional<CpuQuota> tightest;
  for (std::string at = path;; at = parent_of(at)) {
    std::optional<double> cpus;
    std::string source;
    if (cgroup.version == 2) {
      const std::string file = dir(at) + "/cpu.max";
      if (const auto text = read_small(file)) {
        auto parsed = parse_cpu_max(*text);
        if (!parsed) {
          notes.push_back(fmt::format("{}: {}", file, parsed.message()));
        } else {
          cpus = *parsed;
        }
        source = fmt::format("cgroup v2 {}", at == "/" ? "/" : at);
      }
    } else {
      const std::string quota_file = dir(at) + "/cpu.cfs_quota_us";
      const auto quota = read_small(quota_file);
      const auto period = read_small(dir(at) + "/cpu.cfs_period_us");
      if (quota) {
        auto parsed = parse_cfs_quota(*quota, period.value_or(""));
        if (!parsed) {
          notes.push_back(fmt::format("{}: {}", quota_file, parsed.message()));
        } else {
          cpus = *parsed;
        }
        source = fmt::format("cgroup v1 {}", at);
      }
    }
    if (cpus && (!tightest || *cpus < tightest->cpus)) tightest = CpuQuota{*cpus, source};
    if (at == "/") break;
  }
  return tightest;
}

namespace {

Result<analyze::MeasuredAllocConf> read_simulate_report_fields(const std::string& path);

}  // namespace

Result<analyze::MeasuredAllocConf> read_simulate_report(const std::string& path) {
  // nlohmann's value() throws when a field has another type ("device": "0", "label": null):
  // that is a damaged report (exit 3), not an internal error.
  try {
    return read_simulate_report_fields(path);
  } catch (const nlohmann::json::exception& e) {
    return make_error(fmt::format("--snapshot-sim {}: a field has the wrong type ({})", path,
                                  e.what()));
  }
}

namespace {

Result<analyze::MeasuredAllocConf> read_simulate_report_fields(const std::string& path) {
  std::string text;
  if (const int error = procfs::read_file(procfs::system_file_access(), path, text, kMaxReportBytes);
      error != 0) {
    return make_error(fmt::format("--snapshot-sim {}: cannot read: {}", path,
                                  std::generic_category().message(error)));
  }
  const nlohmann::json report = nlohmann::json::parse(text, nullptr, false);
  if (report.is_discarded() || !report.is_object()) {
    return make_error(fmt::format("--snapshot-sim {}: not JSON", path));
  }
  if (report.value("report", std::string()) != "memscope-fragment" ||
      report.value("mode", std::string()) != "simulate") {
    return make_error(fmt::format(
        "--snapshot-sim {}: not a `memscope fragment --simulate --output` report", path));
  }
  const auto devices = report.find("devices");
  if (devices == report.end() || !devices->is_array() || devices->empty() ||
      !devices->front().is_object()) {
    return make_error(fmt::format("--snapshot-sim {}: no devices in the report", path));
  }
  const nlohmann::json& device = devices->front();
  const auto candidates = device.find("candidates");
  const auto recommended = device.find("recommended");
  if (candidates == device.end() || !candidates->is_array() || candidates->empty() ||
      recommended == device.end() || !recommended->is_object()) {
    return make_error(
        fmt::format("--snapshot-sim {}: device {} has no candidates or recommendation", path,
                    device.value("device", 0)));
  }
  analyze::MeasuredAllocConf measured;
  measured.source = path;
  measured.snapshot = report.value("snapshot", std::string("the snapshot"));
  measured.reason = recommended->value("reason", std::string());
  const std::string label = recommended->value("label", std::string());
  const nlohmann::json& recorded = candidates->front();
  measured.recorded_peak_reserved_bytes = json_u64(recorded, "peak_reserved_bytes");
  bool found = false;
  for (const nlohmann::json& candidate : *candidates) {
    if (candidate.is_object() && candidate.value("label", std::string()) == label) {
      measured.peak_reserved_bytes = json_u64(candidate, "peak_reserved_bytes");
      found = true;
      break;
    }
  }
  if (!found) {
    return make_error(fmt::format("--snapshot-sim {}: the recommended candidate '{}' is not among "
                                  "the candidates",
                                  path, label));
  }
  // The first candidate is the run's own settings: recommending it means nothing was better.
  if (label != recorded.value("label", std::string())) {
    measured.config = recommended->value("config", std::string());
  }
  return measured;
}

}  // namespace

Result<analyze::MachineFacts> detect_machine(const GlobalOptions& global,
                                             const EnvTuningOptions& options,
                                             std::vector<std::string>& notes) {
  analyze::MachineFacts facts;
  facts.processes = std::max(1u, options.processes);
  const procfs::Roots roots{global.proc_root, global.sys_root};

  // Online CPUs from sysfs; on the live system also the affinity mask (taskset, cpusets).
  const std::string online_file = roots.sys + "/devices/system/cpu/online";
  unsigned online = 0;
  if (const auto text = read_small(online_file)) {
    if (auto count = parse_cpu_list(*text)) {
      online = *count;
    } else {
      notes.push_back(fmt::format("{}: {}", online_file, count.message()));
    }
  } else {
    notes.push_back(fmt::format("{} unreadable", online_file));
  }
  if (roots.sys == "/sys") {
    const unsigned allowed = affinity_cpus();
    if (allowed > 0 && (online == 0 || allowed < online)) online = allowed;
  }
  facts.online_cpus = std::max(1u, online);
  if (const auto quota = read_cpu_quota(roots, notes)) {
    facts.cpu_quota_cores = quota->cpus;
    facts.cpu_quota_source = quota->source;
  }

  procfs::SystemCollector system(roots);
  const SystemSample sample = system.collect(0);
  for (const std::string& note : sample.notes) {
    if (note.find("pressure") == std::string::npos) notes.push_back(note);
  }
  facts.ram_total_bytes = sample.meminfo.total_bytes;
  facts.ram_available_bytes = sample.meminfo.available_bytes;
  facts.swap_total_bytes = sample.meminfo.swap_total_bytes;
  facts.swap_free_bytes = sample.meminfo.swap_free_bytes;
  // The collector's limit is the tighter of the cgroup's and MemTotal, with the usage counted
  // against it; only a cgroup limit is a separate fact.
  if (sample.limit_source.rfind("cgroup", 0) == 0) {
    facts.memory_limit_bytes = sample.limit_bytes;
    facts.memory_limit_usage_bytes = sample.used_bytes;
  }

  if (options.use_gpus) {
    auto nvml = nvml::NvmlCollector::open(global.nvml_library);
    if (!nvml) {
      facts.gpu_unavailable_reason = nvml.message();
    } else {
      facts.driver_version = (*nvml)->driver_version();
      for (const DeviceSample& device : (*nvml)->collect()) {
        if (!device.ok || device.total_bytes == 0) continue;
        facts.gpus.push_back({device.index, device.name, device.total_bytes});
      }
      if (facts.gpus.empty()) facts.gpu_unavailable_reason = "NVML reports no readable GPU";
    }
  } else {
    facts.gpu_unavailable_reason = "--no-gpu";
  }

  if (options.torch_version == "unknown") {
    // The user says so: no detection.
  } else if (!options.torch_version.empty()) {
    facts.torch_version = options.torch_version;
    facts.torch_version_source = "--torch-version";
  } else {
    auto [version, source] = detect_torch_version();
    facts.torch_version = std::move(version);
    facts.torch_version_source = std::move(source);
  }

  if (options.snapshot_sim == "none") {
    // The user says so: no measured setting, not even one found in the working directory.
  } else if (!options.snapshot_sim.empty()) {
    auto measured = read_simulate_report(options.snapshot_sim);
    if (!measured) return measured.error();
    facts.measured = std::move(*measured);
  } else if (auto found = find_simulate_report(".")) {
    notes.push_back(fmt::format(
        "using the fragment --simulate results in {} (the newest such report in the working "
        "directory; --snapshot-sim none ignores it)",
        found->source));
    facts.measured = std::move(*found);
  }
  return facts;
}

std::optional<analyze::MeasuredAllocConf> find_simulate_report(const std::string& directory) {
  // Only files small enough to be a report (a simulate report of many devices and candidates
  // is a few KiB); anything unreadable or not such a report is passed over silently: it was
  // not named by the user.
  constexpr uintmax_t kMaxCandidateBytes = 4 * 1024 * 1024;
  constexpr int kMaxFilesLooked = 256;
  std::optional<analyze::MeasuredAllocConf> newest;
  std::filesystem::file_time_type newest_time{};
  std::error_code error;
  std::filesystem::directory_iterator entries(directory, error);
  int looked = 0;
  for (; !error && entries != std::filesystem::directory_iterator() && looked < kMaxFilesLooked;
       entries.increment(error)) {
    const std::filesystem::directory_entry& entry = *entries;
    if (entry.path().extension() != ".json") continue;
    std::error_code file_error;
    if (!entry.is_regular_file(file_error) || file_error) continue;
    const uintmax_t size = entry.file_size(file_error);
    if (file_error || size > kMaxCandidateBytes) continue;
    ++looked;
    const auto time = entry.last_write_time(file_error);
    if (file_error || (newest && time <= newest_time)) continue;
    const std::string path = directory == "." ? entry.path().filename().string()
                                              : entry.path().string();
    auto measured = read_simulate_report(path);
    if (!measured) continue;
    newest = std::move(*measured);
    newest_time = time;
  }
  return newest;
}

std::vector<TunedVariable> apply_recommendations(const analyze::EnvAdvice& advice) {
  std::vector<TunedVariable> tuned;
  for (const analyze::Recommendation& item : advice.items) {
    if (!item.is_env) continue;
    TunedVariable variable{item.name, item.value, true, item.value, item.reason};
    if (const char* user = std::getenv(item.name.c_str()); user != nullptr) {
      variable.value = user;
      variable.applied = false;
    } else {
      setenv(item.name.c_str(), item.value.c_str(), 1);
    }
    tuned.push_back(std::move(variable));
  }
  return tuned;
}

std::vector<TunedVariable> tune_environment(const GlobalOptions& global, bool use_gpus) {
  EnvTuningOptions options;
  options.use_gpus = use_gpus;
  std::vector<std::string> notes;
  auto facts = detect_machine(global, options, notes);
  if (!facts) {  // only a --snapshot-sim file can fail, and there is none here
    std::cerr << "memscope run --tune: " << facts.message() << "\n";
    return {};
  }
  const analyze::EnvAdvice advice = analyze::recommend_env(*facts);
  std::vector<TunedVariable> tuned = apply_recommendations(advice);
  std::cerr << "memscope run --tune: environment for the job (memscope env --explain says why)\n";
  for (const TunedVariable& variable : tuned) {
    if (variable.applied) {
      std::cerr << fmt::format("  {}={}  ({})\n", variable.name, variable.value, variable.reason);
    } else {
      std::cerr << fmt::format("  {}={}  kept user's value (recommended {})\n", variable.name,
                               variable.value, variable.recommended);
    }
  }
  for (const std::string& note : advice.notes) std::cerr << "  note: " << note << "\n";
  return tuned;
}

std::string tuned_env_json(const std::vector<TunedVariable>& tuned) {
  nlohmann::json applied = nlohmann::json::object();
  nlohmann::json kept = nlohmann::json::object();
  for (const TunedVariable& variable : tuned) {
    if (variable.applied) {
      applied[variable.name] = variable.value;
    } else {
      kept[variable.name] = {{"value", variable.value}, {"recommended", variable.recommended}};
    }
  }
  return nlohmann::json{{"applied", applied}, {"kept", kept}}.dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace memscope::cli
