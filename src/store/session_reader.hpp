// Reads a session file written by SessionWriter, finished or not (a recording whose recorder
// was killed reads like any other, without end fields). Never writes to the file.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "core/recording.hpp"
#include "core/result.hpp"

namespace memscope::store {

// One thread at a time; open one reader per thread to read in parallel.
class SessionReader {
 public:
  // Opens and checks a session. Errors are one line naming the file:
  //   "cannot open PATH: No such file or directory"
  //   "PATH is not a memscope session (empty file | not an SQLite database | ...)"
  //   "PATH was written by a newer memscope (schema N); this one reads up to M"
  //   "PATH is damaged: ..."
  static Result<SessionReader> open(const std::string& path);

  ~SessionReader();
  SessionReader(SessionReader&& other) noexcept;
  SessionReader& operator=(SessionReader&& other) noexcept;
  SessionReader(const SessionReader&) = delete;
  SessionReader& operator=(const SessionReader&) = delete;

  const std::string& path() const;
  // With end_unix_ms == 0 and no exit fields if the recorder died before finishing.
  const RecordingInfo& info() const;
  // Whether the recorder finished the session (SessionWriter::finish).
  bool finished() const;
  std::vector<RecordingEvent> events() const;
  // Samples in the file when it was opened.
  size_t sample_count() const;
  // Streams the samples in time order, one at a time, in constant memory; stops early when
  // `visit` returns false. A damaged file ends the stream with "PATH is damaged: ...".
  Status for_each_sample(const SampleVisitor& visit) const;

 private:
  class Impl;
  explicit SessionReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace memscope::store
