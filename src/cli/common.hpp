// Small pieces the subcommands share: output checks, clocks, signals.
#pragma once

#include <signal.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>

#include "cli/options.hpp"
#include "collect/sampler.hpp"
#include "core/result.hpp"

namespace memscope::cli {

// Checks that `path` can be written (creating it if needed, removing it again if it did not
// exist) so a bad --output fails before any sampling, not after an hour of it.
Status check_writable(const std::string& path);

// Seconds since construction on the monotonic clock, plus wall-clock milliseconds.
class RecordingClock {
 public:
  RecordingClock();
  double seconds() const;
  static int64_t unix_ms();

 private:
  int64_t start_ns_;
};

// Blocks the given signals and delivers them through a signalfd, so the sampling loop can wait
// for "next sample due" or "a signal arrived" in one poll. Restores the mask when destroyed.
class SignalWatcher {
 public:
  explicit SignalWatcher(std::initializer_list<int> signals);
  ~SignalWatcher();
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

  struct Received {
    int signal = 0;
    bool from_terminal = false;  // sent by the kernel (e.g. Ctrl-C), not by kill(2)
    int sender_pid = 0;
  };
  // Waits up to timeout_seconds; nothing when it timed out.
  std::optional<Received> wait(double timeout_seconds);
  // The signal mask in force before this watcher, for a child to restore before exec.
  const sigset_t& previous_mask() const { return previous_; }

 private:
  int fd_ = -1;
  sigset_t previous_{};
};

// memscope's own peak resident set (VmHWM), for the "memscope itself" line.
uint64_t own_peak_rss_bytes();

// The sampler for a subcommand: global flags plus its device choice. No NVML is one info line;
// a device that does not exist is an error (usage, exit 2).
Result<std::unique_ptr<Sampler>> open_sampler(const GlobalOptions& global,
                                              const std::vector<int>& devices, bool use_gpus);

// Forks and execs a command (the child restores `child_mask`, the mask before memscope blocked
// signals). An exec failure comes back through a close-on-exec pipe as exec_errno (the child
// is reaped then); pid < 0 when fork failed.
struct Launch {
  pid_t pid = -1;
  int exec_errno = 0;
};
Launch launch(const std::vector<std::string>& command, const sigset_t& child_mask);

// Whether /proc/PID exists under `proc_root` (a zombie still counts until it is reaped).
bool process_exists(const std::string& proc_root, int pid);

// "signal 9 (SIGKILL)"
std::string describe_signal(int signal_number);

// Writes text to a file, replacing it; an error names the path.
Status write_text_file(const std::string& path, const std::string& text);

// A small file (procfs, sysfs, a config) read whole, at most max_bytes; nullopt when it cannot
// be read.
std::optional<std::string> read_small_file(const std::string& path, size_t max_bytes);

}  // namespace memscope::cli
