// What a recording is about: shared by the session store (which saves it) and the reports
// (which show it). Samples themselves are in core/sample.hpp.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/sample.hpp"

namespace memscope {

struct RecordingInfo {
  std::vector<std::string> command;  // argv of the recorded command; empty for `profile`
  std::string hostname;
  std::string memscope_version;
  int64_t start_unix_ms = 0;
  int64_t end_unix_ms = 0;           // 0 while running or when the recorder died
  double interval_seconds = 1.0;
  int root_pid = 0;                  // the recorded command's pid
  std::vector<int> device_filter;    // GPUs asked for; empty = all
  // How the command ended; all empty while running or when the recorder was killed.
  std::optional<int> exit_code;      // normal exit
  std::optional<int> term_signal;    // died of a signal
  bool oom_killed = false;           // SIGKILL while oom_kill counters rose
  std::string outcome;               // one line for people: "exited with status 0", ...
};

// Something that happened during a recording, at a time since its start.
struct RecordingEvent {
  double t_seconds = 0;
  std::string kind;     // "start", "signal-forwarded", "oom-kill", "exit", "note", ...
  std::string message;
};

// Streams samples in time order; return false from the visitor to stop early.
using SampleVisitor = std::function<bool(const Sample&)>;

}  // namespace memscope
