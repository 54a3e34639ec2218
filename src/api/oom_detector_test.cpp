// OOMDetector on this machine's own /proc, with forked children whose memory grows or holds,
// and on the fake NVML driver for the GPU path. Waits are bounded polls, never exact timings.
#include "api/oom_detector.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "api/test_helpers.hpp"
#include "test_support.hpp"

namespace memscope {
namespace {

using std::chrono::steady_clock;
constexpr size_t kMiB = size_t{1} << 20;

// Collects what the callbacks are given; safe to read while the monitor thread runs.
class Recorder {
 public:
  OOMDetector::WarningCallback callback() {
    return [this](int device_id, const OomPrediction& prediction) {
      std::lock_guard lock(mutex_);
      device_ids_.push_back(device_id);
      seen_.push_back(prediction);
    };
  }
  // The first warning about `resource`, with the device id the callback was given.
  std::optional<std::pair<int, OomPrediction>> first(const std::string& resource) const {
    std::lock_guard lock(mutex_);
    for (size_t i = 0; i < seen_.size(); ++i) {
      if (seen_[i].resource == resource) return std::make_pair(device_ids_[i], seen_[i]);
    }
    return std::nullopt;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<int> device_ids_;
  std::vector<OomPrediction> seen_;
};

std::optional<OomPrediction> find_prediction(const std::vector<OomPrediction>& predictions,
                                             const std::string& resource) {
  for (const OomPrediction& prediction : predictions) {
    if (prediction.resource == resource) return prediction;
  }
  return std::nullopt;
}

OOMDetectorOptions host_only(int pid, double interval_seconds) {
  OOMDetectorOptions options;
  options.pid = pid;
  options.interval_seconds = interval_seconds;
  options.gpus = false;
  return options;
}

std::string error_of(const OOMDetectorOptions& options) {
  auto detector = OOMDetector::create(options);
  return detector ? std::string("(no error)") : detector.message();
}

TEST(OomDetector, RejectsBadOptions) {
  OOMDetectorOptions options = host_only(0, 1.0);
  for (const double interval :
       {0.0, -1.0, 0.01, std::nan(""), std::numeric_limits<double>::infinity()}) {
    options.interval_seconds = interval;
    EXPECT_NE(error_of(options).find("interval_seconds"), std::string::npos) << interval;
  }
  options.interval_seconds = 1.0;
  for (const double threshold : {0.0, 101.0, std::nan("")}) {
    options.threshold_percent = threshold;
    EXPECT_NE(error_of(options).find("threshold"), std::string::npos) << threshold;
  }
  options.threshold_percent = 85;

  options.pid = -3;
  EXPECT_NE(error_of(options).find("pid"), std::string::npos);
  // A child that has exited and been reaped: a pid that surely does not exist now.
  const pid_t gone = fork();
  ASSERT_GE(gone, 0);
  if (gone == 0) _exit(0);
  ASSERT_EQ(waitpid(gone, nullptr, 0), gone);
  options.pid = gone;
  EXPECT_NE(error_of(options).find("pid"), std::string::npos);
  options.pid = 0;

  options.limit_bytes = 0;
  EXPECT_NE(error_of(options).find("limit_bytes"), std::string::npos);
  options.limit_bytes.reset();

  options.warn_at = RiskLevel::kLow;
  EXPECT_NE(error_of(options).find("warn_at"), std::string::npos);
  options.warn_at = RiskLevel::kMedium;
  EXPECT_EQ(error_of(options), "(no error)");
}

TEST(OomDetector, ToPredictionConvertsUnitsAndParsesTheDevice) {
  analyze::Assessment assessment;
  assessment.resource = "gpu3";
  assessment.kind = analyze::ResourceKind::kGpu;
  assessment.level = analyze::RiskLevel::kCritical;
  assessment.confidence = 0.75;
  assessment.usage_percent = 91.5;
  assessment.growth_bytes_per_second = 3.0 * kMiB;
  assessment.predicted_oom_seconds = 42;
  assessment.used_bytes = 9 * kMiB;
  assessment.limit_bytes = 10 * kMiB;
  assessment.limit_source = "GPU total";
  assessment.recommendation = "free something";
  const OomPrediction prediction = to_prediction(assessment);
  EXPECT_EQ(prediction.device_id, 3);
  EXPECT_EQ(prediction.resource, "gpu3");
  EXPECT_EQ(prediction.risk_level, "critical");
  EXPECT_DOUBLE_EQ(prediction.confidence, 0.75);
  EXPECT_DOUBLE_EQ(prediction.current_usage_percent, 91.5);
  EXPECT_DOUBLE_EQ(prediction.growth_rate_mb_per_sec, 3.0);
  EXPECT_EQ(prediction.predicted_oom_time_seconds, 42.0);
  EXPECT_EQ(prediction.used_bytes, 9 * kMiB);
  EXPECT_EQ(prediction.limit_bytes, 10 * kMiB);
  EXPECT_EQ(prediction.limit_source, "GPU total");
  EXPECT_EQ(prediction.recommendation, "free something");

  for (const char* resource : {"tree", "host", "gpu", "gpux", "gpu1x", "cgroup:/gpu2"}) {
    assessment.resource = resource;
    EXPECT_EQ(to_prediction(assessment).device_id, -1) << resource;
  }
}

TEST(OomDetector, WarnsBeforeAGrowingTreeReachesItsLimit) {
  // 4 MiB every 50 ms (up to 80 MiB/s; half that on a busy machine) up to 400 MiB against a
  // 300 MiB limit. A few seconds of data give the forecast too little confidence, so the usage
  // threshold raises the level; at 50 % it leaves the sampler seconds, not a few samples, to see
  // the tree between the threshold and the limit even when the machine is loaded.
  MemoryChild child(4 * kMiB, 4 * kMiB, 50, 400 * kMiB);
  OOMDetectorOptions options = host_only(child.pid(), 0.1);
  options.limit_bytes = 300 * kMiB;
  options.threshold_percent = 50;
  auto detector = OOMDetector::create(options);
  ASSERT_TRUE(detector) << detector.message();
  Recorder recorder;
  (*detector)->add_warning_callback(recorder.callback());
  ASSERT_TRUE((*detector)->start_monitoring());

  ASSERT_TRUE(wait_until([&] { return recorder.first("tree").has_value(); }, 15))
      << "no warning about the tree in 15 s";
  const auto [device_id, warning] = *recorder.first("tree");
  EXPECT_EQ(device_id, -1);
  EXPECT_EQ(warning.device_id, -1);
  EXPECT_TRUE(warning.risk_level == "high" || warning.risk_level == "critical")
      << warning.risk_level;
  EXPECT_EQ(warning.limit_bytes, 300 * kMiB);
  EXPECT_EQ(warning.limit_source, "--limit");
  // Warned before the limit was reached; by the latest when usage passed 95 % (critical).
  EXPECT_LT(warning.current_usage_percent, 100.0);
  EXPECT_GT(warning.growth_rate_mb_per_sec, 0.0);
  (*detector)->stop_monitoring();
}

TEST(OomDetector, StaysQuietForAStableTree) {
  MemoryChild child(20 * kMiB, 0, 50, 20 * kMiB);
  OOMDetectorOptions options = host_only(child.pid(), 0.1);
  options.limit_bytes = size_t{1} << 30;
  auto detector = OOMDetector::create(options);
  ASSERT_TRUE(detector) << detector.message();
  Recorder recorder;
  (*detector)->add_warning_callback(recorder.callback());
  ASSERT_TRUE((*detector)->start_monitoring());
  std::this_thread::sleep_for(std::chrono::seconds(3));
  (*detector)->stop_monitoring();

  // Only the tree is checked: the host's own level depends on this machine.
  EXPECT_FALSE(recorder.first("tree").has_value());
  EXPECT_GE((*detector)->samples_taken(), 5u);
  const auto tree = find_prediction((*detector)->predictions(), "tree");
  ASSERT_TRUE(tree.has_value());
  EXPECT_EQ(tree->risk_level, "low");
  EXPECT_EQ(tree->device_id, -1);
  EXPECT_GE(tree->used_bytes, 20 * kMiB);
  EXPECT_LT(tree->current_usage_percent, 50.0);
}

// gpu_sawtooth.json plays 15 s of a 200 MiB/s leak under 3 GiB teeth on a 24 GiB GPU, timed from
// the nvmlInit_v2 in create().
class OomDetectorGpu : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("MEMSCOPE_FAKE_NVML_SCENARIO",
           (testing::test_data_dir() + "/nvml/gpu_sawtooth.json").c_str(), 1);
  }
  void TearDown() override { unsetenv("MEMSCOPE_FAKE_NVML_SCENARIO"); }
};

TEST_F(OomDetectorGpu, WarnsAboutALeakingGpu) {
  OOMDetectorOptions options;
  options.interval_seconds = 0.1;
  options.nvml_library = testing::fake_nvml_library();
  auto detector = OOMDetector::create(options);
  ASSERT_TRUE(detector) << detector.message();
  Recorder recorder;
  (*detector)->add_warning_callback(recorder.callback());
  ASSERT_TRUE((*detector)->start_monitoring());

  ASSERT_TRUE(wait_until([&] { return recorder.first("gpu0").has_value(); }, 20))
      << "no warning about gpu0 in 20 s";
  (*detector)->stop_monitoring();
  const auto [device_id, warning] = *recorder.first("gpu0");
  EXPECT_EQ(device_id, 0);
  EXPECT_EQ(warning.device_id, 0);
  EXPECT_TRUE(warning.risk_level == "high" || warning.risk_level == "critical")
      << warning.risk_level;
  EXPECT_GT(warning.growth_rate_mb_per_sec, 0.0);
  ASSERT_TRUE(warning.predicted_oom_time_seconds.has_value());
  EXPECT_LT(*warning.predicted_oom_time_seconds, 300.0);
  EXPECT_EQ(warning.limit_source, "GPU total");
}

TEST(OomDetector, ThrowingCallbackDoesNotStopTheMonitor) {
  // The tree is far past a 1 MiB limit: critical at the first sample.
  OOMDetectorOptions options = host_only(0, 0.05);
  options.limit_bytes = kMiB;
  auto detector = OOMDetector::create(options);
  ASSERT_TRUE(detector) << detector.message();
  OOMDetector& monitor = **detector;
  Recorder after;
  std::atomic<int> throws{0};
  monitor.add_warning_callback([&](int, const OomPrediction&) {
    // The state lock is not held during callbacks: these must not deadlock.
    (void)monitor.predictions();
    monitor.add_warning_callback([](int, const OomPrediction&) {});
    ++throws;
    throw std::runtime_error("callback failure for the test");
  });
  monitor.add_warning_callback([](int, const OomPrediction&) { throw 7; });
  monitor.add_warning_callback(after.callback());
  ASSERT_TRUE(monitor.start_monitoring());

  ASSERT_TRUE(wait_until([&] { return monitor.callback_errors() >= 2; }, 10));
  EXPECT_GE(throws.load(), 1);
  EXPECT_TRUE(after.first("tree").has_value()) << "a callback after a throwing one was skipped";
  const uint64_t samples = monitor.samples_taken();
  EXPECT_TRUE(wait_until([&] { return monitor.samples_taken() >= samples + 3; }, 10));
  EXPECT_TRUE(monitor.monitoring());
  monitor.stop_monitoring();
}

TEST(OomDetector, StartTwiceFailsStopIsIdempotentAndPrompt) {
  auto detector = OOMDetector::create(host_only(0, 5.0));
  ASSERT_TRUE(detector) << detector.message();
  OOMDetector& monitor = **detector;
  monitor.stop_monitoring();  // before any start: nothing to do
  EXPECT_FALSE(monitor.monitoring());
  ASSERT_TRUE(monitor.start_monitoring());
  EXPECT_TRUE(monitor.monitoring());
  const Status again = monitor.start_monitoring();
  EXPECT_FALSE(again);
  EXPECT_NE(again.message().find("already"), std::string::npos);
  // The first sample is taken at once; the stop comes during the 5 s wait after it.
  EXPECT_TRUE(wait_until([&] { return monitor.samples_taken() >= 1; }, 10));

  const auto before = steady_clock::now();
  monitor.stop_monitoring();
  const double stop_seconds = std::chrono::duration<double>(steady_clock::now() - before).count();
  EXPECT_LT(stop_seconds, 2.0);
  EXPECT_FALSE(monitor.monitoring());
  monitor.stop_monitoring();
  EXPECT_FALSE(monitor.monitoring());

  // A stopped detector starts again.
  ASSERT_TRUE(monitor.start_monitoring());
  EXPECT_TRUE(wait_until([&] { return monitor.samples_taken() >= 2; }, 10));
}  // the destructor stops it

TEST(OomDetector, CallbackMayStopTheDetector) {
  OOMDetectorOptions options = host_only(0, 0.05);
  options.limit_bytes = kMiB;
  auto detector = OOMDetector::create(options);
  ASSERT_TRUE(detector) << detector.message();
  OOMDetector& monitor = **detector;
  monitor.add_warning_callback([&](int, const OomPrediction&) { monitor.stop_monitoring(); });
  ASSERT_TRUE(monitor.start_monitoring());
  EXPECT_TRUE(wait_until([&] { return !monitor.monitoring(); }, 10));
  const uint64_t samples = monitor.samples_taken();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(monitor.samples_taken(), samples);
  ASSERT_TRUE(monitor.start_monitoring());  // joins the thread that stopped itself
  monitor.stop_monitoring();
}

}  // namespace
}  // namespace memscope
