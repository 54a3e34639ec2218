// What SessionReader says about files that are not sessions, or no longer whole ones.
#include "store/session_reader.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>

#include "store/schema.hpp"
#include "store/session_writer.hpp"
#include "store/sqlite.hpp"
#include "store/store_test_samples.hpp"
#include "test_support.hpp"

namespace memscope::store {
namespace {

using memscope::testing::read_file;
using memscope::testing::TempDir;
using memscope::testing::write_file;
using ::testing::HasSubstr;
using testing::make_info;
using testing::make_sample;
using ::testing::StartsWith;

std::string open_error(const std::string& path) {
  auto reader = SessionReader::open(path);
  EXPECT_FALSE(reader.ok()) << path << " opened";
  return reader.ok() ? "" : reader.message();
}

// A finished session big enough to span many pages.
void write_session(const std::string& path, int samples) {
  auto writer = SessionWriter::create(path, make_info());
  ASSERT_TRUE(writer.ok()) << writer.message();
  for (int i = 0; i < samples; ++i) ASSERT_TRUE(writer->append(make_sample(i, 20, 2)).ok());
  ASSERT_TRUE(writer->finish(make_info()).ok());
}

void run_sql(const std::string& path, const char* sql) {
  auto db = sqlite::Database::open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  ASSERT_TRUE(db.ok()) << db.message();
  const Status done = db->exec(sql);
  ASSERT_TRUE(done.ok()) << done.message();
}

// Opening, and if that works, reading every sample, fails with "PATH is damaged: ...".
void expect_damaged(const std::string& path) {
  auto reader = SessionReader::open(path);
  std::string message;
  if (!reader.ok()) {
    message = reader.message();
  } else {
    const Status read = reader->for_each_sample([](const Sample&) { return true; });
    ASSERT_FALSE(read.ok()) << "a damaged file read without complaint";
    message = read.message();
  }
  EXPECT_THAT(message, StartsWith(path + " is damaged: "));
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

TEST(SessionReader, ReportsAMissingFile) {
  TempDir dir;
  const std::string path = dir.file("nothing.msession");
  EXPECT_EQ(open_error(path), "cannot open " + path + ": No such file or directory");
}

TEST(SessionReader, ReportsADirectory) {
  TempDir dir;
  EXPECT_EQ(open_error(dir.path()), dir.path() + " is a directory, not a memscope session");
}

TEST(SessionReader, ReportsATextFile) {
  TempDir dir;
  const std::string path = dir.file("notes.txt");
  write_file(path,
             "not a session at all, just some text that is long enough to fill a header "
             "of one hundred bytes and then some more\n");
  EXPECT_EQ(open_error(path), path + " is not a memscope session (not an SQLite database)");
}

TEST(SessionReader, ReportsAnEmptyFile) {
  TempDir dir;
  const std::string path = dir.file("empty.msession");
  write_file(path, "");
  EXPECT_EQ(open_error(path), path + " is not a memscope session (empty file)");
}

TEST(SessionReader, ReportsAnotherProgramsSqliteDatabase) {
  TempDir dir;
  const std::string path = dir.file("other.db");
  run_sql(path, "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);");
  EXPECT_EQ(open_error(path),
            path + " is not a memscope session (an SQLite database of another program)");
}

TEST(SessionReader, RefusesASchemaNewerThanItKnows) {
  TempDir dir;
  const std::string path = dir.file("future.msession");
  run_sql(path, ("PRAGMA application_id = " + std::to_string(kApplicationId) +
                 "; PRAGMA user_version = 2; CREATE TABLE future (x);")
                    .c_str());
  EXPECT_EQ(open_error(path),
            path + " was written by a newer memscope (schema 2); this one reads up to 1");

  // The same for a real session a newer memscope would have migrated.
  const std::string session = dir.file("s.msession");
  write_session(session, 2);
  run_sql(session, "PRAGMA user_version = 7");
  EXPECT_EQ(open_error(session),
            session + " was written by a newer memscope (schema 7); this one reads up to 1");
}

TEST(SessionReader, ReportsOurIdentityWithoutOurTablesAsDamaged) {
  TempDir dir;
  const std::string path = dir.file("hollow.msession");
  run_sql(path, ("PRAGMA application_id = " + std::to_string(kApplicationId) +
                 "; PRAGMA user_version = 1; CREATE TABLE t (x);")
                    .c_str());
  EXPECT_EQ(open_error(path), path + " is damaged: no such table: meta");
}

TEST(SessionReader, ReportsATruncatedSession) {
  TempDir dir;
  const std::string whole = dir.file("whole.msession");
  write_session(whole, 200);
  const std::string bytes = read_file(whole);
  ASSERT_GT(bytes.size(), 64u * 1024);
  const std::string half = dir.file("half.msession");
  write_file(half, bytes.substr(0, bytes.size() / 2));
  expect_damaged(half);
  EXPECT_THAT(open_error(half), HasSubstr("truncated"));

  const std::string header_only = dir.file("header.msession");
  write_file(header_only, bytes.substr(0, 50));
  expect_damaged(header_only);
}

TEST(SessionReader, ReportsOverwrittenPagesAsDamaged) {
  TempDir dir;
  const std::string path = dir.file("s.msession");
  write_session(path, 200);
  std::string bytes = read_file(path);
  for (size_t i = bytes.size() / 4; i < bytes.size(); i += 1) bytes[i] = static_cast<char>(0xAB);
  write_file(path, bytes);
  expect_damaged(path);
}

TEST(SessionReader, ReportsValuesItCannotDecodeAsDamaged) {
  TempDir dir;
  const std::string path = dir.file("s.msession");
  write_session(path, 3);
  run_sql(path, "UPDATE samples SET notes = '{\"not\": \"a list\"}' WHERE id = 2");
  expect_damaged(path);

  write_session(dir.file("t.msession"), 3);
  run_sql(dir.file("t.msession"), "DELETE FROM processes WHERE id = 5");
  expect_damaged(dir.file("t.msession"));
}

TEST(SessionReader, StopsWhenTheVisitorSaysSo) {
  TempDir dir;
  const std::string path = dir.file("s.msession");
  write_session(path, 30);
  auto reader = SessionReader::open(path);
  ASSERT_TRUE(reader.ok()) << reader.message();
  int seen = 0;
  const Status status = reader->for_each_sample([&](const Sample& sample) {
    EXPECT_EQ(sample.t_seconds, seen);
    return ++seen < 5;
  });
  EXPECT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(seen, 5);
  // A stopped stream can be started again from the beginning.
  EXPECT_EQ(testing::read_all(*reader).size(), 30u);
}

TEST(SessionReader, RefusesToStreamFromInsideItsOwnVisitor) {
  TempDir dir;
  const std::string path = dir.file("s.msession");
  write_session(path, 2);
  auto reader = SessionReader::open(path);
  ASSERT_TRUE(reader.ok()) << reader.message();
  Status inner;
  const Status outer = reader->for_each_sample([&](const Sample&) {
    inner = reader->for_each_sample([](const Sample&) { return true; });
    return false;
  });
  EXPECT_TRUE(outer.ok());
  EXPECT_FALSE(inner.ok());
}

}  // namespace
}  // namespace memscope::store
