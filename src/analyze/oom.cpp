#include "analyze/oom.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>

#include "analyze/trend.hpp"
#include "core/units.hpp"

namespace memscope::analyze {

const char* to_string(RiskLevel level) {
  switch (level) {
    case RiskLevel::kLow:
      return "low";
    case RiskLevel::kMedium:
      return "medium";
    case RiskLevel::kHigh:
      return "high";
    case RiskLevel::kCritical:
      return "critical";
  }
  return "low";
}

std::optional<RiskLevel> parse_risk_level(std::string_view text) {
  std::string lower;
  for (const char c : text) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const RiskLevel level :
       {RiskLevel::kLow, RiskLevel::kMedium, RiskLevel::kHigh, RiskLevel::kCritical}) {
    if (lower == to_string(level)) return level;
  }
  return std::nullopt;
}

const char* to_string(ResourceKind kind) {
  switch (kind) {
    case ResourceKind::kHost:
      return "host";
    case ResourceKind::kCgroup:
      return "cgroup";
    case ResourceKind::kGpu:
      return "gpu";
    case ResourceKind::kTree:
      return "tree";
  }
  return "host";
}

std::vector<Observation> observe(const Sample& sample, const ObservationScope& scope) {
  std::vector<Observation> out;
  const SystemSample& system = sample.system;
  if (scope.host && system.limit_bytes > 0) {
    Observation host;
    host.resource = "host";
    host.kind =
        system.limit_source.rfind("cgroup:", 0) == 0 ? ResourceKind::kCgroup : ResourceKind::kHost;
    host.t_seconds = sample.t_seconds;
    host.used_bytes = system.used_bytes;
    host.limit_bytes = system.limit_bytes;
    host.limit_source = system.limit_source;
    out.push_back(std::move(host));
  }
  if (scope.gpus) {
    for (const DeviceSample& device : sample.devices) {
      if (!device.ok || device.total_bytes == 0) continue;
      Observation gpu;
      gpu.resource = fmt::format("gpu{}", device.index);
      gpu.kind = ResourceKind::kGpu;
      gpu.t_seconds = sample.t_seconds;
      gpu.used_bytes = device.used_bytes;
      // What allocations can reach: used + free (v2 keeps the driver's reserved part out).
      const uint64_t usable = device.used_bytes + device.free_bytes;
      gpu.limit_bytes = usable > 0 ? std::min(usable, device.total_bytes) : device.total_bytes;
      gpu.limit_source = "GPU total";
      out.push_back(std::move(gpu));
    }
  }
  if (scope.has_tree && !sample.processes.empty()) {
    // The tree: root_pid and its descendants, or every process when root_pid is 0.
    std::set<int> members;
    if (scope.root_pid == 0) {
      for (const ProcessSample& p : sample.processes) members.insert(p.pid);
    } else {
      members.insert(scope.root_pid);
      bool grew = true;
      while (grew) {
        grew = false;
        for (const ProcessSample& p : sample.processes) {
          if (members.count(p.ppid) && members.insert(p.pid).second) grew = true;
        }
      }
    }
    uint64_t total = 0;
    uint64_t children = 0;
    bool any = false;
    for (const ProcessSample& p : sample.processes) {
      if (!members.count(p.pid)) continue;
      any = true;
      total += p.pss_bytes;
      // A root is the watched pid, or (whole-sample trees) a process whose parent is not listed.
      const bool is_root = scope.root_pid != 0 ? p.pid == scope.root_pid : !members.count(p.ppid);
      if (!is_root) children += p.pss_bytes;
    }
    if (any) {
      Observation tree;
      tree.resource = "tree";
      tree.kind = ResourceKind::kTree;
      tree.t_seconds = sample.t_seconds;
      tree.used_bytes = total;
      tree.children_bytes = children;
      if (scope.tree_limit) {
        tree.limit_bytes = *scope.tree_limit;
        tree.limit_source = "--limit";
      } else if (system.limit_bytes > 0) {
        const uint64_t headroom =
            system.limit_bytes > system.used_bytes ? system.limit_bytes - system.used_bytes : 0;
        tree.limit_bytes = total + headroom;
        tree.limit_source = "available";
      }
      if (tree.limit_bytes > 0) out.push_back(std::move(tree));
    }
  }
  return out;
}

std::optional<std::string> validate(const ModelParams& params) {
  if (!(params.threshold_percent >= 1 && params.threshold_percent <= 100)) {
    return fmt::format("threshold must be between 1 and 100 percent (got {})",
                       params.threshold_percent);
  }
  if (!(params.fit_window_seconds >= 5)) {
    return fmt::format("the fit window must be at least 5 seconds (got {})",
                       params.fit_window_seconds);
  }
  if (!(params.lower_after_seconds >= 0)) return std::string("lower_after_seconds must be >= 0");
  if (params.max_points < 16) return std::string("max_points must be at least 16");
  return std::nullopt;
}

namespace {

constexpr double kMiB = 1024.0 * 1024.0;

TrendOptions trend_options(const ModelParams& params) {
  TrendOptions options;
  options.fit_window_seconds = params.fit_window_seconds;
  options.min_window_seconds = params.min_window_seconds;
  options.max_warmup_seconds = params.max_warmup_seconds;
  options.max_points = params.max_points;
  return options;
}

std::string duration_words(double seconds) { return format_duration(seconds); }

std::string recommend(const Assessment& a, double children_slope) {
  const double rate_mib = a.growth_bytes_per_second / kMiB;
  std::string when;
  if (a.predicted_oom_seconds) {
    when = *a.predicted_oom_seconds <= 0
               ? std::string(" (at the limit now)")
               : fmt::format(" (limit in ~{})", duration_words(*a.predicted_oom_seconds));
  }
  if (a.growing && a.raw_level != RiskLevel::kLow) {
    if (a.kind == ResourceKind::kGpu) {
      return fmt::format(
          "GPU memory peaks grow {:.1f} MiB/s{}: reduce the batch size or enable gradient "
          "checkpointing to make room, set PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True "
          "against fragmentation; if it grows step after step a tensor is being kept alive "
          "(e.g. a loss summed without .item()): run `memscope leak` to find it.",
          rate_mib, when);
    }
    if (children_slope > 0 && children_slope >= 0.5 * a.growth_bytes_per_second) {
      return fmt::format(
          "{:.1f} of the {:.1f} MiB/s growth is in child processes (DataLoader workers){}: "
          "workers that touch a dataset of Python objects copy its pages (copy-on-read through "
          "reference counts) — keep the data in numpy arrays or tensors, lower num_workers, and "
          "use pin_memory=False if pinned batches pile up; `memscope leak` tells a plateau from "
          "a leak.",
          children_slope / kMiB, rate_mib, when);
    }
    return fmt::format(
        "steady growth of {:.1f} MiB/min{} looks like a leak: run `memscope leak` on the job "
        "to see which process grows (and `--enable-tracking` to name the call site).",
        rate_mib * 60, when);
  }
  if (a.raw_level != RiskLevel::kLow) {
    if (a.kind == ResourceKind::kGpu) {
      return fmt::format(
          "GPU memory at {:.1f}% without growing: little headroom — a larger batch or sequence "
          "will not fit; reduce the batch size, use mixed precision or gradient checkpointing, "
          "or set PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True.",
          a.usage_percent);
    }
    return fmt::format(
        "memory at {:.1f}% of the {} limit without growing: little headroom — reduce DataLoader "
        "num_workers or prefetch_factor, or raise the limit.",
        a.usage_percent, a.limit_source);
  }
  return "no action needed";
}

}  // namespace

ResourceModel::ResourceModel(const ModelParams& params)
    : params_(params), history_(trend_options(params)) {}

void ResourceModel::add(const Observation& observation) {
  if (!history_.empty() && observation.t_seconds < history_.last_t()) return;  // time went back
  last_ = observation;
  history_.add(
      observation.t_seconds, static_cast<double>(observation.used_bytes),
      observation.children_bytes ? static_cast<double>(*observation.children_bytes) : -1.0);
}

Assessment ResourceModel::assess() const {
  Assessment a;
  a.resource = last_.resource;
  a.kind = last_.kind;
  a.t_seconds = last_.t_seconds;
  a.used_bytes = last_.used_bytes;
  a.limit_bytes = last_.limit_bytes;
  a.limit_source = last_.limit_source;
  if (history_.empty() || a.limit_bytes == 0) {
    a.reason = "no limit known";
    a.recommendation = "no action needed";
    return a;
  }
  const double limit = static_cast<double>(a.limit_bytes);
  const double current = static_cast<double>(a.used_bytes);
  a.usage_percent = 100.0 * current / limit;

  const Trend fit = fit_trend(history_, limit);
  a.warmup_end_seconds = fit.warmup_end;
  a.fit_points = fit.points;
  a.fit_span_seconds = fit.span;
  a.growth_bytes_per_second = fit.slope;
  a.growing = fit.growing;

  const double fitted_now = fit.intercept + fit.slope * a.t_seconds;
  const double base = std::max(current, fitted_now);
  if (a.growing) a.predicted_oom_seconds = std::max(0.0, (limit - base) / fit.slope);

  // Confidence in the assessment. For a forecast that matters (the limit within the medium
  // horizon): how precisely the slope is known, times how much data it rests on — a forecast
  // reaching further ahead than extrapolation_ratio times that data is discounted (30 s of a
  // slight rise do not make a 10-minute forecast). Otherwise: how sure the model is that even
  // the slope's upper bound would not reach the limit within an hour.
  if (fit.points >= 4) {
    const auto span_factor = [&](double needed) { return std::clamp(fit.span / needed, 0.0, 1.0); };
    if (a.predicted_oom_seconds && *a.predicted_oom_seconds <= params_.medium_seconds) {
      const double needed = std::max(params_.full_confidence_span_seconds,
                                     *a.predicted_oom_seconds / params_.extrapolation_ratio);
      a.confidence =
          std::clamp(1 - 2 * fit.slope_error / fit.slope, 0.0, 1.0) * span_factor(needed);
    } else {
      const double upper = fit.slope + 2 * fit.slope_error;
      const double headroom = std::max(0.0, limit - base);
      const double safe = upper <= 0 ? 1.0 : std::clamp(headroom / upper / 3600.0, 0.0, 1.0);
      a.confidence = safe * span_factor(params_.full_confidence_span_seconds);
    }
  }

  // Levels.
  const double critical_percent = std::max(params_.critical_percent, params_.threshold_percent);
  // Never below half the threshold: `--threshold 10` must not make an idle resource medium.
  const double medium_percent = std::max(params_.threshold_percent - params_.medium_margin_percent,
                                         params_.threshold_percent / 2);
  const auto forecast_within = [&](double seconds, double min_confidence) {
    return a.predicted_oom_seconds && *a.predicted_oom_seconds <= seconds &&
           a.confidence >= min_confidence;
  };
  const auto forecast_reason = [&]() {
    return fmt::format("limit in {:.0f} s at {:.2f} MiB/s (confidence {:.2f})",
                       *a.predicted_oom_seconds, fit.slope / kMiB, a.confidence);
  };
  if (a.usage_percent >= critical_percent) {
    a.raw_level = RiskLevel::kCritical;
    a.reason = fmt::format("usage {:.1f}% >= {:g}%", a.usage_percent, critical_percent);
  } else if (forecast_within(params_.critical_seconds, params_.critical_confidence)) {
    a.raw_level = RiskLevel::kCritical;
    a.reason = forecast_reason();
  } else if (a.usage_percent >= params_.threshold_percent) {
    a.raw_level = RiskLevel::kHigh;
    a.reason =
        fmt::format("usage {:.1f}% >= threshold {:g}%", a.usage_percent, params_.threshold_percent);
  } else if (forecast_within(params_.high_seconds, params_.high_confidence)) {
    a.raw_level = RiskLevel::kHigh;
    a.reason = forecast_reason();
  } else if (a.usage_percent >= medium_percent) {
    a.raw_level = RiskLevel::kMedium;
    a.reason = fmt::format("usage {:.1f}% >= {:g}%", a.usage_percent, medium_percent);
  } else if (forecast_within(params_.medium_seconds, params_.medium_confidence)) {
    a.raw_level = RiskLevel::kMedium;
    a.reason = forecast_reason();
  } else {
    a.raw_level = RiskLevel::kLow;
    a.reason = a.growing ? fmt::format("growing {:.2f} MiB/s, limit far (confidence {:.2f})",
                                       fit.slope / kMiB, a.confidence)
                         : "not growing";
  }
  a.level = a.raw_level;

  const double children_slope = fit.aux_known ? fit.aux_slope : 0;
  a.recommendation = recommend(a, children_slope);
  return a;
}

OomMonitor::OomMonitor(const ModelParams& params, const ObservationScope& scope)
    : params_(params), scope_(scope) {}

std::vector<LevelChange> OomMonitor::add(const Sample& sample) {
  if (!std::isfinite(sample.t_seconds)) return {};  // a damaged recording: not a point in time
  return add(sample.t_seconds, observe(sample, scope_));
}

std::vector<LevelChange> OomMonitor::add(double t_seconds,
                                         const std::vector<Observation>& observations) {
  std::vector<LevelChange> changes;
  for (const Observation& observation : observations) {
    auto it = tracked_.find(observation.resource);
    if (it == tracked_.end()) {
      it = tracked_.emplace(observation.resource, Tracked{ResourceModel(params_)}).first;
      order_.push_back(observation.resource);
      latest_.emplace_back();
    }
    Tracked& tracked = it->second;
    tracked.model.add(observation);
    Assessment assessment = tracked.model.assess();
    const RiskLevel before = tracked.level;
    if (assessment.raw_level > tracked.level) {
      tracked.level = assessment.raw_level;
      tracked.lower_since = -1;
    } else if (assessment.raw_level < tracked.level) {
      if (tracked.lower_since < 0) tracked.lower_since = t_seconds;
      if (t_seconds - tracked.lower_since >= params_.lower_after_seconds) {
        tracked.level = assessment.raw_level;
        tracked.lower_since = -1;
      }
    } else {
      tracked.lower_since = -1;
    }
    assessment.level = tracked.level;
    if (tracked.level > before) {
      auto& firsts = first_raised_[observation.resource];
      for (int l = static_cast<int>(before) + 1; l <= static_cast<int>(tracked.level); ++l) {
        firsts.emplace(
            static_cast<RiskLevel>(l),
            FirstRaised{t_seconds, assessment.predicted_oom_seconds, assessment.usage_percent});
      }
    }
    if (tracked.level != before) {
      changes.push_back({t_seconds, observation.resource, before, tracked.level, assessment});
    }
    const auto index = static_cast<size_t>(
        std::find(order_.begin(), order_.end(), observation.resource) - order_.begin());
    latest_[index] = std::move(assessment);
  }
  return changes;
}

RiskLevel OomMonitor::overall() const {
  const Assessment* urgent = most_urgent();
  return urgent ? urgent->level : RiskLevel::kLow;
}

const Assessment* OomMonitor::most_urgent() const {
  const Assessment* best = nullptr;
  for (const Assessment& a : latest_) {
    if (!best || a.level > best->level ||
        (a.level == best->level && a.predicted_oom_seconds &&
         (!best->predicted_oom_seconds ||
          *a.predicted_oom_seconds < *best->predicted_oom_seconds))) {
      best = &a;
    }
  }
  return best;
}

}  // namespace memscope::analyze
