#include "report/prometheus.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <utility>

#include "core/units.hpp"
#include "report/escape.hpp"
#include "report/summary_json.hpp"

namespace memscope::report {
namespace {

using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;
using nlohmann::json;

void append_label_escaped(std::string& out, std::string_view value) {
  // Prometheus rejects a whole scrape for one invalid UTF-8 byte in any label (a GPU name, a
  // cgroup path, a hostname as well as a comm): anything not plain ASCII is checked.
  std::string repaired;
  if (std::any_of(value.begin(), value.end(),
                  [](char c) { return static_cast<unsigned char>(c) >= 0x80; })) {
    repaired = valid_utf8(value);
    value = repaired;
  }
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

// Writes families: HELP and TYPE once each, then the family's samples.
class Exposition {
 public:
  explicit Exposition(size_t expected_bytes) { out_.reserve(expected_bytes); }

  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    for (char c : help) {  // HELP escapes backslash and newline
      if (c == '\\') {
        out_ += "\\\\";
      } else if (c == '\n') {
        out_ += "\\n";
      } else {
        out_ += c;
      }
    }
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }

  void sample(std::string_view name, Labels labels, double value) {
    begin(name, labels);
    out_ += format_sample_value(value);
    out_ += '\n';
  }
  void sample(std::string_view name, Labels labels, uint64_t value) {
    begin(name, labels);
    fmt::format_to(std::back_inserter(out_), "{}\n", value);
  }

  std::string take() { return std::move(out_); }

 private:
  void begin(std::string_view name, Labels labels) {
    out_ += name;
    if (labels.size() != 0) {
      out_ += '{';
      bool first = true;
      for (const auto& [label, value] : labels) {
        if (!first) out_ += ',';
        first = false;
        out_ += label;
        out_ += "=\"";
        append_label_escaped(out_, value);
        out_ += '"';
      }
      out_ += '}';
    }
    out_ += ' ';
  }
  std::string out_;
};

std::string optional_int(const std::optional<int>& value) {
  return value ? std::to_string(*value) : std::string();
}

json optional_json(const std::optional<int>& value) {
  return value ? json(*value) : json(nullptr);
}

void host_families(Exposition& out, const SystemSample& system) {
  const MemInfo& meminfo = system.meminfo;
  out.family("memscope_host_memory_total_bytes", "gauge", "Host memory (MemTotal).");
  out.sample("memscope_host_memory_total_bytes", {}, meminfo.total_bytes);
  out.family("memscope_host_memory_available_bytes", "gauge", "Host memory available (MemAvailable).");
  out.sample("memscope_host_memory_available_bytes", {}, meminfo.available_bytes);
  out.family("memscope_host_memory_used_bytes", "gauge",
             "Host memory used against the tightest limit: the cgroup's usage, or MemTotal - "
             "MemAvailable.");
  out.sample("memscope_host_memory_used_bytes", {}, system.used_bytes);
  out.family("memscope_host_memory_limit_bytes", "gauge",
             "The tightest host memory limit: the cgroup limit, or MemTotal.");
  out.sample("memscope_host_memory_limit_bytes", {{"source", system.limit_source}},
             system.limit_bytes);
  out.family("memscope_host_swap_used_bytes", "gauge", "Swap in use.");
  out.sample("memscope_host_swap_used_bytes", {},
             meminfo.swap_total_bytes > meminfo.swap_free_bytes
                 ? meminfo.swap_total_bytes - meminfo.swap_free_bytes
                 : 0);
  if (system.cgroup && system.cgroup->version != 0) {
    const CgroupMemory& cgroup = *system.cgroup;
    out.family("memscope_cgroup_memory_usage_bytes", "gauge", "Memory cgroup usage.");
    out.sample("memscope_cgroup_memory_usage_bytes", {{"cgroup", cgroup.path}}, cgroup.usage_bytes);
    if (cgroup.limit_bytes) {
      out.family("memscope_cgroup_memory_limit_bytes", "gauge",
                 "The tightest memory limit up the cgroup tree.");
      out.sample("memscope_cgroup_memory_limit_bytes",
                 {{"cgroup", cgroup.path}, {"limit_cgroup", cgroup.limit_path}},
                 *cgroup.limit_bytes);
    }
    out.family("memscope_cgroup_oom_kills_total", "counter", "OOM kills in the memory cgroup.");
    out.sample("memscope_cgroup_oom_kills_total", {{"cgroup", cgroup.path}},
               cgroup.oom_kill_events);
  }
  if (system.vmstat.has_oom_kill) {
    out.family("memscope_host_oom_kills_total", "counter", "Kernel OOM kills (vmstat oom_kill).");
    out.sample("memscope_host_oom_kills_total", {}, system.vmstat.oom_kill);
  }
  if (system.pressure.available) {
    out.family("memscope_host_memory_pressure_some_ratio", "gauge",
               "Share of the last 10 s some task stalled on memory (PSI some avg10 / 100).");
    out.sample("memscope_host_memory_pressure_some_ratio", {}, system.pressure.some.avg10 / 100);
  }
}

void gpu_families(Exposition& out, const std::vector<DeviceSample>& devices) {
  if (devices.empty()) return;
  std::vector<std::string> indices;
  indices.reserve(devices.size());
  for (const DeviceSample& device : devices) indices.push_back(std::to_string(device.index));
  out.family("memscope_gpu_info", "gauge", "One per GPU, with its name.");
  for (size_t i = 0; i < devices.size(); ++i) {
    out.sample("memscope_gpu_info",
               {{"gpu", indices[i]}, {"uuid", devices[i].uuid}, {"name", devices[i].name}},
               uint64_t{1});
  }
  out.family("memscope_gpu_up", "gauge", "1 when the GPU could be read, 0 when it was lost.");
  for (size_t i = 0; i < devices.size(); ++i) {
    out.sample("memscope_gpu_up", {{"gpu", indices[i]}, {"uuid", devices[i].uuid}},
               uint64_t{devices[i].ok ? 1U : 0U});
  }
  const struct {
    const char* name;
    const char* help;
    uint64_t DeviceSample::*field;
  } memory[] = {
      {"memscope_gpu_memory_used_bytes", "GPU memory used (NVML).", &DeviceSample::used_bytes},
      {"memscope_gpu_memory_total_bytes", "GPU memory in total.", &DeviceSample::total_bytes},
      {"memscope_gpu_memory_free_bytes", "GPU memory free.", &DeviceSample::free_bytes},
  };
  for (const auto& family : memory) {
    out.family(family.name, "gauge", family.help);
    for (size_t i = 0; i < devices.size(); ++i) {
      if (!devices[i].ok) continue;
      out.sample(family.name, {{"gpu", indices[i]}, {"uuid", devices[i].uuid}},
                 devices[i].*family.field);
    }
  }
  out.family("memscope_gpu_utilization_ratio", "gauge", "GPU busy share over NVML's last period.");
  for (size_t i = 0; i < devices.size(); ++i) {
    if (!devices[i].ok || !devices[i].utilization_percent) continue;
    out.sample("memscope_gpu_utilization_ratio", {{"gpu", indices[i]}, {"uuid", devices[i].uuid}},
               *devices[i].utilization_percent / 100.0);
  }
}

void process_families(Exposition& out, const std::vector<ProcessSample>& processes) {
  out.family("memscope_process_memory_bytes", "gauge",
             "Memory of a reported process by kind: rss, pss, uss (private) and gpu (summed "
             "over GPUs). rank/local_rank from RANK/LOCAL_RANK in its environment, empty when "
             "unknown.");
  for (const ProcessSample& process : processes) {
    const std::string pid = std::to_string(process.pid);
    const std::string comm = valid_utf8(process.comm);
    const std::string rank = optional_int(process.rank);
    const std::string local_rank = optional_int(process.local_rank);
    const std::pair<const char*, uint64_t> kinds[] = {{"rss", process.rss_bytes},
                                                      {"pss", process.pss_bytes},
                                                      {"uss", process.uss_bytes},
                                                      {"gpu", process.gpu_bytes}};
    for (const auto& [kind, bytes] : kinds) {
      out.sample("memscope_process_memory_bytes",
                 {{"pid", pid},
                  {"comm", comm},
                  {"rank", rank},
                  {"local_rank", local_rank},
                  {"kind", kind}},
                 bytes);
    }
  }
}

void oom_families(Exposition& out, const std::vector<analyze::Assessment>& assessments) {
  if (assessments.empty()) return;
  out.family("memscope_oom_risk_level", "gauge",
             "OOM risk per resource: 0 low, 1 medium, 2 high, 3 critical.");
  for (const analyze::Assessment& a : assessments) {
    out.sample("memscope_oom_risk_level", {{"resource", a.resource}},
               static_cast<uint64_t>(risk_level_value(a.level)));
  }
  out.family("memscope_oom_predicted_seconds", "gauge",
             "Forecast time until the resource reaches its limit; +Inf when it is not growing.");
  for (const analyze::Assessment& a : assessments) {
    out.sample("memscope_oom_predicted_seconds", {{"resource", a.resource}},
               a.predicted_oom_seconds ? *a.predicted_oom_seconds
                                       : std::numeric_limits<double>::infinity());
  }
  out.family("memscope_oom_growth_bytes_per_second", "gauge",
             "Fitted growth of the resource's memory envelope (may be negative).");
  for (const analyze::Assessment& a : assessments) {
    out.sample("memscope_oom_growth_bytes_per_second", {{"resource", a.resource}},
               a.growth_bytes_per_second);
  }
  out.family("memscope_oom_confidence_ratio", "gauge", "Confidence of the forecast, 0..1.");
  for (const analyze::Assessment& a : assessments) {
    out.sample("memscope_oom_confidence_ratio", {{"resource", a.resource}}, a.confidence);
  }
  out.family("memscope_oom_limit_bytes", "gauge", "The limit the resource is measured against.");
  for (const analyze::Assessment& a : assessments) {
    out.sample("memscope_oom_limit_bytes", {{"resource", a.resource}}, a.limit_bytes);
  }
}

void leak_families(Exposition& out, const std::vector<analyze::LeakVerdict>& leaks) {
  if (leaks.empty()) return;
  std::vector<std::string> pids;
  pids.reserve(leaks.size());
  std::vector<std::string> comms;
  comms.reserve(leaks.size());
  for (const analyze::LeakVerdict& v : leaks) {
    pids.push_back(std::to_string(v.pid));
    comms.push_back(valid_utf8(v.comm));
  }
  out.family("memscope_leak_growth_bytes_per_second", "gauge",
             "Trend of a process's memory (memory=uss, or gpuN for its memory on GPU N).");
  for (size_t i = 0; i < leaks.size(); ++i) {
    out.sample("memscope_leak_growth_bytes_per_second",
               {{"pid", pids[i]}, {"comm", comms[i]}, {"memory", leaks[i].memory}},
               leaks[i].growth_bytes_per_second);
  }
  out.family("memscope_leak_suspected", "gauge", "1 when the verdict is 'leak suspected'.");
  for (size_t i = 0; i < leaks.size(); ++i) {
    out.sample("memscope_leak_suspected",
               {{"pid", pids[i]}, {"comm", comms[i]}, {"memory", leaks[i].memory}},
               uint64_t{leaks[i].verdict == "leak suspected" ? 1U : 0U});
  }
}

}  // namespace

int risk_level_value(analyze::RiskLevel level) { return static_cast<int>(level); }

std::string escape_label_value(std::string_view value) {
  std::string escaped;
  escaped.reserve(value.size());
  append_label_escaped(escaped, value);
  return escaped;
}

std::string format_sample_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    return fmt::format("{}", static_cast<int64_t>(value));
  }
  return fmt::format("{}", value);
}

std::string prometheus_text(const AgentState& state) {
  const Sample& sample = state.sample;
  Exposition out(4096 + sample.processes.size() * 4 * 120 + sample.devices.size() * 600);
  out.family("memscope_agent_info", "gauge", "The agent: version, host name and endpoint.");
  out.sample("memscope_agent_info",
             {{"version", state.memscope_version},
              {"hostname", state.hostname},
              {"endpoint", state.endpoint}},
             uint64_t{1});
  out.family("memscope_agent_samples_total", "counter", "Samples the agent has taken.");
  out.sample("memscope_agent_samples_total", {}, state.samples_taken);
  out.family("memscope_agent_sample_duration_seconds", "gauge", "What the latest sample cost.");
  out.sample("memscope_agent_sample_duration_seconds", {}, state.sample_duration_seconds);
  out.family("memscope_agent_scrape_duration_seconds", "gauge",
             "How long rendering the previous /metrics answer took.");
  out.sample("memscope_agent_scrape_duration_seconds", {}, state.previous_render_seconds);
  out.family("memscope_agent_last_sample_timestamp_seconds", "gauge",
             "Wall-clock time of the latest sample (Unix seconds).");
  out.sample("memscope_agent_last_sample_timestamp_seconds", {},
             static_cast<double>(sample.unix_ms) / 1000.0);
  out.family("memscope_agent_processes", "gauge", "Processes the agent reports.");
  out.sample("memscope_agent_processes", {}, uint64_t{sample.processes.size()});
  host_families(out, sample.system);
  gpu_families(out, sample.devices);
  process_families(out, sample.processes);
  oom_families(out, state.assessments);
  leak_families(out, state.leaks);
  return out.take();
}

nlohmann::json snapshot_json(const AgentState& state) {
  const Sample& sample = state.sample;
  const SystemSample& system = sample.system;
  const MemInfo& meminfo = system.meminfo;
  json host = {
      {"total_bytes", meminfo.total_bytes},
      {"available_bytes", meminfo.available_bytes},
      {"used_bytes", system.used_bytes},
      {"limit_bytes", system.limit_bytes},
      {"limit_source", system.limit_source},
      {"swap_total_bytes", meminfo.swap_total_bytes},
      {"swap_used_bytes", meminfo.swap_total_bytes > meminfo.swap_free_bytes
                              ? meminfo.swap_total_bytes - meminfo.swap_free_bytes
                              : 0},
      {"cgroup", cgroup_json(system.cgroup)},
      {"pressure", pressure_json(system.pressure)},
      {"oom_kills", system.vmstat.has_oom_kill ? json(system.vmstat.oom_kill) : json(nullptr)},
  };
  json gpus = json::array();
  for (const DeviceSample& device : sample.devices) {
    json entry = device_json(device);
    entry["uuid"] = device.uuid;
    entry["name"] = device.name;
    gpus.push_back(std::move(entry));
  }
  json processes = json::array();
  for (const ProcessSample& p : sample.processes) {
    processes.push_back({{"pid", p.pid},
                         {"ppid", p.ppid},
                         {"comm", valid_utf8(p.comm)},
                         {"cmdline", valid_utf8(p.cmdline)},
                         {"rank", optional_json(p.rank)},
                         {"local_rank", optional_json(p.local_rank)},
                         {"world_size", optional_json(p.world_size)},
                         {"rss_bytes", p.rss_bytes},
                         {"pss_bytes", p.pss_bytes},
                         {"uss_bytes", p.uss_bytes},
                         {"swap_bytes", p.swap_bytes},
                         {"gpu_bytes", p.gpu_bytes}});
  }
  json oom = json::array();
  for (const analyze::Assessment& a : state.assessments) {
    oom.push_back({{"resource", a.resource},
                   {"kind", analyze::to_string(a.kind)},
                   {"level", analyze::to_string(a.level)},
                   {"risk_level", risk_level_value(a.level)},
                   {"used_bytes", a.used_bytes},
                   {"limit_bytes", a.limit_bytes},
                   {"limit_source", a.limit_source},
                   {"usage_percent", a.usage_percent},
                   {"growth_bytes_per_second", a.growth_bytes_per_second},
                   {"growing", a.growing},
                   {"predicted_oom_seconds", a.predicted_oom_seconds
                                                 ? json(*a.predicted_oom_seconds)
                                                 : json(nullptr)},
                   {"confidence", a.confidence},
                   {"reason", a.reason},
                   {"recommendation", a.recommendation}});
  }
  json leaks = json::array();
  for (const analyze::LeakVerdict& v : state.leaks) {
    leaks.push_back({{"pid", v.pid},
                     {"comm", valid_utf8(v.comm)},
                     {"memory", v.memory},
                     {"verdict", v.verdict},
                     {"growth_bytes_per_second", v.growth_bytes_per_second},
                     {"recent_growth_bytes_per_second", v.recent_growth_bytes_per_second},
                     {"current_bytes", v.current_bytes},
                     {"peak_bytes", v.peak_bytes},
                     {"confidence", v.confidence}});
  }
  return {{"report", "memscope-agent-snapshot"},
          {"schema_version", 1},
          {"hostname", state.hostname},
          {"endpoint", state.endpoint},
          {"memscope_version", state.memscope_version},
          {"time", sample.unix_ms > 0 ? json(rfc3339_utc(sample.unix_ms)) : json(nullptr)},
          {"time_unix_ms", sample.unix_ms},
          {"started", state.start_unix_ms > 0 ? json(rfc3339_utc(state.start_unix_ms))
                                              : json(nullptr)},
          {"interval_seconds", state.interval_seconds},
          {"samples_taken", state.samples_taken},
          {"host", std::move(host)},
          {"gpus", std::move(gpus)},
          {"processes", std::move(processes)},
          {"oom", std::move(oom)},
          {"leaks", std::move(leaks)},
          {"notes", state.notes}};
}

}  // namespace memscope::report
