#include "analyze/downsample.hpp"

#include <algorithm>
#include <cmath>

namespace memscope::analyze {

DownsampledSeries::DownsampledSeries(size_t max_points)
    // Each bucket comes back as up to two rows; merging pairs needs an even count.
    : max_buckets_(std::max<size_t>(2, max_points / 4 * 2)) {}

size_t DownsampledSeries::series(std::string_view name) {
  for (size_t i = 0; i < names_.size(); ++i) {
    if (names_[i] == name) return i;
  }
  names_.emplace_back(name);
  return names_.size() - 1;
}

void DownsampledSeries::begin_row(double t_seconds) {
  if (buckets_.empty() || buckets_.back().rows >= rows_per_bucket_) {
    if (buckets_.size() >= max_buckets_) merge_pairs();
    Bucket& fresh = buckets_.emplace_back();
    fresh.t_first = t_seconds;
  }
  Bucket& bucket = buckets_.back();
  bucket.t_last = t_seconds;
  ++bucket.rows;
  ++rows_added_;
}

void DownsampledSeries::set(size_t column, double value) {
  if (buckets_.empty() || std::isnan(value)) return;
  Bucket& bucket = buckets_.back();
  if (bucket.series.size() <= column) bucket.series.resize(std::max(column + 1, names_.size()));
  Extremes& extremes = bucket.series[column];
  if (std::isnan(extremes.min) || value < extremes.min) {
    extremes.min = value;
    extremes.t_min = bucket.t_last;
  }
  if (std::isnan(extremes.max) || value > extremes.max) {
    extremes.max = value;
    extremes.t_max = bucket.t_last;
  }
}

void DownsampledSeries::add_row(double t_seconds, const std::vector<double>& values) {
  begin_row(t_seconds);
  for (size_t i = 0; i < values.size() && i < names_.size(); ++i) set(i, values[i]);
}

void DownsampledSeries::merge_pairs() {
  std::vector<Bucket> merged;
  merged.reserve(max_buckets_);
  for (size_t i = 0; i < buckets_.size(); i += 2) {
    Bucket bucket = std::move(buckets_[i]);
    if (i + 1 < buckets_.size()) {
      Bucket& later = buckets_[i + 1];
      bucket.t_last = later.t_last;
      bucket.rows += later.rows;
      if (bucket.series.size() < later.series.size()) bucket.series.resize(later.series.size());
      for (size_t s = 0; s < later.series.size(); ++s) {
        Extremes& into = bucket.series[s];
        const Extremes& from = later.series[s];
        if (std::isnan(from.min)) continue;
        if (std::isnan(into.min) || from.min < into.min) {
          into.min = from.min;
          into.t_min = from.t_min;
        }
        if (std::isnan(into.max) || from.max > into.max) {
          into.max = from.max;
          into.t_max = from.t_max;
        }
      }
    }
    merged.push_back(std::move(bucket));
  }
  buckets_ = std::move(merged);
  rows_per_bucket_ *= 2;
}

std::vector<DownsampledSeries::Row> DownsampledSeries::rows() const {
  std::vector<Row> out;
  out.reserve(buckets_.size() * 2);
  const size_t width = names_.size();
  for (const Bucket& bucket : buckets_) {
    const bool single = bucket.rows <= 1 || bucket.t_first == bucket.t_last;
    Row first{bucket.t_first, std::vector<double>(width, kMissing)};
    Row second{bucket.t_last, std::vector<double>(width, kMissing)};
    for (size_t s = 0; s < bucket.series.size() && s < width; ++s) {
      const Extremes& extremes = bucket.series[s];
      if (std::isnan(extremes.min)) continue;
      if (single) {
        first.values[s] = extremes.max;
      } else if (extremes.t_min <= extremes.t_max) {
        first.values[s] = extremes.min;
        second.values[s] = extremes.max;
      } else {
        first.values[s] = extremes.max;
        second.values[s] = extremes.min;
      }
    }
    out.push_back(std::move(first));
    if (!single) out.push_back(std::move(second));
  }
  return out;
}

}  // namespace memscope::analyze
