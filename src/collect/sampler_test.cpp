#include "collect/sampler.hpp"

#include <gtest/gtest.h>

namespace memscope {
namespace {

TEST(AttributeGpuMemory, SumsAProcessOverDevices) {
  std::vector<ProcessSample> processes(2);
  processes[0].pid = 10;
  processes[1].pid = 11;
  std::vector<DeviceSample> devices(2);
  devices[0].processes = {{10, 100, false}, {99, 7, false}};
  devices[1].processes = {{10, 50, false}};
  attribute_gpu_memory(processes, devices);
  EXPECT_EQ(processes[0].gpu_bytes, 150u);
  EXPECT_EQ(processes[1].gpu_bytes, 0u);
}

}  // namespace
}  // namespace memscope
