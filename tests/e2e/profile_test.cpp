// `memscope profile` end to end against the fake NVML: the JSON report's layout, device
// selection, host-only operation, Ctrl-C, degraded /proc, and --plot.
#include <signal.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <thread>

#include "test_support.hpp"

namespace memscope::testing {
namespace {

std::map<std::string, std::string> fake_gpu(const std::string& scenario) {
  return {{"MEMSCOPE_NVML_LIBRARY", fake_nvml_library()},
          {"MEMSCOPE_FAKE_NVML_SCENARIO", test_data_dir() + "/nvml/" + scenario}};
}

nlohmann::json profile(const std::vector<std::string>& extra,
                       const std::map<std::string, std::string>& env, CommandResult* out = nullptr) {
  TempDir tmp;
  std::vector<std::string> argv = {memscope_binary(), "profile", "--duration", "1", "--interval",
                                   "0.2", "--output", tmp.file("p.json")};
  argv.insert(argv.end(), extra.begin(), extra.end());
  const auto result = run_command(argv, env, 60);
  if (out) *out = result;
  EXPECT_EQ(result.exit_code, 0) << result.err;
  return nlohmann::json::parse(read_file(tmp.file("p.json")));
}

TEST(Profile, WritesTheDocumentedJsonForOneGpu) {
  const auto report = profile({}, fake_gpu("one_gpu.json"));
  ASSERT_TRUE(report.contains("timestamp"));
  EXPECT_TRUE(report["timestamp"].is_string());
  ASSERT_TRUE(report["devices"].contains("0"));
  const auto& device = report["devices"]["0"];
  for (const char* key : {"allocated", "free", "total"}) {
    EXPECT_TRUE(device["current_memory"][key].is_number_unsigned()) << key;
  }
  EXPECT_TRUE(device["current_memory"]["utilization"].is_number());
  EXPECT_TRUE(device["peak_memory"].is_number_unsigned());
  EXPECT_GE(device["peak_memory"].get<uint64_t>(), device["current_memory"]["allocated"].get<uint64_t>());
  EXPECT_TRUE(device["statistics"]["avg_utilization"].is_number());
  EXPECT_TRUE(device["statistics"]["max_utilization"].is_number());
  EXPECT_GE(device["statistics"]["num_snapshots"].get<int>(), 5);
  const auto& host = report["host"];
  EXPECT_GT(host["system"]["total_bytes"].get<uint64_t>(), 0u);
  EXPECT_GT(host["limit"]["limit_bytes"].get<uint64_t>(), 0u);
  EXPECT_TRUE(host["swap"].is_object());
  EXPECT_TRUE(host["pressure"].contains("available"));
  EXPECT_FALSE(host["top_processes"].empty());
}

TEST(Profile, SamplesOnlyTheDevicesAskedFor) {
  const auto all = profile({}, fake_gpu("eight_gpus.json"));
  EXPECT_EQ(all["devices"].size(), 8u);
  const auto some = profile({"--devices", "1", "3"}, fake_gpu("eight_gpus.json"));
  EXPECT_EQ(some["devices"].size(), 2u);
  EXPECT_TRUE(some["devices"].contains("1"));
  EXPECT_TRUE(some["devices"].contains("3"));
}

TEST(Profile, WorksHostOnlyWithoutNvmlAndSaysSoOnce) {
  CommandResult result;
  const auto report = profile({}, {{"MEMSCOPE_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1"}}, &result);
  EXPECT_TRUE(report["devices"].empty());
  EXPECT_GT(report["host"]["system"]["total_bytes"].get<uint64_t>(), 0u);
  size_t mentions = 0;
  for (size_t at = result.err.find("NVML"); at != std::string::npos; at = result.err.find("NVML", at + 1)) {
    ++mentions;
  }
  EXPECT_EQ(mentions, 1u) << result.err;
}

TEST(Profile, CtrlCStillWritesTheReport) {
  TempDir tmp;
  BackgroundCommand memscope({memscope_binary(), "profile", "--duration", "600", "--interval", "0.2",
                              "--output", tmp.file("p.json")},
                             fake_gpu("one_gpu.json"));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  memscope.signal(SIGINT);
  const auto result = memscope.wait(20);
  EXPECT_EQ(result.exit_code, 0) << result.err;
  const auto report = nlohmann::json::parse(read_file(tmp.file("p.json")));
  EXPECT_GE(report["devices"]["0"]["statistics"]["num_snapshots"].get<int>(), 3);
}

TEST(Profile, DegradesWithANoteWhenProcFilesAreMissing) {
  TempDir empty_proc;
  CommandResult result;
  const auto report = profile({}, {{"MEMSCOPE_NVML_LIBRARY", "/nonexistent"}}, &result);
  (void)report;
  const auto degraded = run_command({memscope_binary(), "--proc-root", empty_proc.path(), "profile",
                                     "--duration", "0.5", "--interval", "0.25", "--output",
                                     empty_proc.file("p.json")},
                                    {{"MEMSCOPE_NVML_LIBRARY", "/nonexistent"}});
  EXPECT_EQ(degraded.exit_code, 0) << degraded.err;
  const auto json = nlohmann::json::parse(read_file(empty_proc.file("p.json")));
  EXPECT_FALSE(json["notes"].empty()) << json.dump(2);
}

TEST(Profile, PlotsAnInteractivePage) {
  TempDir tmp;
  const auto result = run_command({memscope_binary(), "profile", "--duration", "1", "--interval",
                                   "0.2", "--output", tmp.file("p.json"), "--plot", tmp.file("p.html")},
                                  fake_gpu("gpu_sawtooth.json"));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const std::string page = read_file(tmp.file("p.html"));
  EXPECT_NE(page.find("Dygraph"), std::string::npos);
}

}  // namespace
}  // namespace memscope::testing
