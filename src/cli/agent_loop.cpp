// The node agent's loop (agent_loop.hpp); which processes it reports: those that use a GPU
// (NVML lists them) or have RANK, LOCAL_RANK or WORLD_SIZE in their environment, owned by the
// agent's user (every user's when it runs as root), plus every process in the trees of --pid.
#include "cli/agent_loop.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "analyze/leak.hpp"
#include "analyze/oom.hpp"
#include "cli/common.hpp"
#include "cli/exit_codes.hpp"
#include "core/log.hpp"
#include "net/http_server.hpp"
#include "report/prometheus.hpp"

namespace memscope::cli {
namespace {

constexpr size_t kMaxTokenBytes = 4096;

// RFC 6750 b64token: what a bearer token may hold.
bool is_token_text(std::string_view token) {
  const size_t end = token.find_last_not_of('=');
  if (end == std::string_view::npos) return false;
  return std::all_of(token.begin(), token.begin() + static_cast<std::ptrdiff_t>(end) + 1,
                     [](char c) {
                       return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
                              std::string_view("-._~+/").find(c) != std::string_view::npos;
                     });
}

// The processes the agent reports (see the top of this file).
class ProcessSelection {
 public:
  ProcessSelection(std::string proc_root, std::vector<int> roots)
      : proc_root_(std::move(proc_root)), roots_(std::move(roots)), uid_(geteuid()) {}

  std::vector<ProcessSample> select(const std::vector<ProcessSample>& all) const {
    const std::set<int> trees = tree_members(all);
    std::vector<ProcessSample> chosen;
    for (const ProcessSample& p : all) {
      const bool job = p.gpu_bytes > 0 || p.rank || p.local_rank || p.world_size;
      if (trees.count(p.pid) != 0 || (job && owned(p.pid))) chosen.push_back(p);
    }
    return chosen;
  }

 private:
  bool owned(int pid) const {
    if (uid_ == 0) return true;
    struct stat info {};
    const std::string path = fmt::format("{}/{}", proc_root_, pid);
    return stat(path.c_str(), &info) == 0 && info.st_uid == uid_;
  }
  std::set<int> tree_members(const std::vector<ProcessSample>& all) const {
    std::set<int> members;
    if (roots_.empty()) return members;
    std::multimap<int, int> children;
    for (const ProcessSample& p : all) children.emplace(p.ppid, p.pid);
    std::vector<int> pending = roots_;
    while (!pending.empty()) {
      const int pid = pending.back();
      pending.pop_back();
      if (!members.insert(pid).second) continue;
      const auto [first, last] = children.equal_range(pid);
      for (auto it = first; it != last; ++it) pending.push_back(it->second);
    }
    return members;
  }

  std::string proc_root_;
  std::vector<int> roots_;
  uid_t uid_;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void add_routes(net::HttpServer& server, report::AgentState& state) {
  server.handle("/metrics", [&state](const net::HttpRequest&) {
    const auto start = std::chrono::steady_clock::now();
    net::HttpResponse response{
        200, report::kPrometheusContentType, report::prometheus_text(state), {}};
    state.previous_render_seconds = seconds_since(start);
    return response;
  });
  server.handle("/api/v1/snapshot", [&state](const net::HttpRequest&) {
    return net::HttpResponse{200,
                             "application/json",
                             report::snapshot_json(state).dump(
                                 -1, ' ', false, nlohmann::json::error_handler_t::replace) +
                                 "\n",
                             {}};
  });
  server.handle(
      "/healthz",
      [](const net::HttpRequest&) {
        return net::HttpResponse{200, "text/plain", "ok\n", {}};
      },
      net::HttpServer::Access::kOpen);
  server.handle("/", [](const net::HttpRequest&) {
    return net::HttpResponse{200,
                             "text/plain; charset=utf-8",
                             "memscope agent: /metrics, /api/v1/snapshot, /healthz\n",
                             {}};
  });
}

}  // namespace

Result<std::string> read_token_file(const std::string& path) {
  struct stat info {};
  if (stat(path.c_str(), &info) != 0) {
    return make_error(fmt::format("cannot read token file '{}': {}", path, std::strerror(errno)));
  }
  if (!S_ISREG(info.st_mode)) {
    return make_error(fmt::format("token file '{}' is not a regular file", path));
  }
  if ((info.st_mode & (S_IWGRP | S_IRWXO)) != 0) {
    return make_error(fmt::format(
        "token file '{}' is open to others (mode {:04o}); make it private: chmod 600 '{}'", path,
        info.st_mode & 07777, path));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return make_error(fmt::format("cannot read token file '{}': {}", path, std::strerror(errno)));
  }
  std::string token(kMaxTokenBytes + 1, '\0');
  in.read(token.data(), static_cast<std::streamsize>(token.size()));
  token.resize(static_cast<size_t>(in.gcount()));
  if (token.size() > kMaxTokenBytes) {
    return make_error(fmt::format("token file '{}' is larger than {} bytes", path, kMaxTokenBytes));
  }
  const size_t end = token.find_last_not_of(" \t\r\n");
  token.resize(end == std::string::npos ? 0 : end + 1);
  if (token.empty()) return make_error(fmt::format("token file '{}' is empty", path));
  if (!is_token_text(token)) {
    return make_error(fmt::format(
        "token file '{}' must hold one token of letters, digits and -._~+/ (then optional =)",
        path));
  }
  return token;
}

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return "unknown";
  return name;
}

int run_agent(const GlobalOptions& global, const AgentOptions& options, const std::string& name,
              const AgentHooks& hooks) {
  auto usage_error = [&name](const std::string& message) {
    std::cerr << name << ": " << message << "\n";
    return kExitUsage;
  };
  if (!(options.interval_seconds > 0)) {
    return usage_error(
        fmt::format("--interval must be positive (got {})", options.interval_seconds));
  }
  if (options.duration_seconds < 0) {
    return usage_error(
        fmt::format("--duration must not be negative (got {})", options.duration_seconds));
  }
  if (!(options.request_timeout_seconds > 0)) {
    return usage_error("--request-timeout must be positive");
  }
  auto address = net::parse_listen_address(options.listen);
  if (!address) return usage_error("--listen: " + address.message());
  std::string token;
  if (!options.token_file.empty()) {
    auto read = read_token_file(options.token_file);
    if (!read) {
      std::cerr << name << ": " << read.message() << "\n";
      return kExitBadInput;
    }
    token = std::move(*read);
  }
  if (token.empty() && !net::is_loopback_host(address->host)) {
    return usage_error(fmt::format(
        "refusing to listen on {} without --token-file: anyone who can reach it could read this "
        "node's processes and memory (listen on 127.0.0.1, or give a token)",
        options.listen));
  }
  for (int pid : options.pids) {
    if (pid <= 0 || !process_exists(global.proc_root, pid)) {
      return usage_error(fmt::format("--pid {}: no such process", pid));
    }
  }
  analyze::ModelParams params;
  params.threshold_percent = options.threshold_percent;
  if (auto invalid = analyze::validate(params)) return usage_error(*invalid);
  auto sampler = open_sampler(global, {}, !options.no_gpu);
  if (!sampler) return usage_error(sampler.message());

  net::ServerOptions server_options;
  server_options.listen = options.listen;
  server_options.bearer_token = token;
  server_options.request_timeout_seconds = options.request_timeout_seconds;
  auto server = net::HttpServer::start(server_options);
  if (!server) {
    std::cerr << name << ": " << server.message() << "\n";
    return kExitFailure;
  }

  report::AgentState state;
  state.hostname = host_name();
  state.endpoint = (*server)->endpoint();
  state.interval_seconds = options.interval_seconds;
  state.start_unix_ms = RecordingClock::unix_ms();
  state.notes = (*sampler)->notes();
  add_routes(**server, state);

  analyze::ObservationScope scope;  // host (or its cgroup) and every GPU; no process tree
  analyze::OomMonitor monitor(params, scope);
  analyze::LeakParams leak_params;
  leak_params.threshold_mb_per_min = options.leak_threshold_mb_per_min;
  analyze::LeakDetector leaks(leak_params);
  const ProcessSelection selection(global.proc_root, options.pids);

  SignalWatcher signals({SIGINT, SIGTERM, SIGHUP});
  RecordingClock clock;
  std::cerr << fmt::format("{}: listening on {}{}\n", name, state.endpoint,
                           token.empty() ? "" : " (bearer token required)")
            << std::flush;
  if (hooks.on_listening) {
    if (const std::string refused = hooks.on_listening(state.endpoint, token); !refused.empty()) {
      return usage_error(refused);
    }
  }
  double next_sample = 0;
  for (;;) {
    const double now = clock.seconds();
    if (options.duration_seconds > 0 && now >= options.duration_seconds) break;
    if (now >= next_sample) {
      const auto start = std::chrono::steady_clock::now();
      Sample sample = (*sampler)->sample(now, RecordingClock::unix_ms());
      sample.processes = selection.select(sample.processes);
      (void)monitor.add(sample);
      leaks.add(sample);
      state.assessments = monitor.assessments();
      state.leaks = leaks.verdicts();
      state.sample = std::move(sample);
      ++state.samples_taken;
      state.sample_duration_seconds = seconds_since(start);
      log::debug("sample {}: {} processes reported, {:.3f} s", state.samples_taken,
                 state.sample.processes.size(), state.sample_duration_seconds);
      next_sample += options.interval_seconds;
      if (next_sample < now) next_sample = now + options.interval_seconds;
    }
    double wait = std::min(next_sample - clock.seconds(), 0.25);
    if (hooks.on_turn) wait = std::min(wait, hooks.on_turn(clock.seconds()));
    if (options.duration_seconds > 0) {
      wait = std::min(wait, options.duration_seconds - clock.seconds());
    }
    (*server)->run_once(std::max(wait, 0.0));
    if (const auto received = signals.wait(0)) {
      log::info("{}: stopping", describe_signal(received->signal));
      break;
    }
  }
  const auto& stats = (*server)->stats();
  log::debug("served {} requests ({} unauthorized, {} timed out, {} connections refused)",
             stats.requests, stats.unauthorized, stats.timeouts, stats.connections_refused);
  return kExitOk;
}

}  // namespace memscope::cli
