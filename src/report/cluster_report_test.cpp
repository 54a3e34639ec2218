#include "report/cluster_report.hpp"

#include <gtest/gtest.h>

#include <string>

#include "report/prometheus.hpp"

namespace memscope::report {
namespace {

TEST(Registration, ParsesWhatAWorkerSends) {
  const Registration sent{"10.0.0.7:9401", "node-a", 4242};
  auto parsed = parse_registration(registration_json(sent));
  ASSERT_TRUE(parsed) << parsed.message();
  EXPECT_EQ(parsed->endpoint, "10.0.0.7:9401");
  EXPECT_EQ(parsed->hostname, "node-a");
  EXPECT_EQ(parsed->pid, 4242);
  parsed = parse_registration(R"({"endpoint":"[fe80::1]:80","hostname":"","pid":1})");
  EXPECT_TRUE(parsed) << parsed.message();
}

TEST(Registration, RejectsMalformedOnesNamingTheField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "not a JSON object"},
      {"[1,2]", "not a JSON object"},
      {"{\"endpoint\":", "not a JSON object"},
      {R"({"hostname":"a","pid":1})", "'endpoint'"},
      {R"({"endpoint":"10.0.0.1","hostname":"a","pid":1})", "'endpoint'"},
      {R"({"endpoint":"10.0.0.1:0","hostname":"a","pid":1})", "'endpoint'"},
      {R"({"endpoint":"10.0.0.1:70000","hostname":"a","pid":1})", "'endpoint'"},
      {R"({"endpoint":"a b:80","hostname":"a","pid":1})", "'endpoint'"},
      {R"({"endpoint":"h:80/x","hostname":"a","pid":1})", "'endpoint'"},
      {R"({"endpoint":":80","hostname":"a","pid":1})", "'endpoint'"},
      {R"({"endpoint":42,"hostname":"a","pid":1})", "'endpoint'"},
      {R"({"endpoint":"h:80","hostname":"a\nb","pid":1})", "'hostname'"},
      {R"({"endpoint":"h:80","hostname":"a","pid":0})", "'pid'"},
      {R"({"endpoint":"h:80","hostname":"a","pid":"1"})", "'pid'"},
      {R"({"endpoint":"h:80","hostname":"a"})", "'pid'"},
  };
  for (const auto& [body, expected] : cases) {
    const auto parsed = parse_registration(body);
    ASSERT_FALSE(parsed) << body;
    EXPECT_NE(parsed.message().find(expected), std::string::npos)
        << body << ": " << parsed.message();
  }
}

TEST(AgentSnapshot, RoundTripsTheAgentsDocumentGroupingByRank) {
  AgentState state;
  state.hostname = "node-b";
  state.endpoint = "127.0.0.1:9400";
  state.sample.unix_ms = 1700000000000;
  state.sample.system.used_bytes = 5ULL << 30;
  state.sample.system.limit_bytes = 16ULL << 30;
  DeviceSample gpu;
  gpu.index = 1;
  gpu.total_bytes = 80ULL << 30;
  gpu.used_bytes = 20ULL << 30;
  gpu.processes.push_back({101, 3ULL << 30, false});
  state.sample.devices.push_back(gpu);
  ProcessSample rank0;
  rank0.pid = 101;
  rank0.ppid = 1;
  rank0.comm = "python3";
  rank0.rank = 2;
  rank0.local_rank = 0;
  rank0.world_size = 4;
  rank0.rss_bytes = 900;
  rank0.uss_bytes = 700;
  rank0.gpu_bytes = 3ULL << 30;
  ProcessSample loader = rank0;  // a data-loader worker: same RANK, child of the rank
  loader.pid = 102;
  loader.ppid = 101;
  loader.uss_bytes = 0;
  loader.rss_bytes = 50;
  loader.gpu_bytes = 0;
  ProcessSample other;
  other.pid = 103;
  other.comm = "nvidia-smi";
  other.gpu_bytes = 1;
  state.sample.processes = {loader, rank0, other};
  analyze::Assessment host;
  host.resource = "host";
  host.used_bytes = 5ULL << 30;
  host.limit_bytes = 16ULL << 30;
  host.predicted_oom_seconds = 120.0;
  state.assessments.push_back(host);

  auto report = parse_agent_snapshot(snapshot_json(state).dump());
  ASSERT_TRUE(report) << report.message();
  EXPECT_EQ(report->hostname, "node-b");
  EXPECT_EQ(report->time_unix_ms, 1700000000000);
  EXPECT_EQ(report->host_used_bytes, 5ULL << 30);
  EXPECT_EQ(report->gpu_count, 1U);
  EXPECT_EQ(report->gpu_limit_bytes, 80ULL << 30);
  ASSERT_EQ(report->resources.size(), 1U);
  EXPECT_EQ(report->resources[0].time_to_oom_seconds, 120.0);
  ASSERT_EQ(report->ranks.size(), 1U);  // the unranked process is no rank
  const analyze::ClusterRank& rank = report->ranks[0];
  EXPECT_EQ(rank.rank, 2);
  EXPECT_EQ(rank.pids, (std::vector<int>{101, 102}));  // the root first
  EXPECT_EQ(rank.host_bytes, 750U);                    // USS, RSS where USS is unknown
  EXPECT_EQ(rank.gpu_bytes, 3ULL << 30);
  EXPECT_EQ(rank.gpus, std::vector<int>{1});
  EXPECT_EQ(rank.world_size, 4);
}

TEST(AgentSnapshot, RejectsOtherDocuments) {
  EXPECT_FALSE(parse_agent_snapshot("not json"));
  EXPECT_FALSE(parse_agent_snapshot(R"({"report":"memscope-profile"})"));
  EXPECT_FALSE(parse_agent_snapshot(R"({"report":"memscope-agent-snapshot","schema_version":2})"));
  // Wrong types inside are skipped, never thrown.
  auto odd = parse_agent_snapshot(
      R"({"report":"memscope-agent-snapshot","schema_version":1,"host":[],"gpus":{},)"
      R"("processes":[1,{"pid":"x","rank":0},{"pid":5,"rank":1e3}],"oom":[null]})");
  ASSERT_TRUE(odd) << odd.message();
  EXPECT_TRUE(odd->ranks.empty());
}

TEST(ClusterJson, CarriesWorkersRanksAndVerdicts) {
  analyze::ClusterTracker tracker;
  tracker.register_worker("h:1", "h", 9, 0);
  analyze::NodeReport node;
  node.hostname = "h";
  analyze::ClusterRank r;
  r.rank = 0;
  r.pids = {5};
  node.ranks.push_back(r);
  tracker.observe("h:1", node, 1.0);
  const auto json = cluster_json(tracker.view(), {"127.0.0.1:7", 0, 1700000000000, 1, 3, 1}, 3.0);
  EXPECT_EQ(json["report"], "memscope-distributed");
  ASSERT_EQ(json["workers"].size(), 1U);
  EXPECT_EQ(json["workers"][0]["endpoint"], "h:1");
  EXPECT_EQ(json["workers"][0]["state"], "up");
  EXPECT_EQ(json["workers"][0]["last_seen_seconds_ago"], 2.0);
  EXPECT_EQ(json["ranks"][0]["pids"][0], 5);
  EXPECT_TRUE(json["cluster_time_to_oom_seconds"].is_null());
  EXPECT_NE(cluster_table(tracker.view(), {}).find("h:1"), std::string::npos);
  EXPECT_NE(cluster_line(tracker.view(), 3).find("workers 1 up 0 stale"), std::string::npos);
}

}  // namespace
}  // namespace memscope::report
