#include "collect/nvml/nvml_processes.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace memscope::nvml {
namespace {

// A driver whose process list is `g_list`, growing by `g_growth` entries after each of its
// first `g_growing_calls` calls (a job starting processes while we read).
std::vector<nvmlProcessInfo_v2_t> g_list;
unsigned g_growth = 0;
int g_growing_calls = 0;
int g_calls = 0;

nvmlReturn_t growing_list(nvmlDevice_t, unsigned* count, nvmlProcessInfo_v2_t* infos) {
  const std::vector<nvmlProcessInfo_v2_t> now = g_list;
  if (g_calls++ < g_growing_calls) {
    for (unsigned i = 0; i < g_growth; ++i) {
      g_list.push_back({static_cast<unsigned>(1000 + g_list.size()), 1, 0, 0});
    }
  }
  if (*count < now.size()) {
    *count = static_cast<unsigned>(now.size());
    return NVML_ERROR_INSUFFICIENT_SIZE;
  }
  for (size_t i = 0; i < now.size(); ++i) infos[i] = now[i];
  *count = static_cast<unsigned>(now.size());
  return NVML_SUCCESS;
}

nvmlReturn_t v1_list(nvmlDevice_t, unsigned* count, nvmlProcessInfo_v1_t* infos) {
  if (*count < 2) {
    *count = 2;
    return NVML_ERROR_INSUFFICIENT_SIZE;
  }
  infos[0] = {7, 700};
  infos[1] = {8, NVML_VALUE_NOT_AVAILABLE};
  *count = 2;
  return NVML_SUCCESS;
}

nvmlReturn_t failing_list(nvmlDevice_t, unsigned*, nvmlProcessInfo_v2_t*) {
  return NVML_ERROR_NO_PERMISSION;
}

class NvmlProcessListTest : public ::testing::Test {
 protected:
  void SetUp() override {
    g_list.clear();
    g_growth = 0;
    g_growing_calls = 0;
    g_calls = 0;
  }
};

TEST_F(NvmlProcessListTest, EmptyListNeedsOneCall) {
  std::vector<RawGpuProcess> out{{1, 1}};
  EXPECT_EQ(read_process_list(growing_list, nullptr, &out), NVML_SUCCESS);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(g_calls, 1);
}

TEST_F(NvmlProcessListTest, CountsThenReads) {
  g_list = {{10, 100, 0, 0}, {11, 110, 0, 0}, {12, 120, 0, 0}};
  std::vector<RawGpuProcess> out;
  ASSERT_EQ(read_process_list(growing_list, nullptr, &out), NVML_SUCCESS);
  ASSERT_EQ(out.size(), 3U);
  EXPECT_EQ(out[2].pid, 12U);
  EXPECT_EQ(out[2].used_bytes, 120U);
  EXPECT_EQ(g_calls, 2);
}

TEST_F(NvmlProcessListTest, HeadroomAbsorbsAFewNewProcesses) {
  g_list = {{10, 100, 0, 0}};
  g_growth = 2;  // 1 counted, 3 by the time the buffer comes: headroom covers it
  g_growing_calls = 1;
  std::vector<RawGpuProcess> out;
  ASSERT_EQ(read_process_list(growing_list, nullptr, &out), NVML_SUCCESS);
  EXPECT_EQ(out.size(), 3U);
  EXPECT_EQ(g_calls, 2);
}

TEST_F(NvmlProcessListTest, RetriesWhenTheListOutgrowsTheBuffer) {
  g_list.assign(100, {1, 1, 0, 0});
  g_growth = 40;  // more than the 25% headroom: needs another round
  g_growing_calls = 1;
  std::vector<RawGpuProcess> out;
  ASSERT_EQ(read_process_list(growing_list, nullptr, &out), NVML_SUCCESS);
  EXPECT_GE(out.size(), 140U);
  EXPECT_EQ(g_calls, 3);
}

TEST_F(NvmlProcessListTest, GivesUpOnAListThatNeverSettles) {
  g_list.assign(10, {1, 1, 0, 0});
  g_growth = 1000;
  g_growing_calls = 1000;
  std::vector<RawGpuProcess> out;
  EXPECT_EQ(read_process_list(growing_list, nullptr, &out), NVML_ERROR_INSUFFICIENT_SIZE);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(g_calls, 5);
}

TEST_F(NvmlProcessListTest, PassesErrorsThrough) {
  std::vector<RawGpuProcess> out;
  EXPECT_EQ(read_process_list(failing_list, nullptr, &out), NVML_ERROR_NO_PERMISSION);
}

TEST_F(NvmlProcessListTest, ReadsVersion1Structs) {
  std::vector<RawGpuProcess> out;
  ASSERT_EQ(read_process_list(v1_list, nullptr, &out), NVML_SUCCESS);
  ASSERT_EQ(out.size(), 2U);
  EXPECT_EQ(out[0].pid, 7U);
  EXPECT_EQ(out[0].used_bytes, 700U);
  EXPECT_EQ(out[1].used_bytes, NVML_VALUE_NOT_AVAILABLE);
}

TEST(NvmlMergeGpuProcesses, CountsAPidInBothListsOnceWithTheLargerFigure) {
  const std::vector<GpuProcess> merged =
      merge_gpu_processes({{30, 1024}, {10, 50}}, {{30, 512}, {20, 256}, {10, 80}});
  ASSERT_EQ(merged.size(), 3U);
  EXPECT_EQ(merged[0].pid, 10U);
  EXPECT_EQ(merged[0].used_bytes, 80U);
  EXPECT_FALSE(merged[0].graphics);  // listed as compute: it is a compute process
  EXPECT_EQ(merged[1].pid, 20U);
  EXPECT_EQ(merged[1].used_bytes, 256U);
  EXPECT_TRUE(merged[1].graphics);
  EXPECT_EQ(merged[2].pid, 30U);
  EXPECT_EQ(merged[2].used_bytes, 1024U);
}

TEST(NvmlMergeGpuProcesses, SumsAPidListedPerMigInstance) {
  const std::vector<GpuProcess> merged = merge_gpu_processes({{5, 100}, {5, 200}}, {});
  ASSERT_EQ(merged.size(), 1U);
  EXPECT_EQ(merged[0].used_bytes, 300U);
}

TEST(NvmlMergeGpuProcesses, UnavailableMemoryCountsAsZeroButKeepsTheProcess) {
  const std::vector<GpuProcess> merged =
      merge_gpu_processes({{5, NVML_VALUE_NOT_AVAILABLE}}, {{6, NVML_VALUE_NOT_AVAILABLE}});
  ASSERT_EQ(merged.size(), 2U);
  EXPECT_EQ(merged[0].used_bytes, 0U);
  EXPECT_EQ(merged[1].used_bytes, 0U);
}

}  // namespace
}  // namespace memscope::nvml
