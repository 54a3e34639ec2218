// `memscope agent` end to end: the real binary on a loopback port with the fake NVML, scraped
// over a socket: /metrics families and labels (a child started with RANK/LOCAL_RANK shows them),
// /api/v1/snapshot, /healthz, the bearer token, refusals and a clean stop on SIGTERM.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "test_support.hpp"

namespace memscope::testing {
namespace {

constexpr const char* kUuid = "GPU-5b4f6c1e-2a3d-4e8f-9a0b-1c2d3e4f5a6b";  // one_gpu.json

std::map<std::string, std::string> fake_gpu() {
  return {{"MEMSCOPE_NVML_LIBRARY", fake_nvml_library()},
          {"MEMSCOPE_FAKE_NVML_SCENARIO", test_data_dir() + "/nvml/one_gpu.json"}};
}

using Reply = HttpReply;

Reply http_get(uint16_t port, const std::string& path, const std::string& token = "") {
  return http_request(port, "GET", path, "", token);
}

// The agent in the background, its stderr in a file we can read while it runs.
class Agent {
 public:
  Agent(const std::vector<std::string>& args, const std::map<std::string, std::string>& env) {
    std::string script = "exec \"$0\" agent";
    for (size_t i = 0; i < args.size(); ++i) script += " \"$" + std::to_string(i + 1) + "\"";
    script += " 2>" + dir_.file("err");
    std::vector<std::string> argv = {"/bin/sh", "-c", script, memscope_binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    command_ = std::make_unique<BackgroundCommand>(argv, env);
  }
  // The port from "listening on ADDR:PORT", 0 when it did not say so within 30 s.
  uint16_t wait_listening() {
    for (int i = 0; i < 600; ++i) {
      std::string err;
      try {
        err = read_file(dir_.file("err"));
      } catch (const std::exception&) {
      }
      const size_t at = err.find("listening on ");
      const size_t eol = at == std::string::npos ? at : err.find('\n', at);
      if (eol != std::string::npos) {
        endpoint_ = err.substr(at + 13, err.find_first_of(" \n", at + 13) - at - 13);
        return static_cast<uint16_t>(std::stoi(endpoint_.substr(endpoint_.rfind(':') + 1)));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return 0;
  }
  const std::string& endpoint() const { return endpoint_; }
  BackgroundCommand& command() { return *command_; }
  std::string err() const { return read_file(dir_.file("err")); }

 private:
  TempDir dir_;
  std::unique_ptr<BackgroundCommand> command_;
  std::string endpoint_;
};

TEST(Agent, ServesMetricsSnapshotAndHealthThenStopsOnSigterm) {
  BackgroundCommand ranked({"sleep", "60"}, {{"RANK", "1"}, {"LOCAL_RANK", "1"}});
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // exec'd, environ in place
  Agent agent({"--listen", "127.0.0.1:0", "--interval", "0.2"}, fake_gpu());
  const uint16_t port = agent.wait_listening();
  ASSERT_NE(port, 0) << agent.err();
  EXPECT_EQ(agent.endpoint(), "127.0.0.1:" + std::to_string(port));

  const std::string child_labels = "memscope_process_memory_bytes{pid=\"" +
                                   std::to_string(ranked.pid()) +
                                   "\",comm=\"sleep\",rank=\"1\",local_rank=\"1\",kind=\"rss\"} ";
  Reply metrics;
  for (int i = 0; i < 100; ++i) {  // the first samples may predate the child's exec
    metrics = http_get(port, "/metrics");
    if (metrics.body.find(child_labels) != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(metrics.status, 200) << agent.err();
  EXPECT_NE(metrics.head.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
  EXPECT_NE(metrics.body.find(child_labels), std::string::npos) << metrics.body;
  const std::string uuid = kUuid;
  const std::vector<std::string> families = {
      "# TYPE memscope_gpu_memory_used_bytes gauge\n",
      "memscope_gpu_memory_used_bytes{gpu=\"0\",uuid=\"" + uuid + "\"} ",
      "memscope_gpu_memory_total_bytes{gpu=\"0\",uuid=\"" + uuid + "\"} " +
          std::to_string(81920ull << 20) + "\n",
      "memscope_host_memory_total_bytes ",
      "memscope_host_memory_available_bytes ",
      "memscope_host_memory_used_bytes ",
      "memscope_host_memory_limit_bytes{source=",
      "memscope_oom_risk_level{resource=\"host\"} ",
      "memscope_oom_risk_level{resource=\"gpu0\"} ",
      "memscope_oom_predicted_seconds{resource=\"gpu0\"} ",
      "memscope_agent_info{version=\"0.1.0\",hostname=\"",
      "memscope_agent_samples_total "};
  for (const std::string& expected : families) {
    EXPECT_NE(metrics.body.find(expected), std::string::npos) << expected;
  }

  const Reply snapshot = http_get(port, "/api/v1/snapshot");
  ASSERT_EQ(snapshot.status, 200);
  EXPECT_NE(snapshot.head.find("Content-Type: application/json"), std::string::npos);
  const nlohmann::json document = nlohmann::json::parse(snapshot.body);
  EXPECT_EQ(document["report"], "memscope-agent-snapshot");
  EXPECT_EQ(document["schema_version"], 1);
  EXPECT_EQ(document["endpoint"], agent.endpoint());
  EXPECT_FALSE(document["hostname"].get<std::string>().empty());
  EXPECT_TRUE(document["time"].is_string());
  EXPECT_GT(document["host"]["total_bytes"].get<uint64_t>(), 0u);
  EXPECT_GT(document["host"]["limit_bytes"].get<uint64_t>(), 0u);
  ASSERT_EQ(document["gpus"].size(), 1u);
  EXPECT_EQ(document["gpus"][0]["uuid"], kUuid);
  bool found = false;
  for (const auto& process : document["processes"]) {
    if (process["pid"] != ranked.pid()) continue;
    found = true;
    EXPECT_EQ(process["rank"], 1);
    EXPECT_EQ(process["local_rank"], 1);
    EXPECT_GT(process["rss_bytes"].get<uint64_t>(), 0u);
  }
  EXPECT_TRUE(found) << snapshot.body;
  bool host_assessed = false;
  for (const auto& oom : document["oom"]) {
    host_assessed |= oom["resource"] == "host";
    EXPECT_TRUE(oom["risk_level"].is_number_integer());
    EXPECT_TRUE(oom.contains("predicted_oom_seconds"));
    EXPECT_TRUE(oom.contains("growth_bytes_per_second"));
  }
  EXPECT_TRUE(host_assessed) << snapshot.body;
  EXPECT_TRUE(document["leaks"].is_array());

  const Reply health = http_get(port, "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, "ok\n");
  EXPECT_EQ(http_get(port, "/nope").status, 404);

  agent.command().signal(SIGTERM);
  const CommandResult result = agent.command().wait(20);
  EXPECT_EQ(result.exit_code, 0) << agent.err();
}

TEST(Agent, RefusesANonLoopbackAddressWithoutAToken) {
  for (const char* listen : {"0.0.0.0:0", "[::]:0"}) {
    const CommandResult result =
        run_command({memscope_binary(), "agent", "--listen", listen, "--no-gpu"}, {}, 30);
    EXPECT_EQ(result.exit_code, 2) << listen << result.err;
    EXPECT_NE(result.err.find("--token-file"), std::string::npos) << result.err;
    EXPECT_EQ(result.err.find("listening on"), std::string::npos);
  }
  const CommandResult bad =
      run_command({memscope_binary(), "agent", "--listen", "nonsense", "--no-gpu"}, {}, 30);
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("nonsense"), std::string::npos) << bad.err;
}

TEST(Agent, WithATokenWrongOrMissingTokensGet401AndNoData) {
  TempDir tmp;
  const std::string token = "agent-test-token-0123456789";
  write_file(tmp.file("token"), token + "\n");
  chmod(tmp.file("token").c_str(), 0600);
  // With a token, any address may be bound; the test reaches it over loopback.
  Agent agent({"--listen", "0.0.0.0:0", "--token-file", tmp.file("token"), "--interval", "0.2"},
              fake_gpu());
  const uint16_t port = agent.wait_listening();
  ASSERT_NE(port, 0) << agent.err();
  for (const char* path : {"/metrics", "/api/v1/snapshot", "/nope"}) {
    for (const std::string& given : {std::string(), std::string("wrong"), token + "x"}) {
      const Reply reply = http_get(port, path, given);
      EXPECT_EQ(reply.status, 401) << path << " " << given;
      EXPECT_NE(reply.head.find("WWW-Authenticate: Bearer"), std::string::npos);
      EXPECT_EQ(reply.body.find("memscope_"), std::string::npos) << reply.body;
      EXPECT_EQ(reply.body.find("host"), std::string::npos) << reply.body;
    }
  }
  const Reply metrics = http_get(port, "/metrics", token);
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("memscope_agent_info"), std::string::npos);
  EXPECT_EQ(http_get(port, "/api/v1/snapshot", token).status, 200);
  EXPECT_EQ(http_get(port, "/healthz").body, "ok\n");  // open, and says nothing else
  agent.command().signal(SIGINT);
  EXPECT_EQ(agent.command().wait(20).exit_code, 0);
}

TEST(Agent, BadTokenFilesExitThree) {
  TempDir tmp;
  write_file(tmp.file("empty"), "\n");
  write_file(tmp.file("open"), "token\n");
  write_file(tmp.file("spaces"), "two words\n");
  chmod(tmp.file("empty").c_str(), 0600);
  chmod(tmp.file("open").c_str(), 0644);
  chmod(tmp.file("spaces").c_str(), 0600);
  const struct {
    std::string file;
    const char* says;
  } cases[] = {{tmp.file("missing"), "cannot read token file"},
               {tmp.file("empty"), "is empty"},
               {tmp.file("open"), "chmod 600"},
               {tmp.file("spaces"), "one token"},
               {tmp.path(), "not a regular file"}};
  for (const auto& c : cases) {
    const CommandResult result = run_command(
        {memscope_binary(), "agent", "--listen", "127.0.0.1:0", "--token-file", c.file, "--no-gpu"},
        {}, 30);
    EXPECT_EQ(result.exit_code, 3) << c.file << result.err;
    EXPECT_NE(result.err.find(c.says), std::string::npos) << result.err;
    EXPECT_NE(result.err.find(c.file), std::string::npos) << result.err;
  }
}

TEST(Agent, DurationEndsItAndBadValuesAreUsageErrors) {
  const CommandResult done = run_command(
      {memscope_binary(), "agent", "--listen", "127.0.0.1:0", "--duration", "0.5", "--no-gpu"}, {},
      30);
  EXPECT_EQ(done.exit_code, 0) << done.err;
  EXPECT_NE(done.err.find("listening on 127.0.0.1:"), std::string::npos);
  const std::vector<std::vector<std::string>> usage = {
      {"--interval", "0"}, {"--duration", "-1"}, {"--pid", "999999999"}, {"--threshold", "500"}};
  for (const auto& extra : usage) {
    std::vector<std::string> argv = {memscope_binary(), "agent", "--listen", "127.0.0.1:0",
                                     "--no-gpu"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    const CommandResult result = run_command(argv, {}, 30);
    EXPECT_EQ(result.exit_code, 2) << extra[0] << result.err;
    EXPECT_FALSE(result.err.empty());
  }
}

}  // namespace
}  // namespace memscope::testing
