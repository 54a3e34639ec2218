#include "analyze/leak.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "core/units.hpp"

namespace memscope::analyze {

// Failure messages show the verdict and its reason.
static std::ostream& operator<<(std::ostream& os, const LeakVerdict& v) {
  return os << v.pid << "/" << v.memory << ": " << v.verdict << " (" << v.reason << ")";
}

namespace {

constexpr double kMiBs = static_cast<double>(kMiB);
constexpr int kPid = 4242;
constexpr uint64_t kStartTicks = 777;

uint64_t to_bytes(double value) {
  return value <= 0 ? 0 : static_cast<uint64_t>(std::llround(value));
}

// A process whose USS is `uss`; RSS and PSS are larger (shared pages), as on a real system.
ProcessSample process(int pid, double uss, uint64_t start_time_ticks = kStartTicks) {
  ProcessSample p;
  p.pid = pid;
  p.ppid = 1;
  p.comm = "python3";
  p.start_time_ticks = start_time_ticks;
  p.uss_bytes = to_bytes(uss);
  p.pss_bytes = p.uss_bytes + 30 * kMiB;
  p.rss_bytes = p.uss_bytes + 60 * kMiB;
  return p;
}

Sample sample_at(double t) {
  Sample sample;
  sample.t_seconds = t;
  sample.unix_ms = 1'700'000'000'000 + static_cast<int64_t>(t * 1000);
  return sample;
}

// The verdicts of one process whose USS is uss(t), sampled every `step` s over [0, duration].
std::vector<LeakVerdict> verdicts_for(double duration, double step,
                                      const std::function<double(double)>& uss,
                                      const LeakParams& params = {}) {
  LeakDetector detector(params);
  const auto count = static_cast<size_t>(std::llround(duration / step));
  for (size_t i = 0; i <= count; ++i) {
    const double t = static_cast<double>(i) * step;
    Sample sample = sample_at(t);
    sample.processes.push_back(process(kPid, uss(t)));
    detector.add(sample);
  }
  return detector.verdicts();
}

TEST(LeakDetector, SteadyGrowthIsASuspectedLeak) {
  const auto verdicts =
      verdicts_for(120, 1, [](double t) { return 200 * kMiBs + 5 * kMiBs * t / 60; });
  ASSERT_EQ(verdicts.size(), 1u);
  const LeakVerdict& v = verdicts[0];
  EXPECT_EQ(v.verdict, "leak suspected") << v;
  EXPECT_EQ(v.pid, kPid);
  EXPECT_EQ(v.memory, "uss");
  EXPECT_EQ(v.comm, "python3");
  EXPECT_NEAR(v.growth_bytes_per_second * 60 / kMiBs, 5, 1) << v;
  EXPECT_NEAR(v.projected_growth_bytes_per_hour / kMiBs, 300, 60) << v;
  EXPECT_GT(v.confidence, 0.5) << v;
  EXPECT_EQ(v.first_bytes, 200 * kMiB);
  EXPECT_EQ(v.current_bytes, 210 * kMiB);
  EXPECT_EQ(v.rss_bytes, v.current_bytes + 60 * kMiB);  // RSS and PSS reported beside USS
  EXPECT_EQ(v.pss_bytes, v.current_bytes + 30 * kMiB);
}

TEST(LeakDetector, AZombieSampleIsNoReading) {
  // The last sample caught the process exited but not yet reaped: all zeros.
  LeakDetector detector(LeakParams{});
  for (int i = 0; i <= 60; ++i) {
    Sample sample = sample_at(i);
    ProcessSample p = process(kPid, 100 * kMiBs + kMiBs * i);
    if (i == 60) {
      p.state = 'Z';
      p.uss_bytes = p.pss_bytes = p.rss_bytes = 0;
    }
    sample.processes.push_back(p);
    detector.add(sample);
  }
  const auto verdicts = detector.verdicts();
  ASSERT_EQ(verdicts.size(), 1u);
  EXPECT_EQ(verdicts[0].current_bytes, 159 * kMiB);
  EXPECT_EQ(verdicts[0].rss_bytes, 219 * kMiB);
  EXPECT_EQ(verdicts[0].verdict, "leak suspected") << verdicts[0];
}

TEST(LeakDetector, AnExitingProcessWithNoAddressSpaceIsNoReading) {
  // The last sample caught the process exiting, its memory released, not yet a zombie.
  LeakDetector detector(LeakParams{});
  for (int i = 0; i <= 60; ++i) {
    Sample sample = sample_at(i);
    ProcessSample p = process(kPid, 100 * kMiBs + kMiBs * i);
    if (i == 60) {
      p.state = 'R';
      p.pss_bytes = p.rss_bytes = 0;  // USS: the collector's last smaps reading, still there
    }
    sample.processes.push_back(p);
    detector.add(sample);
  }
  const auto verdicts = detector.verdicts();
  ASSERT_EQ(verdicts.size(), 1u);
  EXPECT_EQ(verdicts[0].current_bytes, 159 * kMiB);
  EXPECT_EQ(verdicts[0].rss_bytes, 219 * kMiB);
}

TEST(LeakDetector, ATraceWithoutResidentFiguresKeepsItsReadings) {
  // A CSV whose rss column is 0 throughout: its USS readings still make a verdict.
  LeakDetector detector(LeakParams{});
  for (int i = 0; i <= 60; ++i) {
    Sample sample = sample_at(i);
    ProcessSample p = process(kPid, 100 * kMiBs + kMiBs * i);
    p.rss_bytes = 0;
    sample.processes.push_back(p);
    detector.add(sample);
  }
  const auto verdicts = detector.verdicts();
  ASSERT_EQ(verdicts.size(), 1u);
  EXPECT_EQ(verdicts[0].verdict, "leak suspected") << verdicts[0];
}

TEST(LeakDetector, MemoryFreedAtExitStillShowsTheLeak) {
  // 20 MiB/s for 40 s, then the process frees most of it as it exits (the last sample).
  const auto verdicts = verdicts_for(
      41, 0.5, [](double t) { return t <= 40 ? 10 * kMiBs + 20 * kMiBs * t : 100 * kMiBs; });
  ASSERT_EQ(verdicts.size(), 1u);
  EXPECT_EQ(verdicts[0].verdict, "leak suspected") << verdicts[0];
  EXPECT_NE(verdicts[0].reason.find("given back at the end"), std::string::npos) << verdicts[0];
}

TEST(LeakDetector, EarlyPeakThenLongFlatIsNotFreedAtTheEnd) {
  // Ramp to 250 MiB by 5 s, flat to 60 s, then torn down at exit: no leak.
  const auto verdicts = verdicts_for(61, 0.5, [](double t) {
    return t < 5 ? 50 * kMiBs * t : (t <= 60 ? 250 * kMiBs : 20 * kMiBs);
  });
  ASSERT_EQ(verdicts.size(), 1u);
  EXPECT_NE(verdicts[0].verdict, "leak suspected") << verdicts[0];
}

TEST(LeakDetector, FlatWithJitterIsNoGrowth) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> jitter(-2 * kMiBs, 2 * kMiBs);
  const auto verdicts = verdicts_for(120, 1, [&](double) { return 300 * kMiBs + jitter(rng); });
  ASSERT_EQ(verdicts.size(), 1u);
  EXPECT_EQ(verdicts[0].verdict, "no growth") << verdicts[0];
  EXPECT_DOUBLE_EQ(verdicts[0].projected_growth_bytes_per_hour, 0.0) << verdicts[0];
}

TEST(LeakDetector, RampThenFlatHasPlateaued) {
  // A DataLoader worker touching the dataset's pages: 20 -> 90 MiB in 6 s, then flat.
  const auto verdicts = verdicts_for(
      96, 1, [](double t) { return t < 6 ? 20 * kMiBs + 70 * kMiBs * t / 6 : 90 * kMiBs; });
  ASSERT_EQ(verdicts.size(), 1u);
  EXPECT_EQ(verdicts[0].verdict, "growth plateaued") << verdicts[0];
  EXPECT_NE(verdicts[0].reason.find("copy-on-read"), std::string::npos) << verdicts[0];
  EXPECT_EQ(verdicts[0].peak_bytes, 90 * kMiB);
}

TEST(LeakDetector, GrowthThatStoppedIsNotALeak) {
  // 10 MiB/min for 60 s, then flat for the last 90 s.
  const auto verdicts = verdicts_for(
      150, 1, [](double t) { return 100 * kMiBs + 10 * kMiBs * std::min(t, 60.0) / 60; });
  ASSERT_EQ(verdicts.size(), 1u);
  EXPECT_NE(verdicts[0].verdict, "leak suspected") << verdicts[0];
  EXPECT_EQ(verdicts[0].verdict, "growth plateaued") << verdicts[0];
}

TEST(LeakDetector, GrowthBelowThresholdIsNotALeak) {
  LeakParams params;
  params.threshold_mb_per_min = 1;
  const auto verdicts = verdicts_for(
      120, 1, [](double t) { return 200 * kMiBs + 0.5 * kMiBs * t / 60; }, params);
  ASSERT_EQ(verdicts.size(), 1u);
  EXPECT_NE(verdicts[0].verdict, "leak suspected") << verdicts[0];
}

TEST(LeakDetector, LeakUnderASawtoothIsSuspected) {
  // Teeth of 100 MiB every 4 s (activations built and freed each step) on a leaking base.
  const auto verdicts = verdicts_for(180, 1, [](double t) {
    return 500 * kMiBs + 3 * kMiBs * t / 60 + 100 * kMiBs * std::fmod(t, 4) / 4;
  });
  ASSERT_EQ(verdicts.size(), 1u);
  EXPECT_EQ(verdicts[0].verdict, "leak suspected") << verdicts[0];
  EXPECT_NEAR(verdicts[0].growth_bytes_per_second * 60 / kMiBs, 3, 1.5) << verdicts[0];
}

TEST(LeakDetector, TooShortIsNotALeak) {
  const auto verdicts =
      verdicts_for(10, 1, [](double t) { return 200 * kMiBs + 60 * kMiBs * t / 60; });
  ASSERT_EQ(verdicts.size(), 1u);
  EXPECT_NE(verdicts[0].verdict, "leak suspected") << verdicts[0];
}

TEST(LeakDetector, GrowingGpuMemoryHasItsOwnRow) {
  LeakDetector detector(LeakParams{});
  for (int i = 0; i <= 120; ++i) {
    const double t = i;
    Sample sample = sample_at(t);
    sample.processes.push_back(process(kPid, 400 * kMiBs));
    DeviceSample device;
    device.index = 0;
    device.total_bytes = 80 * kGiB;
    GpuProcess gpu;
    gpu.pid = kPid;
    gpu.used_bytes = to_bytes(kGiB + 20 * kMiBs * t / 60);
    device.processes.push_back(gpu);
    sample.devices.push_back(device);
    detector.add(sample);
  }
  const auto verdicts = detector.verdicts();
  ASSERT_EQ(verdicts.size(), 2u);
  EXPECT_EQ(verdicts[0].memory, "gpu0") << verdicts[0];
  EXPECT_EQ(verdicts[0].verdict, "leak suspected") << verdicts[0];
  EXPECT_EQ(verdicts[0].pid, kPid);
  EXPECT_EQ(verdicts[0].comm, "python3");  // named after the host process
  EXPECT_NEAR(verdicts[0].growth_bytes_per_second * 60 / kMiBs, 20, 4) << verdicts[0];
  EXPECT_EQ(verdicts[1].memory, "uss") << verdicts[1];
  EXPECT_EQ(verdicts[1].verdict, "no growth") << verdicts[1];
  EXPECT_EQ(verdicts[1].pid, kPid);
}

TEST(LeakDetector, ReusedPidIsASeparateSeries) {
  LeakDetector detector(LeakParams{});
  // The first process grows for 60 s and exits; a new one with the same pid is flat.
  for (int i = 0; i <= 120; ++i) {
    const double t = i;
    Sample sample = sample_at(t);
    if (t <= 60) {
      sample.processes.push_back(process(kPid, 100 * kMiBs + 30 * kMiBs * t / 60, 1000));
    } else {
      sample.processes.push_back(process(kPid, 50 * kMiBs, 9000));
    }
    detector.add(sample);
  }
  const auto verdicts = detector.verdicts();
  ASSERT_EQ(verdicts.size(), 2u);
  EXPECT_EQ(verdicts[0].start_time_ticks, 1000u) << verdicts[0];
  EXPECT_EQ(verdicts[0].verdict, "leak suspected") << verdicts[0];
  EXPECT_DOUBLE_EQ(verdicts[0].last_seen_seconds, 60.0);
  EXPECT_EQ(verdicts[1].start_time_ticks, 9000u) << verdicts[1];
  EXPECT_EQ(verdicts[1].verdict, "no growth") << verdicts[1];
  EXPECT_DOUBLE_EQ(verdicts[1].first_seen_seconds, 61.0);
  EXPECT_EQ(verdicts[1].first_bytes, 50 * kMiB);
}

TEST(LeakDetector, LeaksAreSortedFirst) {
  LeakDetector detector(LeakParams{});
  for (int i = 0; i <= 120; ++i) {
    const double t = i;
    Sample sample = sample_at(t);
    sample.processes.push_back(process(1, 300 * kMiBs));  // flat
    sample.processes.push_back(process(2, t < 6 ? 20 * kMiBs + 10 * kMiBs * t : 80 * kMiBs));
    sample.processes.push_back(process(3, 100 * kMiBs + 2 * kMiBs * t / 60));   // slow leak
    sample.processes.push_back(process(4, 100 * kMiBs + 20 * kMiBs * t / 60));  // fast leak
    detector.add(sample);
  }
  const auto verdicts = detector.verdicts();
  ASSERT_EQ(verdicts.size(), 4u);
  EXPECT_EQ(verdicts[0].pid, 4) << verdicts[0];
  EXPECT_EQ(verdicts[0].verdict, "leak suspected") << verdicts[0];
  EXPECT_EQ(verdicts[1].pid, 3) << verdicts[1];
  EXPECT_EQ(verdicts[1].verdict, "leak suspected") << verdicts[1];
  EXPECT_EQ(verdicts[2].pid, 2) << verdicts[2];
  EXPECT_EQ(verdicts[2].verdict, "growth plateaued") << verdicts[2];
  EXPECT_EQ(verdicts[3].pid, 1) << verdicts[3];
  EXPECT_EQ(verdicts[3].verdict, "no growth") << verdicts[3];
}

}  // namespace
}  // namespace memscope::analyze
