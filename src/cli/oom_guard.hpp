// The OOM guard shared by `memscope oom` (live and replay) and `memscope run --oom-guard`: one
// OomMonitor fed sample after sample, the actions it triggers, the --events file. Live runs and
// replays go through the same Guard::add, so a replay of a recorded session gives the answers the
// live run gave.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "act/actions.hpp"
#include "analyze/oom.hpp"
#include "core/result.hpp"
#include "core/sample.hpp"

namespace memscope::cli {

// The flags: --threshold, --limit, --on, --kill, --kill-grace, --dry-run, --events.
struct GuardFlags {
  double threshold_percent = 85;
  std::string limit;            // --limit SIZE: a limit for the process tree
  std::vector<std::string> on;  // --on LEVEL=signal:SIG | LEVEL=exec:CMD
  bool kill = false;
  double kill_grace_seconds = 5;
  bool dry_run = false;
  std::string events_path;

  void add_flags(CLI::App& sub);
  bool any_action() const { return kill || !on.empty(); }
};

// The flags checked and parsed: every usage error is found here, before anything runs.
struct GuardConfig {
  analyze::ModelParams params;
  std::optional<uint64_t> tree_limit;
  std::vector<act::ActionSpec> actions;
  act::KillPolicy kill;
  bool dry_run = false;
  std::string events_path;
};
// `has_target`: a process (--pid or a command) that signals and --kill can be aimed at.
Result<GuardConfig> check_guard_flags(const GuardFlags& flags, bool has_target);

class Guard {
 public:
  // Opens --events for appending (an error names the path). `replay`: actions are only
  // reported ("would ..."), never taken.
  static Result<std::unique_ptr<Guard>> create(const GuardConfig& config,
                                               const analyze::ObservationScope& scope, pid_t target,
                                               bool replay);
  ~Guard();
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;

  // One sample: the monitor's level changes, the actions they trigger. Every change and action
  // is appended to --events and returned as JSON objects (for a session's event table).
  std::vector<nlohmann::json> add(const Sample& sample);
  // Between samples: SIGKILL after a grace period, finished exec commands.
  std::vector<nlohmann::json> tick(double now_seconds);
  // A --kill victim still in its grace period: the caller keeps ticking before it exits, so a
  // process that ignores SIGTERM still gets its SIGKILL.
  bool has_pending_kill() const { return runner_.has_pending_kill(); }

  const analyze::OomMonitor& monitor() const { return monitor_; }
  const std::vector<nlohmann::json>& actions_taken() const { return actions_; }

 private:
  Guard(const GuardConfig& config, const analyze::ObservationScope& scope, pid_t target,
        bool replay);
  void emit(const nlohmann::json& event);
  nlohmann::json action_json(const act::ActionRecord& record) const;

  analyze::OomMonitor monitor_;
  act::ActionRunner runner_;
  FILE* events_ = nullptr;
  analyze::RiskLevel overall_ = analyze::RiskLevel::kLow;
  std::vector<nlohmann::json> actions_;
};

}  // namespace memscope::cli
