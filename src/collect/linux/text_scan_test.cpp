#include "collect/linux/text_scan.hpp"

#include <gtest/gtest.h>

#include <string>

namespace memscope::procfs {
namespace {

TEST(TextScan, SplitsLinesAndFields) {
  std::string_view rest = "a b\n\n  c\td  \nlast";
  EXPECT_EQ(next_line(rest), "a b");
  EXPECT_EQ(next_line(rest), "");
  std::string_view line = next_line(rest);
  EXPECT_EQ(next_field(line), "c");
  EXPECT_EQ(next_field(line), "d");
  EXPECT_EQ(next_field(line), "");
  EXPECT_EQ(next_line(rest), "last");
  EXPECT_TRUE(rest.empty());
  EXPECT_EQ(trim(" \t x y \n"), "x y");
  EXPECT_EQ(trim("   "), "");
}

TEST(TextScan, NumbersAreWholeTokensOrNothing) {
  EXPECT_EQ(to_u64("0"), 0u);
  EXPECT_EQ(to_u64("18446744073709551615"), UINT64_MAX);
  EXPECT_FALSE(to_u64("18446744073709551616"));
  EXPECT_FALSE(to_u64("-1"));
  EXPECT_FALSE(to_u64("+1"));
  EXPECT_FALSE(to_u64("12kB"));
  EXPECT_FALSE(to_u64(""));
  EXPECT_FALSE(to_u64(" 1"));
  EXPECT_EQ(to_int("-7"), -7);
  EXPECT_FALSE(to_int("2147483648"));
  EXPECT_FALSE(to_int("0x10"));
}

TEST(TextScan, KilobyteValues) {
  EXPECT_EQ(kb_value_to_bytes("   1234 kB"), 1234u * 1024);
  EXPECT_EQ(kb_value_to_bytes(" 7"), 7u * 1024);
  EXPECT_FALSE(kb_value_to_bytes(" 7 MB"));
  EXPECT_FALSE(kb_value_to_bytes(" 7 kB extra"));
  EXPECT_FALSE(kb_value_to_bytes(" kB"));
  EXPECT_FALSE(kb_value_to_bytes(""));
  EXPECT_FALSE(kb_value_to_bytes("18014398509481984 kB"));  // 2^54 kB = 2^64 bytes
  EXPECT_EQ(kb_value_to_bytes("18014398509481983 kB"), 18014398509481983u * 1024);
}

TEST(TextScan, KeyValue) {
  std::string_view key, value;
  ASSERT_TRUE(split_key_value("MemTotal:   24 kB", key, value));
  EXPECT_EQ(key, "MemTotal");
  EXPECT_EQ(value, "   24 kB");
  EXPECT_FALSE(split_key_value("no colon", key, value));
}

}  // namespace
}  // namespace memscope::procfs
