// The sawtooth-robust trend of a memory timeline, shared by the OOM forecast (oom.hpp) and the
// leak verdicts (leak.hpp): one implementation.
//
// - History: the points of the last fit_window_seconds; beyond max_points they are merged into
//   fixed time buckets, each keeping its peak, so memory is bounded at any sampling rate.
// - Envelope: the points are grouped into windows and each window gives its peak (training
//   memory is a sawtooth; its peaks reach a limit first). The window is span/16, between
//   min_window_seconds and fit_window/24, never finer than the sawtooth's time scale (the spacing
//   of four or more regular peaks, else the longest rise that memory then gave back), capped at
//   fit_window/4.
// - Warm-up: while the data still begins at the start, leading envelope points that the trend of
//   the later points does not explain are dropped (up to max_warmup_seconds, at most half).
// - Trend: Theil–Sen over the rest; growing = slope > 0 and > 2 standard errors.
#pragma once

#include <cstddef>
#include <deque>

namespace memscope::analyze {

struct TrendOptions {
  double fit_window_seconds = 120;
  double min_window_seconds = 1;
  double max_warmup_seconds = 120;
  size_t max_points = 2048;
};

struct TrendPoint {
  double t = 0;
  double v = 0;
  double aux = -1;  // a second series fitted alongside (e.g. children's share); < 0 unknown
};

// The recent points of one timeline.
class TrendHistory {
 public:
  explicit TrendHistory(const TrendOptions& options) : options_(options) {}
  void add(double t, double v, double aux = -1);
  bool empty() const { return points_.empty(); }
  double first_t() const { return first_t_; }  // the very first point ever added
  double last_t() const { return points_.empty() ? 0 : points_.back().t; }
  const std::deque<TrendPoint>& points() const { return points_; }
  const TrendOptions& options() const { return options_; }

 private:
  TrendOptions options_;
  std::deque<TrendPoint> points_;
  double first_t_ = 0;
  bool has_first_ = false;
};

struct Trend {
  size_t points = 0;       // envelope points fitted
  double span = 0;         // seconds they cover
  double slope = 0;        // per second
  double slope_error = 0;  // standard error of the slope
  double intercept = 0;    // value at t = 0 of the fitted line
  double sigma = 0;        // robust residual scale
  bool growing = false;
  double warmup_end = 0;   // time of the first fitted point after a warm-up, else first_t
  double window = 0;       // envelope window width used
  double first_value = 0;  // envelope value at the first fitted point
  double last_value = 0;   // ... at the last
  bool aux_known = false;  // every fitted point had aux
  double aux_slope = 0;
};

// `scale`: the magnitude swings and tolerances are measured against (a resource's limit): a fall
// of 1 % of it is a tooth, 0.5 % of it (or 1 MiB) is within the warm-up tolerance.
Trend fit_trend(const TrendHistory& history, double scale);

}  // namespace memscope::analyze
