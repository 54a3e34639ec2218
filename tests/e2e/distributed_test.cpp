// `memscope distributed` end to end: a master and three workers (the real binary, fake NVML,
// loopback, ports picked by the kernel), a worker killed (stale, never dropped) and restarted
// (up again), the master killed and restarted (workers register again, the view recovers),
// registrations that are malformed, oversized or without the token, and the CLI's refusals.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "test_support.hpp"

namespace memscope::testing {
namespace {

using json = nlohmann::json;

std::map<std::string, std::string> fake_gpu() {
  return {{"MEMSCOPE_NVML_LIBRARY", fake_nvml_library()},
          {"MEMSCOPE_FAKE_NVML_SCENARIO", test_data_dir() + "/nvml/one_gpu.json"}};
}

using Reply = HttpReply;

Reply http(uint16_t port, const std::string& method, const std::string& path,
           const std::string& body = "", const std::string& token = "") {
  return http_request(port, method, path, body, token);
}

// `memscope distributed ARGS` in the background, its stderr in a file read while it runs.
class Role {
 public:
  Role(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {}) {
    std::string script = "exec \"$0\" distributed";
    for (size_t i = 0; i < args.size(); ++i) script += " \"${" + std::to_string(i + 1) + "}\"";
    script += " 2>" + dir_.file("err");
    std::vector<std::string> argv = {"/bin/sh", "-c", script, memscope_binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    command_ = std::make_unique<BackgroundCommand>(argv, env);
  }
  // The port after "listening on ADDR:PORT" (the master) or the endpoint a worker registers.
  std::string wait_for(const std::string& marker) {
    for (int i = 0; i < 600; ++i) {
      const std::string text = err();
      const size_t at = text.find(marker);
      if (at != std::string::npos && text.find('\n', at) != std::string::npos) {
        const size_t from = at + marker.size();
        return text.substr(from, text.find_first_of(" \n", from) - from);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return {};
  }
  uint16_t wait_port() {
    const std::string endpoint = wait_for("listening on ");
    return endpoint.empty()
               ? 0
               : static_cast<uint16_t>(std::stoi(endpoint.substr(endpoint.rfind(':') + 1)));
  }
  BackgroundCommand& command() { return *command_; }
  std::string err() const {
    try {
      return read_file(dir_.file("err"));
    } catch (const std::exception&) {
      return {};
    }
  }

 private:
  TempDir dir_;
  std::unique_ptr<BackgroundCommand> command_;
};

// Polls the master's /api/v1/cluster until `done` holds (20 s at most); the last document.
json wait_cluster(uint16_t port, const std::function<bool(const json&)>& done,
                  const std::string& token = "") {
  json last;
  for (int i = 0; i < 200; ++i) {
    const Reply reply = http(port, "GET", "/api/v1/cluster", "", token);
    if (reply.status == 200) {
      last = json::parse(reply.body, nullptr, false);
      if (!last.is_discarded() && done(last)) return last;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return last;
}

std::string state_of(const json& cluster, const std::string& endpoint) {
  for (const json& w : cluster["workers"]) {
    if (w["endpoint"] == endpoint) return w["state"];
  }
  return "absent";
}

size_t count_up(const json& cluster) {
  size_t up = 0;
  for (const json& w : cluster["workers"])
    if (w["state"] == "up") ++up;
  return up;
}

std::vector<std::string> worker_args(uint16_t master_port, const std::string& listen) {
  return {"--role",   "worker", "--master-host", "127.0.0.1", "--port", std::to_string(master_port),
          "--listen", listen,   "--interval",    "0.2"};
}

TEST(Distributed, MasterFollowsWorkersThroughKillsAndRestarts) {
  TempDir dir;
  const std::string output = dir.file("cluster.json");
  auto master = std::make_unique<Role>(
      std::vector<std::string>{"--role", "master", "--port", "0", "--interval", "0.2",
                               "--stale-after", "3", "--output", output});
  const uint16_t port = master->wait_port();
  ASSERT_NE(port, 0) << master->err();

  std::vector<std::unique_ptr<Role>> workers;
  std::vector<std::string> endpoints;
  for (int i = 0; i < 3; ++i) {
    workers.push_back(std::make_unique<Role>(worker_args(port, "127.0.0.1:0"), fake_gpu()));
    endpoints.push_back(workers.back()->wait_for("worker "));
    ASSERT_FALSE(endpoints.back().empty()) << workers.back()->err();
  }
  json cluster = wait_cluster(port, [](const json& c) {
    return count_up(c) == 3 && c["workers"][0]["latest"].is_object() &&
           c["workers"][1]["latest"].is_object() && c["workers"][2]["latest"].is_object();
  });
  ASSERT_EQ(count_up(cluster), 3U) << cluster.dump(1) << master->err();
  EXPECT_EQ(cluster["workers"][0]["latest"]["gpu_count"], 1);

  // A worker killed: stale, still listed; restarted on the same endpoint: up again.
  workers[1]->command().signal_group(SIGKILL);
  workers[1]->command().wait(10);
  cluster = wait_cluster(port, [&](const json& c) { return state_of(c, endpoints[1]) == "stale"; });
  ASSERT_EQ(state_of(cluster, endpoints[1]), "stale") << cluster.dump(1);
  EXPECT_EQ(cluster["workers"].size(), 3U);
  EXPECT_EQ(cluster["workers_stale"], 1);
  workers[1] = std::make_unique<Role>(worker_args(port, endpoints[1]), fake_gpu());
  cluster = wait_cluster(port, [&](const json& c) { return state_of(c, endpoints[1]) == "up"; });
  ASSERT_EQ(state_of(cluster, endpoints[1]), "up") << cluster.dump(1) << workers[1]->err();

  // The master killed and restarted on its port: the workers register again.
  master->command().signal_group(SIGKILL);
  master->command().wait(10);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  master = std::make_unique<Role>(
      std::vector<std::string>{"--role", "master", "--port", std::to_string(port), "--interval",
                               "0.2", "--stale-after", "3", "--output", output});
  ASSERT_EQ(master->wait_port(), port) << master->err();
  // Every worker pulled at least once by the new master (the final JSON checks each one's
  // snapshot, also the one killed next), not only the third in the list.
  cluster = wait_cluster(port, [](const json& c) {
    if (c["workers"].size() != 3 || count_up(c) != 3) return false;
    for (const json& w : c["workers"]) {
      if (!w["latest"].is_object()) return false;
    }
    return true;
  });
  ASSERT_EQ(count_up(cluster), 3U) << cluster.dump(1) << master->err();

  // One killed for good: stale in the final JSON, never dropped.
  workers[2]->command().signal_group(SIGKILL);
  workers[2]->command().wait(10);
  cluster = wait_cluster(port, [&](const json& c) { return state_of(c, endpoints[2]) == "stale"; });
  ASSERT_EQ(state_of(cluster, endpoints[2]), "stale");
  master->command().signal_group(SIGTERM);
  const CommandResult stopped = master->command().wait(20);
  EXPECT_EQ(stopped.exit_code, 0) << master->err();
  const json report = json::parse(read_file(output), nullptr, false);
  ASSERT_FALSE(report.is_discarded());
  EXPECT_EQ(report["report"], "memscope-distributed");
  ASSERT_EQ(report["workers"].size(), 3U) << report.dump(1);
  EXPECT_EQ(state_of(report, endpoints[0]), "up");
  EXPECT_EQ(state_of(report, endpoints[1]), "up");
  EXPECT_EQ(state_of(report, endpoints[2]), "stale");
  for (const json& w : report["workers"]) {
    EXPECT_FALSE(w["hostname"].get<std::string>().empty());
    EXPECT_TRUE(w["last_seen"].is_string()) << w.dump();
    EXPECT_TRUE(w["latest"]["host_limit_bytes"].get<uint64_t>() > 0) << w.dump();
  }
  for (const char* key :
       {"ranks", "imbalance", "bottleneck", "cluster_time_to_oom_seconds", "divergent_ranks"}) {
    EXPECT_TRUE(report.contains(key)) << key;
  }
  EXPECT_EQ(report["bottleneck"].is_object(), true) << report.dump(1);
}

TEST(Distributed, RegistrationsMalformedOversizedOrWithoutTokenAreRefused) {
  TempDir dir;
  const std::string token_file = dir.file("token");
  write_file(token_file, "s3cret-token\n");
  chmod(token_file.c_str(), 0600);
  Role master({"--role", "master", "--port", "0", "--interval", "0.2", "--token-file", token_file});
  const uint16_t port = master.wait_port();
  ASSERT_NE(port, 0) << master.err();
  const std::string token = "s3cret-token";
  const std::string good = R"({"endpoint":"127.0.0.1:9","hostname":"h","pid":12})";

  EXPECT_EQ(http(port, "POST", "/api/v1/register", good).status, 401);
  EXPECT_EQ(http(port, "POST", "/api/v1/register", good, "wrong").status, 401);
  EXPECT_EQ(http(port, "GET", "/api/v1/cluster", "", "wrong").status, 401);
  const Reply malformed = http(port, "POST", "/api/v1/register", R"({"endpoint":"x"})", token);
  EXPECT_EQ(malformed.status, 400);
  EXPECT_NE(malformed.body.find("'endpoint'"), std::string::npos) << malformed.body;
  EXPECT_EQ(http(port, "POST", "/api/v1/register", "not json", token).status, 400);
  EXPECT_EQ(http(port, "POST", "/api/v1/register", std::string(5000, ' ') + good, token).status,
            413);
  EXPECT_EQ(http(port, "GET", "/api/v1/register", "", token).status, 405);
  EXPECT_EQ(http(port, "GET", "/healthz").status, 200);

  // A worker with the token registers and is pulled with it; the refused ones left no trace.
  Role worker({"--role", "worker", "--master-host", "127.0.0.1", "--port", std::to_string(port),
               "--listen", "127.0.0.1:0", "--interval", "0.2", "--token-file", token_file},
              fake_gpu());
  const std::string endpoint = worker.wait_for("worker ");
  const json cluster = wait_cluster(
      port,
      [&](const json& c) {
        return state_of(c, endpoint) == "up" && c["workers"][0]["latest"].is_object();
      },
      token);
  ASSERT_EQ(cluster["workers"].size(), 1U) << cluster.dump(1) << worker.err();
  EXPECT_EQ(state_of(cluster, endpoint), "up") << cluster.dump(1);
  // The worker's own agent wants the token too.
  const uint16_t worker_port =
      static_cast<uint16_t>(std::stoi(endpoint.substr(endpoint.rfind(':') + 1)));
  EXPECT_EQ(http(worker_port, "GET", "/api/v1/snapshot").status, 401);
  EXPECT_EQ(http(worker_port, "GET", "/api/v1/snapshot", "", token).status, 200);
}

TEST(Distributed, CommandLineRefusals) {
  struct Case {
    std::vector<std::string> args;
    int status;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--role", "boss"}, 2, "role"},
      {{"--port", "9"}, 2, "role"},
      {{"--role", "worker", "--port", "9"}, 2, "--master-host"},
      {{"--role", "worker", "--master-host", "h"}, 2, "--port"},
      {{"--role", "master"}, 2, "--port"},
      {{"--role", "master", "--port", "0", "--interval", "0"}, 2, "--interval"},
      {{"--role", "master", "--port", "0", "--stale-after", "0"}, 2, "--stale-after"},
      {{"--role", "master", "--port", "0", "--listen-host", "0.0.0.0"}, 2, "--token-file"},
      {{"--role", "master", "--port", "0", "--token-file", "/nonexistent/t"}, 3, "token file"},
      {{"--role", "master", "--port", "0", "--output", "/nonexistent/dir/x.json"}, 2, "--output"},
      {{"--role", "worker", "--master-host", "127.0.0.1", "--port", "9", "--listen", "0.0.0.0:0"},
       2,
       "--token-file"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> argv = {memscope_binary(), "distributed"};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    const CommandResult result = run_command(argv, {}, 20);
    EXPECT_EQ(result.exit_code, c.status) << c.args[0] << " " << result.err;
    EXPECT_NE(result.err.find(c.message), std::string::npos) << result.err;
  }
}

}  // namespace
}  // namespace memscope::testing
