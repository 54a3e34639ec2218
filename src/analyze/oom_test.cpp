#include "analyze/oom.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <ostream>
#include <random>

#include "core/units.hpp"

namespace memscope::analyze {

// Failure messages name levels rather than dumping their bytes.
static void PrintTo(RiskLevel level, std::ostream* os) { *os << to_string(level); }

namespace {

constexpr double kLimit = static_cast<double>(kGiB);
constexpr double kMiBs = static_cast<double>(kMiB);

uint64_t to_bytes(double value) {
  return value <= 0 ? 0 : static_cast<uint64_t>(std::llround(value));
}

// Deterministic noise: a factor in [1 - fraction, 1 + fraction].
class Jitter {
 public:
  explicit Jitter(uint32_t seed) : rng_(seed) {}
  double factor(double fraction) { return 1 + fraction * unit_(rng_); }

 private:
  std::mt19937 rng_;
  std::uniform_real_distribution<double> unit_{-1.0, 1.0};
};

Sample host_sample(double t, double used, uint64_t limit = kGiB,
                   const std::string& source = "MemTotal") {
  Sample sample;
  sample.t_seconds = t;
  sample.unix_ms = 1'700'000'000'000 + static_cast<int64_t>(t * 1000);
  sample.system.used_bytes = to_bytes(used);
  sample.system.limit_bytes = limit;
  sample.system.limit_source = source;
  return sample;
}

ProcessSample process(int pid, int ppid, double pss) {
  ProcessSample p;
  p.pid = pid;
  p.ppid = ppid;
  p.pss_bytes = to_bytes(pss);
  p.rss_bytes = p.pss_bytes;
  p.uss_bytes = p.pss_bytes;
  return p;
}

DeviceSample device(int index, double used, uint64_t total = kGiB,
                    std::optional<uint64_t> free = std::nullopt, bool ok = true) {
  DeviceSample d;
  d.index = index;
  d.ok = ok;
  d.total_bytes = total;
  d.used_bytes = to_bytes(used);
  d.free_bytes = free ? *free : (total > d.used_bytes ? total - d.used_bytes : 0);
  d.memory_api = "v2";
  return d;
}

Observation observation(const std::string& resource, double t, double used, uint64_t limit = kGiB) {
  Observation o;
  o.resource = resource;
  o.t_seconds = t;
  o.used_bytes = to_bytes(used);
  o.limit_bytes = limit;
  o.limit_source = "MemTotal";
  return o;
}

// Host samples of used(t) every `step` seconds over [0, duration].
std::vector<Sample> host_timeline(double duration, double step,
                                  const std::function<double(double)>& used) {
  std::vector<Sample> samples;
  const auto count = static_cast<size_t>(std::llround(duration / step));
  for (size_t i = 0; i <= count; ++i) {
    const double t = static_cast<double>(i) * step;
    samples.push_back(host_sample(t, used(t)));
  }
  return samples;
}

// A tooth rises linearly from `low` to `high` over each period, then drops.
double sawtooth(double t, double period, double low, double high) {
  return low + (high - low) * std::fmod(t, period) / period;
}

// The first sample at or above the limit: when the job would have been killed.
double crossing_time(const std::vector<Sample>& samples) {
  for (const Sample& s : samples) {
    if (s.system.used_bytes >= s.system.limit_bytes) return s.t_seconds;
  }
  return std::numeric_limits<double>::infinity();
}

struct Replay {
  std::vector<LevelChange> changes;
  std::vector<Assessment> history;  // the first resource's assessment after each sample
};

Replay replay(OomMonitor& monitor, const std::vector<Sample>& samples) {
  Replay out;
  for (const Sample& sample : samples) {
    for (LevelChange& change : monitor.add(sample)) out.changes.push_back(std::move(change));
    if (!monitor.assessments().empty()) out.history.push_back(monitor.assessments().front());
  }
  return out;
}

Replay replay(const std::vector<Sample>& samples, const ModelParams& params = {}) {
  OomMonitor monitor(params, ObservationScope{});
  return replay(monitor, samples);
}

RiskLevel highest_level(const Replay& r) {
  RiskLevel highest = RiskLevel::kLow;
  for (const Assessment& a : r.history) highest = std::max(highest, a.level);
  return highest;
}

const LevelChange* first_change_to(const Replay& r, RiskLevel level) {
  for (const LevelChange& c : r.changes) {
    if (c.to == level) return &c;
  }
  return nullptr;
}

void expect_same(const Assessment& a, const Assessment& b) {
  EXPECT_EQ(a.resource, b.resource);
  EXPECT_EQ(a.kind, b.kind);
  EXPECT_EQ(a.t_seconds, b.t_seconds);
  EXPECT_EQ(a.level, b.level);
  EXPECT_EQ(a.raw_level, b.raw_level);
  EXPECT_EQ(a.confidence, b.confidence);
  EXPECT_EQ(a.used_bytes, b.used_bytes);
  EXPECT_EQ(a.limit_bytes, b.limit_bytes);
  EXPECT_EQ(a.limit_source, b.limit_source);
  EXPECT_EQ(a.usage_percent, b.usage_percent);
  EXPECT_EQ(a.growth_bytes_per_second, b.growth_bytes_per_second);
  EXPECT_EQ(a.growing, b.growing);
  EXPECT_EQ(a.predicted_oom_seconds, b.predicted_oom_seconds);
  EXPECT_EQ(a.warmup_end_seconds, b.warmup_end_seconds);
  EXPECT_EQ(a.fit_span_seconds, b.fit_span_seconds);
  EXPECT_EQ(a.fit_points, b.fit_points);
  EXPECT_EQ(a.reason, b.reason);
  EXPECT_EQ(a.recommendation, b.recommendation);
}

void expect_same(const std::vector<LevelChange>& a, const std::vector<LevelChange>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].t_seconds, b[i].t_seconds);
    EXPECT_EQ(a[i].resource, b[i].resource);
    EXPECT_EQ(a[i].from, b[i].from);
    EXPECT_EQ(a[i].to, b[i].to);
    expect_same(a[i].assessment, b[i].assessment);
  }
}

// ---------------------------------------------------------------------------------------------
// The forecast over synthetic timelines.

TEST(OomModel, FlatWithJitterStaysLowWithHighConfidence) {
  Jitter jitter(1);
  const Replay r =
      replay(host_timeline(120, 0.2, [&](double) { return 0.5 * kLimit * jitter.factor(0.01); }));
  EXPECT_TRUE(r.changes.empty());
  for (const Assessment& a : r.history) {
    ASSERT_EQ(a.level, RiskLevel::kLow) << "t=" << a.t_seconds << ": " << a.reason;
    ASSERT_EQ(a.raw_level, RiskLevel::kLow) << "t=" << a.t_seconds;
    // Once the data spans enough time, jitter that looks like growth gives no forecast within
    // any horizon (before that, such a forecast has too little confidence to raise a level).
    if (a.predicted_oom_seconds && a.t_seconds >= 20) {
      EXPECT_GT(*a.predicted_oom_seconds, 1800) << a.t_seconds;
    }
  }
  const Assessment& last = r.history.back();
  EXPECT_DOUBLE_EQ(last.t_seconds, 120);
  EXPECT_GT(last.confidence, 0.8);
  // Not growing, or (rarely, by chance) a slope so slight that the limit is hours away.
  if (last.growing) {
    ASSERT_TRUE(last.predicted_oom_seconds);
    EXPECT_GT(*last.predicted_oom_seconds, 3600);
  } else {
    EXPECT_FALSE(last.predicted_oom_seconds);
  }
  EXPECT_LT(std::abs(last.growth_bytes_per_second), 0.1 * kMiBs);
  EXPECT_NEAR(last.usage_percent, 50, 1.01);
  EXPECT_EQ(last.recommendation, "no action needed");
}

TEST(OomModel, LinearGrowthRaisesCriticalWellBeforeTheCrossing) {
  // 20 % of 1 GiB growing 10 MiB/s: the limit is reached at 819.2 / 10 s.
  const double rate = 10 * kMiBs;
  const double truth = 0.8 * kLimit / rate;
  Jitter jitter(2);
  const std::vector<Sample> samples = host_timeline(
      100, 0.2, [&](double t) { return (0.2 * kLimit + rate * t) * jitter.factor(0.005); });
  OomMonitor monitor(ModelParams{}, ObservationScope{});
  const Replay r = replay(monitor, samples);

  const LevelChange* critical = first_change_to(r, RiskLevel::kCritical);
  ASSERT_NE(critical, nullptr);
  EXPECT_LE(critical->t_seconds, truth - 30);
  EXPECT_EQ(critical->resource, "host");
  EXPECT_EQ(critical->assessment.raw_level, RiskLevel::kCritical);
  EXPECT_TRUE(critical->assessment.growing);
  EXPECT_GE(critical->assessment.confidence, 0.5);
  ASSERT_TRUE(critical->assessment.predicted_oom_seconds);
  const double remaining = truth - critical->t_seconds;
  EXPECT_NEAR(*critical->assessment.predicted_oom_seconds, remaining, 0.25 * remaining);
  EXPECT_NE(critical->assessment.reason.find("limit in"), std::string::npos)
      << critical->assessment.reason;
  EXPECT_NEAR(critical->assessment.growth_bytes_per_second, rate, 0.1 * rate);

  // Raised step by step, never lowered while the growth goes on.
  for (size_t i = 1; i < r.history.size(); ++i) {
    EXPECT_GE(r.history[i].level, r.history[i - 1].level) << r.history[i].t_seconds;
  }
  const auto& firsts = monitor.first_raised().at("host");
  ASSERT_EQ(firsts.count(RiskLevel::kCritical), 1u);
  const OomMonitor::FirstRaised& first = firsts.at(RiskLevel::kCritical);
  EXPECT_DOUBLE_EQ(first.t_seconds, critical->t_seconds);
  EXPECT_EQ(first.predicted_oom_seconds, critical->assessment.predicted_oom_seconds);
  EXPECT_DOUBLE_EQ(first.usage_percent, critical->assessment.usage_percent);
  ASSERT_EQ(firsts.count(RiskLevel::kMedium), 1u);
  ASSERT_EQ(firsts.count(RiskLevel::kHigh), 1u);
  EXPECT_LE(firsts.at(RiskLevel::kMedium).t_seconds, firsts.at(RiskLevel::kHigh).t_seconds);
  EXPECT_LE(firsts.at(RiskLevel::kHigh).t_seconds, first.t_seconds);
  EXPECT_EQ(monitor.overall(), RiskLevel::kCritical);
}

TEST(OomModel, SawtoothWithoutGrowthIsNeverHighOrCritical) {
  const Replay r = replay(host_timeline(
      120, 0.25, [](double t) { return sawtooth(t, 2, 0.40 * kLimit, 0.75 * kLimit); }));
  EXPECT_LT(highest_level(r), RiskLevel::kHigh);
  for (const LevelChange& c : r.changes) EXPECT_LT(c.to, RiskLevel::kHigh) << c.t_seconds;
  const Assessment& last = r.history.back();
  EXPECT_FALSE(last.growing);
  EXPECT_FALSE(last.predicted_oom_seconds);
  EXPECT_LT(std::abs(last.growth_bytes_per_second), 0.1 * kMiBs);
}

TEST(OomModel, SawtoothWithNoiseWithoutGrowthIsNeverHighOrCritical) {
  Jitter jitter(3);
  const Replay r = replay(host_timeline(120, 0.25, [&](double t) {
    return sawtooth(t, 2, 0.40 * kLimit, 0.75 * kLimit) * jitter.factor(0.01);
  }));
  EXPECT_LT(highest_level(r), RiskLevel::kHigh);
  EXPECT_FALSE(r.history.back().growing);
}

TEST(OomModel, SawtoothWithLongerTeethIsNeverHighOrCritical) {
  // 5 s steps: a tooth spans several of the narrowest envelope windows.
  const Replay r = replay(host_timeline(
      120, 0.25, [](double t) { return sawtooth(t, 5, 0.40 * kLimit, 0.75 * kLimit); }));
  EXPECT_LT(highest_level(r), RiskLevel::kHigh);
  EXPECT_FALSE(r.history.back().growing);
}

TEST(OomModel, SlowSawtoothIsNotCriticalAfterItsFirstDrop) {
  // Large models take 10 s a step; the first drop shows the rise was a tooth, not a leak.
  const Replay r = replay(host_timeline(
      60, 0.25, [](double t) { return sawtooth(t, 10, 0.40 * kLimit, 0.75 * kLimit); }));
  for (const Assessment& a : r.history) {
    if (a.t_seconds > 10) {
      EXPECT_LT(a.raw_level, RiskLevel::kCritical) << a.t_seconds << ": " << a.reason;
    }
  }
  EXPECT_LT(highest_level(r), RiskLevel::kCritical);
}

TEST(OomModel, SawtoothWhosePeaksGrowIsCriticalBeforeTheCrossing) {
  // A leak under the training sawtooth: every tooth sits a little higher.
  const double leak = 0.3 * kLimit / 75;
  const std::vector<Sample> samples = host_timeline(
      100, 0.25, [&](double t) { return sawtooth(t, 2, 0.40 * kLimit, 0.75 * kLimit) + leak * t; });
  const double crossing = crossing_time(samples);
  ASSERT_GE(crossing, 60);
  ASSERT_LE(crossing, 90);
  const Replay r = replay(samples);
  const LevelChange* critical = first_change_to(r, RiskLevel::kCritical);
  ASSERT_NE(critical, nullptr);
  EXPECT_LE(critical->t_seconds, crossing - 20);
  ASSERT_TRUE(critical->assessment.predicted_oom_seconds);
  const double remaining = crossing - critical->t_seconds;
  EXPECT_NEAR(*critical->assessment.predicted_oom_seconds, remaining, 0.25 * remaining);
  EXPECT_NEAR(critical->assessment.growth_bytes_per_second, leak, 0.1 * leak);
}

TEST(OomModel, SawtoothWhoseTeethGrowTallerIsCriticalBeforeTheCrossing) {
  // The troughs stay; only the peaks climb (activations of a growing sequence length).
  const double climb = 0.34 * kLimit / 80;
  const std::vector<Sample> samples = host_timeline(100, 0.25, [&](double t) {
    return sawtooth(t, 2, 0.40 * kLimit, 0.75 * kLimit + climb * t);
  });
  const double crossing = crossing_time(samples);
  ASSERT_GE(crossing, 60);
  ASSERT_LE(crossing, 90);
  const Replay r = replay(samples);
  const LevelChange* critical = first_change_to(r, RiskLevel::kCritical);
  ASSERT_NE(critical, nullptr);
  EXPECT_LE(critical->t_seconds, crossing - 20);
}

TEST(OomModel, WarmupRampThenFlatIsNeverHigh) {
  // An import/allocator ramp to 50 % in 3 s, then a steady job.
  Jitter jitter(4);
  const Replay r = replay(host_timeline(120, 0.2, [&](double t) {
    const double fraction = t < 3 ? 0.05 + 0.45 * t / 3 : 0.5;
    return fraction * kLimit * jitter.factor(0.005);
  }));
  EXPECT_LT(highest_level(r), RiskLevel::kHigh);
  bool trimmed = false;
  for (const Assessment& a : r.history) {
    // Once there is enough data after the ramp to see it level off, the ramp is warm-up.
    if (a.t_seconds >= 10 && a.t_seconds <= 40) {
      EXPECT_GT(a.warmup_end_seconds, 0) << a.t_seconds;
      EXPECT_LE(a.warmup_end_seconds, 10) << a.t_seconds;
      // Jitter may look like a slight growth now and then, never like a forecast that matters.
      if (a.predicted_oom_seconds) {
        EXPECT_GT(*a.predicted_oom_seconds, 1800) << a.t_seconds;
      }
      trimmed = trimmed || a.warmup_end_seconds > 0;
    }
  }
  EXPECT_TRUE(trimmed);
  const Assessment& last = r.history.back();
  EXPECT_EQ(last.level, RiskLevel::kLow);
  EXPECT_FALSE(last.growing);
  EXPECT_GT(last.confidence, 0.8);
}

TEST(OomModel, WarmupRampSmallRiseThenPlateauIsNeverHigh) {
  // Ramp to 50 % in 3 s, 2 % more over the next 20 s (caches filling), then a plateau.
  Jitter jitter(5);
  const Replay r = replay(host_timeline(120, 0.2, [&](double t) {
    const double fraction = t < 3    ? 0.05 + 0.45 * t / 3
                            : t < 23 ? 0.50 + 0.02 * (t - 3) / 20
                                     : 0.52;
    return fraction * kLimit * jitter.factor(0.005);
  }));
  EXPECT_LT(highest_level(r), RiskLevel::kHigh);
  const Assessment& last = r.history.back();
  EXPECT_EQ(last.level, RiskLevel::kLow);
  if (last.predicted_oom_seconds) {
    EXPECT_GT(*last.predicted_oom_seconds, 1800);
  }
  // Once the plateau dominates, the rise is left out as warm-up.
  EXPECT_GE(last.warmup_end_seconds, 15);
  EXPECT_LE(last.warmup_end_seconds, 30);
}

TEST(OomModel, WarmupPeakAboveThePlateauIsLeftOut) {
  // Loading weights peaks at 70 % for 3 s, then the job settles at 40 %.
  const Replay r =
      replay(host_timeline(60, 0.2, [](double t) { return (t < 3 ? 0.7 : 0.4) * kLimit; }));
  const Assessment& last = r.history.back();
  EXPECT_GT(last.warmup_end_seconds, 2.5);
  EXPECT_LE(last.warmup_end_seconds, 10);
  EXPECT_DOUBLE_EQ(last.growth_bytes_per_second, 0);
  EXPECT_FALSE(last.growing);
  EXPECT_DOUBLE_EQ(last.confidence, 1);
  EXPECT_EQ(last.level, RiskLevel::kLow);
  // Medium while the peak lasted, lowered once the lower level held for 10 s.
  ASSERT_EQ(r.changes.size(), 2u);
  EXPECT_EQ(r.changes[0].to, RiskLevel::kMedium);
  EXPECT_EQ(r.changes[1].to, RiskLevel::kLow);
}

TEST(OomModel, ConfidenceOfAForecastIsPrecisionTimesSpan) {
  // An exact line: the slope's error is 0, so the confidence is the span factor alone, and a
  // forecast far beyond the data (pred / extrapolation_ratio > span) is discounted.
  const double rate = kMiBs;
  const Replay r = replay(host_timeline(120, 1, [&](double t) { return 100 * kMiBs + rate * t; }));
  const ModelParams params;
  bool medium_by_forecast = false;
  for (const Assessment& a : r.history) {
    if (a.fit_points < 4) continue;
    ASSERT_TRUE(a.growing) << a.t_seconds;
    EXPECT_NEAR(a.growth_bytes_per_second, rate, 1e-6 * rate);
    ASSERT_TRUE(a.predicted_oom_seconds);
    const double predicted = (kLimit - static_cast<double>(a.used_bytes)) / rate;
    EXPECT_NEAR(*a.predicted_oom_seconds, predicted, 1e-6) << a.t_seconds;
    const double needed =
        std::max(params.full_confidence_span_seconds, predicted / params.extrapolation_ratio);
    EXPECT_NEAR(a.confidence, std::min(1.0, a.fit_span_seconds / needed), 1e-9) << a.t_seconds;
    // Usage stays under 25 %: any level comes from the forecast, and only with its confidence.
    const bool forecast_level = a.confidence >= params.medium_confidence;
    EXPECT_EQ(a.raw_level, forecast_level ? RiskLevel::kMedium : RiskLevel::kLow) << a.t_seconds;
    if (forecast_level) {
      medium_by_forecast = true;
      EXPECT_EQ(a.reason.rfind("limit in ", 0), 0u) << a.reason;
      EXPECT_NE(a.recommendation.find("memscope leak"), std::string::npos) << a.recommendation;
      EXPECT_NE(a.recommendation.find("limit in ~"), std::string::npos) << a.recommendation;
    } else {
      EXPECT_EQ(a.reason.rfind("growing 1.00 MiB/s, limit far", 0), 0u) << a.reason;
      EXPECT_EQ(a.recommendation, "no action needed");
    }
  }
  EXPECT_TRUE(medium_by_forecast);
}

TEST(OomModel, ConfidenceWithoutGrowthIsTheSpanFactor) {
  // Flat: even the slope's upper bound (0) never reaches the limit, so only the span counts.
  const Replay r = replay(host_timeline(30, 1, [](double) { return 0.5 * kLimit; }));
  for (const Assessment& a : r.history) {
    if (a.fit_points < 4) {
      EXPECT_DOUBLE_EQ(a.confidence, 0) << a.t_seconds;
      continue;
    }
    EXPECT_NEAR(a.confidence, std::min(1.0, a.fit_span_seconds / 20), 1e-9) << a.t_seconds;
  }
  EXPECT_DOUBLE_EQ(r.history.back().confidence, 1);
}

TEST(OomModel, ShrinkingUseIsNotGrowing) {
  const Replay r =
      replay(host_timeline(60, 0.5, [](double t) { return 0.8 * kLimit - 2 * kMiBs * t; }));
  const Assessment& last = r.history.back();
  EXPECT_FALSE(last.growing);
  EXPECT_FALSE(last.predicted_oom_seconds);
  EXPECT_NEAR(last.growth_bytes_per_second, -2 * kMiBs, 0.1 * kMiBs);
  EXPECT_EQ(last.raw_level, RiskLevel::kLow);
}

TEST(OomModel, NoLimitIsNotAssessed) {
  OomMonitor monitor(ModelParams{}, ObservationScope{});
  for (int i = 0; i < 20; ++i) {
    const double t = i;
    EXPECT_TRUE(monitor.add(t, {observation("x", t, 100.0 * i * kMiBs, 0)}).empty());
  }
  ASSERT_EQ(monitor.assessments().size(), 1u);
  const Assessment& a = monitor.assessments().front();
  EXPECT_EQ(a.level, RiskLevel::kLow);
  EXPECT_EQ(a.limit_bytes, 0u);
  EXPECT_FALSE(a.predicted_oom_seconds);
  EXPECT_EQ(a.reason, "no limit known");
  EXPECT_EQ(a.recommendation, "no action needed");
}

TEST(OomModel, ManySamplesKeepTheModelBounded) {
  // 100,000 samples 10 ms apart: far more than max_points in the fit window.
  Jitter jitter(6);
  const double rate = 0.2 * kMiBs;
  ResourceModel model{ModelParams{}};
  ModelParams tiny;
  tiny.max_points = 16;
  ResourceModel small(tiny);
  for (int i = 0; i < 100'000; ++i) {
    const double t = 0.01 * i;
    const Observation o = observation("host", t, (0.3 * kLimit + rate * t) * jitter.factor(0.01));
    model.add(o);
    small.add(o);
  }
  const Assessment a = model.assess();
  EXPECT_DOUBLE_EQ(a.t_seconds, 0.01 * 99'999);
  EXPECT_TRUE(a.growing);
  EXPECT_NEAR(a.growth_bytes_per_second, rate, 0.2 * rate);
  EXPECT_GE(a.fit_span_seconds, 60);
  EXPECT_LE(a.fit_span_seconds, ModelParams{}.fit_window_seconds);
  EXPECT_GT(a.fit_points, 16u);
  EXPECT_LE(a.fit_points, 64u);
  // The envelope has at most as many points as the model keeps: max_points binds.
  const Assessment b = small.assess();
  EXPECT_LE(b.fit_points, tiny.max_points);
  EXPECT_DOUBLE_EQ(b.t_seconds, a.t_seconds);
  EXPECT_EQ(b.used_bytes, a.used_bytes);
}

TEST(OomModel, ASmallPointBudgetStillSpansTheFitWindow) {
  // max_points (valid from 16) should cost resolution, not the window the trend is fitted over.
  Jitter jitter(6);
  const double rate = 0.2 * kMiBs;
  ModelParams params;
  params.max_points = 64;
  ASSERT_EQ(validate(params), std::nullopt);
  ResourceModel model(params);
  for (int i = 0; i < 100'000; ++i) {
    const double t = 0.01 * i;
    model.add(observation("host", t, (0.3 * kLimit + rate * t) * jitter.factor(0.01)));
  }
  const Assessment a = model.assess();
  EXPECT_GE(a.fit_span_seconds, 60);
  EXPECT_GE(a.fit_points, 8u);
  EXPECT_TRUE(a.growing);
  EXPECT_NEAR(a.growth_bytes_per_second, rate, 0.3 * rate);
}

TEST(OomModel, TimeGoingBackwardsIsIgnored) {
  ResourceModel model{ModelParams{}};
  for (int i = 0; i <= 30; ++i) model.add(observation("host", i, 0.5 * kLimit));
  const Assessment before = model.assess();
  model.add(observation("host", 10, 0.99 * kLimit));
  expect_same(model.assess(), before);

  OomMonitor monitor(ModelParams{}, ObservationScope{});
  for (int i = 0; i <= 30; ++i) EXPECT_TRUE(monitor.add(host_sample(i, 0.5 * kLimit)).empty());
  const Assessment last = monitor.assessments().front();
  EXPECT_TRUE(monitor.add(host_sample(10, 0.99 * kLimit)).empty());
  expect_same(monitor.assessments().front(), last);
  EXPECT_TRUE(monitor.add(host_sample(-5, 0.99 * kLimit)).empty());
  EXPECT_TRUE(monitor.add(host_sample(31, 0.5 * kLimit)).empty());
  EXPECT_DOUBLE_EQ(monitor.assessments().front().t_seconds, 31);
  EXPECT_EQ(monitor.overall(), RiskLevel::kLow);
  EXPECT_TRUE(monitor.first_raised().empty());
}

TEST(OomModel, ValidateRejectsABadThreshold) {
  EXPECT_EQ(validate(ModelParams{}), std::nullopt);
  for (const double threshold : {0.0, 101.0, -5.0, std::numeric_limits<double>::quiet_NaN()}) {
    ModelParams params;
    params.threshold_percent = threshold;
    const std::optional<std::string> error = validate(params);
    ASSERT_TRUE(error) << threshold;
    EXPECT_NE(error->find("threshold"), std::string::npos) << *error;
  }
  for (const double threshold : {1.0, 70.0, 99.0, 100.0}) {
    ModelParams params;
    params.threshold_percent = threshold;
    EXPECT_EQ(validate(params), std::nullopt) << threshold;
  }
}

TEST(OomModel, ValidateRejectsOtherBadParameters) {
  ModelParams window;
  window.fit_window_seconds = 4;
  ASSERT_TRUE(validate(window));
  EXPECT_NE(validate(window)->find("window"), std::string::npos);
  ModelParams lower;
  lower.lower_after_seconds = -1;
  ASSERT_TRUE(validate(lower));
  EXPECT_NE(validate(lower)->find("lower_after_seconds"), std::string::npos);
  ModelParams points;
  points.max_points = 15;
  ASSERT_TRUE(validate(points));
  EXPECT_NE(validate(points)->find("max_points"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Levels: thresholds, hysteresis, names.

// The raw level of a flat resource at `percent` of a 100 MiB limit.
Assessment flat_at(double percent, const ModelParams& params = {}) {
  ResourceModel model(params);
  for (int i = 0; i < 10; ++i) {
    model.add(observation("host", i, percent * kMiBs, 100 * kMiB));
  }
  return model.assess();
}

TEST(OomLevels, UsageThresholdsWithDefaults) {
  EXPECT_EQ(flat_at(100).raw_level, RiskLevel::kCritical);
  EXPECT_EQ(flat_at(96).raw_level, RiskLevel::kCritical);
  EXPECT_EQ(flat_at(95).raw_level, RiskLevel::kCritical);
  EXPECT_EQ(flat_at(94).raw_level, RiskLevel::kHigh);
  EXPECT_EQ(flat_at(85).raw_level, RiskLevel::kHigh);
  EXPECT_EQ(flat_at(84).raw_level, RiskLevel::kMedium);
  EXPECT_EQ(flat_at(70).raw_level, RiskLevel::kMedium);
  EXPECT_EQ(flat_at(69).raw_level, RiskLevel::kLow);
  EXPECT_EQ(flat_at(10).raw_level, RiskLevel::kLow);
  EXPECT_EQ(flat_at(96).reason, "usage 96.0% >= 95%");
  EXPECT_EQ(flat_at(90).reason, "usage 90.0% >= threshold 85%");
  EXPECT_EQ(flat_at(75).reason, "usage 75.0% >= 70%");
  const Assessment a = flat_at(90);
  EXPECT_EQ(a.level, a.raw_level);  // no hysteresis in a single model
  EXPECT_DOUBLE_EQ(a.usage_percent, 90);
  EXPECT_FALSE(a.growing);
}

TEST(OomLevels, CustomThreshold) {
  ModelParams params;
  params.threshold_percent = 70;
  EXPECT_EQ(flat_at(95, params).raw_level, RiskLevel::kCritical);
  EXPECT_EQ(flat_at(94, params).raw_level, RiskLevel::kHigh);
  EXPECT_EQ(flat_at(70, params).raw_level, RiskLevel::kHigh);
  EXPECT_EQ(flat_at(69, params).raw_level, RiskLevel::kMedium);
  EXPECT_EQ(flat_at(55, params).raw_level, RiskLevel::kMedium);
  EXPECT_EQ(flat_at(54, params).raw_level, RiskLevel::kLow);
}

TEST(OomLevels, ThresholdAboveCriticalRaisesTheCriticalLevel) {
  // critical_percent is max(95, threshold): with --threshold 99, 96 % is not critical yet.
  ModelParams params;
  params.threshold_percent = 99;
  EXPECT_EQ(flat_at(100, params).raw_level, RiskLevel::kCritical);
  EXPECT_EQ(flat_at(99, params).raw_level, RiskLevel::kCritical);
  EXPECT_EQ(flat_at(98, params).raw_level, RiskLevel::kMedium);
  EXPECT_EQ(flat_at(96, params).raw_level, RiskLevel::kMedium);
  EXPECT_EQ(flat_at(95, params).raw_level, RiskLevel::kMedium);
  EXPECT_EQ(flat_at(84, params).raw_level, RiskLevel::kMedium);
  EXPECT_EQ(flat_at(83, params).raw_level, RiskLevel::kLow);
  EXPECT_EQ(flat_at(99, params).reason, "usage 99.0% >= 99%");
}

TEST(OomLevels, FirstAssessmentAboveLowIsAChangeAtOnce) {
  OomMonitor monitor(ModelParams{}, ObservationScope{});
  const std::vector<LevelChange> changes = monitor.add(host_sample(5, 0.96 * kLimit));
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_DOUBLE_EQ(changes[0].t_seconds, 5);
  EXPECT_EQ(changes[0].resource, "host");
  EXPECT_EQ(changes[0].from, RiskLevel::kLow);
  EXPECT_EQ(changes[0].to, RiskLevel::kCritical);
  EXPECT_EQ(changes[0].assessment.level, RiskLevel::kCritical);
  // Every level passed on the way up is recorded as first raised then.
  const auto& firsts = monitor.first_raised().at("host");
  ASSERT_EQ(firsts.size(), 3u);
  for (const RiskLevel level : {RiskLevel::kMedium, RiskLevel::kHigh, RiskLevel::kCritical}) {
    ASSERT_EQ(firsts.count(level), 1u);
    EXPECT_DOUBLE_EQ(firsts.at(level).t_seconds, 5);
    EXPECT_NEAR(firsts.at(level).usage_percent, 96, 0.01);
  }
  EXPECT_EQ(firsts.count(RiskLevel::kLow), 0u);
}

// One sample at `spike` percent among samples at `base` percent (1 s apart, ±0.5 % jitter).
std::vector<Sample> spikes(double base, const std::vector<double>& spike_times,
                           double duration = 60) {
  Jitter jitter(7);
  return host_timeline(duration, 1, [&](double t) {
    for (const double s : spike_times) {
      if (t == s) return 0.96 * kLimit;
    }
    return base / 100 * kLimit * jitter.factor(0.005);
  });
}

TEST(OomLevels, OneSpikeIsCriticalAtOnceAndLoweredAfterTheHoldTime) {
  OomMonitor monitor(ModelParams{}, ObservationScope{});
  const Replay r = replay(monitor, spikes(50, {30}));
  ASSERT_EQ(r.changes.size(), 2u);
  EXPECT_DOUBLE_EQ(r.changes[0].t_seconds, 30);
  EXPECT_EQ(r.changes[0].from, RiskLevel::kLow);
  EXPECT_EQ(r.changes[0].to, RiskLevel::kCritical);
  EXPECT_EQ(r.changes[0].assessment.raw_level, RiskLevel::kCritical);
  // The raw level drops at 31; the reported one follows once that held for 10 s.
  EXPECT_DOUBLE_EQ(r.changes[1].t_seconds, 41);
  EXPECT_EQ(r.changes[1].from, RiskLevel::kCritical);
  EXPECT_EQ(r.changes[1].to, RiskLevel::kLow);
  EXPECT_EQ(r.changes[1].assessment.level, RiskLevel::kLow);
  EXPECT_EQ(r.changes[1].assessment.raw_level, RiskLevel::kLow);
  for (const Assessment& a : r.history) {
    if (a.t_seconds > 30 && a.t_seconds < 41) {
      EXPECT_EQ(a.level, RiskLevel::kCritical) << a.t_seconds;
      EXPECT_EQ(a.raw_level, RiskLevel::kLow) << a.t_seconds;
    } else if (a.t_seconds != 30) {
      EXPECT_EQ(a.level, RiskLevel::kLow) << a.t_seconds;
    }
  }
  EXPECT_EQ(monitor.overall(), RiskLevel::kLow);
  EXPECT_DOUBLE_EQ(monitor.first_raised().at("host").at(RiskLevel::kCritical).t_seconds, 30);
}

TEST(OomLevels, LoweredToTheRawLevelNotToLow) {
  const Replay r = replay(spikes(75, {30}));
  ASSERT_EQ(r.changes.size(), 3u);
  EXPECT_DOUBLE_EQ(r.changes[0].t_seconds, 0);
  EXPECT_EQ(r.changes[0].to, RiskLevel::kMedium);
  EXPECT_DOUBLE_EQ(r.changes[1].t_seconds, 30);
  EXPECT_EQ(r.changes[1].from, RiskLevel::kMedium);
  EXPECT_EQ(r.changes[1].to, RiskLevel::kCritical);
  EXPECT_DOUBLE_EQ(r.changes[2].t_seconds, 41);
  EXPECT_EQ(r.changes[2].from, RiskLevel::kCritical);
  EXPECT_EQ(r.changes[2].to, RiskLevel::kMedium);
}

TEST(OomLevels, ASecondSpikeRestartsTheHoldTime) {
  const Replay r = replay(spikes(50, {30, 36}));
  ASSERT_EQ(r.changes.size(), 2u);
  EXPECT_DOUBLE_EQ(r.changes[0].t_seconds, 30);
  EXPECT_EQ(r.changes[0].to, RiskLevel::kCritical);
  EXPECT_DOUBLE_EQ(r.changes[1].t_seconds, 47);
  EXPECT_EQ(r.changes[1].to, RiskLevel::kLow);
}

TEST(OomLevels, ZeroHoldTimeLowersAtOnce) {
  ModelParams params;
  params.lower_after_seconds = 0;
  const Replay r = replay(spikes(50, {30}), params);
  ASSERT_EQ(r.changes.size(), 2u);
  EXPECT_DOUBLE_EQ(r.changes[1].t_seconds, 31);
  EXPECT_EQ(r.changes[1].to, RiskLevel::kLow);
}

TEST(OomLevels, ParseAndPrintRoundTrip) {
  for (const RiskLevel level :
       {RiskLevel::kLow, RiskLevel::kMedium, RiskLevel::kHigh, RiskLevel::kCritical}) {
    EXPECT_EQ(parse_risk_level(to_string(level)), level);
  }
  EXPECT_STREQ(to_string(RiskLevel::kLow), "low");
  EXPECT_STREQ(to_string(RiskLevel::kMedium), "medium");
  EXPECT_STREQ(to_string(RiskLevel::kHigh), "high");
  EXPECT_STREQ(to_string(RiskLevel::kCritical), "critical");
  EXPECT_EQ(parse_risk_level("HIGH"), RiskLevel::kHigh);
  EXPECT_EQ(parse_risk_level("Critical"), RiskLevel::kCritical);
  EXPECT_EQ(parse_risk_level("mEdIuM"), RiskLevel::kMedium);
  for (const char* bad : {"", "urgent", "low ", " high", "crit", "3", "critical!"}) {
    EXPECT_EQ(parse_risk_level(bad), std::nullopt) << '"' << bad << '"';
  }
  EXPECT_STREQ(to_string(ResourceKind::kHost), "host");
  EXPECT_STREQ(to_string(ResourceKind::kCgroup), "cgroup");
  EXPECT_STREQ(to_string(ResourceKind::kGpu), "gpu");
  EXPECT_STREQ(to_string(ResourceKind::kTree), "tree");
}

// ---------------------------------------------------------------------------------------------
// observe(): which resources a sample yields.

ObservationScope tree_scope(int root_pid, std::optional<uint64_t> limit = std::nullopt) {
  ObservationScope scope;
  scope.root_pid = root_pid;
  scope.has_tree = true;
  scope.tree_limit = limit;
  scope.host = false;
  scope.gpus = false;
  return scope;
}

const Observation* find(const std::vector<Observation>& observations, const std::string& name) {
  for (const Observation& o : observations) {
    if (o.resource == name) return &o;
  }
  return nullptr;
}

TEST(OomObserve, HostAgainstTheSampleLimit) {
  const std::vector<Observation> out =
      observe(host_sample(2.5, 600 * kMiBs, 2 * kGiB), ObservationScope{});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].resource, "host");
  EXPECT_EQ(out[0].kind, ResourceKind::kHost);
  EXPECT_DOUBLE_EQ(out[0].t_seconds, 2.5);
  EXPECT_EQ(out[0].used_bytes, 600 * kMiB);
  EXPECT_EQ(out[0].limit_bytes, 2 * kGiB);
  EXPECT_EQ(out[0].limit_source, "MemTotal");
  EXPECT_FALSE(out[0].children_bytes);
}

TEST(OomObserve, ACgroupLimitMakesTheHostACgroup) {
  const std::vector<Observation> out =
      observe(host_sample(1, 600 * kMiBs, kGiB, "cgroup:/job.scope"), ObservationScope{});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].resource, "host");
  EXPECT_EQ(out[0].kind, ResourceKind::kCgroup);
  EXPECT_EQ(out[0].limit_source, "cgroup:/job.scope");
  // Only a prefix counts.
  EXPECT_EQ(observe(host_sample(1, 1, kGiB, "not cgroup:/x"), ObservationScope{})[0].kind,
            ResourceKind::kHost);
}

TEST(OomObserve, NoHostWithoutALimitOrWhenNotWanted) {
  EXPECT_TRUE(observe(host_sample(1, 600 * kMiBs, 0, ""), ObservationScope{}).empty());
  ObservationScope scope;
  scope.host = false;
  EXPECT_TRUE(observe(host_sample(1, 600 * kMiBs), scope).empty());
}

TEST(OomObserve, OneGpuPerReadableDevice) {
  Sample sample = host_sample(3, 100 * kMiBs);
  sample.devices.push_back(device(0, 300 * kMiBs, 2 * kGiB));
  sample.devices.push_back(device(1, 10 * kMiBs, kGiB, std::nullopt, /*ok=*/false));
  sample.devices.push_back(device(2, 0, 0, 0));  // no total: nothing to measure against
  // v2: the driver's reserved part is neither used nor free, so the reachable limit is lower.
  sample.devices.push_back(device(3, 500 * kMiBs, 2 * kGiB, 1000 * kMiB));
  // Inconsistent numbers: used + free above the total is capped at the total.
  sample.devices.push_back(device(4, 800 * kMiBs, kGiB, 800 * kMiB));
  // Nothing used or free reported: the total is the limit.
  sample.devices.push_back(device(5, 0, kGiB, 0));

  const std::vector<Observation> out = observe(sample, ObservationScope{});
  ASSERT_EQ(out.size(), 5u);
  EXPECT_EQ(out[0].resource, "host");
  EXPECT_EQ(find(out, "gpu1"), nullptr);
  EXPECT_EQ(find(out, "gpu2"), nullptr);
  const Observation* gpu0 = find(out, "gpu0");
  ASSERT_NE(gpu0, nullptr);
  EXPECT_EQ(gpu0->kind, ResourceKind::kGpu);
  EXPECT_DOUBLE_EQ(gpu0->t_seconds, 3);
  EXPECT_EQ(gpu0->used_bytes, 300 * kMiB);
  EXPECT_EQ(gpu0->limit_bytes, 2 * kGiB);
  EXPECT_EQ(gpu0->limit_source, "GPU total");
  ASSERT_NE(find(out, "gpu3"), nullptr);
  EXPECT_EQ(find(out, "gpu3")->limit_bytes, 1500 * kMiB);
  ASSERT_NE(find(out, "gpu4"), nullptr);
  EXPECT_EQ(find(out, "gpu4")->limit_bytes, kGiB);
  ASSERT_NE(find(out, "gpu5"), nullptr);
  EXPECT_EQ(find(out, "gpu5")->limit_bytes, kGiB);

  ObservationScope no_gpus;
  no_gpus.gpus = false;
  const std::vector<Observation> host_only = observe(sample, no_gpus);
  ASSERT_EQ(host_only.size(), 1u);
  EXPECT_EQ(host_only[0].resource, "host");
}

// A job (pid 100) with a worker that has a child of its own, listed before its parent, and an
// unrelated process tree (200, 201).
std::vector<ProcessSample> job_processes() {
  return {process(102, 101, 30 * kMiBs), process(100, 1, 500 * kMiBs),
          process(101, 100, 70 * kMiBs), process(200, 1, 1000 * kMiBs),
          process(201, 200, 5 * kMiBs)};
}

TEST(OomObserve, TreeFollowsParentsFromTheRoot) {
  Sample sample = host_sample(4, 0);
  sample.processes = job_processes();
  const std::vector<Observation> out = observe(sample, tree_scope(100, 2 * kGiB));
  ASSERT_EQ(out.size(), 1u);
  const Observation& tree = out[0];
  EXPECT_EQ(tree.resource, "tree");
  EXPECT_EQ(tree.kind, ResourceKind::kTree);
  EXPECT_DOUBLE_EQ(tree.t_seconds, 4);
  EXPECT_EQ(tree.used_bytes, 600 * kMiB);
  ASSERT_TRUE(tree.children_bytes);
  EXPECT_EQ(*tree.children_bytes, 100 * kMiB);
  EXPECT_EQ(tree.limit_bytes, 2 * kGiB);
  EXPECT_EQ(tree.limit_source, "--limit");
}

TEST(OomObserve, RootZeroTakesEveryProcess) {
  Sample sample = host_sample(4, 0);
  sample.processes = job_processes();
  const std::vector<Observation> out = observe(sample, tree_scope(0, 4 * kGiB));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].used_bytes, 1605 * kMiB);
  // Roots are the processes whose parent is not listed (100 and 200); the rest are children.
  ASSERT_TRUE(out[0].children_bytes);
  EXPECT_EQ(*out[0].children_bytes, 105 * kMiB);
}

TEST(OomObserve, TreeLimitFromTheHostHeadroom) {
  // 3 GiB used of 4 GiB: the tree (600 MiB) can grow by the 1 GiB still free.
  Sample sample = host_sample(1, 3.0 * kLimit, 4 * kGiB);
  sample.processes = job_processes();
  ObservationScope scope = tree_scope(100);
  scope.host = true;
  const std::vector<Observation> out = observe(sample, scope);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].resource, "host");
  const Observation* tree = find(out, "tree");
  ASSERT_NE(tree, nullptr);
  EXPECT_EQ(tree->limit_bytes, 600 * kMiB + kGiB);
  EXPECT_EQ(tree->limit_source, "available");

  // Over the limit: no headroom, the limit is the tree's own use.
  sample.system.used_bytes = 5 * kGiB;
  const std::vector<Observation> over = observe(sample, scope);
  tree = find(over, "tree");
  ASSERT_NE(tree, nullptr);
  EXPECT_EQ(tree->limit_bytes, 600 * kMiB);

  // --limit wins over the headroom.
  scope.tree_limit = 700 * kMiB;
  const std::vector<Observation> limited = observe(sample, scope);
  tree = find(limited, "tree");
  ASSERT_NE(tree, nullptr);
  EXPECT_EQ(tree->limit_bytes, 700 * kMiB);
  EXPECT_EQ(tree->limit_source, "--limit");
}

TEST(OomObserve, NoTreeWithoutLimitProcessesOrWish) {
  Sample sample = host_sample(1, 0, 0, "");
  sample.processes = job_processes();
  // Neither --limit nor a host limit to take the headroom from.
  EXPECT_TRUE(observe(sample, tree_scope(100)).empty());
  // has_tree off.
  ObservationScope scope = tree_scope(100, kGiB);
  scope.has_tree = false;
  EXPECT_TRUE(observe(sample, scope).empty());
  // No processes, or none in the tree.
  Sample empty = host_sample(1, 0, 0, "");
  EXPECT_TRUE(observe(empty, tree_scope(100, kGiB)).empty());
  Sample others = host_sample(1, 0, 0, "");
  others.processes = {process(200, 1, 10 * kMiBs), process(201, 200, 10 * kMiBs)};
  EXPECT_TRUE(observe(others, tree_scope(100, kGiB)).empty());
}

TEST(OomObserve, EverythingInOneSampleInOrder) {
  Sample sample = host_sample(1, 3.0 * kLimit, 4 * kGiB);
  sample.processes = job_processes();
  sample.devices = {device(0, 100 * kMiBs), device(1, 200 * kMiBs)};
  ObservationScope scope;
  scope.root_pid = 100;
  scope.has_tree = true;
  const std::vector<Observation> out = observe(sample, scope);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0].resource, "host");
  EXPECT_EQ(out[1].resource, "gpu0");
  EXPECT_EQ(out[2].resource, "gpu1");
  EXPECT_EQ(out[3].resource, "tree");
}

// ---------------------------------------------------------------------------------------------
// The monitor: recommendations, determinism, the most urgent resource.

TEST(OomMonitor, GpuGrowthRecommendsBatchSizeCheckpointingAndExpandableSegments) {
  ObservationScope scope;
  scope.host = false;
  OomMonitor monitor(ModelParams{}, scope);
  Jitter jitter(8);
  for (int i = 0; i <= 80; ++i) {
    const double t = 0.5 * i;
    Sample sample = host_sample(t, 0.5 * kLimit);
    sample.devices = {device(0, (0.2 * kLimit + 8 * kMiBs * t) * jitter.factor(0.005))};
    monitor.add(sample);
  }
  ASSERT_EQ(monitor.assessments().size(), 1u);
  const Assessment& a = monitor.assessments().front();
  EXPECT_EQ(a.resource, "gpu0");
  EXPECT_EQ(a.kind, ResourceKind::kGpu);
  EXPECT_TRUE(a.growing);
  EXPECT_GE(a.raw_level, RiskLevel::kHigh);
  EXPECT_NE(a.recommendation.find("batch size"), std::string::npos) << a.recommendation;
  EXPECT_NE(a.recommendation.find("gradient checkpointing"), std::string::npos);
  EXPECT_NE(a.recommendation.find("expandable_segments"), std::string::npos);
}

// A tree: the root (pid 10) and two DataLoader workers, against --limit 1 GiB.
Sample tree_sample(double t, double root, double worker) {
  Sample sample = host_sample(t, 0.5 * kLimit, 16 * kGiB);
  sample.processes = {process(10, 1, root), process(11, 10, worker), process(12, 10, worker)};
  return sample;
}

TEST(OomMonitor, GrowthInWorkersRecommendsDataLoaderSettings) {
  OomMonitor monitor(ModelParams{}, tree_scope(10, kGiB));
  Jitter jitter(9);
  for (int i = 0; i <= 80; ++i) {
    const double t = 0.5 * i;
    monitor.add(tree_sample(t, 200 * kMiBs * jitter.factor(0.005),
                            (50 * kMiBs + 4 * kMiBs * t) * jitter.factor(0.005)));
  }
  ASSERT_EQ(monitor.assessments().size(), 1u);
  const Assessment& a = monitor.assessments().front();
  EXPECT_EQ(a.resource, "tree");
  EXPECT_EQ(a.kind, ResourceKind::kTree);
  EXPECT_TRUE(a.growing);
  EXPECT_NE(a.raw_level, RiskLevel::kLow);
  EXPECT_NE(a.recommendation.find("DataLoader"), std::string::npos) << a.recommendation;
  EXPECT_NE(a.recommendation.find("num_workers"), std::string::npos);
  EXPECT_NE(a.recommendation.find("copy-on-read"), std::string::npos);
}

TEST(OomMonitor, GrowthInTheRootRecommendsLeakHunting) {
  OomMonitor monitor(ModelParams{}, tree_scope(10, kGiB));
  Jitter jitter(10);
  for (int i = 0; i <= 80; ++i) {
    const double t = 0.5 * i;
    monitor.add(tree_sample(t, (200 * kMiBs + 8 * kMiBs * t) * jitter.factor(0.005),
                            50 * kMiBs * jitter.factor(0.005)));
  }
  const Assessment& a = monitor.assessments().front();
  EXPECT_TRUE(a.growing);
  EXPECT_NE(a.raw_level, RiskLevel::kLow);
  EXPECT_NE(a.recommendation.find("memscope leak"), std::string::npos) << a.recommendation;
  EXPECT_EQ(a.recommendation.find("DataLoader"), std::string::npos) << a.recommendation;
}

TEST(OomMonitor, HighWithoutGrowthRecommendsHeadroom) {
  ObservationScope scope;
  OomMonitor monitor(ModelParams{}, scope);
  for (int i = 0; i <= 30; ++i) {
    Sample sample = host_sample(i, 0.9 * kLimit);
    sample.devices = {device(0, 0.9 * kLimit)};
    monitor.add(sample);
  }
  ASSERT_EQ(monitor.assessments().size(), 2u);
  const Assessment& host = monitor.assessments()[0];
  EXPECT_EQ(host.raw_level, RiskLevel::kHigh);
  EXPECT_NE(host.recommendation.find("without growing"), std::string::npos) << host.recommendation;
  EXPECT_NE(host.recommendation.find("MemTotal"), std::string::npos) << host.recommendation;
  const Assessment& gpu = monitor.assessments()[1];
  EXPECT_EQ(gpu.raw_level, RiskLevel::kHigh);
  EXPECT_NE(gpu.recommendation.find("without growing"), std::string::npos) << gpu.recommendation;
  EXPECT_NE(gpu.recommendation.find("batch size"), std::string::npos) << gpu.recommendation;
}

TEST(OomMonitor, LowNeedsNoAction) {
  Jitter jitter(11);
  const Replay r =
      replay(host_timeline(60, 0.5, [&](double) { return 0.3 * kLimit * jitter.factor(0.01); }));
  for (const Assessment& a : r.history) EXPECT_EQ(a.recommendation, "no action needed");
}

// Host with a sawtooth and a leak, two GPUs (one growing), a tree with workers; 90 s.
std::vector<Sample> busy_job() {
  Jitter jitter(12);
  std::vector<Sample> samples;
  for (int i = 0; i <= 360; ++i) {
    const double t = 0.25 * i;
    Sample sample = host_sample(
        t, (sawtooth(t, 2, 0.3 * kLimit, 0.6 * kLimit) + 3 * kMiBs * t) * jitter.factor(0.01), kGiB,
        "cgroup:/job");
    sample.devices = {device(0, (0.3 * kLimit + 5 * kMiBs * t) * jitter.factor(0.01)),
                      device(1, 0.5 * kLimit * jitter.factor(0.01))};
    if (i == 100) sample.devices[1].ok = false;  // a GPU that could not be read once
    sample.processes = {process(10, 1, 200 * kMiBs * jitter.factor(0.01)),
                        process(11, 10, (50 * kMiBs + 2 * kMiBs * t) * jitter.factor(0.01))};
    samples.push_back(std::move(sample));
  }
  return samples;
}

ObservationScope busy_scope() {
  ObservationScope scope;
  scope.root_pid = 10;
  scope.has_tree = true;
  return scope;
}

TEST(OomMonitor, TwoMonitorsFedTheSameSamplesAgree) {
  const std::vector<Sample> samples = busy_job();
  OomMonitor live(ModelParams{}, busy_scope());
  OomMonitor replayed(ModelParams{}, busy_scope());
  std::vector<LevelChange> live_changes;
  std::vector<LevelChange> replayed_changes;
  for (const Sample& sample : samples) {
    for (LevelChange& c : live.add(sample)) live_changes.push_back(std::move(c));
  }
  for (const Sample& sample : samples) {
    for (LevelChange& c : replayed.add(sample)) replayed_changes.push_back(std::move(c));
  }
  ASSERT_FALSE(live_changes.empty());
  expect_same(live_changes, replayed_changes);
  ASSERT_EQ(live.assessments().size(), 4u);
  ASSERT_EQ(replayed.assessments().size(), 4u);
  for (size_t i = 0; i < live.assessments().size(); ++i) {
    expect_same(live.assessments()[i], replayed.assessments()[i]);
  }
  EXPECT_EQ(live.first_raised().size(), replayed.first_raised().size());
  EXPECT_EQ(live.overall(), replayed.overall());
  EXPECT_EQ(live.most_urgent()->resource, replayed.most_urgent()->resource);
}

TEST(OomMonitor, ObservationsGiveTheSameAnswersAsSamples) {
  const std::vector<Sample> samples = busy_job();
  OomMonitor from_samples(ModelParams{}, busy_scope());
  OomMonitor from_observations(ModelParams{}, busy_scope());
  for (const Sample& sample : samples) {
    const std::vector<LevelChange> a = from_samples.add(sample);
    const std::vector<LevelChange> b =
        from_observations.add(sample.t_seconds, observe(sample, busy_scope()));
    expect_same(a, b);
  }
  ASSERT_EQ(from_samples.assessments().size(), from_observations.assessments().size());
  for (size_t i = 0; i < from_samples.assessments().size(); ++i) {
    expect_same(from_samples.assessments()[i], from_observations.assessments()[i]);
  }
  // Resources in the order first seen.
  const std::vector<Assessment>& all = from_samples.assessments();
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[0].resource, "host");
  EXPECT_EQ(all[0].kind, ResourceKind::kCgroup);
  EXPECT_EQ(all[1].resource, "gpu0");
  EXPECT_EQ(all[2].resource, "gpu1");
  EXPECT_EQ(all[3].resource, "tree");
}

TEST(OomMonitor, NothingBeforeData) {
  OomMonitor monitor(ModelParams{}, ObservationScope{});
  EXPECT_EQ(monitor.most_urgent(), nullptr);
  EXPECT_EQ(monitor.overall(), RiskLevel::kLow);
  EXPECT_TRUE(monitor.assessments().empty());
  EXPECT_TRUE(monitor.add(host_sample(0, 0, 0, "")).empty());
  EXPECT_EQ(monitor.most_urgent(), nullptr);
}

TEST(OomMonitor, MostUrgentIsTheHighestLevelThenTheSoonerOom) {
  OomMonitor monitor(ModelParams{}, ObservationScope{});
  Jitter jitter(13);
  for (int i = 0; i <= 120; ++i) {
    const double t = 0.5 * i;
    monitor.add(t, {observation("steady", t, 0.88 * kLimit * jitter.factor(0.002)),
                    observation("slow", t, (0.3 * kLimit + 2.5 * kMiBs * t)),
                    observation("fast", t, (0.3 * kLimit + 3.0 * kMiBs * t)),
                    observation("also-steady", t, 0.87 * kLimit * jitter.factor(0.002))});
  }
  ASSERT_EQ(monitor.assessments().size(), 4u);
  for (const Assessment& a : monitor.assessments()) {
    ASSERT_EQ(a.level, RiskLevel::kHigh) << a.resource << ": " << a.reason;
  }
  ASSERT_TRUE(monitor.assessments()[1].predicted_oom_seconds);
  ASSERT_TRUE(monitor.assessments()[2].predicted_oom_seconds);
  ASSERT_LT(*monitor.assessments()[2].predicted_oom_seconds,
            *monitor.assessments()[1].predicted_oom_seconds);
  ASSERT_NE(monitor.most_urgent(), nullptr);
  EXPECT_EQ(monitor.most_urgent()->resource, "fast");
  EXPECT_EQ(monitor.overall(), RiskLevel::kHigh);

  // A higher level wins over any forecast.
  monitor.add(60.5, {observation("steady", 60.5, 0.96 * kLimit)});
  EXPECT_EQ(monitor.most_urgent()->resource, "steady");
  EXPECT_EQ(monitor.overall(), RiskLevel::kCritical);
}

}  // namespace
}  // namespace memscope::analyze
