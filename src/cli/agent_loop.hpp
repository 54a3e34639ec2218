// The node agent's loop, shared by `memscope agent` and `memscope distributed --role worker`:
// sample every interval, keep the OOM forecast and leak trends, serve /metrics,
// /api/v1/snapshot and /healthz from the cached state. A worker hooks into the loop to register
// with its master without ever blocking sampling or serving.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "cli/options.hpp"
#include "core/result.hpp"

namespace memscope::cli {

struct AgentOptions {
  std::string listen = "127.0.0.1:9400";
  std::string token_file;
  double interval_seconds = 1;
  double duration_seconds = 0;  // 0: until SIGINT/SIGTERM
  std::vector<int> pids;
  bool no_gpu = false;
  double threshold_percent = 85;
  double leak_threshold_mb_per_min = 1;
  double request_timeout_seconds = 5;
};

struct AgentHooks {
  // Once listening: the bound ADDR:PORT and the bearer token ("" when none). A non-empty
  // answer is an error that stops the agent (exit status 2).
  std::function<std::string(const std::string& endpoint, const std::string& token)> on_listening;
  // Every turn of the loop (at least every 250 ms): the most seconds the loop may then wait.
  std::function<double(double now)> on_turn;
};

// The agent's options on `sub` (all but --listen, which the caller words).
void add_agent_options(CLI::App& sub, AgentOptions& options);
// Runs until --duration, SIGINT, SIGTERM or SIGHUP; returns the exit status. `name` prefixes
// messages ("memscope agent").
int run_agent(const GlobalOptions& global, const AgentOptions& options, const std::string& name,
              const AgentHooks& hooks = {});

// The token: the file's content without trailing whitespace. The file must be a regular file,
// not writable by group or others and not readable by others, hold one RFC 6750 token, <= 4 KiB.
Result<std::string> read_token_file(const std::string& path);
std::string host_name();

}  // namespace memscope::cli
