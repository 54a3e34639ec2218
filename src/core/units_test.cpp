#include "core/units.hpp"

#include <gtest/gtest.h>

namespace memscope {
namespace {

TEST(FormatBytes, PicksTheLargestUnitBelow1024) {
  EXPECT_EQ(format_bytes(0), "0 B");
  EXPECT_EQ(format_bytes(1023), "1023 B");
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(format_bytes(512 * kMiB), "512.0 MiB");
  EXPECT_EQ(format_bytes(3 * kGiB / 2), "1.5 GiB");
  EXPECT_EQ(format_bytes_delta(-static_cast<int64_t>(kMiB)), "-1.0 MiB");
  EXPECT_EQ(format_bytes_delta(2048), "+2.0 KiB");
}

TEST(ParseSize, AcceptsBinaryAndDecimalUnits) {
  EXPECT_EQ(*parse_size("2GiB"), 2 * kGiB);
  EXPECT_EQ(*parse_size("1536MiB"), 1536 * kMiB);
  EXPECT_EQ(*parse_size("1.5G"), 3 * kGiB / 2);
  EXPECT_EQ(*parse_size("4096"), 4096u);
  EXPECT_EQ(*parse_size(" 2 GB "), 2000000000u);
  EXPECT_EQ(*parse_size("100m"), 100 * kMiB);
}

TEST(ParseSize, RejectsGarbageWithAMessageNamingTheInput) {
  for (const char* bad : {"", "GiB", "12 parsecs", "-5MiB", "1e999G", "1.2.3M"}) {
    auto parsed = parse_size(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_NE(parsed.message().find('\''), std::string::npos) << parsed.message();
  }
}

TEST(Rfc3339, FormatsUtcWithMilliseconds) {
  EXPECT_EQ(rfc3339_utc(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(rfc3339_utc(1795457045123), "2026-11-23T18:04:05.123Z");
}

TEST(FormatDuration, ReadsNaturally) {
  EXPECT_EQ(format_duration(12.34), "12.3s");
  EXPECT_EQ(format_duration(185), "3m05s");
  EXPECT_EQ(format_duration(3720), "1h02m");
}

}  // namespace
}  // namespace memscope
