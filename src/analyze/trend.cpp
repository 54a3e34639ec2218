#include "analyze/trend.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace memscope::analyze {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;

double median_of(std::vector<double>& values) {
  if (values.empty()) return 0;
  const size_t mid = values.size() / 2;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(mid), values.end());
  double m = values[mid];
  if (values.size() % 2 == 0) {
    const double lower =
        *std::max_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(mid));
    m = (m + lower) / 2;
  }
  return m;
}

struct Fit {
  size_t n = 0;
  double slope = 0;
  double intercept = 0;
  double sigma = 0;        // robust residual scale (1.4826 MAD)
  double slope_error = 0;  // standard error of the slope
  double span = 0;
};

// Theil–Sen over points[first, last).
template <class Value>
Fit theil_sen(const std::vector<TrendPoint>& points, size_t first, size_t last, Value value) {
  Fit fit;
  fit.n = last - first;
  if (fit.n == 0) return fit;
  fit.span = points[last - 1].t - points[first].t;
  if (fit.n < 2) {
    fit.intercept = value(points[first]);
    return fit;
  }
  std::vector<double> slopes;
  slopes.reserve(fit.n * (fit.n - 1) / 2);
  for (size_t i = first; i < last; ++i) {
    for (size_t j = i + 1; j < last; ++j) {
      const double dt = points[j].t - points[i].t;
      if (dt > 0) slopes.push_back((value(points[j]) - value(points[i])) / dt);
    }
  }
  fit.slope = median_of(slopes);
  std::vector<double> offsets;
  offsets.reserve(fit.n);
  double mean_t = 0;
  for (size_t i = first; i < last; ++i) {
    offsets.push_back(value(points[i]) - fit.slope * points[i].t);
    mean_t += points[i].t;
  }
  mean_t /= static_cast<double>(fit.n);
  fit.intercept = median_of(offsets);
  std::vector<double> residuals;
  residuals.reserve(fit.n);
  double sxx = 0;
  for (size_t i = first; i < last; ++i) {
    residuals.push_back(std::abs(value(points[i]) - (fit.intercept + fit.slope * points[i].t)));
    sxx += (points[i].t - mean_t) * (points[i].t - mean_t);
  }
  fit.sigma = 1.4826 * median_of(residuals);
  fit.slope_error = sxx > 0 ? fit.sigma / std::sqrt(sxx) : 0;
  return fit;
}

// The time scale of a sawtooth, from the swings of the series larger than `swing` (a zigzag
// over the points finds its peaks and troughs):
// - with four or more regularly spaced peaks, their spacing (the period);
// - with fewer, the longest rise that ended in a fall giving back at least half of it: a rise that
// memory then gave back was a
//   tooth (one training step, an evaluation pass), not a trend, so the envelope must not be
//   finer than it;
// - 0 when nothing fell by more than `swing`.
double sawtooth_scale(const std::deque<double>& ts, const std::deque<double>& vs, double swing) {
  if (ts.size() < 3 || swing <= 0) return 0;
  int direction = 0;  // +1 rising, -1 falling
  double high = vs.front();
  double high_t = ts.front();
  double low = vs.front();
  double low_t = ts.front();
  std::vector<double> peaks;
  double longest_rise = 0;
  // The rise that ended at the last peak; it counts as a tooth once memory gave back at least
  // half of it (a leak with a small dip is not a tooth).
  double rise_bytes = 0;
  double rise_seconds = 0;
  double peak = 0;
  const auto settle_fall = [&]() {
    if (peak - low >= 0.5 * rise_bytes) longest_rise = std::max(longest_rise, rise_seconds);
  };
  for (size_t i = 1; i < vs.size(); ++i) {
    const double v = vs[i];
    if (direction >= 0) {
      if (v > high) {
        high = v;
        high_t = ts[i];
        if (direction == 0 && v - low > swing) direction = 1;
      } else if (v < low && direction == 0) {
        low = v;
        low_t = ts[i];
        high = v;
        high_t = ts[i];
      } else if (high - v > swing) {
        peaks.push_back(high_t);
        rise_bytes = high - low;
        rise_seconds = high_t - low_t;
        peak = high;
        direction = -1;
        low = v;
        low_t = ts[i];
      }
    } else if (v < low) {
      low = v;
      low_t = ts[i];
    } else if (v - low > swing) {
      settle_fall();
      direction = 1;
      high = v;
      high_t = ts[i];
    }
  }
  if (direction == -1) settle_fall();
  if (peaks.size() >= 4) {
    std::vector<double> gaps;
    for (size_t i = 1; i < peaks.size(); ++i) gaps.push_back(peaks[i] - peaks[i - 1]);
    double mean = 0;
    for (const double g : gaps) mean += g;
    mean /= static_cast<double>(gaps.size());
    double variance = 0;
    for (const double g : gaps) variance += (g - mean) * (g - mean);
    variance /= static_cast<double>(gaps.size());
    if (mean > 0 && std::sqrt(variance) <= 0.35 * mean) return mean;
    return 0;  // irregular: jitter that now and then exceeds `swing`
  }
  return longest_rise;
}

}  // namespace

void TrendHistory::add(double t, double v, double aux) {
  if (!std::isfinite(t) || !std::isfinite(v)) return;    // damaged input: not a point
  if (!points_.empty() && t < points_.back().t) return;  // time went back
  if (!has_first_) {
    first_t_ = t;
    has_first_ = true;
  }
  points_.push_back({t, v, aux});
  const double horizon = t - options_.fit_window_seconds;
  while (points_.size() > 1 && points_.front().t < horizon) points_.pop_front();
  if (points_.size() > options_.max_points) {
    // Too many points in the window: keep each time bucket's peak (the envelope is what the
    // model fits). Buckets have a fixed width on the absolute time axis, so a kept point never
    // stands for more than one bucket of time and leaves the window with it; the newest point
    // is always kept as it is.
    const double bucket_width = options_.fit_window_seconds /
                                static_cast<double>(std::max<size_t>(options_.max_points / 2, 1));
    std::deque<TrendPoint> merged;
    int64_t bucket = 0;
    for (size_t i = 0; i + 1 < points_.size(); ++i) {
      const TrendPoint& p = points_[i];
      const auto b = static_cast<int64_t>(std::floor(p.t / bucket_width));
      if (merged.empty() || b != bucket) {
        merged.push_back(p);
        bucket = b;
      } else if (p.v >= merged.back().v) {
        merged.back() = p;
      }
    }
    merged.push_back(points_.back());
    points_.swap(merged);
  }
}

Trend fit_trend(const TrendHistory& history, double scale) {
  Trend trend;
  const std::deque<TrendPoint>& points = history.points();
  if (points.empty()) return trend;
  const TrendOptions& options = history.options();
  const double first_t = history.first_t();
  const double t0 = points.front().t;
  const double span_all = points.back().t - t0;
  std::deque<double> ts;
  std::deque<double> vs;
  for (const TrendPoint& p : points) {
    ts.push_back(p.t);
    vs.push_back(p.v);
  }
  const double tooth = sawtooth_scale(ts, vs, 0.01 * scale);
  double width = std::clamp(span_all / 16, options.min_window_seconds,
                            std::max(options.min_window_seconds, options.fit_window_seconds / 24));
  width = std::min(std::max(width, tooth), std::max(width, options.fit_window_seconds / 4));
  trend.window = width;
  std::vector<TrendPoint> envelope;
  int64_t bucket = -1;
  for (const TrendPoint& p : points) {
    const auto b = static_cast<int64_t>(std::floor((p.t - t0) / width));
    if (b != bucket) {
      envelope.push_back(p);
      bucket = b;
    } else if (p.v >= envelope.back().v) {
      envelope.back() = p;
    }
  }

  // Warm-up: while the data still starts at the beginning of the recording, drop leading
  // envelope points that the trend of the points after them does not explain.
  const auto value = [](const TrendPoint& p) { return p.v; };
  const size_t n = envelope.size();
  size_t first = 0;
  if (t0 - first_t <= width) {
    while (n - first > std::max<size_t>(3, n / 2) &&
           envelope[first].t - first_t <= options.max_warmup_seconds) {
      const Fit fit = theil_sen(envelope, first, n, value);
      const double tolerance = std::max({3 * fit.sigma, 0.005 * scale, kMiB});
      const double residual = envelope[first].v - (fit.intercept + fit.slope * envelope[first].t);
      if (std::abs(residual) <= tolerance) break;
      ++first;
    }
  }
  trend.warmup_end = first > 0 ? envelope[first].t : first_t;
  const Fit fit = theil_sen(envelope, first, n, value);
  trend.points = fit.n;
  trend.span = fit.span;
  trend.slope = fit.slope;
  trend.slope_error = fit.slope_error;
  trend.intercept = fit.intercept;
  trend.sigma = fit.sigma;
  trend.growing = fit.n >= 3 && fit.slope > 0 && fit.slope > 2 * fit.slope_error;
  trend.first_value = envelope[first].v;
  trend.last_value = envelope[n - 1].v;

  bool aux_known = fit.n >= 3;
  for (size_t i = first; i < n && aux_known; ++i) aux_known = envelope[i].aux >= 0;
  if (aux_known) {
    trend.aux_known = true;
    trend.aux_slope =
        theil_sen(envelope, first, n, [](const TrendPoint& p) { return p.aux; }).slope;
  }
  return trend;
}

}  // namespace memscope::analyze
