#include "memscope/batch_size_controller.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace memscope {
namespace {

// A training job whose memory is base + per_sample * batch under a fixed limit.
struct MemoryModel {
  uint64_t base = 2'000'000'000;
  uint64_t per_sample = 50'000'000;
  uint64_t limit = 16'000'000'000;
  uint64_t used(int64_t batch) const { return base + per_sample * static_cast<uint64_t>(batch); }
  bool fits(int64_t batch) const { return used(batch) <= limit; }
  MemoryObservation observe(int64_t batch) const { return {used(batch), limit, std::nullopt, OomRisk::kLow}; }
};

BatchSizeController make(const BatchSizeControllerOptions& options) {
  auto controller = BatchSizeController::create(options);
  EXPECT_TRUE(controller.ok()) << controller.message();
  return std::move(controller).value();
}

TEST(BatchSizeController, RiskWordsRoundTrip) {
  for (OomRisk risk : {OomRisk::kLow, OomRisk::kMedium, OomRisk::kHigh, OomRisk::kCritical}) {
    EXPECT_EQ(parse_oom_risk(to_string(risk)), risk);
  }
  EXPECT_EQ(parse_oom_risk("CRITICAL"), OomRisk::kCritical);
  EXPECT_FALSE(parse_oom_risk("severe").has_value());
}

TEST(BatchSizeController, RejectsBadOptions) {
  const auto message = [](auto change) {
    BatchSizeControllerOptions options;
    change(options);
    auto controller = BatchSizeController::create(options);
    return controller.ok() ? std::string("ok") : controller.message();
  };
  EXPECT_NE(message([](auto& o) { o.min = 0; }).find("min must be >= 1, got 0"), std::string::npos);
  EXPECT_NE(message([](auto& o) { o.max = 0; }).find("max must be"), std::string::npos);
  EXPECT_NE(message([](auto& o) { o.initial = 2000; }).find("initial must be within [min, max]"),
            std::string::npos);
  EXPECT_NE(message([](auto& o) { o.shrink_factor_high = 1.0; }).find("shrink_factor_high"), std::string::npos);
  EXPECT_NE(message([](auto& o) { o.shrink_factor_critical = 0.9; }).find("shrink_factor_critical"),
            std::string::npos);
  EXPECT_NE(message([](auto& o) { o.grow_factor = 0.5; }).find("grow_factor"), std::string::npos);
  EXPECT_NE(message([](auto& o) { o.grow_after = 0; }).find("grow_after"), std::string::npos);
  EXPECT_NE(message([](auto& o) { o.critical_usage_fraction = 0.5; }).find("critical_usage_fraction"),
            std::string::npos);
  EXPECT_EQ(message([](auto&) {}), "ok");
}

TEST(BatchSizeController, ConvergesBelowTheLimitAndNeverAboveMax) {
  const MemoryModel model;  // fits up to 280 samples
  BatchSizeControllerOptions options;
  options.initial = 260;  // usage 94 %: high risk, halved, then grows back
  options.max = 400;
  BatchSizeController controller = make(options);
  std::vector<int64_t> last;
  for (int step = 0; step < 400; ++step) {
    const int64_t batch = controller.current();
    ASSERT_TRUE(model.fits(batch)) << "step " << step << " batch " << batch;
    ASSERT_LE(batch, options.max);
    ASSERT_GE(batch, options.min);
    const BatchRecommendation next = controller.recommend(model.observe(batch));
    if (step == 0) {
      EXPECT_EQ(next.action, BatchAction::kShrink) << next.reason;
    }
    if (step >= 300) last.push_back(controller.current());
  }
  // Settled: the same size for the last 100 steps, using a good share of the memory.
  EXPECT_EQ(*std::min_element(last.begin(), last.end()), *std::max_element(last.begin(), last.end()));
  const double usage = static_cast<double>(model.used(last.back())) / static_cast<double>(model.limit);
  EXPECT_GT(usage, 0.6);
  EXPECT_LT(usage, options.high_usage_fraction);
}

TEST(BatchSizeController, NeverAboveTheUserMaximum) {
  BatchSizeControllerOptions options;
  options.initial = 10;
  options.max = 12;
  options.grow_after = 1;
  BatchSizeController controller = make(options);
  for (int step = 0; step < 50; ++step) {
    controller.recommend({0, 0, 0.9, OomRisk::kLow});
    ASSERT_LE(controller.current(), 12);
  }
  EXPECT_EQ(controller.current(), 12);
}

TEST(BatchSizeController, ShrinksImmediatelyOnCritical) {
  BatchSizeControllerOptions options;
  options.initial = 64;
  BatchSizeController controller = make(options);
  const BatchRecommendation next = controller.recommend({0, 0, 0.9, OomRisk::kCritical});
  EXPECT_EQ(next.batch_size, 16);
  EXPECT_EQ(next.action, BatchAction::kShrink);
  EXPECT_EQ(next.risk, OomRisk::kCritical);
  EXPECT_NE(next.reason.find("64 -> 16"), std::string::npos) << next.reason;
  // High risk halves; usage alone past the critical fraction counts as critical.
  EXPECT_EQ(controller.recommend({0, 0, 0.9, OomRisk::kHigh}).batch_size, 8);
  EXPECT_EQ(controller.recommend({97, 100, std::nullopt, OomRisk::kLow}).batch_size, 2);
  EXPECT_EQ(controller.recommend({97, 100, std::nullopt, OomRisk::kLow}).batch_size, 1);
  const BatchRecommendation floor = controller.recommend({97, 100, std::nullopt, OomRisk::kLow});
  EXPECT_EQ(floor.batch_size, 1);
  EXPECT_EQ(floor.action, BatchAction::kHold);
}

TEST(BatchSizeController, GrowsOnlyAfterSustainedHeadroom) {
  BatchSizeControllerOptions options;
  options.initial = 100;
  options.grow_after = 3;
  options.cooldown = 0;
  BatchSizeController controller = make(options);
  const MemoryObservation roomy{40, 100, std::nullopt, OomRisk::kLow};
  const MemoryObservation tight{80, 100, std::nullopt, OomRisk::kLow};
  EXPECT_EQ(controller.recommend(roomy).batch_size, 100);
  EXPECT_EQ(controller.recommend(roomy).batch_size, 100);
  EXPECT_EQ(controller.recommend(tight).batch_size, 100);  // the streak restarts
  EXPECT_EQ(controller.recommend(roomy).batch_size, 100);
  EXPECT_EQ(controller.recommend(roomy).batch_size, 100);
  const BatchRecommendation grown = controller.recommend(roomy);
  EXPECT_EQ(grown.action, BatchAction::kGrow);
  EXPECT_EQ(grown.batch_size, 110);  // +10 %
  // Medium risk holds even with headroom, and restarts the streak.
  EXPECT_EQ(controller.recommend(roomy).batch_size, 110);
  EXPECT_EQ(controller.recommend({40, 100, std::nullopt, OomRisk::kMedium}).batch_size, 110);
  EXPECT_EQ(controller.recommend(roomy).batch_size, 110);
  EXPECT_EQ(controller.recommend(roomy).batch_size, 110);
  EXPECT_EQ(controller.recommend(roomy).batch_size, 121);
  // No headroom figure at all never grows.
  for (int i = 0; i < 10; ++i) EXPECT_EQ(controller.recommend({}).batch_size, 121);
}

TEST(BatchSizeController, SmallBatchesGrowByTheStep) {
  BatchSizeControllerOptions options;
  options.initial = 2;
  options.grow_after = 1;
  BatchSizeController controller = make(options);
  EXPECT_EQ(controller.recommend({0, 0, 0.5, OomRisk::kLow}).batch_size, 3);
}

TEST(BatchSizeController, CooldownAfterShrink) {
  BatchSizeControllerOptions options;
  options.initial = 100;
  options.grow_after = 1;
  options.cooldown = 4;
  BatchSizeController controller = make(options);
  EXPECT_EQ(controller.recommend({0, 0, 0.5, OomRisk::kHigh}).batch_size, 50);
  for (int i = 0; i < 4; ++i) {
    const BatchRecommendation held = controller.recommend({0, 0, 0.5, OomRisk::kLow});
    EXPECT_EQ(held.batch_size, 50);
    EXPECT_NE(held.reason.find("cooling down"), std::string::npos) << held.reason;
  }
  EXPECT_EQ(controller.recommend({0, 0, 0.5, OomRisk::kLow}).batch_size, 55);
}

TEST(OomRetry, HalvesUntilItFits) {
  const MemoryModel model;  // fits up to 280
  std::vector<int64_t> tried;
  auto report = run_with_oom_retry(1000, [&](int64_t batch) {
    tried.push_back(batch);
    return model.fits(batch) ? StepResult::ok() : StepResult::out_of_memory("CUDA out of memory");
  });
  ASSERT_TRUE(report.ok()) << report.message();
  EXPECT_EQ(tried, (std::vector<int64_t>{1000, 500, 250}));
  EXPECT_EQ(report->batch_size, 250);
  EXPECT_EQ(report->attempts, 3);
  EXPECT_EQ(report->out_of_memory, 2);
}

TEST(OomRetry, GivesUpAtTheMinimum) {
  OomRetryOptions options;
  options.min = 4;
  std::vector<int64_t> tried;
  auto report = run_with_oom_retry(
      20,
      [&](int64_t batch) {
        tried.push_back(batch);
        return StepResult::out_of_memory("CUDA out of memory");
      },
      options);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(tried, (std::vector<int64_t>{20, 10, 5, 4}));
  EXPECT_NE(report.message().find("20, 10, 5, 4"), std::string::npos) << report.message();
  EXPECT_NE(report.message().find("minimum is 4"), std::string::npos) << report.message();
}

TEST(OomRetry, OtherErrorsAreNotRetried) {
  int calls = 0;
  auto report = run_with_oom_retry(8, [&](int64_t) {
    ++calls;
    return StepResult::error("loss is NaN");
  });
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(calls, 1);
  EXPECT_NE(report.message().find("loss is NaN"), std::string::npos);
}

TEST(OomRetry, MaxAttemptsAndBadArguments) {
  OomRetryOptions options;
  options.max_attempts = 2;
  int calls = 0;
  auto report = run_with_oom_retry(
      64, [&](int64_t) { return ++calls, StepResult::out_of_memory(); }, options);
  EXPECT_FALSE(report.ok());
  EXPECT_EQ(calls, 2);
  EXPECT_FALSE(run_with_oom_retry(0, [](int64_t) { return StepResult::ok(); }).ok());
  EXPECT_FALSE(run_with_oom_retry(8, nullptr).ok());
  options.shrink_factor = 1.0;
  EXPECT_FALSE(run_with_oom_retry(8, [](int64_t) { return StepResult::ok(); }, options).ok());
}

TEST(BatchSizeController, RunStepShrinksTheController) {
  const MemoryModel model;  // fits up to 280
  BatchSizeControllerOptions options;
  options.initial = 1000;
  options.max = 1000;
  BatchSizeController controller = make(options);
  auto report = controller.run_step(
      [&](int64_t batch) { return model.fits(batch) ? StepResult::ok() : StepResult::out_of_memory(); });
  ASSERT_TRUE(report.ok()) << report.message();
  EXPECT_EQ(report->batch_size, 250);  // 1000 -> 250 (critical factor 0.25)
  EXPECT_EQ(controller.current(), 250);
  EXPECT_EQ(report->out_of_memory, 1);
}

}  // namespace
}  // namespace memscope
