#include "memscope/fragmentation_analyzer.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "test_support.hpp"

namespace memscope {
namespace {

std::string snapshot(const std::string& name) {
  return testing::test_data_dir() + "/snapshots/" + name;
}

// The figures the fixture generator's allocator model says memscope must report.
nlohmann::json expected_device(const std::string& name, const std::string& device) {
  return nlohmann::json::parse(testing::read_file(snapshot(name + ".expected.json")))
      .at("devices")
      .at(device);
}

TEST(FragmentationAnalyzer, SummarisesEachDeviceAsTheFixtureExpects) {
  const FragmentationAnalyzer analyzer;
  for (const std::string name : {"fragmented", "expandable", "oom"}) {
    auto summaries = analyzer.analyze(snapshot(name + ".pickle"));
    ASSERT_TRUE(summaries) << name << ": " << summaries.message();
    ASSERT_FALSE(summaries->empty()) << name;
    for (const DeviceFragmentationSummary& device : *summaries) {
      const nlohmann::json expected = expected_device(name, std::to_string(device.device));
      SCOPED_TRACE(name + " device " + std::to_string(device.device));
      EXPECT_EQ(device.reserved_bytes, expected.at("reserved_bytes").get<uint64_t>());
      EXPECT_EQ(device.allocated_bytes, expected.at("allocated_bytes").get<uint64_t>());
      EXPECT_EQ(device.requested_bytes, expected.at("requested_bytes").get<uint64_t>());
      EXPECT_EQ(device.internal_free_bytes, expected.at("internal_free_bytes").get<uint64_t>());
      EXPECT_EQ(device.external_free_bytes, expected.at("external_free_bytes").get<uint64_t>());
      EXPECT_EQ(device.largest_free_block_bytes,
                expected.at("largest_free_block_bytes").get<uint64_t>());
      EXPECT_NEAR(device.fragmentation_ratio, expected.at("external_fragmentation").get<double>(),
                  1e-9);
      EXPECT_EQ(device.segment_count, expected.at("segment_count").get<size_t>());
    }
  }
}

TEST(FragmentationAnalyzer, ReportJsonIsTheFragmentDocument) {
  const FragmentationAnalyzer analyzer;
  auto text = analyzer.report_json(snapshot("fragmented.pickle"));
  ASSERT_TRUE(text) << text.message();
  const nlohmann::json report = nlohmann::json::parse(*text);
  EXPECT_EQ(report.at("report"), "memscope-fragment");
  EXPECT_EQ(report.at("mode"), "snapshot");
  ASSERT_FALSE(report.at("devices").empty());
  EXPECT_EQ(report.at("devices")[0].at("reserved_bytes").get<uint64_t>(),
            expected_device("fragmented", "0").at("reserved_bytes").get<uint64_t>());
}

TEST(FragmentationAnalyzer, ErrorsNameTheFileOrTheDevice) {
  const FragmentationAnalyzer analyzer;
  const std::string missing = snapshot("no-such-snapshot.pickle");
  auto absent = analyzer.analyze(missing);
  ASSERT_FALSE(absent);
  EXPECT_NE(absent.message().find(missing), std::string::npos) << absent.message();

  const testing::TempDir dir;
  testing::write_file(dir.file("garbage.pickle"), "not a pickle at all");
  auto garbage = analyzer.report_json(dir.file("garbage.pickle"));
  ASSERT_FALSE(garbage);
  EXPECT_NE(garbage.message().find("garbage.pickle"), std::string::npos) << garbage.message();

  FragmentationOptions options;
  options.device = 7;
  auto other_device = FragmentationAnalyzer(options).analyze(snapshot("fragmented.pickle"));
  ASSERT_FALSE(other_device);
  EXPECT_NE(other_device.message().find("device 7"), std::string::npos) << other_device.message();
}

TEST(FragmentationAnalyzer, SimulatesAllocatorConfigsOverTheRecordedTrace) {
  const FragmentationAnalyzer analyzer;
  auto recorded_only = analyzer.simulate(snapshot("fragmented.pickle"), {}, false);
  ASSERT_TRUE(recorded_only) << recorded_only.message();
  ASSERT_FALSE(recorded_only->empty());
  for (const DeviceSimulation& device : *recorded_only) {
    SCOPED_TRACE("device " + std::to_string(device.device));
    ASSERT_EQ(device.candidates.size(), 1U);
    EXPECT_EQ(device.candidates[0].label, "as recorded");
    EXPECT_EQ(device.recommended, 0U);
    // The fixtures' segments come from the same allocator run as their traces: replaying the
    // recorded settings reserves at least what the snapshot holds.
    EXPECT_GE(device.candidates[0].peak_reserved_bytes,
              expected_device("fragmented", std::to_string(device.device))
                  .at("reserved_bytes")
                  .get<uint64_t>());
  }

  auto swept = analyzer.simulate(snapshot("fragmented.pickle"), {"max_split_size_mb:128"});
  ASSERT_TRUE(swept) << swept.message();
  const DeviceSimulation& first = swept->front();
  ASSERT_GT(first.candidates.size(), 2U);
  EXPECT_EQ(first.candidates[1].label, "max_split_size_mb:128");
  EXPECT_NE(first.candidates[1].config.find("max_split_size_mb:128"), std::string::npos);
  EXPECT_LT(first.recommended, first.candidates.size());
  EXPECT_FALSE(first.reason.empty());

  auto bad = analyzer.simulate(snapshot("fragmented.pickle"), {"no_such_option:1"});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.message().find("no_such_option:1"), std::string::npos) << bad.message();
}

}  // namespace
}  // namespace memscope
