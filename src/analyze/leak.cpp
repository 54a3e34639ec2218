#include "analyze/leak.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace memscope::analyze {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;

TrendOptions window_options(double seconds) {
  TrendOptions options;
  options.fit_window_seconds = seconds;
  options.max_warmup_seconds = 120;
  options.max_points = 2048;
  return options;
}

}  // namespace

LeakDetector::LeakDetector(const LeakParams& params) : params_(params) {}

void LeakDetector::add(const Sample& sample) {
  if (!std::isfinite(sample.t_seconds)) return;  // a damaged recording: not a point in time
  // `reading_age`: how old the figure is (USS comes from smaps_rollup, which the collector
  // re-reads on a policy, see README): a repeated old reading is not a new point — fitting it
  // again would count one measurement many times and make jitter look significant. A reading
  // enters the trend once, at the time it was taken.
  const auto track = [&](const std::string& memory, const ProcessSample& p, uint64_t bytes,
                         double reading_age) {
    const auto key = std::make_pair(memory, std::make_pair(p.pid, p.start_time_ticks));
    auto it = series_.find(key);
    if (it == series_.end()) {
      it = series_
               .emplace(key, Series(window_options(params_.window_seconds),
                                    window_options(params_.recent_seconds)))
               .first;
      it->second.latest.pid = p.pid;
      it->second.latest.start_time_ticks = p.start_time_ticks;
      it->second.latest.memory = memory;
      it->second.latest.first_seen_seconds = sample.t_seconds;
      it->second.latest.first_bytes = bytes;
    }
    Series& s = it->second;
    const double reading_t = sample.t_seconds - std::max(0.0, reading_age);
    if (s.history.empty() || reading_t > s.history.last_t()) {
      s.history.add(reading_t, static_cast<double>(bytes));
      s.recent.add(reading_t, static_cast<double>(bytes));
    }
    s.latest.comm = p.comm;
    s.latest.last_seen_seconds = sample.t_seconds;
    s.latest.current_bytes = bytes;
    s.latest.peak_bytes = std::max(s.latest.peak_bytes, bytes);
    s.latest.rss_bytes = p.rss_bytes;
    s.latest.pss_bytes = p.pss_bytes;
  };
  for (const ProcessSample& p : sample.processes) {
    // A zombie (exited, not yet reaped) holds no memory, and nor does a process caught exiting
    // after its address space was released but before it became a zombie (no resident page
    // after it had some; its USS may still be the collector's last smaps reading): neither is a
    // reading of the process, and its zeros would stand as its last RSS/PSS. (A trace whose
    // RSS column is 0 throughout keeps its readings.)
    if (p.state == 'Z') continue;
    if (p.rss_bytes == 0 && seen_resident_.count({p.pid, p.start_time_ticks}) != 0) continue;
    if (p.rss_bytes > 0) seen_resident_.insert({p.pid, p.start_time_ticks});
    track("uss", p, p.uss_bytes, p.smaps_age_seconds);
  }
  for (const DeviceSample& device : sample.devices) {
    for (const GpuProcess& g : device.processes) {
      ProcessSample p;
      p.pid = static_cast<int>(g.pid);
      bool in_sample = false;
      for (const ProcessSample& q : sample.processes) {
        if (q.pid == p.pid) {
          p = q;
          in_sample = true;
        }
      }
      // The device lists every process on it; only the watched ones (the sample's) are judged,
      // unless the sample has no processes at all.
      if (!in_sample && !sample.processes.empty()) continue;
      track(fmt::format("gpu{}", device.index), p, g.used_bytes, 0);
    }
  }
}

std::vector<LeakVerdict> LeakDetector::verdicts() const {
  std::vector<LeakVerdict> out;
  const double threshold = params_.threshold_mb_per_min * kMiB / 60.0;  // bytes per second
  for (const auto& [key, s] : series_) {
    LeakVerdict v = s.latest;
    const double scale = std::max(static_cast<double>(v.peak_bytes), 64 * kMiB);
    // Memory given back at the very end (a process freeing as it exits, the last sample caught
    // mid-way) says nothing about growth during the run: judge the run up to its peak.
    const std::deque<TrendPoint>& points = s.history.points();
    size_t peak_index = 0;
    for (size_t i = 0; i < points.size(); ++i) {
      if (points[i].v >= points[peak_index].v) peak_index = i;
    }
    double low_before_peak = points.empty() ? 0 : points[peak_index].v;
    for (size_t i = 0; i < peak_index; ++i)
      low_before_peak = std::min(low_before_peak, points[i].v);
    // Only a fall right at the end counts (the peak within the last 10 % of the data, or 5 s);
    // a peak early in the run followed by a long flat stretch is not "freed at the end".
    const double data_span = points.empty() ? 0 : points.back().t - points.front().t;
    const bool freed_at_end =
        !points.empty() && peak_index + 1 < points.size() &&
        points.back().t - points[peak_index].t <= std::max(5.0, 0.1 * data_span) &&
        points[peak_index].v - points.back().v >= 0.5 * (points[peak_index].v - low_before_peak) &&
        points[peak_index].v - points.back().v > 0.01 * scale;
    TrendHistory until_peak(s.history.options());
    TrendHistory recent_until_peak(s.recent.options());
    if (freed_at_end) {
      for (size_t i = 0; i <= peak_index; ++i) {
        until_peak.add(points[i].t, points[i].v, points[i].aux);
        recent_until_peak.add(points[i].t, points[i].v, points[i].aux);
      }
    }
    const Trend trend = fit_trend(freed_at_end ? until_peak : s.history, scale);
    const Trend recent = fit_trend(freed_at_end ? recent_until_peak : s.recent, scale);
    v.growth_bytes_per_second = trend.slope;
    v.recent_growth_bytes_per_second = recent.slope;
    v.warmup_end_seconds = trend.warmup_end;
    const double span_factor = std::clamp(trend.span / params_.min_span_seconds / 2, 0.0, 1.0);
    if (trend.growing) {
      v.confidence = std::clamp(1 - 2 * trend.slope_error / trend.slope, 0.0, 1.0) * span_factor;
    } else {
      v.confidence = span_factor;
    }
    const double rise = static_cast<double>(v.peak_bytes) - static_cast<double>(v.first_bytes);
    const bool still_growing = recent.slope >= 0.5 * trend.slope && recent.slope > 0;
    if (trend.growing && trend.slope >= threshold && trend.span >= params_.min_span_seconds &&
        still_growing) {
      v.verdict = "leak suspected";
      v.projected_growth_bytes_per_hour = trend.slope * 3600;
      v.reason = fmt::format(
          "grows {:.2f} MiB/min over {:.0f} s after warm-up (still {:.2f} MiB/min over the last "
          "{:.0f} s): {:.0f} MiB per hour at this rate",
          trend.slope * 60 / kMiB, trend.span, recent.slope * 60 / kMiB, params_.recent_seconds,
          trend.slope * 3600 / kMiB);
    } else if (rise >= std::max(static_cast<double>(params_.plateau_min_rise_bytes),
                                0.1 * static_cast<double>(v.first_bytes))) {
      v.verdict = "growth plateaued";
      v.reason = fmt::format(
          "rose {:.1f} MiB ({:.1f} → {:.1f} MiB) then levelled off (now {:.2f} MiB/min): a "
          "warm-up, caches filling, or workers touching shared pages (copy-on-read); not a leak",
          rise / kMiB, static_cast<double>(v.first_bytes) / kMiB,
          static_cast<double>(v.peak_bytes) / kMiB, recent.slope * 60 / kMiB);
    } else {
      v.verdict = "no growth";
      v.reason = fmt::format("{:.2f} MiB/min, below {:g} MiB/min or not significant",
                             trend.slope * 60 / kMiB, params_.threshold_mb_per_min);
    }
    if (freed_at_end) {
      v.reason += fmt::format(" (memory given back at the end; judged up to its peak at {:.1f} s)",
                              points[peak_index].t);
    }
    out.push_back(std::move(v));
  }
  const auto rank = [](const LeakVerdict& v) {
    return v.verdict == "leak suspected" ? 0 : v.verdict == "growth plateaued" ? 1 : 2;
  };
  std::stable_sort(out.begin(), out.end(), [&](const LeakVerdict& a, const LeakVerdict& b) {
    if (rank(a) != rank(b)) return rank(a) < rank(b);
    return a.growth_bytes_per_second > b.growth_bytes_per_second;
  });
  return out;
}

}  // namespace memscope::analyze
