// Records a session into an SQLite file (docs/session-format.md). Samples are written inside a
// transaction that is committed at least once per second of sample time, so a recorder killed
// with SIGKILL leaves a readable file holding every sample up to its last second.
#pragma once

#include <memory>
#include <string>

#include "core/recording.hpp"
#include "core/result.hpp"
#include "core/sample.hpp"

namespace memscope::store {

// One thread at a time: the caller serialises appends, events and flushes.
class SessionWriter {
 public:
  // Creates a new session file holding `info`. An existing memscope session (or an empty file)
  // is replaced only when `overwrite` is true; any other existing file is never touched. Errors
  // name the path: a missing or unwritable directory, a directory at `path`, a foreign file.
  static Result<SessionWriter> create(const std::string& path, const RecordingInfo& info,
                                      bool overwrite = false);

  // Commits what is pending (a writer dropped without finish() leaves an unfinished session).
  ~SessionWriter();
  SessionWriter(SessionWriter&& other) noexcept;
  SessionWriter& operator=(SessionWriter&& other) noexcept;
  SessionWriter(const SessionWriter&) = delete;
  SessionWriter& operator=(const SessionWriter&) = delete;

  // Buffered in the open transaction; commits when a second of sample time (or of wall time)
  // has passed since the last commit. A failed append leaves nothing of that sample behind.
  Status append(const Sample& sample);
  // Events are rare and matter (an OOM kill, the exit): each is committed at once.
  Status add_event(const RecordingEvent& event);
  // Commits everything appended so far.
  Status flush();
  // Stores the final info (end time, exit code/signal, oom_killed, outcome), commits,
  // checkpoints the write-ahead log into the file and closes it; the finished session is one
  // self-contained file. Nothing can be appended afterwards.
  Status finish(const RecordingInfo& final_info);

  const std::string& path() const;

 private:
  class Impl;
  explicit SessionWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace memscope::store
