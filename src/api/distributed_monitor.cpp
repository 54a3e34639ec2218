#include "memscope/distributed_monitor.hpp"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <exception>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "analyze/cluster.hpp"
#include "api/distributed_summary.hpp"
#include "api/periodic_thread.hpp"
#include "core/log.hpp"
#include "net/http_client.hpp"
#include "net/http_server.hpp"
#include "report/cluster_report.hpp"

namespace memscope {

namespace {

using Clock = std::chrono::steady_clock;
constexpr double kMinIntervalSeconds = 0.1;

Result<net::ListenAddress> parse_endpoint(const std::string& what, const std::string& text) {
  auto address = net::parse_listen_address(text);
  if (!address) return make_error(fmt::format("{}: {}", what, address.message()));
  if (address->port == 0) {
    return make_error(fmt::format("{}: '{}': the port must be 1..65535", what, text));
  }
  return address;
}

Status check_options(const DistributedMonitorOptions& options) {
  if (options.agents.empty() == options.master.empty()) {
    return make_error("give either agents (HOST:PORT of node agents) or master (HOST:PORT)");
  }
  for (const std::string& agent : options.agents) {
    if (auto address = parse_endpoint("agents", agent); !address) return address.error();
  }
  if (!options.master.empty()) {
    if (auto address = parse_endpoint("master", options.master); !address) {
      return address.error();
    }
  }
  if (Status ok =
          api::check_interval("interval_seconds", options.interval_seconds, kMinIntervalSeconds);
      !ok) {
    return ok;
  }
  if (!(std::isfinite(options.timeout_seconds) && options.timeout_seconds > 0)) {
    return make_error(fmt::format("timeout_seconds must be a finite number > 0 (got {})",
                                  options.timeout_seconds));
  }
  if (options.stale_after_intervals < 1) {
    return make_error(
        fmt::format("stale_after_intervals must be >= 1 (got {})", options.stale_after_intervals));
  }
  return {};
}

std::string failure_of(const net::ClientResponse& response) {
  if (response.status != 0) return fmt::format("HTTP {}", response.status);
  return response.error;
}

}  // namespace

struct DistributedMemoryMonitor::Impl {
  explicit Impl(const DistributedMonitorOptions& monitor_options)
      : options(monitor_options),
        epoch(Clock::now()),
        started_unix_ms(api::unix_ms_now()),
        tracker(params_of(monitor_options)),
        thread("DistributedMemoryMonitor", monitor_options.interval_seconds) {
    for (const std::string& agent : options.agents) tracker.register_worker(agent, "", 0, 0);
  }

  static analyze::ClusterParams params_of(const DistributedMonitorOptions& options) {
    analyze::ClusterParams params;
    params.stale_after_intervals = options.stale_after_intervals;
    return params;
  }
  double seconds() const { return std::chrono::duration<double>(Clock::now() - epoch).count(); }
  net::ClientOptions client_options() const {
    net::ClientOptions client;
    client.connect_timeout_seconds = std::min(2.0, options.timeout_seconds);
    client.timeout_seconds = options.timeout_seconds;
    client.keep_alive = false;
    return client;
  }
  Result<nlohmann::json> poll_agents();
  Result<nlohmann::json> poll_master();
  Result<ClusterSummary> poll();
  void background(const Callback& callback);

  const DistributedMonitorOptions options;
  const Clock::time_point epoch;
  const int64_t started_unix_ms;
  std::mutex poll_mutex;  // one round at a time
  analyze::ClusterTracker tracker;
  uint64_t intervals = 0;

  mutable std::mutex state_mutex;
  std::optional<ClusterSummary> latest;
  uint64_t rounds = 0;
  uint64_t callback_errors = 0;

  api::PeriodicThread thread;
};

Result<nlohmann::json> DistributedMemoryMonitor::Impl::poll_agents() {
  std::vector<net::ClientRequest> requests;
  for (const std::string& agent : options.agents) {
    const auto address = net::parse_listen_address(agent);  // checked by create()
    net::ClientRequest request;
    request.host = address->host;
    request.port = address->port;
    request.path = "/api/v1/snapshot";
    request.bearer_token = options.token;
    requests.push_back(std::move(request));
  }
  const std::vector<net::ClientResponse> responses = net::fetch_all(requests, client_options());
  const double now = seconds();
  for (size_t i = 0; i < responses.size() && i < options.agents.size(); ++i) {
    const std::string& agent = options.agents[i];
    if (!responses[i].ok()) {
      tracker.fail(agent, failure_of(responses[i]));
      continue;
    }
    auto node = report::parse_agent_snapshot(responses[i].body);
    if (node) {
      tracker.observe(agent, std::move(*node), now);
    } else {
      tracker.fail(agent, node.message());
    }
  }
  for (const analyze::StateChange& change : tracker.end_interval()) {
    log::warn("DistributedMemoryMonitor: agent {} is {}", change.endpoint,
              analyze::to_string(change.to));
  }
  ++intervals;
  report::MasterInfo info;
  info.endpoint = "";
  info.started_unix_ms = started_unix_ms;
  info.now_unix_ms = api::unix_ms_now();
  info.interval_seconds = options.interval_seconds;
  info.stale_after_intervals = options.stale_after_intervals;
  info.intervals = intervals;
  return report::cluster_json(tracker.view(), info, now);
}

Result<nlohmann::json> DistributedMemoryMonitor::Impl::poll_master() {
  const auto address = net::parse_listen_address(options.master);  // checked by create()
  net::ClientRequest request;
  request.host = address->host;
  request.port = address->port;
  request.path = "/api/v1/cluster";
  request.bearer_token = options.token;
  const std::vector<net::ClientResponse> responses = net::fetch_all({request}, client_options());
  if (responses.empty() || !responses.front().ok()) {
    return make_error(fmt::format("master {}: {}", options.master,
                                  responses.empty() ? "no answer" : failure_of(responses.front())));
  }
  nlohmann::json document = nlohmann::json::parse(responses.front().body, nullptr, false);
  if (document.is_discarded() || !document.is_object() ||
      document.value("report", "") != "memscope-distributed") {
    return make_error(
        fmt::format("master {}: /api/v1/cluster did not answer a memscope-distributed document",
                    options.master));
  }
  return document;
}

Result<ClusterSummary> DistributedMemoryMonitor::Impl::poll() {
  Result<nlohmann::json> document = make_error("");
  {
    std::lock_guard lock(poll_mutex);
    document = options.master.empty() ? poll_agents() : poll_master();
  }
  if (!document) return document.error();
  auto summary = api::summary_from_cluster_json(*document);
  if (!summary) {
    return make_error(fmt::format("{}: {}", options.master.empty() ? "agents" : options.master,
                                  summary.message()));
  }
  std::lock_guard lock(state_mutex);
  latest = *summary;
  ++rounds;
  return summary;
}

void DistributedMemoryMonitor::Impl::background(const Callback& callback) {
  auto summary = poll();
  if (!summary) {
    log::warn("DistributedMemoryMonitor: {}", summary.message());
    return;
  }
  if (!callback) return;
  try {
    callback(*summary);
  } catch (const std::exception& error) {
    std::lock_guard lock(state_mutex);
    ++callback_errors;
    log::warn("DistributedMemoryMonitor: the callback threw: {}", error.what());
  } catch (...) {
    std::lock_guard lock(state_mutex);
    ++callback_errors;
    log::warn("DistributedMemoryMonitor: the callback threw a non-standard exception");
  }
}

DistributedMemoryMonitor::DistributedMemoryMonitor() = default;

DistributedMemoryMonitor::~DistributedMemoryMonitor() { stop(); }

Result<std::unique_ptr<DistributedMemoryMonitor>> DistributedMemoryMonitor::create(
    const DistributedMonitorOptions& options) {
  if (Status checked = check_options(options); !checked) return checked.error();
  std::unique_ptr<DistributedMemoryMonitor> monitor(new DistributedMemoryMonitor());
  monitor->impl_ = std::make_unique<Impl>(options);
  return monitor;
}

Result<ClusterSummary> DistributedMemoryMonitor::poll() { return impl_->poll(); }

Status DistributedMemoryMonitor::start(Callback callback) {
  Impl& impl = *impl_;
  return impl.thread.start([&impl, on_round = std::move(callback)] { impl.background(on_round); });
}

void DistributedMemoryMonitor::stop() { impl_->thread.stop(); }

bool DistributedMemoryMonitor::running() const { return impl_->thread.running(); }

std::optional<ClusterSummary> DistributedMemoryMonitor::latest() const {
  std::lock_guard lock(impl_->state_mutex);
  return impl_->latest;
}

uint64_t DistributedMemoryMonitor::rounds() const {
  std::lock_guard lock(impl_->state_mutex);
  return impl_->rounds;
}

uint64_t DistributedMemoryMonitor::callback_errors() const {
  std::lock_guard lock(impl_->state_mutex);
  return impl_->callback_errors;
}

}  // namespace memscope
