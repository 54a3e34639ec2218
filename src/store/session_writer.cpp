#include "store/session_writer.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>

#include "core/log.hpp"
#include "store/recent_rows.hpp"
#include "store/rows.hpp"
#include "store/schema.hpp"
#include "store/sqlite.hpp"

namespace memscope::store {
namespace {

using Clock = std::chrono::steady_clock;

// Commit at least this often, in sample time and in wall time: what SIGKILL can cost.
constexpr double kCommitIntervalSeconds = 1.0;

std::string insert_sql(const char* table, const std::string& key_columns, const char* columns) {
  const std::string all = key_columns.empty() ? columns : key_columns + ", " + columns;
  return std::string("INSERT INTO ") + table + " (" + all + ") VALUES (" + rows::placeholders(all) +
         ")";
}

// Removes a session and the files SQLite keeps beside it; a missing file is not an error.
Status remove_session_files(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    const std::string file = path + suffix;
    if (::unlink(file.c_str()) != 0 && errno != ENOENT) {
      return make_error("cannot remove " + file + ": " + std::strerror(errno));
    }
  }
  return Status::success();
}

// Says why `path` may not be (re)created, or removes the old session when that is allowed.
Status make_room(const std::string& path, bool overwrite) {
  const FileCheck check = inspect_file(path);
  switch (check.kind) {
    case FileKind::kMissing:
      return Status::success();  // creating it says what is wrong with the directory, if anything
    case FileKind::kDirectory:
      return make_error("cannot create session file " + path + ": it is a directory");
    case FileKind::kSession:
    case FileKind::kEmpty:
      if (!overwrite) {
        return make_error("session file " + path + " already exists; not overwriting it");
      }
      return remove_session_files(path);
    case FileKind::kUnreadable:
      return make_error("cannot create session file " + path + ": it exists and cannot be read (" +
                        check.detail + ")");
    default:
      return make_error(path + " exists and is not a memscope session (" + check.detail +
                        "); refusing to overwrite it");
  }
}

}  // namespace

class SessionWriter::Impl {
 public:
  explicit Impl(std::string path) : path_(std::move(path)) {}
  ~Impl() {
    if (!db_.is_open()) return;
    if (Status flushed = commit(); !flushed) log::warn("{}", flushed.message());
  }

  Status open(const RecordingInfo& info);
  Status append(const Sample& sample);
  Status add_event(const RecordingEvent& event);
  Status commit();
  Status finish(const RecordingInfo& final_info);
  const std::string& path() const { return path_; }

 private:
  Status check_open() const;
  Status begin();
  Status insert(const Sample& sample);
  Result<int64_t> process_row(const ProcessSample& process);
  Result<int64_t> device_row(const DeviceSample& device);
  Status fail(const std::string& doing, const Status& status);

  std::string path_;
  sqlite::Database db_;
  sqlite::Statement begin_, commit_, rollback_, savepoint_, release_, rollback_to_;
  sqlite::Statement insert_sample_, insert_process_, insert_process_sample_;
  sqlite::Statement insert_device_, insert_device_sample_, insert_gpu_process_, insert_event_;
  RecentRows<std::pair<int, uint64_t>, ProcessSample> processes_;
  RecentRows<std::pair<int, std::string>, DeviceSample> devices_;
  bool finished_ = false;
  bool committed_once_ = false;
  double last_sample_t_ = 0;
  double last_commit_t_ = 0;
  Clock::time_point last_commit_wall_ = Clock::now();
};

Status SessionWriter::Impl::open(const RecordingInfo& info) {
  auto db = sqlite::Database::open(path_, SQLITE_OPEN_READWRITE);
  if (!db) return db.error();
  db_ = std::move(*db);
  sqlite3_busy_timeout(db_.handle(), 5000);
  // The identity and the schema go into the file itself before it switches to WAL, so even a
  // recorder killed a moment later leaves a file that says what it is.
  if (Status done = db_.exec("PRAGMA temp_store = MEMORY"); !done) return done;
  if (Status done = create_schema(db_, info); !done) return done;
  auto mode = db_.query_text("PRAGMA journal_mode = WAL");
  if (!mode) return mode.error();
  if (*mode != "wal") return make_error("the file system does not support WAL (" + *mode + ")");
  if (Status done = db_.exec("PRAGMA synchronous = NORMAL"); !done) return done;

  const std::pair<sqlite::Statement*, std::string> statements[] = {
      {&begin_, "BEGIN"},
      {&commit_, "COMMIT"},
      {&rollback_, "ROLLBACK"},
      {&savepoint_, "SAVEPOINT sample"},
      {&release_, "RELEASE sample"},
      {&rollback_to_, "ROLLBACK TO sample"},
      {&insert_sample_, insert_sql("samples", "", rows::kSampleColumns)},
      {&insert_process_, insert_sql("processes", "", rows::kProcessColumns)},
      {&insert_process_sample_,
       insert_sql("process_samples", "sample_id, seq, process_id", rows::kProcessSampleColumns)},
      {&insert_device_, insert_sql("devices", "", rows::kDeviceColumns)},
      {&insert_device_sample_,
       insert_sql("device_samples", "sample_id, seq, device_id", rows::kDeviceSampleColumns)},
      {&insert_gpu_process_,
       insert_sql("gpu_processes", "sample_id, device_seq, seq", rows::kGpuProcessColumns)},
      {&insert_event_, "INSERT INTO events (t_seconds, kind, message) VALUES (?, ?, ?)"},
  };
  for (const auto& [statement, sql] : statements) {
    auto prepared = db_.prepare(sql);
    if (!prepared) return prepared.error();
    *statement = std::move(*prepared);
  }
  return Status::success();
}

Status SessionWriter::Impl::check_open() const {
  if (finished_) return make_error("session " + path_ + " is finished; nothing more can be added");
  if (!db_.is_open()) return make_error("session " + path_ + " is closed");
  return Status::success();
}

Status SessionWriter::Impl::begin() {
  if (db_.in_transaction()) return Status::success();
  return begin_.run();
}

Status SessionWriter::Impl::fail(const std::string& doing, const Status& status) {
  // A failed statement may have rolled the transaction back, taking rows the caches point at.
  if (db_.in_transaction()) (void)rollback_.run();
  processes_.forget_all();
  devices_.forget_all();
  return make_error("cannot " + doing + " to " + path_ + ": " + status.message());
}

Status SessionWriter::Impl::append(const Sample& sample) {
  if (Status open = check_open(); !open) return open;
  if (Status begun = begin(); !begun) return fail("write a sample", begun);
  if (Status saved = savepoint_.run(); !saved) return fail("write a sample", saved);
  if (Status inserted = insert(sample); !inserted) {
    // Take back this sample's rows only; earlier samples stay in the open transaction.
    const bool undone = rollback_to_.run().ok() && release_.run().ok();
    processes_.forget_all();
    devices_.forget_all();
    if (!undone) return fail("write a sample", inserted);
    return make_error("cannot write the sample at t=" + std::to_string(sample.t_seconds) + "s to " +
                      path_ + ": " + inserted.message());
  }
  if (Status released = release_.run(); !released) return fail("write a sample", released);
  processes_.next_sample();
  devices_.next_sample();
  last_sample_t_ = sample.t_seconds;

  const bool sample_time_due = sample.t_seconds - last_commit_t_ >= kCommitIntervalSeconds ||
                               sample.t_seconds < last_commit_t_;
  const bool wall_time_due =
      Clock::now() - last_commit_wall_ >= std::chrono::duration<double>(kCommitIntervalSeconds);
  if (!committed_once_ || sample_time_due || wall_time_due) return commit();
  return Status::success();
}

Status SessionWriter::Impl::insert(const Sample& sample) {
  sqlite::Binder sample_row(insert_sample_);
  rows::bind_sample(sample_row, sample);
  if (Status done = insert_sample_.run(); !done) return done;
  const int64_t sample_id = db_.last_insert_rowid();

  int64_t seq = 0;
  for (const ProcessSample& process : sample.processes) {
    auto process_id = process_row(process);
    if (!process_id) return process_id.error();
    sqlite::Binder bind(insert_process_sample_);
    bind(sample_id)(seq++)(*process_id);
    rows::bind_process_sample(bind, process);
    if (Status done = insert_process_sample_.run(); !done) return done;
  }

  int64_t device_seq = 0;
  for (const DeviceSample& device : sample.devices) {
    auto device_id = device_row(device);
    if (!device_id) return device_id.error();
    sqlite::Binder bind(insert_device_sample_);
    bind(sample_id)(device_seq)(*device_id);
    rows::bind_device_sample(bind, device);
    if (Status done = insert_device_sample_.run(); !done) return done;
    int64_t gpu_seq = 0;
    for (const GpuProcess& process : device.processes) {
      sqlite::Binder gpu_bind(insert_gpu_process_);
      gpu_bind(sample_id)(device_seq)(gpu_seq++);
      rows::bind_gpu_process(gpu_bind, process);
      if (Status done = insert_gpu_process_.run(); !done) return done;
    }
    ++device_seq;
  }
  return Status::success();
}

Result<int64_t> SessionWriter::Impl::process_row(const ProcessSample& process) {
  const std::pair<int, uint64_t> key{process.pid, process.start_time_ticks};
  auto* known = processes_.find(key);
  if (known != nullptr && rows::same_process_row(known->row, process)) return known->row_id;
  // New, or its comm/cmdline/ppid/rank changed (exec, setproctitle, reparenting): a new row.
  sqlite::Binder bind(insert_process_);
  rows::bind_process(bind, process);
  if (Status done = insert_process_.run(); !done) return done.error();
  const int64_t row_id = db_.last_insert_rowid();
  processes_.remember(key, row_id, process);
  return row_id;
}

Result<int64_t> SessionWriter::Impl::device_row(const DeviceSample& device) {
  const std::pair<int, std::string> key{device.index, device.uuid};
  auto* known = devices_.find(key);
  if (known != nullptr && rows::same_device_row(known->row, device)) return known->row_id;
  sqlite::Binder bind(insert_device_);
  rows::bind_device(bind, device);
  if (Status done = insert_device_.run(); !done) return done.error();
  const int64_t row_id = db_.last_insert_rowid();
  DeviceSample row = device;
  row.processes.clear();  // only the unchanging part is compared later
  row.errors.clear();
  devices_.remember(key, row_id, row);
  return row_id;
}

Status SessionWriter::Impl::add_event(const RecordingEvent& event) {
  if (Status open = check_open(); !open) return open;
  if (Status begun = begin(); !begun) return fail("write an event", begun);
  sqlite::Binder bind(insert_event_);
  bind(event.t_seconds)(event.kind)(event.message);
  if (Status done = insert_event_.run(); !done) return fail("write an event", done);
  return commit();
}

Status SessionWriter::Impl::commit() {
  if (Status open = check_open(); !open) return open;
  if (db_.in_transaction()) {
    if (Status done = commit_.run(); !done) return fail("commit", done);
  }
  committed_once_ = true;
  last_commit_t_ = last_sample_t_;
  last_commit_wall_ = Clock::now();
  return Status::success();
}

Status SessionWriter::Impl::finish(const RecordingInfo& final_info) {
  if (Status done = commit(); !done) return done;
  if (Status done = write_recording(db_, final_info, true); !done) {
    return make_error("cannot write the end of the recording to " + path_ + ": " + done.message());
  }
  finished_ = true;
  // Fold the log into the file and leave rollback-journal mode behind, so the finished session
  // is one file that can be copied and read from read-only media. A live reader may keep the
  // log in place; the session is complete either way.
  sqlite3_busy_timeout(db_.handle(), 1000);
  if (Status done = db_.exec("PRAGMA wal_checkpoint(TRUNCATE)"); !done) {
    log::debug("{}: checkpoint at finish: {}", path_, done.message());
  }
  auto mode = db_.query_text("PRAGMA journal_mode = DELETE");
  if (!mode || *mode != "delete") {
    log::debug("{}: session stays in WAL mode: {}", path_, mode ? *mode : mode.message());
  }
  for (sqlite::Statement* statement :
       {&begin_, &commit_, &rollback_, &savepoint_, &release_, &rollback_to_, &insert_sample_,
        &insert_process_, &insert_process_sample_, &insert_device_, &insert_device_sample_,
        &insert_gpu_process_, &insert_event_}) {
    *statement = sqlite::Statement();
  }
  db_.close();
  processes_.forget_all();
  devices_.forget_all();
  return Status::success();
}

Result<SessionWriter> SessionWriter::create(const std::string& path, const RecordingInfo& info,
                                            bool overwrite) {
  if (Status room = make_room(path, overwrite); !room) return room.error();
  // O_EXCL: never clobber a file that appeared since it was inspected.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    return make_error("cannot create session file " + path + ": " + std::strerror(errno));
  }
  ::close(fd);
  auto impl = std::make_unique<Impl>(path);
  if (Status opened = impl->open(info); !opened) {
    impl.reset();
    (void)remove_session_files(path);
    return make_error("cannot create session file " + path + ": " + opened.message());
  }
  return SessionWriter(std::move(impl));
}

SessionWriter::SessionWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SessionWriter::~SessionWriter() = default;
SessionWriter::SessionWriter(SessionWriter&& other) noexcept = default;
SessionWriter& SessionWriter::operator=(SessionWriter&& other) noexcept = default;

namespace {
Status moved_from() { return make_error("session writer was moved from"); }
const std::string kNoPath;
}  // namespace

Status SessionWriter::append(const Sample& sample) {
  return impl_ ? impl_->append(sample) : moved_from();
}
Status SessionWriter::add_event(const RecordingEvent& event) {
  return impl_ ? impl_->add_event(event) : moved_from();
}
Status SessionWriter::flush() { return impl_ ? impl_->commit() : moved_from(); }
Status SessionWriter::finish(const RecordingInfo& final_info) {
  return impl_ ? impl_->finish(final_info) : moved_from();
}
const std::string& SessionWriter::path() const { return impl_ ? impl_->path() : kNoPath; }

}  // namespace memscope::store
