#include "memscope/memory_profiler.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "api/test_helpers.hpp"
#include "test_support.hpp"

namespace memscope {
namespace {

MemoryProfilerOptions host_only(double interval = 0.05) {
  MemoryProfilerOptions options;
  options.sampling_interval_seconds = interval;
  options.gpus = false;
  return options;
}

std::string error_of(const MemoryProfilerOptions& options) {
  auto profiler = MemoryProfiler::create(options);
  return profiler ? "(no error)" : profiler.message();
}

nlohmann::json report_of(const MemoryProfiler& profiler) {
  return nlohmann::json::parse(profiler.report_json());
}

TEST(MemoryProfiler, RejectsBadOptionsNamingThem) {
  for (const double interval :
       {0.0, -1.0, 0.01, std::nan(""), std::numeric_limits<double>::infinity()}) {
    EXPECT_NE(error_of(host_only(interval)).find("sampling_interval_seconds"), std::string::npos)
        << interval;
  }
  MemoryProfilerOptions options = host_only();
  options.pid = -3;
  EXPECT_NE(error_of(options).find("pid"), std::string::npos);
  options.pid = std::numeric_limits<int>::max();
  EXPECT_NE(error_of(options).find("does not exist"), std::string::npos);
  options = host_only();
  options.devices = {-1};
  EXPECT_NE(error_of(options).find("devices"), std::string::npos);
  options.devices = {0};  // with gpus = false
  EXPECT_NE(error_of(options).find("devices"), std::string::npos);
  EXPECT_EQ(error_of(host_only()), "(no error)");
}

TEST(MemoryProfiler, ReportIsTheProfileDocumentWithCounters) {
  auto profiler = MemoryProfiler::create(host_only());
  ASSERT_TRUE(profiler) << profiler.message();
  MemoryProfiler& p = **profiler;
  int hook_calls = 0;
  p.add_sample_hook([&hook_calls] {
    ++hook_calls;
    return MemoryProfiler::Counters{{"torch.allocated_bytes", 1000.0 * hook_calls},
                                    {"", 1.0},  // dropped: no name
                                    {"bad", std::nan("")}};
  });
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(p.record_counter("batch_size", 32.0 + i));
    p.sample_now();
  }
  EXPECT_EQ(p.samples_taken(), 3U);
  EXPECT_EQ(hook_calls, 3);

  const nlohmann::json report = report_of(p);
  EXPECT_EQ(report.at("report"), "memscope-profile");
  EXPECT_EQ(report.at("num_samples"), 3);
  EXPECT_GT(report.at("host").at("system").at("total_bytes").get<uint64_t>(), 0U)
      << report.at("host").dump();
  const nlohmann::json& counters = report.at("counters");
  ASSERT_TRUE(counters.contains("torch.allocated_bytes")) << counters.dump();
  EXPECT_FALSE(counters.contains(""));
  EXPECT_FALSE(counters.contains("bad"));
  const nlohmann::json& allocated = counters.at("torch.allocated_bytes");
  EXPECT_EQ(allocated.at("count"), 3);
  EXPECT_EQ(allocated.at("last"), 3000.0);
  EXPECT_EQ(allocated.at("max"), 3000.0);
  EXPECT_EQ(allocated.at("min"), 1000.0);
  ASSERT_EQ(allocated.at("points").size(), 3U);
  // Points carry the sample's time: non-decreasing.
  EXPECT_LE(allocated.at("points")[0][0].get<double>(), allocated.at("points")[2][0].get<double>());
  const nlohmann::json& batch = counters.at("batch_size");
  EXPECT_EQ(batch.at("count"), 3);
  EXPECT_EQ(batch.at("mean"), 33.0);
  EXPECT_EQ(batch.at("last"), 34.0);
}

TEST(MemoryProfiler, RecordCounterRejectsBadNamesAndValues) {
  auto profiler = MemoryProfiler::create(host_only());
  ASSERT_TRUE(profiler) << profiler.message();
  EXPECT_NE((*profiler)->record_counter("", 1).message().find("name"), std::string::npos);
  EXPECT_FALSE((*profiler)->record_counter(std::string(129, 'x'), 1));
  EXPECT_NE((*profiler)->record_counter("x", std::nan("")).message().find("finite"),
            std::string::npos);
  EXPECT_FALSE((*profiler)->record_counter("x", std::numeric_limits<double>::infinity()));
  EXPECT_TRUE((*profiler)->record_counter(std::string(128, 'x'), -1));
  EXPECT_FALSE(report_of(**profiler).at("counters").contains("x"));
}

TEST(MemoryProfiler, LongSeriesAreThinnedButTheirStatisticsSeeEveryPoint) {
  auto profiler = MemoryProfiler::create(host_only());
  ASSERT_TRUE(profiler) << profiler.message();
  const size_t total = 2 * MemoryProfiler::kMaxCounterPoints + 7;
  for (size_t i = 0; i < total; ++i) {
    ASSERT_TRUE((*profiler)->record_counter("steps", static_cast<double>(i)));
  }
  const nlohmann::json steps = report_of(**profiler).at("counters").at("steps");
  EXPECT_EQ(steps.at("count").get<size_t>(), total);
  EXPECT_EQ(steps.at("max").get<double>(), static_cast<double>(total - 1));
  EXPECT_EQ(steps.at("min").get<double>(), 0.0);
  const size_t kept = steps.at("points").size();
  EXPECT_LE(kept, MemoryProfiler::kMaxCounterPoints);
  EXPECT_GE(kept, MemoryProfiler::kMaxCounterPoints / 2);
  // Evenly thinned: the first point is kept, the values rise by the same stride.
  EXPECT_EQ(steps.at("points")[0][1].get<double>(), 0.0);
  const double stride = steps.at("points")[1][1].get<double>();
  EXPECT_GE(stride, 2.0);
  EXPECT_EQ(steps.at("points")[kept - 1][1].get<double>(), stride * static_cast<double>(kept - 1));
}

TEST(MemoryProfiler, MonitorsInTheBackgroundAndSurvivesAThrowingHook) {
  auto profiler = MemoryProfiler::create(host_only(0.05));
  ASSERT_TRUE(profiler) << profiler.message();
  MemoryProfiler& p = **profiler;
  std::atomic<int> good_calls{0};
  p.add_sample_hook([]() -> MemoryProfiler::Counters { throw std::runtime_error("hook bug"); });
  p.add_sample_hook([&p]() -> MemoryProfiler::Counters {
    (void)p.report_json();  // no lock is held while hooks run
    throw 42;
  });
  p.add_sample_hook([&good_calls] {
    ++good_calls;
    return MemoryProfiler::Counters{{"good", 1.0}};
  });
  ASSERT_TRUE(p.start_monitoring());
  EXPECT_TRUE(p.monitoring());
  EXPECT_FALSE(p.start_monitoring());
  ASSERT_TRUE(wait_until([&] { return p.samples_taken() >= 4; }, 20));
  p.stop_monitoring();
  EXPECT_FALSE(p.monitoring());
  const uint64_t samples = p.samples_taken();
  EXPECT_EQ(p.hook_errors(), 2 * samples);
  EXPECT_EQ(static_cast<uint64_t>(good_calls.load()), samples);
  const nlohmann::json report = report_of(p);
  EXPECT_EQ(report.at("counters").at("good").at("count").get<uint64_t>(), samples);
  EXPECT_EQ(report.at("hook_errors").get<uint64_t>(), 2 * samples);
  EXPECT_EQ(report.at("num_samples").get<uint64_t>(), samples);
}

TEST(MemoryProfiler, GenerateReportWritesTheFileOrNamesIt) {
  auto profiler = MemoryProfiler::create(host_only());
  ASSERT_TRUE(profiler) << profiler.message();
  (*profiler)->sample_now();
  const testing::TempDir dir;
  const std::string path = dir.file("profile.json");
  ASSERT_TRUE((*profiler)->generate_report(path));
  const nlohmann::json written = nlohmann::json::parse(testing::read_file(path));
  EXPECT_EQ(written.at("report"), "memscope-profile");
  EXPECT_EQ(written.at("num_samples"), 1);

  const std::string bad = dir.file("no/such/dir/profile.json");
  const Status failed = (*profiler)->generate_report(bad);
  ASSERT_FALSE(failed);
  EXPECT_NE(failed.message().find(bad), std::string::npos) << failed.message();
}

// one_gpu.json: an 80 GiB GPU whose use grows over three samples (then stays at the last).
class MemoryProfilerGpu : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("MEMSCOPE_FAKE_NVML_SCENARIO", (testing::test_data_dir() + "/nvml/one_gpu.json").c_str(),
           1);
  }
  void TearDown() override { unsetenv("MEMSCOPE_FAKE_NVML_SCENARIO"); }
};

TEST_F(MemoryProfilerGpu, RecordsDevicePeaksAndRejectsUnknownDevices) {
  MemoryProfilerOptions options = host_only();
  options.gpus = true;
  options.nvml_library = testing::fake_nvml_library();
  options.devices = {3};
  EXPECT_NE(error_of(options), "(no error)");
  options.devices = {0};
  auto profiler = MemoryProfiler::create(options);
  ASSERT_TRUE(profiler) << profiler.message();
  for (int i = 0; i < 4; ++i) (*profiler)->sample_now();
  const ProfileSummary summary = (*profiler)->summary();
  ASSERT_EQ(summary.devices.size(), 1U);
  EXPECT_EQ(summary.devices[0].index, 0);
  EXPECT_EQ(summary.devices[0].total_bytes, 81920ULL << 20);
  EXPECT_GE(summary.devices[0].peak_used_bytes, 20480ULL << 20);
  const nlohmann::json report = report_of(**profiler);
  EXPECT_EQ(report.at("devices").at("0").at("peak_memory").get<uint64_t>(),
            summary.devices[0].peak_used_bytes);
}

}  // namespace
}  // namespace memscope
