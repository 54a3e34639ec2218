#include "memscope/batch_size_controller.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <vector>

namespace memscope {

namespace {

constexpr std::array<const char*, 4> kRiskNames = {"low", "medium", "high", "critical"};

int64_t clamp_batch(int64_t batch, int64_t min, int64_t max) { return std::clamp(batch, min, max); }

// batch * factor rounded down, at least one less than batch, never below min.
int64_t shrunk(int64_t batch, double factor, int64_t min) {
  auto next = static_cast<int64_t>(std::floor(static_cast<double>(batch) * factor));
  next = std::min(next, batch - 1);
  return std::max(next, min);
}

bool in_open_unit(double value) { return value > 0 && value < 1; }

}  // namespace

const char* to_string(OomRisk risk) { return kRiskNames.at(static_cast<size_t>(risk)); }

std::optional<OomRisk> parse_oom_risk(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (size_t i = 0; i < kRiskNames.size(); ++i) {
    if (lower == kRiskNames[i]) return static_cast<OomRisk>(i);
  }
  return std::nullopt;
}

const char* to_string(BatchAction action) {
  switch (action) {
    case BatchAction::kHold: return "hold";
    case BatchAction::kGrow: return "grow";
    case BatchAction::kShrink: return "shrink";
  }
  return "?";
}

Result<OomRetryReport> run_with_oom_retry(int64_t batch_size, const StepFunction& step,
                                          const OomRetryOptions& options) {
  if (options.min < 1) {
    return make_error(fmt::format("run_with_oom_retry: min must be >= 1, got {}", options.min));
  }
  if (!in_open_unit(options.shrink_factor)) {
    return make_error(fmt::format("run_with_oom_retry: shrink_factor must be in (0, 1), got {}",
                                  options.shrink_factor));
  }
  if (options.max_attempts < 0) {
    return make_error(fmt::format("run_with_oom_retry: max_attempts must be >= 0, got {}",
                                  options.max_attempts));
  }
  if (batch_size < options.min) {
    return make_error(fmt::format("run_with_oom_retry: batch size {} is below the minimum {}",
                                  batch_size, options.min));
  }
  if (!step) return make_error("run_with_oom_retry: no step function");
  OomRetryReport report;
  std::vector<int64_t> tried;
  int64_t batch = batch_size;
  while (true) {
    ++report.attempts;
    tried.push_back(batch);
    const StepResult result = step(batch);
    if (result.outcome == StepOutcome::kOk) {
      report.batch_size = batch;
      return report;
    }
    if (result.outcome == StepOutcome::kError) {
      return make_error(fmt::format("step failed at batch size {}: {}", batch,
                                    result.message.empty() ? "(no message)" : result.message));
    }
    ++report.out_of_memory;
    const bool at_min = batch <= options.min;
    const bool out_of_attempts = options.max_attempts > 0 && report.attempts >= options.max_attempts;
    if (at_min || out_of_attempts) {
      return make_error(fmt::format(
          "out of memory at every batch size tried ({}){}{}", fmt::join(tried, ", "),
          at_min ? fmt::format(", the minimum is {}", options.min)
                 : fmt::format(", {} attempts", options.max_attempts),
          result.message.empty() ? std::string() : fmt::format(": {}", result.message)));
    }
    batch = shrunk(batch, options.shrink_factor, options.min);
  }
}

Result<BatchSizeController> BatchSizeController::create(const BatchSizeControllerOptions& options) {
  const auto bad = [](std::string_view name, auto value, std::string_view rule) {
    return make_error(fmt::format("BatchSizeController: {} must be {}, got {}", name, rule, value));
  };
  const BatchSizeControllerOptions& o = options;
  if (o.min < 1) return bad("min", o.min, ">= 1");
  if (o.max < o.min) return bad("max", o.max, fmt::format(">= min ({})", o.min));
  if (o.initial < o.min || o.initial > o.max) {
    return bad("initial", o.initial, fmt::format("within [min, max] = [{}, {}]", o.min, o.max));
  }
  if (!in_open_unit(o.shrink_factor_high)) return bad("shrink_factor_high", o.shrink_factor_high, "in (0, 1)");
  if (!in_open_unit(o.shrink_factor_critical) || o.shrink_factor_critical > o.shrink_factor_high) {
    return bad("shrink_factor_critical", o.shrink_factor_critical,
               fmt::format("in (0, shrink_factor_high = {}]", o.shrink_factor_high));
  }
  if (!(o.grow_factor >= 1) || !std::isfinite(o.grow_factor)) return bad("grow_factor", o.grow_factor, ">= 1");
  if (o.grow_step < 1) return bad("grow_step", o.grow_step, ">= 1");
  if (!in_open_unit(o.grow_headroom)) return bad("grow_headroom", o.grow_headroom, "in (0, 1)");
  if (o.grow_after < 1) return bad("grow_after", o.grow_after, ">= 1");
  if (o.cooldown < 0) return bad("cooldown", o.cooldown, ">= 0");
  if (!in_open_unit(o.high_usage_fraction)) {
    return bad("high_usage_fraction", o.high_usage_fraction, "in (0, 1)");
  }
  if (!(o.critical_usage_fraction > o.high_usage_fraction && o.critical_usage_fraction <= 1)) {
    return bad("critical_usage_fraction", o.critical_usage_fraction,
               fmt::format("in (high_usage_fraction = {}, 1]", o.high_usage_fraction));
  }
  return BatchSizeController(options);
}

BatchSizeController::BatchSizeController(const BatchSizeControllerOptions& options)
    : options_(options), batch_size_(options.initial) {}

void BatchSizeController::reset(int64_t batch_size) {
  batch_size_ = clamp_batch(batch_size, options_.min, options_.max);
  headroom_streak_ = 0;
  cooldown_left_ = 0;
}

BatchRecommendation BatchSizeController::shrink(OomRisk risk, double factor, const std::string& why) {
  const int64_t before = batch_size_;
  batch_size_ = shrunk(batch_size_, factor, options_.min);
  headroom_streak_ = 0;
  cooldown_left_ = options_.cooldown;
  BatchRecommendation out;
  out.batch_size = batch_size_;
  out.risk = risk;
  out.action = batch_size_ < before ? BatchAction::kShrink : BatchAction::kHold;
  out.reason = batch_size_ < before ? fmt::format("{}: {} -> {}", why, before, batch_size_)
                                    : fmt::format("{}: already at the minimum {}", why, batch_size_);
  return out;
}

BatchRecommendation BatchSizeController::recommend(const MemoryObservation& observation) {
  // Headroom: the fraction given, else 1 - used/limit, else unknown.
  std::optional<double> headroom = observation.headroom_fraction;
  if (!headroom && observation.limit_bytes > 0) {
    headroom = 1.0 - static_cast<double>(observation.used_bytes) /
                         static_cast<double>(observation.limit_bytes);
  }
  if (headroom) headroom = std::clamp(*headroom, 0.0, 1.0);
  const double usage = headroom ? 1.0 - *headroom : 0.0;

  OomRisk risk = observation.risk;
  if (headroom) {
    if (usage >= options_.critical_usage_fraction) {
      risk = std::max(risk, OomRisk::kCritical);
    } else if (usage >= options_.high_usage_fraction) {
      risk = std::max(risk, OomRisk::kHigh);
    }
  }
  const std::string usage_text =
      headroom ? fmt::format("usage {:.1f} %", 100 * usage) : std::string("usage unknown");

  if (risk == OomRisk::kCritical) {
    return shrink(risk, options_.shrink_factor_critical, fmt::format("critical risk ({})", usage_text));
  }
  if (risk == OomRisk::kHigh) {
    return shrink(risk, options_.shrink_factor_high, fmt::format("high risk ({})", usage_text));
  }

  BatchRecommendation out;
  out.risk = risk;
  out.action = BatchAction::kHold;
  if (risk == OomRisk::kMedium) {
    headroom_streak_ = 0;
    if (cooldown_left_ > 0) --cooldown_left_;
    out.reason = fmt::format("medium risk ({}): holding", usage_text);
  } else if (!headroom) {
    headroom_streak_ = 0;
    if (cooldown_left_ > 0) --cooldown_left_;
    out.reason = "low risk, headroom unknown: holding";
  } else if (*headroom < options_.grow_headroom) {
    headroom_streak_ = 0;
    if (cooldown_left_ > 0) --cooldown_left_;
    out.reason = fmt::format("low risk, headroom {:.1f} % below the {:.1f} % needed to grow: holding",
                             100 * *headroom, 100 * options_.grow_headroom);
  } else if (cooldown_left_ > 0) {
    --cooldown_left_;
    headroom_streak_ = 0;
    out.reason = fmt::format("cooling down after a shrink ({} more observations): holding",
                             cooldown_left_);
  } else if (batch_size_ >= options_.max) {
    out.reason = fmt::format("headroom {:.1f} %, already at the maximum {}: holding",
                             100 * *headroom, options_.max);
  } else if (++headroom_streak_ < options_.grow_after) {
    out.reason = fmt::format("headroom {:.1f} % for {} of {} observations: holding",
                             100 * *headroom, headroom_streak_, options_.grow_after);
  } else {
    const int64_t before = batch_size_;
    const auto proportional = static_cast<int64_t>(
        std::floor(static_cast<double>(before) * (options_.grow_factor - 1.0)));
    batch_size_ = clamp_batch(before + std::max(options_.grow_step, proportional), options_.min,
                              options_.max);
    headroom_streak_ = 0;
    out.action = BatchAction::kGrow;
    out.reason = fmt::format("headroom {:.1f} % for {} observations: {} -> {}", 100 * *headroom,
                             options_.grow_after, before, batch_size_);
  }
  out.batch_size = batch_size_;
  return out;
}

BatchRecommendation BatchSizeController::record_out_of_memory() {
  return shrink(OomRisk::kCritical, options_.shrink_factor_critical, "out of memory");
}

Result<OomRetryReport> BatchSizeController::run_step(const StepFunction& step) {
  if (!step) return make_error("BatchSizeController::run_step: no step function");
  OomRetryOptions retry;
  retry.min = options_.min;
  retry.shrink_factor = options_.shrink_factor_critical;
  // Each out-of-memory step shrinks the controller; the retry then runs at its new size.
  const StepFunction tracked = [&](int64_t batch) {
    batch_size_ = batch;
    StepResult result = step(batch);
    if (result.outcome == StepOutcome::kOutOfMemory) record_out_of_memory();
    return result;
  };
  return run_with_oom_retry(batch_size_, tracked, retry);
}

}  // namespace memscope
