// A thin RAII layer over the SQLite C API: a connection, prepared statements that are reused,
// and typed bind/column helpers. Errors come back as Status/Result carrying SQLite's message;
// callers add the file name.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "core/result.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace memscope::store::sqlite {

class Statement;

// Unsigned 64-bit figures are stored as SQLite's signed INTEGER, bit for bit (two's complement),
// so every value survives the round trip; values >= 2^63 read as negative in the sqlite3 shell.
inline int64_t to_stored(uint64_t value) { return static_cast<int64_t>(value); }
inline uint64_t from_stored(int64_t value) { return static_cast<uint64_t>(value); }

class Database {
 public:
  // flags: SQLITE_OPEN_* (READONLY, or READWRITE | CREATE).
  static Result<Database> open(const std::string& path, int flags);

  Database() = default;
  ~Database();
  Database(Database&& other) noexcept;
  Database& operator=(Database&& other) noexcept;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  bool is_open() const { return handle_ != nullptr; }
  sqlite3* handle() const { return handle_; }
  // Runs one or more statements that return no rows needed by the caller.
  Status exec(const char* sql);
  Result<Statement> prepare(std::string_view sql);
  // The first column of the first row of `sql`, as an integer (PRAGMA application_id, count(*)).
  Result<int64_t> query_int(const char* sql);
  // SQLite's last error message and its primary result code.
  std::string last_error() const;
  int last_error_code() const;
  bool in_transaction() const;
  int64_t last_insert_rowid() const;
  // The first column of the first row of `sql`, as text (PRAGMA journal_mode).
  Result<std::string> query_text(const char* sql);
  void close();

 private:
  explicit Database(sqlite3* handle) : handle_(handle) {}
  sqlite3* handle_ = nullptr;
};

class Statement {
 public:
  Statement() = default;
  ~Statement();
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Parameters are 1-based, as in SQLite. A failed bind is remembered and reported by step().
  void bind(int index, int64_t value);
  void bind(int index, int value) { bind(index, static_cast<int64_t>(value)); }
  void bind(int index, unsigned value) { bind(index, static_cast<int64_t>(value)); }
  void bind(int index, uint64_t value) { bind(index, to_stored(value)); }
  void bind(int index, bool value) { bind(index, static_cast<int64_t>(value ? 1 : 0)); }
  void bind(int index, double value);
  void bind(int index, std::string_view text);  // copied; embedded NULs are kept
  void bind_null(int index);
  template <class T>
  void bind(int index, const std::optional<T>& value) {
    if (value) {
      bind(index, *value);
    } else {
      bind_null(index);
    }
  }

  // One step: true when a row is ready, false when the statement is done.
  Result<bool> step();
  // Steps a statement that returns no rows, then resets it for reuse.
  Status run();
  // Makes the statement ready to run again and clears its bindings.
  void reset();

  bool is_null(int column) const;
  int64_t column_int(int column) const;
  uint64_t column_u64(int column) const { return from_stored(column_int(column)); }
  // NULL reads as NaN: SQLite stores NaN as NULL.
  double column_double(int column) const;
  // Valid until the next step or reset.
  std::string_view column_text(int column) const;

 private:
  friend class Database;
  Statement(sqlite3_stmt* handle, sqlite3* db) : handle_(handle), db_(db) {}
  Status error(int code) const;
  sqlite3_stmt* handle_ = nullptr;
  sqlite3* db_ = nullptr;
  int bind_error_ = 0;
};

// Binds parameters in order: `Binder bind(statement); bind(a)(b)(c);` binds ?1, ?2, ?3.
class Binder {
 public:
  explicit Binder(Statement& statement) : statement_(statement) {}
  template <class T>
  Binder& operator()(const T& value) {
    statement_.bind(next_++, value);
    return *this;
  }
  Binder& null() {
    statement_.bind_null(next_++);
    return *this;
  }

 private:
  Statement& statement_;
  int next_ = 1;
};

// Reads columns in order, the counterpart of Binder.
class Columns {
 public:
  explicit Columns(const Statement& statement, int first = 0)
      : statement_(statement), next_(first) {}
  int64_t i64() { return statement_.column_int(next_++); }
  int i32() { return static_cast<int>(statement_.column_int(next_++)); }
  uint64_t u64() { return statement_.column_u64(next_++); }
  bool boolean() { return statement_.column_int(next_++) != 0; }
  double real() { return statement_.column_double(next_++); }
  std::string text() { return std::string(statement_.column_text(next_++)); }
  template <class T>
  std::optional<T> optional() {
    const int column = next_++;
    if (statement_.is_null(column)) return std::nullopt;
    if constexpr (std::is_same_v<T, double>) {
      return statement_.column_double(column);
    } else {
      return static_cast<T>(statement_.column_int(column));
    }
  }
  bool next_is_null() const { return statement_.is_null(next_); }
  void skip() { ++next_; }

 private:
  const Statement& statement_;
  int next_;
};

}  // namespace memscope::store::sqlite
