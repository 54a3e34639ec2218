// memscope agent [--listen ADDR:PORT] [--token-file F] [--interval S] [--duration S] [--pid PID]...
// A node exporter: samples host, GPUs and the node's training processes every interval, keeps
// the OOM forecast and leak trends, and serves the latest state over HTTP: /metrics (Prometheus
// text), /api/v1/snapshot (JSON for the distributed master), /healthz. A request only ever reads
// the cached state: it never samples, and nothing a client sends makes the agent act on a process.
//
// Which processes it reports: those that use a GPU (NVML lists them) or have RANK, LOCAL_RANK or
// WORLD_SIZE in their environment, owned by the agent's user (every user's when it runs as
// root), plus every process in the trees of --pid, whoever owns them.
#include <memory>

#include "cli/agent_loop.hpp"
#include "cli/options.hpp"

namespace memscope::cli {

void add_agent_options(CLI::App& sub, AgentOptions& options) {
  sub.add_option("--token-file", options.token_file,
                 "File holding the bearer token clients must send (not readable by others)");
  sub.add_option("-i,--interval", options.interval_seconds, "Seconds between samples")
      ->capture_default_str();
  sub.add_option("-t,--duration", options.duration_seconds,
                 "Stop after this many seconds (default: until SIGINT/SIGTERM)");
  sub.add_option("-p,--pid", options.pids,
                 "Also report this process and its descendants (repeatable)");
  sub.add_option("--threshold", options.threshold_percent,
                 "OOM risk is high from this percent of a limit")
      ->capture_default_str();
  sub.add_option("--leak-threshold", options.leak_threshold_mb_per_min,
                 "Growth in MiB/min from which a leak is suspected")
      ->capture_default_str();
  sub.add_option("--request-timeout", options.request_timeout_seconds,
                 "Seconds a client has to send a complete request")
      ->capture_default_str();
  sub.add_flag("--no-gpu", options.no_gpu, "Do not load NVML; host only");
}

Runner attach_agent(CLI::App& sub, const GlobalOptions& global) {
  auto options = std::make_shared<AgentOptions>();
  sub.add_option("--listen", options->listen,
                 "ADDR:PORT to serve on ([::1]:PORT for IPv6; port 0 picks one); an address "
                 "other than loopback needs --token-file")
      ->capture_default_str();
  add_agent_options(sub, *options);
  return [&global, options]() { return run_agent(global, *options, "memscope agent"); };
}

}  // namespace memscope::cli
