#include "store/session_reader.hpp"

#include <sqlite3.h>

#include <utility>

#include "store/rows.hpp"
#include "store/schema.hpp"
#include "store/sqlite.hpp"

namespace memscope::store {
namespace {

// No string or row in a session comes near this; a file claiming more is hostile or broken.
constexpr int kMaxValueBytes = 64 << 20;

}  // namespace

class SessionReader::Impl {
 public:
  explicit Impl(std::string path) : path_(std::move(path)) {}

  Status open();
  Status for_each_sample(const SampleVisitor& visit);

  std::string path_;
  sqlite::Database db_;
  StoredRecording recording_;
  std::vector<RecordingEvent> events_;
  size_t sample_count_ = 0;

 private:
  Status check_identity();
  Status load();
  Status prepare_streams();
  Status read_processes(int64_t sample_id, Sample& sample);
  Status read_devices(int64_t sample_id, Sample& sample);
  // Turns an SQLite failure into the one-line message a user sees.
  Status failed(const std::string& what);
  Status damaged(const std::string& detail) const {
    return make_error(path_ + " is damaged: " + detail);
  }

  sqlite::Statement samples_, processes_, devices_, gpu_processes_;
  bool streaming_ = false;
};

Status SessionReader::Impl::failed(const std::string& what) {
  switch (db_.last_error_code()) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_NOMEM:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return make_error("cannot read " + path_ + ": " + what);
    default:
      return damaged(what);
  }
}

Status SessionReader::Impl::open() {
  const FileCheck check = inspect_file(path_);
  switch (check.kind) {
    case FileKind::kSession:
      break;
    case FileKind::kMissing:
    case FileKind::kUnreadable:
      return make_error("cannot open " + path_ + ": " + check.detail);
    case FileKind::kDirectory:
      return make_error(path_ + " is a directory, not a memscope session");
    case FileKind::kTruncated:
      return damaged(check.detail);
    default:
      return make_error(path_ + " is not a memscope session (" + check.detail + ")");
  }
  auto db = sqlite::Database::open(path_, SQLITE_OPEN_READONLY);
  if (!db) return make_error("cannot open " + path_ + ": " + db.message());
  db_ = std::move(*db);
  sqlite3* handle = db_.handle();
  sqlite3_busy_timeout(handle, 5000);
  sqlite3_limit(handle, SQLITE_LIMIT_LENGTH, kMaxValueBytes);
  // The file is untrusted: no code from its schema (triggers, views' functions) runs here.
  sqlite3_db_config(handle, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
  sqlite3_db_config(handle, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, nullptr);
  if (Status identity = check_identity(); !identity) return identity;
  if (Status loaded = load(); !loaded) return loaded;
  return prepare_streams();
}

Status SessionReader::Impl::check_identity() {
  // The header said so already; SQLite's view includes a write-ahead log, if any.
  auto application_id = db_.query_int("PRAGMA application_id");
  if (!application_id) return failed(application_id.message());
  if (*application_id != kApplicationId) {
    return make_error(path_ + " is not a memscope session (an SQLite database of another program)");
  }
  auto version = db_.query_int("PRAGMA user_version");
  if (!version) return failed(version.message());
  if (*version > kSchemaVersion) {
    return make_error(path_ + " was written by a newer memscope (schema " +
                      std::to_string(*version) + "); this one reads up to " +
                      std::to_string(kSchemaVersion));
  }
  if (*version < 1) return damaged("it has no schema version");
  auto format = db_.query_text("SELECT value FROM meta WHERE key = 'format'");
  if (!format) return failed(format.message());
  if (*format != kFormatName) return damaged("meta.format is '" + *format + "'");
  return Status::success();
}

Status SessionReader::Impl::load() {
  auto recording = read_recording(db_);
  if (!recording) return failed(recording.message());
  recording_ = std::move(*recording);

  auto events = db_.prepare("SELECT t_seconds, kind, message FROM events ORDER BY t_seconds, id");
  if (!events) return failed(events.message());
  while (true) {
    auto row = events->step();
    if (!row) return failed(row.message());
    if (!*row) break;
    sqlite::Columns columns(*events);
    RecordingEvent& event = events_.emplace_back();
    event.t_seconds = columns.real();
    event.kind = columns.text();
    event.message = columns.text();
  }

  auto count = db_.query_int("SELECT count(*) FROM samples");
  if (!count) return failed(count.message());
  sample_count_ = static_cast<size_t>(*count);
  return Status::success();
}

Status SessionReader::Impl::prepare_streams() {
  const std::pair<sqlite::Statement*, std::string> statements[] = {
      {&samples_,
       std::string("SELECT id, ") + rows::kSampleColumns + " FROM samples ORDER BY t_seconds, id"},
      // LEFT JOIN: a sample row whose process row is missing shows up as NULL, not as nothing.
      {&processes_, std::string("SELECT processes.id, ") + rows::kProcessColumns + ", " +
                        rows::kProcessSampleColumns +
                        " FROM process_samples LEFT JOIN processes"
                        " ON processes.id = process_samples.process_id"
                        " WHERE sample_id = ? ORDER BY seq"},
      {&devices_, std::string("SELECT seq, devices.id, ") + rows::kDeviceColumns + ", " +
                      rows::kDeviceSampleColumns +
                      " FROM device_samples LEFT JOIN devices"
                      " ON devices.id = device_samples.device_id"
                      " WHERE sample_id = ? ORDER BY seq"},
      {&gpu_processes_, std::string("SELECT device_seq, ") + rows::kGpuProcessColumns +
                            " FROM gpu_processes WHERE sample_id = ? ORDER BY device_seq, seq"},
  };
  for (const auto& [statement, sql] : statements) {
    auto prepared = db_.prepare(sql);
    if (!prepared) return failed(prepared.message());
    *statement = std::move(*prepared);
  }
  return Status::success();
}

Status SessionReader::Impl::read_processes(int64_t sample_id, Sample& sample) {
  processes_.bind(1, sample_id);
  size_t count = 0;
  while (true) {
    auto row = processes_.step();
    if (!row) return failed(row.message());
    if (!*row) break;
    if (processes_.is_null(0)) {
      processes_.reset();
      return damaged("a process sample refers to a missing process");
    }
    // Reuse the previous sample's strings and vectors: no allocation once warmed up.
    if (count == sample.processes.size()) sample.processes.emplace_back();
    ProcessSample& process = sample.processes[count++];
    sqlite::Columns columns(processes_, 1);
    rows::read_process(columns, process);
    rows::read_process_sample(columns, process);
  }
  processes_.reset();
  sample.processes.resize(count);
  return Status::success();
}

Status SessionReader::Impl::read_devices(int64_t sample_id, Sample& sample) {
  devices_.bind(1, sample_id);
  size_t count = 0;
  while (true) {
    auto row = devices_.step();
    if (!row) return failed(row.message());
    if (!*row) break;
    if (devices_.column_int(0) != static_cast<int64_t>(count)) {
      devices_.reset();
      return damaged("device samples are out of sequence");
    }
    if (devices_.is_null(1)) {
      devices_.reset();
      return damaged("a device sample refers to a missing device");
    }
    if (count == sample.devices.size()) sample.devices.emplace_back();
    DeviceSample& device = sample.devices[count++];
    sqlite::Columns columns(devices_, 2);
    rows::read_device(columns, device);
    if (Status read = rows::read_device_sample(columns, device); !read) {
      devices_.reset();
      return damaged(read.message());
    }
    device.processes.clear();
  }
  devices_.reset();
  sample.devices.resize(count);

  gpu_processes_.bind(1, sample_id);
  while (true) {
    auto row = gpu_processes_.step();
    if (!row) return failed(row.message());
    if (!*row) break;
    const int64_t device_seq = gpu_processes_.column_int(0);
    if (device_seq < 0 || static_cast<uint64_t>(device_seq) >= count) {
      gpu_processes_.reset();
      return damaged("a GPU process refers to a missing device sample");
    }
    sqlite::Columns columns(gpu_processes_, 1);
    rows::read_gpu_process(
        columns, sample.devices[static_cast<size_t>(device_seq)].processes.emplace_back());
  }
  gpu_processes_.reset();
  return Status::success();
}

Status SessionReader::Impl::for_each_sample(const SampleVisitor& visit) {
  if (streaming_) return make_error("for_each_sample on " + path_ + " called from its own visitor");
  streaming_ = true;
  Sample sample;
  Status status;
  while (status) {
    auto row = samples_.step();
    if (!row) {
      status = failed(row.message());
      break;
    }
    if (!*row) break;
    const int64_t sample_id = samples_.column_int(0);
    sqlite::Columns columns(samples_, 1);
    if (Status read = rows::read_sample(columns, sample); !read) {
      status = damaged(read.message());
    } else if (status = read_processes(sample_id, sample); status) {
      status = read_devices(sample_id, sample);
    }
    if (status && !visit(sample)) break;
  }
  samples_.reset();
  streaming_ = false;
  return status;
}

SessionReader::SessionReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SessionReader::~SessionReader() = default;
SessionReader::SessionReader(SessionReader&& other) noexcept = default;
SessionReader& SessionReader::operator=(SessionReader&& other) noexcept = default;

Result<SessionReader> SessionReader::open(const std::string& path) {
  auto impl = std::make_unique<Impl>(path);
  if (Status opened = impl->open(); !opened) return opened.error();
  return SessionReader(std::move(impl));
}

const std::string& SessionReader::path() const { return impl_->path_; }
const RecordingInfo& SessionReader::info() const { return impl_->recording_.info; }
bool SessionReader::finished() const { return impl_->recording_.finished; }
std::vector<RecordingEvent> SessionReader::events() const { return impl_->events_; }
size_t SessionReader::sample_count() const { return impl_->sample_count_; }
Status SessionReader::for_each_sample(const SampleVisitor& visit) const {
  return impl_->for_each_sample(visit);
}

}  // namespace memscope::store
