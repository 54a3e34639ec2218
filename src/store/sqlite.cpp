#include "store/sqlite.hpp"

#include <sqlite3.h>

#include <limits>
#include <utility>

namespace memscope::store::sqlite {

Result<Database> Database::open(const std::string& path, int flags) {
  sqlite3* handle = nullptr;
  const int code = sqlite3_open_v2(path.c_str(), &handle, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  if (code != SQLITE_OK) {
    std::string message = handle != nullptr ? sqlite3_errmsg(handle) : sqlite3_errstr(code);
    sqlite3_close(handle);
    return make_error(std::move(message));
  }
  sqlite3_extended_result_codes(handle, 0);
  return Database(handle);
}

Database::~Database() { close(); }

Database::Database(Database&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}

Database& Database::operator=(Database&& other) noexcept {
  if (this != &other) {
    close();
    handle_ = std::exchange(other.handle_, nullptr);
  }
  return *this;
}

void Database::close() {
  // sqlite3_close_v2 defers the close until the last statement is finalized, so the order in
  // which owners destroy statements and connections does not matter.
  if (handle_ != nullptr) sqlite3_close_v2(std::exchange(handle_, nullptr));
}

Status Database::exec(const char* sql) {
  char* message = nullptr;
  const int code = sqlite3_exec(handle_, sql, nullptr, nullptr, &message);
  if (code == SQLITE_OK) return Status::success();
  std::string text = message != nullptr ? message : sqlite3_errstr(code);
  sqlite3_free(message);
  return make_error(std::move(text));
}

Result<Statement> Database::prepare(std::string_view sql) {
  sqlite3_stmt* handle = nullptr;
  const int code = sqlite3_prepare_v3(handle_, sql.data(), static_cast<int>(sql.size()),
                                      SQLITE_PREPARE_PERSISTENT, &handle, nullptr);
  if (code != SQLITE_OK) return make_error(last_error());
  return Statement(handle, handle_);
}

Result<int64_t> Database::query_int(const char* sql) {
  auto statement = prepare(sql);
  if (!statement) return statement.error();
  auto row = statement->step();
  if (!row) return row.error();
  if (!*row) return make_error(std::string("no result from ") + sql);
  return statement->column_int(0);
}

Result<std::string> Database::query_text(const char* sql) {
  auto statement = prepare(sql);
  if (!statement) return statement.error();
  auto row = statement->step();
  if (!row) return row.error();
  if (!*row) return make_error(std::string("no result from ") + sql);
  return std::string(statement->column_text(0));
}

int64_t Database::last_insert_rowid() const { return sqlite3_last_insert_rowid(handle_); }

std::string Database::last_error() const {
  return handle_ != nullptr ? sqlite3_errmsg(handle_) : "database is closed";
}

int Database::last_error_code() const {
  return handle_ != nullptr ? sqlite3_errcode(handle_) : SQLITE_MISUSE;
}

bool Database::in_transaction() const {
  return handle_ != nullptr && sqlite3_get_autocommit(handle_) == 0;
}

Statement::~Statement() { sqlite3_finalize(handle_); }

Statement::Statement(Statement&& other) noexcept
    : handle_(std::exchange(other.handle_, nullptr)),
      db_(std::exchange(other.db_, nullptr)),
      bind_error_(std::exchange(other.bind_error_, 0)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(handle_);
    handle_ = std::exchange(other.handle_, nullptr);
    db_ = std::exchange(other.db_, nullptr);
    bind_error_ = std::exchange(other.bind_error_, 0);
  }
  return *this;
}

void Statement::bind(int index, int64_t value) {
  const int code = sqlite3_bind_int64(handle_, index, value);
  if (code != SQLITE_OK && bind_error_ == 0) bind_error_ = code;
}

void Statement::bind(int index, double value) {
  const int code = sqlite3_bind_double(handle_, index, value);
  if (code != SQLITE_OK && bind_error_ == 0) bind_error_ = code;
}

void Statement::bind(int index, std::string_view text) {
  // A null data pointer would bind NULL; an empty string is not NULL.
  const char* data = text.data() != nullptr ? text.data() : "";
  const int code =
      sqlite3_bind_text64(handle_, index, data, text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (code != SQLITE_OK && bind_error_ == 0) bind_error_ = code;
}

void Statement::bind_null(int index) {
  const int code = sqlite3_bind_null(handle_, index);
  if (code != SQLITE_OK && bind_error_ == 0) bind_error_ = code;
}

Status Statement::error(int code) const {
  // sqlite3_errmsg describes the connection's most recent failure, which is this one's.
  std::string message = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(code);
  if (message == "not an error") message = sqlite3_errstr(code);
  return make_error(std::move(message));
}

Result<bool> Statement::step() {
  if (bind_error_ != 0) {
    const int code = std::exchange(bind_error_, 0);
    sqlite3_reset(handle_);
    return make_error(std::string(sqlite3_errstr(code)) + " (binding a parameter)");
  }
  const int code = sqlite3_step(handle_);
  if (code == SQLITE_ROW) return true;
  if (code == SQLITE_DONE) return false;
  Status failed = error(code);
  sqlite3_reset(handle_);
  return failed.error();
}

Status Statement::run() {
  auto row = step();
  reset();
  if (!row) return row.error();
  return Status::success();
}

void Statement::reset() {
  sqlite3_reset(handle_);
  sqlite3_clear_bindings(handle_);
  bind_error_ = 0;
}

bool Statement::is_null(int column) const {
  return sqlite3_column_type(handle_, column) == SQLITE_NULL;
}

int64_t Statement::column_int(int column) const { return sqlite3_column_int64(handle_, column); }

double Statement::column_double(int column) const {
  if (is_null(column)) return std::numeric_limits<double>::quiet_NaN();
  return sqlite3_column_double(handle_, column);
}

std::string_view Statement::column_text(int column) const {
  const auto* text = sqlite3_column_text(handle_, column);
  const int size = sqlite3_column_bytes(handle_, column);
  if (text == nullptr || size <= 0) return {};
  return {reinterpret_cast<const char*>(text), static_cast<size_t>(size)};
}

}  // namespace memscope::store::sqlite
