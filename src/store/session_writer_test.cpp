// Where SessionWriter refuses to write, and what it says.
#include "store/session_writer.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include "store/session_reader.hpp"
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

TEST(SessionWriter, ReportsAMissingDirectoryNamingThePath) {
  TempDir dir;
  const std::string path = dir.file("no/such/dir/s.msession");
  auto writer = SessionWriter::create(path, make_info());
  ASSERT_FALSE(writer.ok());
  EXPECT_THAT(writer.message(), HasSubstr(path));
  EXPECT_THAT(writer.message(), HasSubstr("No such file or directory"));
}

TEST(SessionWriter, ReportsAPathThroughARegularFile) {
  // chmod does not stop root, which runs the tests; a path under a plain file stops anyone.
  TempDir dir;
  write_file(dir.file("plain"), "x");
  const std::string path = dir.file("plain/s.msession");
  auto writer = SessionWriter::create(path, make_info());
  ASSERT_FALSE(writer.ok());
  EXPECT_THAT(writer.message(), HasSubstr(path));
  EXPECT_THAT(writer.message(), HasSubstr("Not a directory"));
}

TEST(SessionWriter, RefusesADirectory) {
  TempDir dir;
  auto writer = SessionWriter::create(dir.path(), make_info(), /*overwrite=*/true);
  ASSERT_FALSE(writer.ok());
  EXPECT_THAT(writer.message(), HasSubstr(dir.path()));
  EXPECT_THAT(writer.message(), HasSubstr("directory"));
}

TEST(SessionWriter, NeverOverwritesAFileThatIsNotASession) {
  TempDir dir;
  const std::string path = dir.file("train.py");
  write_file(path, "import torch\n");
  for (bool overwrite : {false, true}) {
    auto writer = SessionWriter::create(path, make_info(), overwrite);
    ASSERT_FALSE(writer.ok());
    EXPECT_EQ(writer.message(), path +
                                    " exists and is not a memscope session (not an SQLite "
                                    "database); refusing to overwrite it");
  }
  EXPECT_EQ(read_file(path), "import torch\n");

  const std::string database = dir.file("other.db");
  {
    auto db = sqlite::Database::open(database, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    ASSERT_TRUE(db.ok()) << db.message();
    ASSERT_TRUE(db->exec("CREATE TABLE precious (x); INSERT INTO precious VALUES (42);").ok());
  }
  auto writer = SessionWriter::create(database, make_info(), /*overwrite=*/true);
  ASSERT_FALSE(writer.ok());
  EXPECT_EQ(writer.message(), database +
                                  " exists and is not a memscope session (an SQLite database of "
                                  "another program); refusing to overwrite it");
  auto db = sqlite::Database::open(database, SQLITE_OPEN_READONLY);
  ASSERT_TRUE(db.ok());
  EXPECT_EQ(*db->query_int("SELECT x FROM precious"), 42);
}

TEST(SessionWriter, OverwritesASessionOnlyWhenAskedTo) {
  TempDir dir;
  const std::string path = dir.file("s.msession");
  {
    auto first = SessionWriter::create(path, make_info());
    ASSERT_TRUE(first.ok()) << first.message();
    ASSERT_TRUE(first->append(make_sample(0, 1, 0)).ok());
    ASSERT_TRUE(first->finish(make_info()).ok());
  }
  auto refused = SessionWriter::create(path, make_info());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.message(), "session file " + path + " already exists; not overwriting it");
  auto reader = SessionReader::open(path);
  ASSERT_TRUE(reader.ok()) << reader.message();
  EXPECT_EQ(reader->sample_count(), 1u);

  auto replaced = SessionWriter::create(path, make_info(), /*overwrite=*/true);
  ASSERT_TRUE(replaced.ok()) << replaced.message();
  ASSERT_TRUE(replaced->flush().ok());
  auto reread = SessionReader::open(path);
  ASSERT_TRUE(reread.ok()) << reread.message();
  EXPECT_EQ(reread->sample_count(), 0u);
}

TEST(SessionWriter, TreatsAnEmptyFileLikeASession) {
  // An empty file holds nothing to lose, but replacing it is still only done when asked.
  TempDir dir;
  const std::string path = dir.file("s.msession");
  write_file(path, "");
  EXPECT_FALSE(SessionWriter::create(path, make_info()).ok());
  auto writer = SessionWriter::create(path, make_info(), /*overwrite=*/true);
  ASSERT_TRUE(writer.ok()) << writer.message();
}

TEST(SessionWriter, ANewFileSaysWhatItIsBeforeTheFirstSample) {
  TempDir dir;
  const std::string path = dir.file("s.msession");
  auto writer = SessionWriter::create(path, make_info());
  ASSERT_TRUE(writer.ok()) << writer.message();
  auto reader = SessionReader::open(path);
  ASSERT_TRUE(reader.ok()) << reader.message();
  EXPECT_EQ(reader->info().hostname, make_info().hostname);
  EXPECT_EQ(reader->sample_count(), 0u);
}

TEST(SessionWriter, AMovedFromWriterReportsAnError) {
  TempDir dir;
  auto writer = SessionWriter::create(dir.file("s.msession"), make_info());
  ASSERT_TRUE(writer.ok()) << writer.message();
  SessionWriter moved = std::move(*writer);
  // NOLINTNEXTLINE(bugprone-use-after-move): that is the point
  const Status status = writer->flush();
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr("moved"));
  EXPECT_TRUE(moved.flush().ok());
}

}  // namespace
}  // namespace memscope::store
