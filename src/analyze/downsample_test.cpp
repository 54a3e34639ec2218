#include "analyze/downsample.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

namespace memscope::analyze {
namespace {

TEST(DownsampledSeries, KeepsEveryRowWhileThereIsRoom) {
  DownsampledSeries recorder(100);
  const size_t used = recorder.series("used");
  const size_t limit = recorder.series("limit");
  EXPECT_EQ(recorder.series("used"), used);
  for (int i = 0; i < 10; ++i) recorder.add_row(i, {i * 10.0, 1000.0});
  const auto rows = recorder.rows();
  ASSERT_EQ(rows.size(), 10u);
  EXPECT_DOUBLE_EQ(rows[3].t_seconds, 3.0);
  EXPECT_DOUBLE_EQ(rows[3].values[used], 30.0);
  EXPECT_DOUBLE_EQ(rows[3].values[limit], 1000.0);
  EXPECT_EQ(recorder.rows_per_bucket(), 1u);
}

TEST(DownsampledSeries, StaysBoundedAndKeepsPeaksAndTroughs) {
  DownsampledSeries recorder(400);
  const size_t saw = recorder.series("sawtooth");
  const int count = 100'000;
  for (int i = 0; i < count; ++i) {
    recorder.begin_row(i * 0.01);
    double value = (i % 7) * 100.0;
    if (i == 54'321) value = 1e6;  // one spike
    if (i == 77'777) value = -5;   // one dip
    recorder.set(saw, value);
  }
  const auto rows = recorder.rows();
  EXPECT_LE(rows.size(), 400u);
  EXPECT_GE(rows.size(), 100u);
  EXPECT_EQ(recorder.rows_added(), static_cast<size_t>(count));
  double max = -1e9;
  double min = 1e9;
  double max_t = 0;
  for (const auto& row : rows) {
    if (row.values[saw] > max) {
      max = row.values[saw];
      max_t = row.t_seconds;
    }
    min = std::min(min, row.values[saw]);
  }
  EXPECT_DOUBLE_EQ(max, 1e6);
  EXPECT_DOUBLE_EQ(min, -5);
  // The spike's time moves by at most one bucket's width.
  const double bucket_seconds = static_cast<double>(recorder.rows_per_bucket()) * 0.01;
  EXPECT_NEAR(max_t, 543.21, bucket_seconds);
  EXPECT_TRUE(std::is_sorted(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
    return a.t_seconds < b.t_seconds;
  }));
}

TEST(DownsampledSeries, SeriesAddedLaterAreMissingBefore) {
  DownsampledSeries recorder(100);
  const size_t first = recorder.series("first");
  recorder.begin_row(0);
  recorder.set(first, 1);
  const size_t late = recorder.series("late");
  recorder.begin_row(1);
  recorder.set(late, 2);
  const auto rows = recorder.rows();
  ASSERT_EQ(rows.size(), 2u);
  ASSERT_EQ(rows[0].values.size(), 2u);
  EXPECT_TRUE(std::isnan(rows[0].values[late]));
  EXPECT_TRUE(std::isnan(rows[1].values[first]));
  EXPECT_DOUBLE_EQ(rows[1].values[late], 2);
  EXPECT_EQ(recorder.names(), (std::vector<std::string>{"first", "late"}));
}

}  // namespace
}  // namespace memscope::analyze
