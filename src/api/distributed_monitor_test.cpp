#include "memscope/distributed_monitor.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "api/distributed_summary.hpp"
#include "api/test_helpers.hpp"
#include "net/http_server.hpp"
#include "report/prometheus.hpp"

namespace memscope {
namespace {

constexpr uint64_t kGiB = 1ULL << 30;

// An HTTP server answering `path` with `body`, served on its own thread until destroyed.
class FakeEndpoint {
 public:
  FakeEndpoint(const std::string& path, std::string body, std::string token = "") {
    net::ServerOptions options;
    options.bearer_token = std::move(token);
    auto server = net::HttpServer::start(options);
    if (!server) throw std::runtime_error(server.message());
    server_ = std::move(*server);
    server_->handle(path, [answer = std::move(body)](const net::HttpRequest&) {
      return net::HttpResponse{200, "application/json", answer, {}};
    });
    thread_ = std::thread([this] { server_->serve_until(stop_); });
  }
  ~FakeEndpoint() {
    stop_ = true;
    thread_.join();
  }
  FakeEndpoint(const FakeEndpoint&) = delete;
  FakeEndpoint& operator=(const FakeEndpoint&) = delete;
  std::string endpoint() const { return server_->endpoint(); }

 private:
  std::unique_ptr<net::HttpServer> server_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// An agent's /api/v1/snapshot: one rank on one 80 GiB GPU.
std::string agent_snapshot(const std::string& hostname, int rank, uint64_t uss_bytes,
                           uint64_t gpu_bytes) {
  report::AgentState state;
  state.hostname = hostname;
  state.endpoint = "127.0.0.1:1";
  state.sample.unix_ms = 1700000000000;
  state.sample.system.used_bytes = 8 * kGiB;
  state.sample.system.limit_bytes = 64 * kGiB;
  DeviceSample gpu;
  gpu.index = 0;
  gpu.total_bytes = 80 * kGiB;
  gpu.used_bytes = gpu_bytes;
  gpu.processes.push_back({static_cast<unsigned>(1000 + rank), gpu_bytes, false});
  state.sample.devices.push_back(gpu);
  ProcessSample process;
  process.pid = 1000 + rank;
  process.ppid = 1;
  process.comm = "python3";
  process.rank = rank;
  process.local_rank = 0;
  process.world_size = 2;
  process.rss_bytes = uss_bytes;
  process.uss_bytes = uss_bytes;
  process.gpu_bytes = gpu_bytes;
  state.sample.processes = {process};
  return report::snapshot_json(state).dump();
}

// A port nothing listens on: one a server had, closed again.
std::string closed_endpoint() {
  auto server = net::HttpServer::start({});
  if (!server) throw std::runtime_error(server.message());
  return (*server)->endpoint();
}

std::string error_of(const DistributedMonitorOptions& options) {
  auto monitor = DistributedMemoryMonitor::create(options);
  return monitor ? "(no error)" : monitor.message();
}

TEST(DistributedMemoryMonitor, RejectsBadOptionsNamingThem) {
  DistributedMonitorOptions options;
  EXPECT_NE(error_of(options).find("either"), std::string::npos);
  options.agents = {"127.0.0.1:9400"};
  options.master = "127.0.0.1:9401";
  EXPECT_NE(error_of(options).find("either"), std::string::npos);
  options.master.clear();
  options.agents = {"no-port"};
  EXPECT_NE(error_of(options).find("agents"), std::string::npos);
  options.agents = {"127.0.0.1:0"};
  EXPECT_NE(error_of(options).find("1..65535"), std::string::npos);
  options.agents = {"127.0.0.1:9400"};
  options.interval_seconds = 0;
  EXPECT_NE(error_of(options).find("interval_seconds"), std::string::npos);
  options.interval_seconds = 1;
  options.timeout_seconds = -1;
  EXPECT_NE(error_of(options).find("timeout_seconds"), std::string::npos);
  options.timeout_seconds = 1;
  options.stale_after_intervals = 0;
  EXPECT_NE(error_of(options).find("stale_after_intervals"), std::string::npos);
  options.stale_after_intervals = 1;
  EXPECT_EQ(error_of(options), "(no error)");
}

TEST(DistributedMemoryMonitor, PollsAgentsIntoRanksImbalanceAndStaleNodes) {
  const FakeEndpoint a("/api/v1/snapshot", agent_snapshot("node-a", 0, 1 * kGiB, 10 * kGiB));
  const FakeEndpoint b("/api/v1/snapshot", agent_snapshot("node-b", 1, 1 * kGiB, 30 * kGiB));
  const std::string gone = closed_endpoint();
  DistributedMonitorOptions options;
  options.agents = {a.endpoint(), b.endpoint(), gone};
  options.timeout_seconds = 5;
  options.stale_after_intervals = 1;
  auto monitor = DistributedMemoryMonitor::create(options);
  ASSERT_TRUE(monitor) << monitor.message();
  auto summary = (*monitor)->poll();
  ASSERT_TRUE(summary) << summary.message();

  ASSERT_EQ(summary->nodes.size(), 3U);
  EXPECT_EQ(summary->nodes_up, 2U);
  EXPECT_EQ(summary->nodes_stale, 1U);
  for (const NodeMemory& node : summary->nodes) {
    if (node.endpoint == gone) {
      EXPECT_FALSE(node.up);
      EXPECT_FALSE(node.last_error.empty());
    } else {
      EXPECT_TRUE(node.up) << node.endpoint << ": " << node.last_error;
      EXPECT_EQ(node.gpu_limit_bytes, 80 * kGiB);
      EXPECT_EQ(node.host_limit_bytes, 64 * kGiB);
    }
  }
  ASSERT_EQ(summary->ranks.size(), 2U);
  EXPECT_EQ(summary->ranks[0].rank, 0);
  EXPECT_EQ(summary->ranks[0].hostname, "node-a");
  EXPECT_EQ(summary->ranks[0].used_bytes, 11 * kGiB);
  EXPECT_EQ(summary->ranks[0].limit_bytes, 80 * kGiB);  // its one GPU
  EXPECT_EQ(summary->ranks[1].used_bytes, 31 * kGiB);
  ASSERT_TRUE(summary->imbalance_max_over_mean.has_value());
  EXPECT_NEAR(*summary->imbalance_max_over_mean, 31.0 / 21.0, 1e-6);
  EXPECT_EQ(nlohmann::json::parse(summary->json).at("report"), "memscope-distributed");
  EXPECT_EQ((*monitor)->rounds(), 1U);
  ASSERT_TRUE((*monitor)->latest().has_value());

  // The same view through a master's /api/v1/cluster, which needs a token.
  const FakeEndpoint master("/api/v1/cluster", summary->json, "s3cret");
  DistributedMonitorOptions via_master;
  via_master.master = master.endpoint();
  via_master.token = "wrong";
  auto refused = DistributedMemoryMonitor::create(via_master);
  ASSERT_TRUE(refused) << refused.message();
  auto unauthorised = (*refused)->poll();
  ASSERT_FALSE(unauthorised);
  EXPECT_NE(unauthorised.message().find("HTTP 401"), std::string::npos) << unauthorised.message();
  via_master.token = "s3cret";
  auto from_master = DistributedMemoryMonitor::create(via_master);
  ASSERT_TRUE(from_master) << from_master.message();
  auto again = (*from_master)->poll();
  ASSERT_TRUE(again) << again.message();
  ASSERT_EQ(again->ranks.size(), 2U);
  EXPECT_EQ(again->ranks[1].used_bytes, 31 * kGiB);
  EXPECT_EQ(again->nodes_stale, 1U);
  EXPECT_EQ(again->imbalance_max_over_mean, summary->imbalance_max_over_mean);
}

TEST(DistributedMemoryMonitor, AMasterThatIsAbsentOrWrongIsAnError) {
  DistributedMonitorOptions options;
  options.master = closed_endpoint();
  options.timeout_seconds = 2;
  auto absent = DistributedMemoryMonitor::create(options);
  ASSERT_TRUE(absent) << absent.message();
  auto polled = (*absent)->poll();
  ASSERT_FALSE(polled);
  EXPECT_NE(polled.message().find(options.master), std::string::npos) << polled.message();

  const FakeEndpoint wrong("/api/v1/cluster", R"({"report":"memscope-profile"})");
  options.master = wrong.endpoint();
  auto other = DistributedMemoryMonitor::create(options);
  ASSERT_TRUE(other) << other.message();
  auto not_cluster = (*other)->poll();
  ASSERT_FALSE(not_cluster);
  EXPECT_NE(not_cluster.message().find("memscope-distributed"), std::string::npos)
      << not_cluster.message();
}

TEST(DistributedMemoryMonitor, BackgroundRoundsCallBackAndSurviveAThrowingCallback) {
  const FakeEndpoint a("/api/v1/snapshot", agent_snapshot("node-a", 0, kGiB, 2 * kGiB));
  DistributedMonitorOptions options;
  options.agents = {a.endpoint()};
  options.interval_seconds = 0.1;
  auto monitor = DistributedMemoryMonitor::create(options);
  ASSERT_TRUE(monitor) << monitor.message();
  DistributedMemoryMonitor& m = **monitor;
  std::atomic<int> calls{0};
  ASSERT_TRUE(m.start([&calls](const ClusterSummary& summary) {
    ++calls;
    if (summary.ranks.size() != 1) return;
    throw std::runtime_error("callback bug");
  }));
  EXPECT_FALSE(m.start());
  ASSERT_TRUE(wait_until([&] { return calls.load() >= 3; }, 20));
  m.stop();
  EXPECT_FALSE(m.running());
  EXPECT_GE(m.callback_errors(), 3U);
  EXPECT_GE(m.rounds(), 3U);
}

TEST(DistributedSummary, RejectsOtherDocumentsNamingWhatIsWrong) {
  EXPECT_FALSE(api::summary_from_cluster_json(nlohmann::json::array()));
  EXPECT_FALSE(api::summary_from_cluster_json({{"report", "memscope-profile"}}));
  auto no_workers = api::summary_from_cluster_json({{"report", "memscope-distributed"}});
  ASSERT_FALSE(no_workers);
  EXPECT_NE(no_workers.message().find("workers"), std::string::npos);
  auto bad_rank = api::summary_from_cluster_json({{"report", "memscope-distributed"},
                                                  {"workers", nlohmann::json::array()},
                                                  {"ranks", {{{"rank", "zero"}}}}});
  ASSERT_FALSE(bad_rank);
  EXPECT_NE(bad_rank.message().find("rank"), std::string::npos);
}

}  // namespace
}  // namespace memscope
