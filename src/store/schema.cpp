#include "store/schema.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <string_view>

#include "store/rows.hpp"

namespace memscope::store {
namespace {

// Version 1. Any change here is a new version: see docs/session-format.md.
constexpr const char* kCreateTables = R"sql(
CREATE TABLE meta (
  key TEXT PRIMARY KEY NOT NULL,
  value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE recording (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  command TEXT NOT NULL,
  hostname TEXT NOT NULL,
  memscope_version TEXT NOT NULL,
  start_unix_ms INTEGER NOT NULL,
  end_unix_ms INTEGER NOT NULL,
  interval_seconds REAL,
  root_pid INTEGER NOT NULL,
  device_filter TEXT NOT NULL,
  exit_code INTEGER,
  term_signal INTEGER,
  oom_killed INTEGER NOT NULL,
  outcome TEXT NOT NULL,
  finished INTEGER NOT NULL
);

CREATE TABLE events (
  id INTEGER PRIMARY KEY,
  t_seconds REAL,
  kind TEXT NOT NULL,
  message TEXT NOT NULL
);

CREATE TABLE samples (
  id INTEGER PRIMARY KEY,
  t_seconds REAL,
  unix_ms INTEGER NOT NULL,
  mem_total_bytes INTEGER NOT NULL,
  mem_free_bytes INTEGER NOT NULL,
  mem_available_bytes INTEGER NOT NULL,
  mem_cached_bytes INTEGER NOT NULL,
  mem_shmem_bytes INTEGER NOT NULL,
  swap_total_bytes INTEGER NOT NULL,
  swap_free_bytes INTEGER NOT NULL,
  psi_available INTEGER NOT NULL,
  psi_some_avg10 REAL,
  psi_some_avg60 REAL,
  psi_some_avg300 REAL,
  psi_some_total_us INTEGER NOT NULL,
  psi_full_avg10 REAL,
  psi_full_avg60 REAL,
  psi_full_avg300 REAL,
  psi_full_total_us INTEGER NOT NULL,
  vm_has_oom_kill INTEGER NOT NULL,
  vm_oom_kill INTEGER NOT NULL,
  vm_pgmajfault INTEGER NOT NULL,
  cg_version INTEGER,
  cg_path TEXT,
  cg_usage_bytes INTEGER,
  cg_limit_bytes INTEGER,
  cg_limit_path TEXT,
  cg_oom_events INTEGER,
  cg_oom_kill_events INTEGER,
  cg_swap_usage_bytes INTEGER,
  limit_bytes INTEGER NOT NULL,
  limit_source TEXT NOT NULL,
  used_bytes INTEGER NOT NULL,
  notes TEXT
);
CREATE INDEX samples_by_time ON samples (t_seconds);

CREATE TABLE processes (
  id INTEGER PRIMARY KEY,
  pid INTEGER NOT NULL,
  start_time_ticks INTEGER NOT NULL,
  ppid INTEGER NOT NULL,
  comm TEXT NOT NULL,
  cmdline TEXT NOT NULL,
  rank INTEGER,
  local_rank INTEGER,
  world_size INTEGER
);

CREATE TABLE process_samples (
  sample_id INTEGER NOT NULL REFERENCES samples (id),
  seq INTEGER NOT NULL,
  process_id INTEGER NOT NULL REFERENCES processes (id),
  state TEXT NOT NULL,
  rss_bytes INTEGER NOT NULL,
  pss_bytes INTEGER NOT NULL,
  uss_bytes INTEGER NOT NULL,
  swap_bytes INTEGER NOT NULL,
  gpu_bytes INTEGER NOT NULL,
  smaps_readable INTEGER NOT NULL,
  smaps_age_seconds REAL,
  PRIMARY KEY (sample_id, seq)
) WITHOUT ROWID;

CREATE TABLE devices (
  id INTEGER PRIMARY KEY,
  device_index INTEGER NOT NULL,
  uuid TEXT NOT NULL,
  name TEXT NOT NULL,
  total_bytes INTEGER NOT NULL,
  memory_api TEXT NOT NULL
);

CREATE TABLE device_samples (
  sample_id INTEGER NOT NULL REFERENCES samples (id),
  seq INTEGER NOT NULL,
  device_id INTEGER NOT NULL REFERENCES devices (id),
  ok INTEGER NOT NULL,
  errors TEXT,
  used_bytes INTEGER NOT NULL,
  free_bytes INTEGER NOT NULL,
  reserved_bytes INTEGER,
  utilization_percent INTEGER,
  memory_utilization_percent INTEGER,
  temperature_celsius INTEGER,
  power_watts REAL,
  PRIMARY KEY (sample_id, seq)
) WITHOUT ROWID;

CREATE TABLE gpu_processes (
  sample_id INTEGER NOT NULL REFERENCES samples (id),
  device_seq INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  pid INTEGER NOT NULL,
  used_bytes INTEGER NOT NULL,
  graphics INTEGER NOT NULL,
  PRIMARY KEY (sample_id, device_seq, seq)
) WITHOUT ROWID;
)sql";

constexpr const char* kRecordingColumns =
    "command, hostname, memscope_version, start_unix_ms, end_unix_ms, interval_seconds, "
    "root_pid, device_filter, exit_code, term_signal, oom_killed, outcome, finished";

constexpr std::string_view kSqliteMagic{"SQLite format 3\0", 16};
constexpr size_t kHeaderSize = 100;

uint32_t big_endian(const std::array<unsigned char, kHeaderSize>& header, size_t offset,
                    size_t size) {
  uint32_t value = 0;
  for (size_t i = 0; i < size; ++i) value = (value << 8) | header[offset + i];
  return value;
}

bool has_write_ahead_log(const std::string& path) {
  struct stat wal {};
  return stat((path + "-wal").c_str(), &wal) == 0 && wal.st_size > 0;
}

}  // namespace

FileCheck inspect_file(const std::string& path) {
  struct stat info {};
  if (stat(path.c_str(), &info) != 0) return {FileKind::kMissing, std::strerror(errno)};
  if (S_ISDIR(info.st_mode)) return {FileKind::kDirectory, "is a directory"};
  if (!S_ISREG(info.st_mode)) return {FileKind::kNotRegular, "not a regular file"};
  if (info.st_size == 0) return {FileKind::kEmpty, "empty file"};

  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {FileKind::kUnreadable, std::strerror(errno)};
  std::array<unsigned char, kHeaderSize> header{};
  size_t got = 0;
  while (got < header.size()) {
    const ssize_t n = ::read(fd, header.data() + got, header.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);

  const std::string_view start(reinterpret_cast<const char*>(header.data()),
                               std::min(got, kSqliteMagic.size()));
  if (start != kSqliteMagic.substr(0, start.size())) {
    return {FileKind::kNotSqlite, "not an SQLite database"};
  }
  if (got < kHeaderSize) {
    return {FileKind::kTruncated,
            "the file ends inside the SQLite header (" + std::to_string(got) + " bytes)"};
  }
  // The header's page count is valid when the change counter matches version-valid-for; the
  // file may legitimately be shorter while a write-ahead log holds the rest.
  const uint32_t raw_page_size = big_endian(header, 16, 2);
  const uint64_t page_size = raw_page_size == 1 ? 65536 : raw_page_size;
  const uint64_t pages = big_endian(header, 28, 4);
  const bool count_valid = big_endian(header, 24, 4) == big_endian(header, 92, 4);
  const auto file_size = static_cast<uint64_t>(info.st_size);
  if (count_valid && pages > 0 && file_size < pages * page_size && !has_write_ahead_log(path)) {
    return {FileKind::kTruncated, "the file is truncated (" + std::to_string(file_size) +
                                      " bytes; its header says " +
                                      std::to_string(pages * page_size) + ")"};
  }
  const auto application_id = static_cast<int32_t>(big_endian(header, 68, 4));
  if (application_id != kApplicationId) {
    return {FileKind::kForeignSqlite, "an SQLite database of another program"};
  }
  return {FileKind::kSession, ""};
}

Status create_schema(sqlite::Database& db, const RecordingInfo& info) {
  const std::string identity = "PRAGMA application_id = " + std::to_string(kApplicationId) +
                               "; PRAGMA user_version = " + std::to_string(kSchemaVersion) + ";";
  if (Status done = db.exec("BEGIN IMMEDIATE"); !done) return done;
  Status status = db.exec(identity.c_str());
  if (status) status = db.exec(kCreateTables);
  if (status) {
    auto meta = db.prepare("INSERT INTO meta (key, value) VALUES (?, ?)");
    if (!meta) return meta.error();
    const std::pair<const char*, std::string> rows[] = {
        {"format", kFormatName},
        {"schema_version", std::to_string(kSchemaVersion)},
        {"created_by", "memscope " + info.memscope_version},
        {"sqlite_version", sqlite3_libversion()},
    };
    for (const auto& [key, value] : rows) {
      sqlite::Binder bind(*meta);
      bind(std::string_view(key))(value);
      status = meta->run();
      if (!status) break;
    }
  }
  if (status) status = write_recording(db, info, false);
  if (status) status = db.exec("COMMIT");
  if (!status && db.in_transaction()) (void)db.exec("ROLLBACK");
  return status;
}

Status write_recording(sqlite::Database& db, const RecordingInfo& info, bool finished) {
  auto statement =
      db.prepare(std::string("INSERT OR REPLACE INTO recording (id, ") + kRecordingColumns +
                 ") VALUES (1, " + rows::placeholders(kRecordingColumns) + ")");
  if (!statement) return statement.error();
  sqlite::Binder bind(*statement);
  bind(rows::encode_strings(info.command))(info.hostname)(info.memscope_version);
  bind(info.start_unix_ms)(info.end_unix_ms)(info.interval_seconds)(info.root_pid);
  bind(rows::encode_ints(info.device_filter))(info.exit_code)(info.term_signal);
  bind(info.oom_killed)(info.outcome)(finished);
  return statement->run();
}

Result<StoredRecording> read_recording(sqlite::Database& db) {
  auto statement =
      db.prepare(std::string("SELECT ") + kRecordingColumns + " FROM recording WHERE id = 1");
  if (!statement) return statement.error();
  auto row = statement->step();
  if (!row) return row.error();
  if (!*row) return make_error("the recording row is missing");
  StoredRecording stored;
  RecordingInfo& info = stored.info;
  sqlite::Columns columns(*statement);
  auto command = rows::decode_strings(columns.text());
  if (!command) return make_error("recording.command: " + command.message());
  info.command = std::move(*command);
  info.hostname = columns.text();
  info.memscope_version = columns.text();
  info.start_unix_ms = columns.i64();
  info.end_unix_ms = columns.i64();
  info.interval_seconds = columns.real();
  info.root_pid = columns.i32();
  auto device_filter = rows::decode_ints(columns.text());
  if (!device_filter) return make_error("recording.device_filter: " + device_filter.message());
  info.device_filter = std::move(*device_filter);
  info.exit_code = columns.optional<int>();
  info.term_signal = columns.optional<int>();
  info.oom_killed = columns.boolean();
  info.outcome = columns.text();
  stored.finished = columns.boolean();
  return stored;
}

}  // namespace memscope::store
