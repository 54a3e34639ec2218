// What `memscope system cleanup | swap --clear | kill` do to the machine: write /proc/sys/vm
// knobs, run swapoff/swapon, signal one process. The choices (which process, whether swap may
// be cleared) are pure functions beside them or in analyze/system_health.hpp.
#pragma once

#include <cstdint>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "core/sample.hpp"

namespace memscope::act {

// cleanup: sync(2), then "1" into <proc_root>/sys/vm/drop_caches (the page cache only: the
// bulk of what a training host can give back; dentries and inodes are left, since a data
// loader over many small files pays to rebuild them), then "1" into
// <proc_root>/sys/vm/compact_memory (defragments free memory for huge pages). Nothing is
// killed and no dirty data is lost: drop_caches frees clean pages only.
struct CleanupStep {
  std::string action;  // "sync", "drop page cache", "compact memory"
  std::string path;    // the file written; empty for sync
  bool ok = true;
  std::string error;  // when !ok: names the path and the errno text
};
// The steps, not run: for a user who is not root and for the help text.
std::vector<CleanupStep> cleanup_steps(const std::string& proc_root);
// Runs every step in order; a failed step does not stop the next one.
std::vector<CleanupStep> run_cleanup(const std::string& proc_root);

// swap --clear runs this with /bin/sh -c; every swapped page comes back into RAM.
inline constexpr const char* kSwapClearCommand = "swapoff -a && swapon -a";
// /bin/sh -c COMMAND with stdin from /dev/null, waited for: its exit status, 128 + N when it
// died of signal N; an error when it could not be started.
Result<int> run_shell_command(const std::string& command);

// kill --signal: TERM or KILL, with or without "SIG", any case, or 15 / 9.
Result<int> parse_kill_signal(std::string_view text);

struct KillChoice {
  std::optional<ProcessSample> victim;  // the largest by USS among the allowed matches
  size_t matched = 0;                   // processes the pattern matched (zombies excluded)
  std::vector<int> protected_matches;   // matched but never chosen: pid 1, memscope, ancestors
};
// The largest process by USS (ties: lower pid) whose comm or command line the pattern matches
// anywhere (std::regex_search; a null pattern matches every process), never a zombie nor a pid
// in `excluded`.
KillChoice choose_kill_target(const std::vector<ProcessSample>& processes,
                              const std::regex* pattern, const std::vector<int>& excluded);

// Every other running process of this program's executable file (same device and inode as
// /proc/self/exe): for the memscope CLI, the other memscopes, which `system kill` and the TUI
// never signal (`memscope run -- python train.py` carries the job's command line in its own, so
// a pattern that matches the job matches the wrapper). Not for a library inside python3.
std::vector<int> other_instances_of_this_program();

// Sending to the chosen process: act::signal_verified (act/actions.hpp).

}  // namespace memscope::act
