// Time series for charts, bounded in memory however long the recording: rows (a time and one
// value per named series) are kept at full resolution until there are too many, then merged
// pairwise into buckets that remember each series' minimum and maximum. A bucket comes back as
// at most two rows, so peaks and troughs survive downsampling exactly; only their time moves,
// by at most one bucket's width.
#pragma once

#include <cstddef>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace memscope::analyze {

class DownsampledSeries {
 public:
  static constexpr double kMissing = std::numeric_limits<double>::quiet_NaN();

  // max_points: the most rows rows() returns (at least 4).
  explicit DownsampledSeries(size_t max_points = 4000);

  // The series' column, added on first use; rows recorded before it lack it (NaN).
  size_t series(std::string_view name);
  const std::vector<std::string>& names() const { return names_; }

  // Starts the row at time t (non-decreasing); every series is missing until set().
  void begin_row(double t_seconds);
  void set(size_t column, double value);
  // Convenience: begin_row + set for every column given, in order of `names`.
  void add_row(double t_seconds, const std::vector<double>& values);

  struct Row {
    double t_seconds = 0;
    std::vector<double> values;  // one per series, NaN where missing
  };
  // At most max_points rows in time order.
  std::vector<Row> rows() const;
  size_t rows_added() const { return rows_added_; }
  // Rows merged into one bucket (1 until the recorder first ran out of room).
  size_t rows_per_bucket() const { return rows_per_bucket_; }

 private:
  struct Extremes {
    double min = kMissing;
    double max = kMissing;
    double t_min = 0;
    double t_max = 0;
  };
  struct Bucket {
    double t_first = 0;
    double t_last = 0;
    size_t rows = 0;
    std::vector<Extremes> series;
  };

  void merge_pairs();

  size_t max_buckets_;
  size_t rows_per_bucket_ = 1;
  size_t rows_added_ = 0;
  std::vector<std::string> names_;
  std::vector<Bucket> buckets_;
};

}  // namespace memscope::analyze
