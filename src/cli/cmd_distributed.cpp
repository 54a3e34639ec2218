// memscope distributed --role master|worker
// worker: a node agent (agent_loop.hpp) that registers its endpoint with the master, again every
//   few intervals, so a restarted master learns it back.
// master: takes registrations (POST /api/v1/register), pulls every worker's /api/v1/snapshot each
//   interval, all at once on non-blocking sockets, and keeps the job's view
//   (analyze/cluster.hpp): per node and rank, imbalance, bottleneck, time to OOM, divergent
//   ranks, stale workers. Live table on a terminal, a line per interval otherwise, JSON at the end.
#include <netdb.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <iostream>
#include <map>
#include <memory>

#include "analyze/cluster.hpp"
#include "cli/agent_loop.hpp"
#include "cli/common.hpp"
#include "cli/exit_codes.hpp"
#include "cli/options.hpp"
#include "collect/linux/fd_budget.hpp"
#include "core/log.hpp"
#include "net/http_client.hpp"
#include "net/http_server.hpp"
#include "report/cluster_report.hpp"

namespace memscope::cli {
namespace {

constexpr const char* kName = "memscope distributed";
constexpr size_t kMaxRegistrationBytes = 4096;
// Registrations past this many endpoints get 503 (each is pulled every interval for the rest
// of the run: a loop of bogus registrations must not grow the master without bound).
constexpr size_t kMaxWorkers = 4096;

struct DistributedOptions {
  AgentOptions agent;  // --interval, --duration, --token-file, ... (both roles)
  std::string role;
  std::string master_host;
  int port = -1;
  std::string listen_host = "127.0.0.1";  // master
  std::string advertise;                  // worker
  std::string output;
  int stale_after = 3;
};

int usage_error(const std::string& message) {
  std::cerr << kName << ": " << message << "\n";
  return kExitUsage;
}

std::string bracketed(const std::string& host) {
  return host.find(':') != std::string::npos ? fmt::format("[{}]", host) : host;
}

// What a worker listening on all addresses tells the master: its hostname's first address that
// is not loopback, else the hostname itself.
std::string reachable_host() {
  const std::string name = host_name();
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  std::string found = name;
  if (getaddrinfo(name.c_str(), nullptr, &hints, &list) == 0) {
    for (const addrinfo* entry = list; entry != nullptr; entry = entry->ai_next) {
      char text[NI_MAXHOST] = {};
      if (getnameinfo(entry->ai_addr, entry->ai_addrlen, text, sizeof text, nullptr, 0,
                      NI_NUMERICHOST) == 0 &&
          !net::is_loopback_host(text)) {
        found = text;
        break;
      }
    }
    freeaddrinfo(list);
  }
  return found;
}

// ---- worker ----------------------------------------------------------------------------------

class Registrar {
 public:
  explicit Registrar(const DistributedOptions& options)
      : options_(options), client_(client_options()) {}

  // The endpoint to announce for the bound one; an error text when --advertise is malformed.
  std::string start(const std::string& bound, const std::string& token) {
    token_ = token;
    auto address = net::parse_listen_address(bound);
    if (!address) return address.message();
    std::string host = address->host;
    uint16_t port = address->port;
    if (!options_.advertise.empty()) {
      auto advertised = net::parse_listen_address(options_.advertise);
      if (!advertised) return "--advertise: " + advertised.message();
      host = advertised->host;
      if (advertised->port != 0) port = advertised->port;
    } else if (host == "0.0.0.0" || host == "::") {
      host = reachable_host();
    }
    registration_ = {fmt::format("{}:{}", bracketed(host), port), host_name(),
                     static_cast<int>(getpid())};
    std::cerr << fmt::format("{}: worker {} registers with master {}:{}\n", kName,
                             registration_.endpoint, bracketed(options_.master_host), options_.port)
              << std::flush;
    if (net::is_loopback_host(host) && !net::is_loopback_host(options_.master_host)) {
      log::warn(
          "the master at {} cannot reach {} (loopback): use --listen 0.0.0.0:PORT with "
          "--token-file, or --advertise",
          options_.master_host, registration_.endpoint);
    }
    return {};
  }

  double turn(double now) {
    client_.run_once(0);
    for (auto& [id, response] : client_.take_finished()) report(response);
    if (client_.in_flight() == 0 && now >= next_) {
      net::ClientRequest request;
      request.host = options_.master_host;
      request.port = static_cast<uint16_t>(options_.port);
      request.method = "POST";
      request.path = "/api/v1/register";
      request.body = report::registration_json(registration_);
      request.bearer_token = token_;
      client_.submit(std::move(request));
      // Again every two intervals (0.5..30 s): a restarted master learns it back that soon.
      next_ = now + std::clamp(2 * options_.agent.interval_seconds, 0.5, 30.0);
    }
    return client_.in_flight() > 0 ? 0.02 : 1e9;
  }

 private:
  net::ClientOptions client_options() const {
    net::ClientOptions o;
    o.connect_timeout_seconds = 2;
    o.timeout_seconds = 5;
    o.max_response_bytes = 64 * 1024;
    o.keep_alive = false;  // a master with 1,000 workers should not hold 1,000 idle connections
    return o;
  }
  void report(const net::ClientResponse& response) {
    const std::string problem =
        response.ok()
            ? std::string()
            : (response.status != 0 ? fmt::format("HTTP {}: {}", response.status,
                                                  response.body.substr(0, response.body.find('\n')))
                                    : response.error);
    if (problem != last_problem_ || !registered_once_) {
      if (problem.empty()) {
        log::info("registered with the master {}:{}", options_.master_host, options_.port);
      } else {
        log::warn("cannot register with the master {}:{}: {} (retrying)", options_.master_host,
                  options_.port, problem);
      }
    }
    registered_once_ = registered_once_ || problem.empty();
    last_problem_ = problem;
  }

  const DistributedOptions& options_;
  net::HttpClient client_;
  report::Registration registration_;
  std::string token_;
  double next_ = 0;
  std::string last_problem_;
  bool registered_once_ = false;
};

int worker(const GlobalOptions& global, const DistributedOptions& options) {
  if (options.master_host.empty()) return usage_error("--role worker needs --master-host");
  if (options.port < 1 || options.port > 65535) {
    return usage_error("--role worker needs --port 1..65535 (the master's)");
  }
  Registrar registrar(options);
  AgentHooks hooks;
  hooks.on_listening = [&registrar](const std::string& bound, const std::string& token) {
    return registrar.start(bound, token);
  };
  hooks.on_turn = [&registrar](double now) { return registrar.turn(now); };
  return run_agent(global, options.agent, kName, hooks);
}

// ---- master ----------------------------------------------------------------------------------

class Master {
 public:
  Master(const DistributedOptions& options, std::string token)
      : options_(options),
        token_(std::move(token)),
        tracker_(params()),
        client_(client_options()) {}

  void add_routes(net::HttpServer& server, const RecordingClock& clock) {
    server.handle(
        "/api/v1/register",
        [this, &clock](const net::HttpRequest& request) {
          auto registration = report::parse_registration(request.body);
          if (!registration) {
            return net::HttpResponse{
                400, "text/plain; charset=utf-8", registration.message() + "\n", {}};
          }
          if (!tracker_.knows(registration->endpoint) &&
              tracker_.worker_count() >= kMaxWorkers) {
            return net::HttpResponse{
                503, "text/plain; charset=utf-8",
                fmt::format("this master follows at most {} workers\n", kMaxWorkers), {}};
          }
          if (tracker_.register_worker(registration->endpoint, registration->hostname,
                                       registration->pid, clock.seconds())) {
            log::info("worker {} ({}) registered", registration->endpoint, registration->hostname);
          }
          return net::HttpResponse{200,
                                   "application/json",
                                   fmt::format("{{\"registered\":true,\"interval_seconds\":{}}}\n",
                                               options_.agent.interval_seconds),
                                   {}};
        },
        net::HttpServer::Access::kToken, net::HttpServer::Methods::kPost);
    server.handle("/api/v1/cluster", [this, &clock](const net::HttpRequest&) {
      return net::HttpResponse{200, "application/json", document(clock).dump() + "\n", {}};
    });
    server.handle(
        "/healthz",
        [](const net::HttpRequest&) {
          return net::HttpResponse{200, "text/plain", "ok\n", {}};
        },
        net::HttpServer::Access::kOpen);
  }

  // An interval ends: count misses, show the view, pull everyone again.
  void tick(double now, bool first) {
    if (!first) {
      for (const analyze::StateChange& change : tracker_.end_interval()) {
        log::warn("worker {} is {}", change.endpoint, analyze::to_string(change.to));
        if (change.to != analyze::WorkerState::kStale) continue;
        // Its kept-alive connection (if any) is to a peer that went away: close it now.
        if (auto address = net::parse_listen_address(change.endpoint)) {
          client_.drop_idle(address->host, address->port);
        }
      }
      ++intervals_;
      show(now);
    }
    for (const std::string& endpoint : tracker_.endpoints()) {
      if (in_flight_.count(endpoint) != 0) continue;  // still waiting: this interval is missed
      auto address = net::parse_listen_address(endpoint);
      if (!address) continue;
      net::ClientRequest request;
      request.host = address->host;
      request.port = address->port;
      request.path = "/api/v1/snapshot";
      request.bearer_token = token_;
      in_flight_[endpoint] = client_.submit(std::move(request));
      by_id_[in_flight_[endpoint]] = endpoint;
    }
  }

  // Progress the pulls; the most seconds the loop should then block in the server.
  double turn(double now) {
    client_.run_once(client_.in_flight() > 0 ? 0.01 : 0);
    for (auto& [id, response] : client_.take_finished()) {
      const auto it = by_id_.find(id);
      if (it == by_id_.end()) continue;
      const std::string endpoint = it->second;
      by_id_.erase(it);
      in_flight_.erase(endpoint);
      if (!response.ok()) {
        tracker_.fail(endpoint, response.status != 0 ? fmt::format("HTTP {}", response.status)
                                                     : response.error);
        continue;
      }
      auto node = report::parse_agent_snapshot(response.body);
      if (node) {
        tracker_.observe(endpoint, std::move(*node), now);
      } else {
        tracker_.fail(endpoint, node.message());
      }
    }
    return client_.in_flight() > 0 ? 0 : 0.25;
  }

  nlohmann::json document(const RecordingClock& clock) const {
    return report::cluster_json(tracker_.view(), info(), clock.seconds());
  }
  void set_endpoint(std::string endpoint) { endpoint_ = std::move(endpoint); }
  void show_final(double now) { show(now); }

 private:
  analyze::ClusterParams params() const {
    analyze::ClusterParams p;
    p.stale_after_intervals = options_.stale_after;
    return p;
  }
  net::ClientOptions client_options() const {
    net::ClientOptions o;
    o.connect_timeout_seconds = std::min(2.0, options_.agent.interval_seconds);
    o.timeout_seconds = std::max(0.5, options_.agent.interval_seconds);
    o.max_response_bytes = 16 << 20;
    // One connection per worker at most, within the descriptors this process may open (the
    // rest, and the server's connections, need some too).
    o.max_connections = std::clamp<size_t>(descriptors_ * 3 / 4, 16, 2 * kMaxWorkers);
    o.max_idle = o.max_connections;
    return o;
  }
  report::MasterInfo info() const {
    return {endpoint_,
            started_unix_ms_,
            RecordingClock::unix_ms(),
            options_.agent.interval_seconds,
            options_.stale_after,
            intervals_};
  }
  void show(double now) {
    if (!log::enabled(log::Level::kInfo)) return;
    const analyze::ClusterView view = tracker_.view();
    if (isatty(STDOUT_FILENO) == 1) {
      std::cout << "\x1b[H\x1b[2J" << report::cluster_table(view, info()) << std::flush;
    } else {
      std::cerr << kName << ": " << report::cluster_line(view, now) << "\n" << std::flush;
    }
  }

  const DistributedOptions& options_;
  std::string token_;
  analyze::ClusterTracker tracker_;
  // The soft RLIMIT_NOFILE, raised to the hard limit: a master of 1,000 workers keeps ~1,000
  // connections, more than the usual soft limit of 1,024 leaves room for.
  size_t descriptors_ = procfs::raise_open_file_limit();
  net::HttpClient client_;
  std::map<std::string, net::HttpClient::Id> in_flight_;
  std::map<net::HttpClient::Id, std::string> by_id_;
  std::string endpoint_;
  int64_t started_unix_ms_ = RecordingClock::unix_ms();
  uint64_t intervals_ = 0;
};

int master(const DistributedOptions& options) {
  const AgentOptions& agent = options.agent;
  if (options.port < 0 || options.port > 65535) {
    return usage_error("--role master needs --port 0..65535 (0 picks a free one)");
  }
  if (!(agent.interval_seconds > 0)) {
    return usage_error(fmt::format("--interval must be positive (got {})", agent.interval_seconds));
  }
  if (agent.duration_seconds < 0) return usage_error("--duration must not be negative");
  if (options.stale_after < 1) return usage_error("--stale-after must be at least 1");
  std::string token;
  if (!agent.token_file.empty()) {
    auto read = read_token_file(agent.token_file);
    if (!read) {
      std::cerr << kName << ": " << read.message() << "\n";
      return kExitBadInput;
    }
    token = std::move(*read);
  }
  if (token.empty() && !net::is_loopback_host(options.listen_host)) {
    return usage_error(fmt::format(
        "refusing to listen on {} without --token-file: anyone who can reach it could register "
        "workers and read the job's memory (listen on 127.0.0.1, or give a token)",
        options.listen_host));
  }
  if (!options.output.empty()) {
    if (Status writable = write_text_file(options.output, "{}\n"); !writable) {
      return usage_error("--output: " + writable.message());
    }
  }
  net::ServerOptions server_options;
  server_options.listen = fmt::format("{}:{}", bracketed(options.listen_host), options.port);
  server_options.bearer_token = token;
  server_options.limits.max_body_bytes = kMaxRegistrationBytes;
  server_options.max_connections =
      std::clamp<size_t>(procfs::raise_open_file_limit() / 8, 16, 1024);
  server_options.request_timeout_seconds = agent.request_timeout_seconds;
  auto server = net::HttpServer::start(server_options);
  if (!server) {
    std::cerr << kName << ": " << server.message() << "\n";
    return kExitFailure;
  }
  Master state(options, token);
  RecordingClock clock;
  state.set_endpoint((*server)->endpoint());
  state.add_routes(**server, clock);
  SignalWatcher signals({SIGINT, SIGTERM, SIGHUP});
  std::cerr << fmt::format("{}: master listening on {}{}\n", kName, (*server)->endpoint(),
                           token.empty() ? "" : " (bearer token required)")
            << std::flush;
  double next_tick = 0;
  bool first = true;
  for (;;) {
    double now = clock.seconds();
    if (agent.duration_seconds > 0 && now >= agent.duration_seconds) break;
    if (now >= next_tick) {
      state.tick(now, first);
      first = false;
      next_tick += agent.interval_seconds;
      if (next_tick < now) next_tick = now + agent.interval_seconds;
    }
    double wait = state.turn(now);
    now = clock.seconds();
    wait = std::min(wait, std::max(0.0, next_tick - now));
    if (agent.duration_seconds > 0)
      wait = std::min(wait, std::max(0.0, agent.duration_seconds - now));
    (*server)->run_once(wait);
    if (const auto received = signals.wait(0)) {
      log::info("{}: stopping", describe_signal(received->signal));
      break;
    }
  }
  state.show_final(clock.seconds());
  if (!options.output.empty()) {
    const std::string text =
        state.document(clock).dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
    if (Status written = write_text_file(options.output, text + "\n"); !written) {
      std::cerr << kName << ": " << written.message() << "\n";
      return kExitFailure;
    }
  }
  return kExitOk;
}

int distributed(const GlobalOptions& global, const DistributedOptions& options) {
  if (options.role == "worker") return worker(global, options);
  return master(options);
}

}  // namespace

Runner attach_distributed(CLI::App& sub, const GlobalOptions& global) {
  auto options = std::make_shared<DistributedOptions>();
  options->agent.listen = "127.0.0.1:0";
  sub.add_option("--role", options->role, "master: follow the job; worker: a node agent")
      ->required()
      ->check(CLI::IsMember({"master", "worker"}));
  sub.add_option("--port", options->port,
                 "master: the port to serve registrations on (0 picks one); worker: the master's");
  sub.add_option("--master-host", options->master_host, "worker: the master's address or name");
  sub.add_option("--listen", options->agent.listen,
                 "worker: ADDR:PORT its agent serves on (port 0 picks one); an address other "
                 "than loopback needs --token-file")
      ->capture_default_str();
  sub.add_option("--advertise", options->advertise,
                 "worker: ADDR:PORT to announce instead of the bound one (port 0: the bound one)");
  sub.add_option("--listen-host", options->listen_host,
                 "master: the address to serve on; other than loopback needs --token-file")
      ->capture_default_str();
  sub.add_option("-o,--output", options->output, "master: write the JSON report here at the end");
  sub.add_option("--stale-after", options->stale_after,
                 "master: a worker that has not answered for this many intervals is stale")
      ->capture_default_str();
  add_agent_options(sub, options->agent);
  return [&global, options]() { return distributed(global, *options); };
}

}  // namespace memscope::cli
