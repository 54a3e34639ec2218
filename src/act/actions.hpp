// Actions taken when the OOM forecast reaches a level: send a signal to the target, run a
// command with the assessment in its environment, or stop the largest process of the target's
// tree (SIGTERM, then SIGKILL after a grace period). Off unless asked for; `dry_run` only says
// what would be done. Safety: --kill only ever picks a process inside the target's tree (as the
// latest sample saw it), never PID 1, never memscope itself or its ancestors, and signals
// through a pidfd checked against the process's start time, so a recycled PID is never hit.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "analyze/oom.hpp"
#include "core/result.hpp"
#include "core/sample.hpp"

namespace memscope::act {

struct ActionSpec {
  enum class Kind { kSignal, kExec };
  analyze::RiskLevel level = analyze::RiskLevel::kCritical;
  Kind kind = Kind::kSignal;
  int signal = 0;       // kSignal
  std::string command;  // kExec: run with /bin/sh -c
  std::string text;     // as given, for messages
};

// Parses one `--on LEVEL=signal:SIG` or `--on LEVEL=exec:CMD`. LEVEL is medium, high or critical
// (low is never crossed upwards). SIG is a name with or without "SIG", any case (USR1, SIGUSR1,
// term, ...) or a number 1..64; SIGKILL and SIGSTOP are allowed. Errors name what is wrong and
// start with "--on 'TEXT': ".
Result<ActionSpec> parse_action(const std::string& text);

struct KillPolicy {
  bool enabled = false;      // --kill: at critical
  double grace_seconds = 5;  // SIGTERM, then SIGKILL if it is still alive after this
};

// What was done (or would have been, under dry_run), for the terminal, --events and sessions.
struct ActionRecord {
  double t_seconds = 0;
  std::string resource;  // the resource whose level triggered it
  analyze::RiskLevel level = analyze::RiskLevel::kLow;
  std::string action;  // e.g. "signal SIGUSR1 to pid 123", "exec: ./checkpoint.sh",
                       // "kill: SIGTERM to pid 456 (python3, 1.2 GiB)"; under dry_run
                       // "would send SIGUSR1 to pid 123", "would exec: ./checkpoint.sh",
                       // "kill: would send SIGTERM to pid 456 (python3, 1.2 GiB)"
  int pid = 0;         // the process signalled or started, 0 when none
  bool dry_run = false;
  bool ok = true;
  std::string error;  // when !ok
};

struct ActionTarget {
  pid_t root_pid = 0;  // 0: no target (only exec actions are allowed then)
};

class ActionRunner {
 public:
  ActionRunner(std::vector<ActionSpec> actions, KillPolicy kill, bool dry_run, ActionTarget target);
  ~ActionRunner();  // reaps (without waiting for) commands it started
  ActionRunner(const ActionRunner&) = delete;
  ActionRunner& operator=(const ActionRunner&) = delete;

  // The overall level moved from `from` to `to` (the highest level over resources), `cause` is
  // the assessment at the new level. Runs each action whose level is crossed upwards
  // (from < level <= to); an action fires again only after the level dropped below it.
  // `processes` is the latest sample's process list (the tree is selected from it by ppid from
  // root_pid) for --kill. Commands run as /bin/sh -c CMD, stdin from /dev/null, with an empty
  // signal mask and SIGPIPE at its default (memscope blocks signals for its signalfd), and are
  // not waited for. A --kill victim still in its grace period is not sent SIGTERM again.
  std::vector<ActionRecord> on_level_change(analyze::RiskLevel from, analyze::RiskLevel to,
                                            const analyze::Assessment& cause,
                                            const std::vector<ProcessSample>& processes,
                                            double now_seconds);
  // Called every interval: SIGKILL for a process sent SIGTERM whose grace period ran out and is
  // still alive; reaps finished exec'd commands (recording a failure status). Records only what
  // needs telling: a SIGKILL (or its failure), a command that exited non-zero or was killed. A
  // victim that exited within its grace period, or a command that exited 0, records nothing.
  // Commands are reaped by pid only (waitpid(pid, WNOHANG)), never waitpid(-1), so the caller's
  // own children (the job of `memscope run`) are left alone.
  std::vector<ActionRecord> tick(double now_seconds);
  // A victim sent SIGTERM whose grace period has not run out (tick will SIGKILL it if needed).
  bool has_pending_kill() const;

  // For the rules about targets, the pure part: the largest process of root_pid's tree in
  // `processes` (by PSS, or by GPU memory when `by_gpu`, ties — e.g. no per-process GPU data —
  // broken by PSS, then the lower pid), never pid 1 nor `self` nor its ancestors (given as
  // `excluded`). The tree is root_pid and its descendants by ppid links; root_pid itself may be
  // chosen. Nothing when the tree is empty or all excluded.
  static std::optional<ProcessSample> choose_victim(const std::vector<ProcessSample>& processes,
                                                    pid_t root_pid, bool by_gpu,
                                                    const std::vector<pid_t>& excluded);

 private:
  struct Pending;  // a SIGTERM awaiting its grace period
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// PID 1, memscope itself and its ancestors: never a victim, never a target of an action.
std::vector<pid_t> protected_pids();

// Sends the signal through a pidfd opened now, after checking that /proc/PID/stat still shows
// `start_time_ticks` (field 22; 0 skips the check), so a pid recycled since it was chosen is
// never hit (the error says "... not sent"). Falls back to kill(2) on kernels without pidfds.
// The same send the OOM actions use; errors name the signal, the pid and the reason.
Status signal_verified(pid_t pid, uint64_t start_time_ticks, int signal_number);

// The environment variables an exec action gets (also documented in the README):
// MEMSCOPE_LEVEL, MEMSCOPE_RESOURCE, MEMSCOPE_USAGE_PERCENT, MEMSCOPE_USED_BYTES,
// MEMSCOPE_LIMIT_BYTES, MEMSCOPE_GROWTH_MB_PER_SEC, MEMSCOPE_PREDICTED_OOM_SECONDS (empty when
// not growing), MEMSCOPE_CONFIDENCE, MEMSCOPE_TARGET_PID (empty without a target),
// MEMSCOPE_RECOMMENDATION. Numbers are plain: usage and predicted seconds with 1 decimal, growth
// in MiB/s with 3, confidence (0..1) with 2, bytes as integers. They replace inherited variables
// of the same name.
std::vector<std::pair<std::string, std::string>> action_environment(
    const analyze::Assessment& cause, pid_t target_pid);

}  // namespace memscope::act
