// The session file's schema: its identity (application_id), its version (user_version), the
// tables, and the checks a reader makes before trusting a file. docs/session-format.md explains
// the layout and the versioning rules.
#pragma once

#include <cstdint>
#include <string>

#include "core/recording.hpp"
#include "core/result.hpp"
#include "store/sqlite.hpp"

namespace memscope::store {

// PRAGMA application_id of every session file: "MSCP".
constexpr int32_t kApplicationId = 0x4D534350;
// PRAGMA user_version written by this memscope, and the newest a reader here understands.
constexpr int kSchemaVersion = 1;
// meta.format of every session file.
constexpr const char* kFormatName = "memscope-session";

// What the first bytes of a file say it is, before SQLite is asked.
enum class FileKind {
  kMissing,  // stat failed: no such file, or a path through a non-directory
  kDirectory,
  kNotRegular,     // device, FIFO, socket
  kUnreadable,     // exists, but open(2) failed
  kEmpty,          // zero bytes
  kNotSqlite,      // does not start with SQLite's magic
  kTruncated,      // SQLite, but shorter than its own header says
  kForeignSqlite,  // SQLite with another program's application_id in its header
  kSession,        // SQLite with memscope's application_id
};

struct FileCheck {
  FileKind kind = FileKind::kMissing;
  std::string detail;  // why, for messages: errno text, sizes
};

// Looks at the path and the 100-byte SQLite header, without opening the database. The header's
// page count is only trusted when no write-ahead log sits beside the file.
FileCheck inspect_file(const std::string& path);

// Creates every table and index and writes the identity, the version, meta and the recording
// row, in one transaction on a fresh, empty database.
Status create_schema(sqlite::Database& db, const RecordingInfo& info);

// Replaces the recording row (a session holds exactly one).
Status write_recording(sqlite::Database& db, const RecordingInfo& info, bool finished);

// The recording row, and whether finish() ran.
struct StoredRecording {
  RecordingInfo info;
  bool finished = false;
};
Result<StoredRecording> read_recording(sqlite::Database& db);

}  // namespace memscope::store
