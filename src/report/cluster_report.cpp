#include "report/cluster_report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "core/units.hpp"

namespace memscope::report {
namespace {

using json = nlohmann::json;
constexpr size_t kMaxHostnameBytes = 255;

// The value at `key` as an unsigned count of bytes (0 when absent, null or not a number).
uint64_t bytes_at(const json& object, const char* key) {
  const auto it = object.find(key);
  if (it == object.end() || !it->is_number()) return 0;
  if (it->is_number_unsigned()) return it->get<uint64_t>();
  if (it->is_number_integer())
    return static_cast<uint64_t>(std::max<int64_t>(0, it->get<int64_t>()));
  const double value = it->get<double>();
  if (!(value > 0) || !std::isfinite(value)) return 0;
  // A double at or past 2^64 does not convert (undefined behaviour): clamp it.
  return value >= 18446744073709551615.0 ? UINT64_MAX : static_cast<uint64_t>(value);
}

std::optional<int> int_at(const json& object, const char* key) {
  const auto it = object.find(key);
  if (it == object.end() || !it->is_number_integer()) return std::nullopt;
  const auto value = it->get<int64_t>();
  if (value < INT32_MIN || value > INT32_MAX) return std::nullopt;
  return static_cast<int>(value);
}

std::string string_at(const json& object, const char* key) {
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

json optional_number(const std::optional<double>& value) {
  return value && std::isfinite(*value) ? json(*value) : json(nullptr);
}

bool valid_endpoint(const std::string& endpoint) {
  std::string_view port;
  if (!endpoint.empty() && endpoint.front() == '[') {
    const size_t close = endpoint.find("]:");
    if (close == std::string::npos || close < 2) return false;
    port = std::string_view(endpoint).substr(close + 2);
  } else {
    const size_t colon = endpoint.find(':');
    if (colon == std::string::npos || colon == 0 ||
        endpoint.find(':', colon + 1) != std::string::npos) {
      return false;
    }
    port = std::string_view(endpoint).substr(colon + 1);
  }
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  const int number = std::stoi(std::string(port));
  return number >= 1 && number <= 65535 &&
         std::none_of(endpoint.begin(), endpoint.end(), [](char c) {
           return static_cast<unsigned char>(c) <= 0x20 || c == '/' || c == '@' || c == 0x7f;
         });
}

std::string seconds_text(const std::optional<double>& seconds) {
  if (!seconds) return "-";
  if (*seconds >= 3600) return fmt::format("{:.1f}h", *seconds / 3600);
  if (*seconds >= 60) return fmt::format("{:.0f}m", *seconds / 60);
  return fmt::format("{:.0f}s", *seconds);
}

}  // namespace

Result<Registration> parse_registration(std::string_view body) {
  const json document = json::parse(body, nullptr, false);
  if (document.is_discarded() || !document.is_object()) {
    return make_error("registration is not a JSON object");
  }
  Registration out;
  out.endpoint = string_at(document, "endpoint");
  if (!valid_endpoint(out.endpoint)) {
    return make_error(
        fmt::format("registration: 'endpoint' must be ADDR:PORT with a port 1..65535 (got '{}')",
                    out.endpoint.substr(0, 100)));
  }
  out.hostname = string_at(document, "hostname");
  if (out.hostname.size() > kMaxHostnameBytes ||
      std::any_of(out.hostname.begin(), out.hostname.end(),
                  [](char c) { return static_cast<unsigned char>(c) < 0x20; })) {
    return make_error("registration: 'hostname' must be at most 255 printable bytes");
  }
  const auto pid = int_at(document, "pid");
  if (!pid || *pid <= 0) return make_error("registration: 'pid' must be a positive integer");
  out.pid = *pid;
  return out;
}

std::string registration_json(const Registration& registration) {
  return json{{"endpoint", registration.endpoint},
              {"hostname", registration.hostname},
              {"pid", registration.pid}}
      .dump();
}

Result<analyze::NodeReport> parse_agent_snapshot(std::string_view body) {
  const json document = json::parse(body, nullptr, false);
  if (document.is_discarded() || !document.is_object()) {
    return make_error("agent snapshot is not a JSON object");
  }
  if (string_at(document, "report") != "memscope-agent-snapshot") {
    return make_error("not a memscope-agent-snapshot document");
  }
  if (int_at(document, "schema_version").value_or(0) != 1) {
    return make_error("agent snapshot schema_version is not 1 (a newer memscope?)");
  }
  analyze::NodeReport report;
  report.hostname = string_at(document, "hostname");
  if (const auto it = document.find("time_unix_ms");
      it != document.end() && it->is_number_integer()) {
    report.time_unix_ms = it->get<int64_t>();
  }
  if (const auto host = document.find("host"); host != document.end() && host->is_object()) {
    report.host_used_bytes = bytes_at(*host, "used_bytes");
    report.host_limit_bytes = bytes_at(*host, "limit_bytes");
  }
  std::map<int, std::vector<int>> gpus_of_pid;
  if (const auto gpus = document.find("gpus"); gpus != document.end() && gpus->is_array()) {
    for (const json& gpu : *gpus) {
      if (!gpu.is_object()) continue;
      ++report.gpu_count;
      report.gpu_used_bytes += bytes_at(gpu, "used_bytes");
      report.gpu_limit_bytes += bytes_at(gpu, "total_bytes");
      const int index = int_at(gpu, "index").value_or(-1);
      if (const auto ps = gpu.find("processes"); ps != gpu.end() && ps->is_array() && index >= 0) {
        for (const json& p : *ps) {
          if (p.is_object() && int_at(p, "pid")) gpus_of_pid[*int_at(p, "pid")].push_back(index);
        }
      }
    }
  }
  if (const auto oom = document.find("oom"); oom != document.end() && oom->is_array()) {
    for (const json& a : *oom) {
      if (!a.is_object()) continue;
      analyze::ClusterResource r;
      r.resource = string_at(a, "resource");
      r.level = string_at(a, "level");
      r.used_bytes = bytes_at(a, "used_bytes");
      r.limit_bytes = bytes_at(a, "limit_bytes");
      if (const auto t = a.find("predicted_oom_seconds"); t != a.end() && t->is_number()) {
        r.time_to_oom_seconds = t->get<double>();
      }
      if (!r.resource.empty()) report.resources.push_back(std::move(r));
    }
  }
  // Processes by rank; the root is the one whose parent carries another rank (or none).
  struct Member {
    int pid = 0;
    int ppid = 0;
    const json* process = nullptr;
  };
  std::map<int, std::vector<Member>> by_rank;
  if (const auto ps = document.find("processes"); ps != document.end() && ps->is_array()) {
    for (const json& p : *ps) {
      if (!p.is_object()) continue;
      const auto rank = int_at(p, "rank");
      const auto pid = int_at(p, "pid");
      if (!rank || !pid || *rank < 0) continue;
      by_rank[*rank].push_back({*pid, int_at(p, "ppid").value_or(0), &p});
    }
  }
  for (auto& [rank, members] : by_rank) {
    std::set<int> pids;
    for (const Member& m : members) pids.insert(m.pid);
    std::stable_partition(members.begin(), members.end(),
                          [&](const Member& m) { return pids.count(m.ppid) == 0; });
    analyze::ClusterRank out;
    out.rank = rank;
    const json& root = *members.front().process;
    out.local_rank = int_at(root, "local_rank");
    out.world_size = int_at(root, "world_size");
    out.comm = string_at(root, "comm");
    std::set<int> gpus;
    for (const Member& m : members) {
      out.pids.push_back(m.pid);
      const uint64_t uss = bytes_at(*m.process, "uss_bytes");
      out.host_bytes += uss > 0 ? uss : bytes_at(*m.process, "rss_bytes");
      out.gpu_bytes += bytes_at(*m.process, "gpu_bytes");
      if (const auto g = gpus_of_pid.find(m.pid); g != gpus_of_pid.end()) {
        gpus.insert(g->second.begin(), g->second.end());
      }
    }
    out.gpus.assign(gpus.begin(), gpus.end());
    report.ranks.push_back(std::move(out));
  }
  return report;
}

json cluster_json(const analyze::ClusterView& view, const MasterInfo& info, double now_seconds) {
  json workers = json::array();
  for (const analyze::WorkerView& w : view.workers) {
    json latest = nullptr;
    if (w.latest) {
      const analyze::NodeReport& r = *w.latest;
      json resources = json::array();
      for (const analyze::ClusterResource& res : r.resources) {
        resources.push_back({{"resource", res.resource},
                             {"level", res.level},
                             {"used_bytes", res.used_bytes},
                             {"limit_bytes", res.limit_bytes},
                             {"time_to_oom_seconds", optional_number(res.time_to_oom_seconds)}});
      }
      latest = {{"time", r.time_unix_ms > 0 ? json(rfc3339_utc(r.time_unix_ms)) : json(nullptr)},
                {"host_used_bytes", r.host_used_bytes},
                {"host_limit_bytes", r.host_limit_bytes},
                {"gpu_count", r.gpu_count},
                {"gpu_used_bytes", r.gpu_used_bytes},
                {"gpu_limit_bytes", r.gpu_limit_bytes},
                {"resources", std::move(resources)},
                {"ranks", r.ranks.size()}};
    }
    workers.push_back(
        {{"endpoint", w.endpoint},
         {"state", analyze::to_string(w.state)},
         {"hostname", w.hostname},
         {"pid", w.pid},
         {"last_seen_seconds_ago", w.last_seen ? json(now_seconds - *w.last_seen) : json(nullptr)},
         {"last_seen",
          w.last_seen ? json(rfc3339_utc(info.now_unix_ms -
                                         static_cast<int64_t>((now_seconds - *w.last_seen) * 1000)))
                      : json(nullptr)},
         {"missed_intervals", w.missed_intervals},
         {"last_error", w.last_error.empty() ? json(nullptr) : json(w.last_error)},
         {"time_to_oom_seconds", optional_number(w.time_to_oom_seconds)},
         {"headroom_ratio", optional_number(w.headroom_ratio)},
         {"latest", std::move(latest)}});
  }
  json ranks = json::array();
  for (const analyze::RankView& r : view.ranks) {
    ranks.push_back(
        {{"rank", r.figures.rank},
         {"local_rank", r.figures.local_rank ? json(*r.figures.local_rank) : json(nullptr)},
         {"world_size", r.figures.world_size ? json(*r.figures.world_size) : json(nullptr)},
         {"endpoint", r.endpoint},
         {"hostname", r.hostname},
         {"pids", r.figures.pids},
         {"comm", r.figures.comm},
         {"stale", r.stale},
         {"host_bytes", r.figures.host_bytes},
         {"gpu_bytes", r.figures.gpu_bytes},
         {"memory_bytes", r.figures.memory_bytes()},
         {"gpus", r.figures.gpus},
         {"growth_bytes_per_second", optional_number(r.growth_bytes_per_second)},
         {"time_to_oom_seconds", optional_number(r.time_to_oom_seconds)}});
  }
  json imbalance = nullptr;
  if (view.imbalance) {
    imbalance = {{"basis", view.imbalance->basis},
                 {"count", view.imbalance->count},
                 {"mean_bytes", view.imbalance->mean_bytes},
                 {"max_bytes", view.imbalance->max_bytes},
                 {"max_over_mean", view.imbalance->max_over_mean},
                 {"coefficient_of_variation", view.imbalance->coefficient_of_variation}};
  }
  json bottleneck = nullptr;
  if (view.bottleneck) {
    bottleneck = {{"endpoint", view.bottleneck->endpoint},
                  {"hostname", view.bottleneck->hostname},
                  {"resource", view.bottleneck->resource},
                  {"time_to_oom_seconds", optional_number(view.bottleneck->time_to_oom_seconds)},
                  {"headroom_ratio", optional_number(view.bottleneck->headroom_ratio)},
                  {"reason", view.bottleneck->reason}};
  }
  json divergent = json::array();
  for (const analyze::Divergence& d : view.divergent) {
    divergent.push_back({{"rank", d.rank},
                         {"endpoint", d.endpoint},
                         {"hostname", d.hostname},
                         {"kind", d.kind},
                         {"value", d.value},
                         {"peer_median", d.peer_median},
                         {"threshold", d.threshold},
                         {"reason", d.reason}});
  }
  return {{"report", "memscope-distributed"},
          {"schema_version", 1},
          {"master_endpoint", info.endpoint},
          {"started",
           info.started_unix_ms > 0 ? json(rfc3339_utc(info.started_unix_ms)) : json(nullptr)},
          {"time", info.now_unix_ms > 0 ? json(rfc3339_utc(info.now_unix_ms)) : json(nullptr)},
          {"interval_seconds", info.interval_seconds},
          {"stale_after_intervals", info.stale_after_intervals},
          {"intervals", info.intervals},
          {"workers_up", view.workers_up},
          {"workers_stale", view.workers_stale},
          {"workers", std::move(workers)},
          {"ranks", std::move(ranks)},
          {"imbalance", std::move(imbalance)},
          {"bottleneck", std::move(bottleneck)},
          {"cluster_time_to_oom_seconds", optional_number(view.cluster_time_to_oom_seconds)},
          {"divergent_ranks", std::move(divergent)}};
}

std::string cluster_table(const analyze::ClusterView& view, const MasterInfo& info) {
  std::string out =
      fmt::format("memscope distributed  master {}  interval {:g} s  workers {} up, {} stale\n\n",
                  info.endpoint, info.interval_seconds, view.workers_up, view.workers_stale);
  out += fmt::format("{:<24} {:<16} {:<6} {:>21} {:>21} {:>8}\n", "WORKER", "HOST", "STATE",
                     "HOST USED/LIMIT", "GPU USED/LIMIT", "TO OOM");
  for (const analyze::WorkerView& w : view.workers) {
    std::string host = "-";
    std::string gpu = "-";
    if (w.latest) {
      host = fmt::format("{}/{}", format_bytes(w.latest->host_used_bytes),
                         format_bytes(w.latest->host_limit_bytes));
      if (w.latest->gpu_count > 0) {
        gpu = fmt::format("{}/{}", format_bytes(w.latest->gpu_used_bytes),
                          format_bytes(w.latest->gpu_limit_bytes));
      }
    }
    out += fmt::format("{:<24} {:<16} {:<6} {:>21} {:>21} {:>8}\n", w.endpoint,
                       w.hostname.substr(0, 16), analyze::to_string(w.state), host, gpu,
                       seconds_text(w.time_to_oom_seconds));
  }
  out += fmt::format("\n{:>5} {:<16} {:>8} {:>11} {:>11} {:>12}\n", "RANK", "HOST", "PID",
                     "HOST MEM", "GPU MEM", "GROWTH/MIN");
  for (const analyze::RankView& r : view.ranks) {
    out +=
        fmt::format("{:>5} {:<16} {:>8} {:>11} {:>11} {:>12}{}\n", r.figures.rank,
                    r.hostname.substr(0, 16), r.figures.pids.empty() ? 0 : r.figures.pids.front(),
                    format_bytes(r.figures.host_bytes), format_bytes(r.figures.gpu_bytes),
                    r.growth_bytes_per_second
                        ? format_bytes_delta(static_cast<int64_t>(*r.growth_bytes_per_second * 60))
                        : std::string("-"),
                    r.stale ? "  (stale)" : "");
  }
  out += "\n";
  if (view.imbalance) {
    out += fmt::format("imbalance ({}): max/mean {:.2f}, CV {:.2f}\n", view.imbalance->basis,
                       view.imbalance->max_over_mean, view.imbalance->coefficient_of_variation);
  }
  if (view.bottleneck) out += fmt::format("bottleneck: {}\n", view.bottleneck->reason);
  out += fmt::format("cluster time to OOM: {}\n", seconds_text(view.cluster_time_to_oom_seconds));
  for (const analyze::Divergence& d : view.divergent)
    out += fmt::format("divergent: {}\n", d.reason);
  return out;
}

std::string cluster_line(const analyze::ClusterView& view, double now_seconds) {
  std::string line = fmt::format("t={:.0f}s workers {} up {} stale, ranks {}", now_seconds,
                                 view.workers_up, view.workers_stale, view.ranks.size());
  if (view.imbalance) {
    line += fmt::format(", imbalance max/mean {:.2f} CV {:.2f}", view.imbalance->max_over_mean,
                        view.imbalance->coefficient_of_variation);
  }
  if (view.bottleneck) line += fmt::format(", bottleneck {}", view.bottleneck->endpoint);
  line += fmt::format(", cluster time to OOM {}", seconds_text(view.cluster_time_to_oom_seconds));
  for (const analyze::Divergence& d : view.divergent) {
    line += fmt::format(", divergent rank {} ({})", d.rank, d.kind);
  }
  return line;
}

}  // namespace memscope::report
