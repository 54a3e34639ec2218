#include "memscope/leak_detector.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <thread>

#include "api/test_helpers.hpp"

namespace memscope {
namespace {

constexpr size_t kMiB = size_t{1} << 20;

LeakDetectorOptions watching(int pid) {
  LeakDetectorOptions options;
  options.pid = pid;
  options.interval_seconds = 0.05;
  options.gpus = false;
  options.min_span_seconds = 1;
  options.window_seconds = 60;
  return options;
}

std::string error_of(const LeakDetectorOptions& options) {
  auto detector = MemoryLeakDetector::create(options);
  return detector ? "(no error)" : detector.message();
}

const LeakVerdict* find(const std::vector<LeakVerdict>& verdicts, int pid) {
  for (const LeakVerdict& v : verdicts) {
    if (v.pid == pid && v.memory == "uss") return &v;
  }
  return nullptr;
}

TEST(MemoryLeakDetector, RejectsBadOptionsNamingThem) {
  LeakDetectorOptions options = watching(0);
  options.interval_seconds = 0;
  EXPECT_NE(error_of(options).find("interval_seconds"), std::string::npos);
  options = watching(0);
  options.threshold_mb_per_min = -1;
  EXPECT_NE(error_of(options).find("threshold_mb_per_min"), std::string::npos);
  options.threshold_mb_per_min = std::nan("");
  EXPECT_NE(error_of(options).find("threshold_mb_per_min"), std::string::npos);
  options = watching(0);
  options.window_seconds = 0;
  EXPECT_NE(error_of(options).find("window_seconds"), std::string::npos);
  options = watching(0);
  options.min_span_seconds = -1;
  EXPECT_NE(error_of(options).find("min_span_seconds"), std::string::npos);
  options = watching(std::numeric_limits<int>::max());
  EXPECT_NE(error_of(options).find("does not exist"), std::string::npos);
  EXPECT_EQ(error_of(watching(0)), "(no error)");
}

TEST(MemoryLeakDetector, SuspectsAGrowingProcessAndNotAStableOne) {
  // 2 MiB every 50 ms: 2,400 MiB/min against a 1 MiB/min threshold.
  MemoryChild growing(4 * kMiB, 2 * kMiB, 50, 400 * kMiB);
  MemoryChild stable(16 * kMiB, 0, 50, 16 * kMiB);
  auto leaking = MemoryLeakDetector::create(watching(growing.pid()));
  ASSERT_TRUE(leaking) << leaking.message();
  auto steady = MemoryLeakDetector::create(watching(stable.pid()));
  ASSERT_TRUE(steady) << steady.message();
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(2500);
  while (std::chrono::steady_clock::now() < end) {
    (*leaking)->sample_now();
    (*steady)->sample_now();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  const std::vector<LeakVerdict> grown = (*leaking)->verdicts();
  const LeakVerdict* leak = find(grown, growing.pid());
  ASSERT_NE(leak, nullptr) << "no verdict for the growing child";
  EXPECT_EQ(leak->verdict, "leak suspected") << leak->reason;
  EXPECT_GT(leak->growth_mb_per_min, 60.0);
  EXPECT_GT(leak->current_bytes, leak->first_bytes + 20 * kMiB);
  EXPECT_GT(leak->confidence, 0.0);
  EXPECT_TRUE((*leaking)->leak_suspected());

  const std::vector<LeakVerdict> flats = (*steady)->verdicts();
  const LeakVerdict* flat = find(flats, stable.pid());
  ASSERT_NE(flat, nullptr) << "no verdict for the stable child";
  EXPECT_EQ(flat->verdict, "no growth") << flat->reason;
  EXPECT_FALSE((*steady)->leak_suspected());

  const nlohmann::json report = nlohmann::json::parse((*leaking)->report_json());
  EXPECT_EQ(report.at("report"), "memscope-leak");
  bool listed = false;
  for (const nlohmann::json& process : report.at("processes")) {
    if (process.at("pid") == growing.pid() && process.at("verdict") == "leak suspected") {
      listed = true;
    }
  }
  EXPECT_TRUE(listed) << report.dump();
}

TEST(MemoryLeakDetector, MonitorsInTheBackground) {
  MemoryChild stable(8 * kMiB, 0, 50, 8 * kMiB);
  auto detector = MemoryLeakDetector::create(watching(stable.pid()));
  ASSERT_TRUE(detector) << detector.message();
  MemoryLeakDetector& d = **detector;
  ASSERT_TRUE(d.start_monitoring());
  EXPECT_FALSE(d.start_monitoring());
  ASSERT_TRUE(wait_until([&] { return d.samples_taken() >= 3; }, 20));
  d.stop_monitoring();
  EXPECT_FALSE(d.monitoring());
  const std::vector<LeakVerdict> verdicts = d.verdicts();
  EXPECT_NE(find(verdicts, stable.pid()), nullptr);
}

}  // namespace
}  // namespace memscope
