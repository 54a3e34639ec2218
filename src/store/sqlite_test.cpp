#include "store/sqlite.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cmath>
#include <limits>

#include "store/rows.hpp"

namespace memscope::store::sqlite {
namespace {

Database memory_database() {
  auto db = Database::open(":memory:", SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  EXPECT_TRUE(db.ok()) << db.message();
  EXPECT_TRUE(db->exec("CREATE TABLE t (i INTEGER, r REAL, s TEXT)").ok());
  return std::move(*db);
}

TEST(Sqlite, ValuesRoundTripExactly) {
  Database db = memory_database();
  auto insert = db.prepare("INSERT INTO t (i, r, s) VALUES (?, ?, ?)");
  ASSERT_TRUE(insert.ok()) << insert.message();
  const uint64_t big = std::numeric_limits<uint64_t>::max() - 1;
  const std::string text("a\0b\xc3\xa9", 5);
  {
    Binder bind(*insert);
    bind(big)(0.1)(std::string_view(text));
  }
  ASSERT_TRUE(insert->run().ok());
  {
    Binder bind(*insert);
    bind(int64_t{-1}).null()(std::string_view());
  }
  ASSERT_TRUE(insert->run().ok());

  auto select = db.prepare("SELECT i, r, s FROM t ORDER BY rowid");
  ASSERT_TRUE(select.ok());
  ASSERT_TRUE(*select->step());
  Columns first(*select);
  EXPECT_EQ(first.u64(), big);
  EXPECT_EQ(first.real(), 0.1);
  EXPECT_EQ(first.text(), text);
  ASSERT_TRUE(*select->step());
  Columns second(*select);
  EXPECT_EQ(second.i64(), -1);
  EXPECT_TRUE(std::isnan(select->column_double(1)));  // NULL REAL reads as NaN
  EXPECT_EQ(second.optional<double>(), std::nullopt);
  EXPECT_FALSE(second.next_is_null());  // an empty string_view binds "", not NULL
  EXPECT_EQ(second.text(), "");
  EXPECT_FALSE(*select->step());
}

TEST(Sqlite, ErrorsCarrySqlitesMessage) {
  Database db = memory_database();
  auto bad = db.prepare("SELECT nope FROM t");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.message(), "no such column: nope");

  auto insert = db.prepare("INSERT INTO t (i) VALUES (?)");
  ASSERT_TRUE(insert.ok());
  insert->bind(2, int64_t{1});  // out of range: reported by the step, not lost
  const Status status = insert->run();
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.message(), "column index out of range (binding a parameter)");
  insert->bind(1, int64_t{1});
  EXPECT_TRUE(insert->run().ok());  // and the statement is usable again

  EXPECT_FALSE(db.exec("INSERT INTO missing VALUES (1)").ok());
  EXPECT_FALSE(db.in_transaction());
  ASSERT_TRUE(db.exec("BEGIN").ok());
  EXPECT_TRUE(db.in_transaction());
}

TEST(Rows, PlaceholdersMatchTheColumns) {
  EXPECT_EQ(rows::placeholders("a"), "?");
  EXPECT_EQ(rows::placeholders("a, b, c"), "?, ?, ?");
}

TEST(Rows, StringListsAreJsonAndRejectAnythingElse) {
  EXPECT_EQ(rows::encode_strings({"a", "b\"c"}), R"(["a","b\"c"])");
  EXPECT_EQ(rows::encode_strings({"bad \xff byte"}), "[\"bad \xef\xbf\xbd byte\"]");
  EXPECT_EQ(*rows::decode_strings(R"(["x", ""])"), (std::vector<std::string>{"x", ""}));
  EXPECT_FALSE(rows::decode_strings("[1]").ok());
  EXPECT_FALSE(rows::decode_strings("{}").ok());
  EXPECT_FALSE(rows::decode_strings("[\"unterminated").ok());
  EXPECT_EQ(*rows::decode_ints("[0,2]"), (std::vector<int>{0, 2}));
  EXPECT_FALSE(rows::decode_ints("[\"0\"]").ok());
}

}  // namespace
}  // namespace memscope::store::sqlite
