// The collector against the fake driver (tests/fake_nvml), scenarios in tests/data/nvml.
#include "collect/nvml/nvml_collector.hpp"

#include <dlfcn.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>

#include "test_support.hpp"

namespace memscope::nvml {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr uint64_t kMiB = 1ULL << 20;

std::string scenario_path(const std::string& name) {
  return memscope::testing::test_data_dir() + "/nvml/" + name;
}

// The fake's test hook: calls of `symbol` since the current nvmlInit_v2.
unsigned fake_call_count(const char* symbol) {
  void* handle = dlopen(memscope::testing::fake_nvml_library().c_str(), RTLD_NOW | RTLD_NOLOAD);
  if (handle == nullptr) return 0;
  using CallCount = unsigned (*)(const char*);
  auto count = reinterpret_cast<CallCount>(dlsym(handle, "memscope_fake_nvml_call_count"));
  const unsigned result = count != nullptr ? count(symbol) : 0;
  dlclose(handle);
  return result;
}

class NvmlCollectorTest : public ::testing::Test {
 protected:
  void TearDown() override {
    unsetenv("MEMSCOPE_FAKE_NVML_SCENARIO");
    unsetenv("MEMSCOPE_NVML_LIBRARY");
  }

  // The fake re-reads the scenario at the first nvmlInit_v2, i.e. in open().
  static Result<std::unique_ptr<NvmlCollector>> open_scenario_file(const std::string& path) {
    setenv("MEMSCOPE_FAKE_NVML_SCENARIO", path.c_str(), 1);
    return NvmlCollector::open(memscope::testing::fake_nvml_library());
  }

  static std::unique_ptr<NvmlCollector> open_scenario(const std::string& name) {
    auto collector = open_scenario_file(scenario_path(name));
    EXPECT_TRUE(collector.ok()) << (collector.ok() ? "" : collector.message());
    return collector.ok() ? std::move(collector).value() : nullptr;
  }

  // A scenario written on the fly.
  std::unique_ptr<NvmlCollector> open_json(const std::string& json) {
    const std::string path = dir_.file("scenario.json");
    memscope::testing::write_file(path, json);
    auto collector = open_scenario_file(path);
    EXPECT_TRUE(collector.ok()) << (collector.ok() ? "" : collector.message());
    return collector.ok() ? std::move(collector).value() : nullptr;
  }

  memscope::testing::TempDir dir_;
};

TEST_F(NvmlCollectorTest, OneGpu) {
  auto nvml = open_scenario("one_gpu.json");
  ASSERT_NE(nvml, nullptr);
  EXPECT_EQ(nvml->device_count(), 1);
  EXPECT_EQ(nvml->driver_version(), "535.183.01");

  std::vector<DeviceSample> samples = nvml->collect();
  ASSERT_EQ(samples.size(), 1U);
  const DeviceSample& gpu = samples[0];
  EXPECT_TRUE(gpu.ok);
  EXPECT_TRUE(gpu.errors.empty()) << gpu.errors.front();
  EXPECT_EQ(gpu.index, 0);
  EXPECT_EQ(gpu.name, "NVIDIA A100-SXM4-80GB");
  EXPECT_EQ(gpu.uuid, "GPU-5b4f6c1e-2a3d-4e8f-9a0b-1c2d3e4f5a6b");
  EXPECT_EQ(gpu.memory_api, "v2");
  EXPECT_EQ(gpu.total_bytes, 81920 * kMiB);
  // v2 (with the right version field, unlike nvtop's trap): used excludes reserved.
  EXPECT_EQ(gpu.used_bytes, 1024 * kMiB);
  EXPECT_EQ(gpu.reserved_bytes, 531 * kMiB);
  EXPECT_EQ(gpu.free_bytes, (81920 - 1024 - 531) * kMiB);
  EXPECT_EQ(gpu.utilization_percent, 0U);
  EXPECT_EQ(gpu.memory_utilization_percent, 0U);
  EXPECT_EQ(gpu.temperature_celsius, 34U);
  EXPECT_EQ(gpu.power_watts, 61.5);
  ASSERT_EQ(gpu.processes.size(), 1U);
  EXPECT_EQ(gpu.processes[0].pid, 4242U);
  EXPECT_EQ(gpu.processes[0].used_bytes, 1000 * kMiB);
  EXPECT_FALSE(gpu.processes[0].graphics);

  // Each collect sees the next state; the last one holds.
  EXPECT_EQ(nvml->collect()[0].used_bytes, 20480 * kMiB);
  samples = nvml->collect();
  EXPECT_EQ(samples[0].used_bytes, 40960 * kMiB);
  EXPECT_EQ(samples[0].power_watts, 389.0);
  EXPECT_EQ(samples[0].reserved_bytes, 531 * kMiB);  // inherited from state 0
  EXPECT_EQ(samples[0].processes.at(0).used_bytes, 40936 * kMiB);
  EXPECT_EQ(nvml->collect()[0].used_bytes, 40960 * kMiB);
}

TEST_F(NvmlCollectorTest, EightGpus) {
  auto nvml = open_scenario("eight_gpus.json");
  ASSERT_NE(nvml, nullptr);
  ASSERT_EQ(nvml->device_count(), 8);
  const std::vector<DeviceSample> samples = nvml->collect();
  ASSERT_EQ(samples.size(), 8U);
  std::vector<std::string> uuids;
  for (int i = 0; i < 8; ++i) {
    const DeviceSample& gpu = samples[static_cast<size_t>(i)];
    SCOPED_TRACE(i);
    EXPECT_TRUE(gpu.ok);
    EXPECT_EQ(gpu.index, i);
    EXPECT_EQ(gpu.name, "NVIDIA H100 80GB HBM3");
    EXPECT_EQ(gpu.used_bytes, static_cast<uint64_t>(30000 + 1000 * i) * kMiB);
    ASSERT_EQ(gpu.processes.size(), 1U);
    EXPECT_EQ(gpu.processes[0].pid, static_cast<unsigned>(1000 + i));
    uuids.push_back(gpu.uuid);
  }
  std::sort(uuids.begin(), uuids.end());
  EXPECT_EQ(std::unique(uuids.begin(), uuids.end()), uuids.end());

  // A subset, in the order asked.
  const std::vector<DeviceSample> some = nvml->collect({7, 2});
  ASSERT_EQ(some.size(), 2U);
  EXPECT_EQ(some[0].index, 7);
  EXPECT_EQ(some[0].uuid, samples[7].uuid);
  EXPECT_EQ(some[1].index, 2);
}

TEST_F(NvmlCollectorTest, ProcessesComeAndGo) {
  auto nvml = open_scenario("processes_come_and_go.json");
  ASSERT_NE(nvml, nullptr);
  EXPECT_TRUE(nvml->collect()[0].processes.empty());

  std::vector<GpuProcess> processes = nvml->collect()[0].processes;
  ASSERT_EQ(processes.size(), 1U);
  EXPECT_EQ(processes[0].pid, 100U);
  EXPECT_EQ(processes[0].used_bytes, 2048 * kMiB);

  processes = nvml->collect()[0].processes;
  ASSERT_EQ(processes.size(), 2U);
  EXPECT_EQ(processes[0].pid, 100U);
  EXPECT_EQ(processes[0].used_bytes, 3072 * kMiB);
  EXPECT_EQ(processes[1].pid, 200U);
  EXPECT_TRUE(processes[1].graphics);

  processes = nvml->collect()[0].processes;  // 200 left, 300 is in both lists
  ASSERT_EQ(processes.size(), 2U);
  EXPECT_EQ(processes[1].pid, 300U);
  EXPECT_EQ(processes[1].used_bytes, 1024 * kMiB);
  EXPECT_FALSE(processes[1].graphics);

  EXPECT_TRUE(nvml->collect()[0].processes.empty());
}

TEST_F(NvmlCollectorTest, FallsBackToMemoryV1WhenV2IsUnsupported) {
  auto nvml = open_scenario("v2_unsupported.json");
  ASSERT_NE(nvml, nullptr);
  for (int round = 0; round < 3; ++round) {
    const std::vector<DeviceSample> samples = nvml->collect();
    ASSERT_EQ(samples.size(), 2U);
    for (const DeviceSample& gpu : samples) {
      SCOPED_TRACE(gpu.index);
      EXPECT_TRUE(gpu.ok);
      EXPECT_TRUE(gpu.errors.empty());
      EXPECT_EQ(gpu.memory_api, "v1");
      EXPECT_FALSE(gpu.reserved_bytes.has_value());
      EXPECT_EQ(gpu.total_bytes, 32768 * kMiB);
    }
    // v1's used includes the reservation.
    EXPECT_EQ(samples[0].used_bytes, (10240 + 512) * kMiB);
    EXPECT_EQ(samples[0].free_bytes, (32768 - 10240 - 512) * kMiB);
    EXPECT_EQ(samples[1].used_bytes, (2048 + 512) * kMiB);
  }
  // The refusal is remembered per device, not retried every sample.
  EXPECT_EQ(fake_call_count("nvmlDeviceGetMemoryInfo_v2"), 2U);
  EXPECT_EQ(fake_call_count("nvmlDeviceGetMemoryInfo"), 6U);
}

TEST_F(NvmlCollectorTest, FakeRejectsAWrongMemoryV2Version) {
  unsetenv("MEMSCOPE_FAKE_NVML_SCENARIO");  // the default device
  void* lib = dlopen(memscope::testing::fake_nvml_library().c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(lib, nullptr) << dlerror();
  auto init = reinterpret_cast<nvmlInit_v2_fn>(dlsym(lib, "nvmlInit_v2"));
  auto shutdown = reinterpret_cast<nvmlShutdown_fn>(dlsym(lib, "nvmlShutdown"));
  auto handle_by_index = reinterpret_cast<nvmlDeviceGetHandleByIndex_v2_fn>(
      dlsym(lib, "nvmlDeviceGetHandleByIndex_v2"));
  auto memory_v2 =
      reinterpret_cast<nvmlDeviceGetMemoryInfo_v2_fn>(dlsym(lib, "nvmlDeviceGetMemoryInfo_v2"));
  ASSERT_TRUE(init && shutdown && handle_by_index && memory_v2);

  nvmlMemory_v2_t memory{};
  memory.version = nvmlMemory_v2;
  EXPECT_EQ(memory_v2(nullptr, &memory), NVML_ERROR_UNINITIALIZED);
  ASSERT_EQ(init(), NVML_SUCCESS);
  nvmlDevice_t device = nullptr;
  ASSERT_EQ(handle_by_index(0, &device), NVML_SUCCESS);
  EXPECT_EQ(handle_by_index(1, &device), NVML_ERROR_INVALID_ARGUMENT);

  for (const unsigned wrong : {0U, 2U, nvml_struct_version(sizeof(nvmlMemory_v2_t), 1),
                               nvml_struct_version(sizeof(nvmlMemory_t), 2)}) {
    memory = {};
    memory.version = wrong;
    EXPECT_EQ(memory_v2(device, &memory), NVML_ERROR_ARGUMENT_VERSION_MISMATCH) << wrong;
    EXPECT_EQ(static_cast<int>(NVML_ERROR_ARGUMENT_VERSION_MISMATCH), 25);
  }
  memory = {};
  memory.version = 0x02000028U;
  EXPECT_EQ(memory_v2(device, &memory), NVML_SUCCESS);
  EXPECT_EQ(memory.total, 80ULL << 30);
  EXPECT_EQ(memory.used + memory.reserved + memory.free, memory.total);

  EXPECT_EQ(shutdown(), NVML_SUCCESS);
  EXPECT_EQ(memory_v2(device, &memory), NVML_ERROR_UNINITIALIZED);
  EXPECT_EQ(shutdown(), NVML_ERROR_UNINITIALIZED);
  dlclose(lib);
}

TEST_F(NvmlCollectorTest, FakeAnswersTheProcessCountWithInsufficientSize) {
  setenv("MEMSCOPE_FAKE_NVML_SCENARIO", scenario_path("one_gpu.json").c_str(), 1);
  void* lib = dlopen(memscope::testing::fake_nvml_library().c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(lib, nullptr) << dlerror();
  auto init = reinterpret_cast<nvmlInit_v2_fn>(dlsym(lib, "nvmlInit_v2"));
  auto shutdown = reinterpret_cast<nvmlShutdown_fn>(dlsym(lib, "nvmlShutdown"));
  auto handle_by_index = reinterpret_cast<nvmlDeviceGetHandleByIndex_v2_fn>(
      dlsym(lib, "nvmlDeviceGetHandleByIndex_v2"));
  auto processes = reinterpret_cast<nvmlDeviceGetRunningProcesses_v3_fn>(
      dlsym(lib, "nvmlDeviceGetComputeRunningProcesses_v3"));
  ASSERT_TRUE(init && shutdown && handle_by_index && processes);
  ASSERT_EQ(init(), NVML_SUCCESS);
  nvmlDevice_t device = nullptr;
  ASSERT_EQ(handle_by_index(0, &device), NVML_SUCCESS);

  unsigned count = 0;
  EXPECT_EQ(processes(device, &count, nullptr), NVML_ERROR_INSUFFICIENT_SIZE);
  EXPECT_EQ(count, 1U);
  nvmlProcessInfo_t info[2] = {};
  count = 2;
  EXPECT_EQ(processes(device, &count, info), NVML_SUCCESS);
  EXPECT_EQ(count, 1U);
  EXPECT_EQ(info[0].pid, 4242U);
  EXPECT_EQ(info[0].gpuInstanceId, 0xFFFFFFFFU);
  EXPECT_EQ(processes(device, nullptr, info), NVML_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(shutdown(), NVML_SUCCESS);
  dlclose(lib);
}

TEST_F(NvmlCollectorTest, RecordsErrorsPerDeviceAndMarksALostGpu) {
  auto nvml = open_scenario("errors.json");
  ASSERT_NE(nvml, nullptr);
  for (int round = 0; round < 2; ++round) {
    const std::vector<DeviceSample> samples = nvml->collect();
    ASSERT_EQ(samples.size(), 2U);
    EXPECT_TRUE(samples[0].ok);
    EXPECT_EQ(samples[0].errors, std::vector<std::string>{"temperature: Not Supported"});
    EXPECT_FALSE(samples[0].temperature_celsius.has_value());
    EXPECT_EQ(samples[0].used_bytes, 4096 * kMiB);  // the rest is read
    EXPECT_TRUE(samples[0].power_watts.has_value());
    EXPECT_TRUE(samples[1].ok);
    EXPECT_TRUE(samples[1].errors.empty());
    EXPECT_TRUE(samples[1].temperature_celsius.has_value());
  }
  // Device 1 falls off the bus; device 0 goes on.
  std::vector<DeviceSample> samples = nvml->collect();
  EXPECT_TRUE(samples[0].ok);
  EXPECT_EQ(samples[0].used_bytes, 4096 * kMiB);
  EXPECT_FALSE(samples[1].ok);
  EXPECT_EQ(samples[1].errors, std::vector<std::string>{"memory: GPU is lost"});
  EXPECT_EQ(samples[1].name, "NVIDIA A10");  // still identified, from the cache
  EXPECT_EQ(samples[1].uuid, "GPU-a10a10a1-0000-4000-8000-000000000001");
  EXPECT_TRUE(samples[1].processes.empty());

  samples = nvml->collect();
  EXPECT_TRUE(samples[0].ok);
  EXPECT_FALSE(samples[1].ok);
  EXPECT_EQ(samples[1].errors, std::vector<std::string>{"handle: GPU is lost"});
}

TEST_F(NvmlCollectorTest, MissingLibraryIsAClearError) {
  auto nvml = NvmlCollector::open("/nonexistent/libnvidia-ml.so.1");
  ASSERT_FALSE(nvml.ok());
  EXPECT_THAT(nvml.message(), StartsWith("NVML not available (/nonexistent/libnvidia-ml.so.1: "));
  EXPECT_THAT(nvml.message(), HasSubstr("cannot open shared object file"));
  EXPECT_THAT(nvml.message(), ::testing::EndsWith("): host-only monitoring"));
  EXPECT_EQ(nvml.message().find('\n'), std::string::npos);
}

TEST_F(NvmlCollectorTest, LibraryWithoutNvmlIsAClearError) {
  auto nvml = NvmlCollector::open("libc.so.6");
  ASSERT_FALSE(nvml.ok());
  EXPECT_EQ(nvml.message(),
            "NVML not available (libc.so.6: missing symbol nvmlInit_v2): host-only monitoring");
}

TEST_F(NvmlCollectorTest, LibraryPathComesFromTheEnvironment) {
  setenv("MEMSCOPE_NVML_LIBRARY", memscope::testing::fake_nvml_library().c_str(), 1);
  auto nvml = NvmlCollector::open();
  ASSERT_TRUE(nvml.ok()) << nvml.message();
  EXPECT_EQ((*nvml)->library_path(), memscope::testing::fake_nvml_library());
  EXPECT_EQ((*nvml)->device_count(), 1);  // the fake's default device
}

TEST_F(NvmlCollectorTest, InitFailureIsAClearError) {
  auto nvml = open_scenario_file(scenario_path("no_driver.json"));
  ASSERT_FALSE(nvml.ok());
  EXPECT_EQ(nvml.message(),
            "NVML not available (nvmlInit_v2: Driver Not Loaded): host-only monitoring");
}

TEST_F(NvmlCollectorTest, BadScenarioFailsInitWithOneLine) {
  const std::string path = dir_.file("bad.json");
  memscope::testing::write_file(path, R"({"devices": [{"states": [{"used_mib": "lots"}]}]})");
  ::testing::internal::CaptureStderr();
  auto nvml = open_scenario_file(path);
  const std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_FALSE(nvml.ok());
  EXPECT_EQ(nvml.message(),
            "NVML not available (nvmlInit_v2: Unknown Error): host-only monitoring");
  EXPECT_THAT(err, HasSubstr("devices[0].states[0].used_mib: expected a number"));
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1);
}

TEST_F(NvmlCollectorTest, EveryShippedScenarioLoads) {
  for (const auto& entry : std::filesystem::directory_iterator(scenario_path(""))) {
    if (entry.path().extension() != ".json") continue;
    SCOPED_TRACE(entry.path().string());
    auto nvml = open_scenario_file(entry.path().string());
    if (entry.path().filename() == "no_driver.json") {
      EXPECT_FALSE(nvml.ok());
    } else {
      ASSERT_TRUE(nvml.ok()) << nvml.message();
      EXPECT_GE((*nvml)->device_count(), 1);
      for (const DeviceSample& gpu : (*nvml)->collect()) EXPECT_TRUE(gpu.ok);
    }
  }
}

class NvmlProcessApiTest : public NvmlCollectorTest, public ::testing::WithParamInterface<int> {};

TEST_P(NvmlProcessApiTest, FallsBackToTheNewestWorkingVersion) {
  const int version = GetParam();
  auto nvml = open_json(R"({"process_api": )" + std::to_string(version) + R"(,
      "devices": [{"states": [{"used_mib": 2048, "processes": [
        {"pid": 11, "used_mib": 1024},
        {"pid": 22, "used_mib": 512, "type": "graphics"},
        {"pid": 33, "used_mib": 256, "type": "both"}]}]}]})");
  ASSERT_NE(nvml, nullptr);
  for (int round = 0; round < 3; ++round) {
    const DeviceSample gpu = nvml->collect().at(0);
    EXPECT_TRUE(gpu.errors.empty());
    ASSERT_EQ(gpu.processes.size(), 3U);
    EXPECT_EQ(gpu.processes[0].pid, 11U);
    EXPECT_EQ(gpu.processes[0].used_bytes, 1024 * kMiB);
    EXPECT_FALSE(gpu.processes[0].graphics);
    EXPECT_EQ(gpu.processes[1].pid, 22U);
    EXPECT_EQ(gpu.processes[1].used_bytes, 512 * kMiB);
    EXPECT_TRUE(gpu.processes[1].graphics);
    EXPECT_EQ(gpu.processes[2].pid, 33U);
    EXPECT_EQ(gpu.processes[2].used_bytes, 256 * kMiB);
  }
  // Refused versions are asked once; the working one every sample (count + fill).
  const char* compute[] = {"nvmlDeviceGetComputeRunningProcesses",
                           "nvmlDeviceGetComputeRunningProcesses_v2",
                           "nvmlDeviceGetComputeRunningProcesses_v3"};
  for (int v = 1; v <= 3; ++v) {
    const unsigned expected = v > version ? 1U : v == version ? 6U : 0U;
    EXPECT_EQ(fake_call_count(compute[v - 1]), expected) << compute[v - 1];
  }
}

INSTANTIATE_TEST_SUITE_P(Versions, NvmlProcessApiTest, ::testing::Values(1, 2, 3));

TEST_F(NvmlCollectorTest, UnavailableProcessMemoryCountsAsZero) {
  auto nvml = open_json(R"({"devices": [{"states": [{"processes": [
      {"pid": 5, "used_bytes": "not_available"}, {"pid": 6, "used_mib": 1}]}]}]})");
  ASSERT_NE(nvml, nullptr);
  const DeviceSample gpu = nvml->collect().at(0);
  ASSERT_EQ(gpu.processes.size(), 2U);
  EXPECT_EQ(gpu.processes[0].pid, 5U);
  EXPECT_EQ(gpu.processes[0].used_bytes, 0U);
  EXPECT_EQ(gpu.processes[1].used_bytes, kMiB);
}

TEST_F(NvmlCollectorTest, OlderDriverWithoutVersionedSymbols) {
  unsetenv("MEMSCOPE_FAKE_NVML_SCENARIO");
  Result<NvmlLibrary> library = NvmlLibrary::load(memscope::testing::fake_nvml_library());
  ASSERT_TRUE(library.ok()) << library.message();
  NvmlFunctions& f = library->functions();
  // What a pre-v2 driver exports.
  f.device_get_memory_info_v2 = nullptr;
  f.compute_processes_v3 = f.compute_processes_v2 = nullptr;
  f.graphics_processes_v3 = f.graphics_processes_v2 = nullptr;
  f.device_get_temperature = nullptr;
  auto nvml = NvmlCollector::from_library(std::move(library).value());
  ASSERT_TRUE(nvml.ok()) << nvml.message();
  const DeviceSample gpu = (*nvml)->collect().at(0);
  EXPECT_TRUE(gpu.ok);
  EXPECT_TRUE(gpu.errors.empty());
  EXPECT_EQ(gpu.memory_api, "v1");
  EXPECT_EQ(gpu.used_bytes, (1024 + 531) * kMiB);
  EXPECT_FALSE(gpu.temperature_celsius.has_value());
  EXPECT_TRUE(gpu.power_watts.has_value());
}

TEST_F(NvmlCollectorTest, ProcessListsNoVersionSupportsAreReported) {
  auto nvml = open_json(R"({"devices": [{"states": [{"errors": {
      "graphics_processes": "NOT_SUPPORTED"}}]}]})");
  ASSERT_NE(nvml, nullptr);
  for (int round = 0; round < 2; ++round) {
    const DeviceSample gpu = nvml->collect().at(0);
    EXPECT_TRUE(gpu.ok);
    EXPECT_EQ(gpu.errors, std::vector<std::string>{"graphics processes: Not Supported"});
  }
  EXPECT_EQ(fake_call_count("nvmlDeviceGetGraphicsRunningProcesses"), 1U);
}

TEST_F(NvmlCollectorTest, AskingForAMissingDeviceGivesNotOk) {
  auto nvml = open_scenario("one_gpu.json");
  ASSERT_NE(nvml, nullptr);
  const std::vector<DeviceSample> samples = nvml->collect({0, 5, -1});
  ASSERT_EQ(samples.size(), 3U);
  EXPECT_TRUE(samples[0].ok);
  EXPECT_FALSE(samples[1].ok);
  EXPECT_EQ(samples[1].index, 5);
  EXPECT_THAT(samples[1].errors.at(0), HasSubstr("no device with index 5"));
  EXPECT_FALSE(samples[2].ok);
}

TEST_F(NvmlCollectorTest, SelfAndChildPids) {
  auto nvml = open_json(R"({"devices": [{"states": [{"processes": [
      {"pid": "self", "used_mib": 10}, {"pid": "child", "used_mib": 20}]}]}]})");
  ASSERT_NE(nvml, nullptr);
  const auto self = static_cast<unsigned>(getpid());
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    pause();
    _exit(0);
  }
  const std::vector<GpuProcess> processes = nvml->collect().at(0).processes;
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  const auto find = [&](unsigned pid) {
    return std::find_if(processes.begin(), processes.end(),
                        [&](const GpuProcess& p) { return p.pid == pid; });
  };
  ASSERT_NE(find(self), processes.end());
  EXPECT_EQ(find(self)->used_bytes, 10 * kMiB);
  ASSERT_NE(find(static_cast<unsigned>(child)), processes.end());
  EXPECT_EQ(find(static_cast<unsigned>(child))->used_bytes, 20 * kMiB);
  // Once reaped, the child is gone from the list.
  const std::vector<GpuProcess> after = nvml->collect().at(0).processes;
  EXPECT_EQ(
      std::count_if(after.begin(), after.end(),
                    [&](const GpuProcess& p) { return p.pid == static_cast<unsigned>(child); }),
      0);
}

TEST_F(NvmlCollectorTest, SecondsAdvanceWithWallClock) {
  auto nvml = open_scenario("child_process.json");
  ASSERT_NE(nvml, nullptr);
  const uint64_t first = nvml->collect().at(0).used_bytes;
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  const uint64_t later = nvml->collect().at(0).used_bytes;
  EXPECT_GE(first, (512 + 300) * kMiB);
  EXPECT_GE(later, (512 + 2 * 256 + 300) * kMiB);  // state 2 or later
  EXPECT_GT(later, first);
}

TEST_F(NvmlCollectorTest, CollectorsShareOneInitialisation) {
  auto first = open_scenario("one_gpu.json");
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->collect()[0].used_bytes, 1024 * kMiB);
  {
    // A nested init keeps the scenario and its clock; its shutdown leaves the first working.
    auto second = open_scenario("eight_gpus.json");
    ASSERT_NE(second, nullptr);
    EXPECT_EQ(second->device_count(), 1);
    EXPECT_EQ(second->collect()[0].used_bytes, 20480 * kMiB);
  }
  const DeviceSample gpu = first->collect()[0];
  EXPECT_TRUE(gpu.ok);
  EXPECT_EQ(gpu.used_bytes, 40960 * kMiB);
  first.reset();
  // All shut down: the next open reads its own scenario.
  auto third = open_scenario("eight_gpus.json");
  ASSERT_NE(third, nullptr);
  EXPECT_EQ(third->device_count(), 8);
}

// Only where a real driver and GPU exist; skipped on the build machines.
TEST(NvmlRealGpu, ReadsEveryDevice) {
  auto nvml = NvmlCollector::open(kDefaultNvmlLibrary);
  if (!nvml.ok()) GTEST_SKIP() << nvml.message();
  if ((*nvml)->device_count() == 0) GTEST_SKIP() << "NVML works but sees no GPU";
  const std::string driver = (*nvml)->driver_version();
  ASSERT_FALSE(driver.empty());
  const bool has_memory_v2 = std::stoi(driver) >= 510;  // "535.183.01": the v2 call is R510+
  for (int round = 0; round < 2; ++round) {
    for (const DeviceSample& gpu : (*nvml)->collect()) {
      SCOPED_TRACE(gpu.index);
      EXPECT_TRUE(gpu.ok);
      EXPECT_FALSE(gpu.name.empty());
      EXPECT_FALSE(gpu.uuid.empty());
      EXPECT_GT(gpu.total_bytes, 0U);
      EXPECT_LE(gpu.used_bytes + gpu.reserved_bytes.value_or(0), gpu.total_bytes);
      // From R510 on, "v1" here would mean we passed the v2 call a wrong version (nvtop's trap).
      if (has_memory_v2) {
        EXPECT_EQ(gpu.memory_api, "v2") << ::testing::PrintToString(gpu.errors);
      }
    }
  }
}

TEST(NvmlErrorName, GivesTheDriversTexts) {
  EXPECT_EQ(nvml_error_name(NVML_ERROR_NOT_SUPPORTED), "Not Supported");
  EXPECT_EQ(nvml_error_name(NVML_ERROR_GPU_IS_LOST), "GPU is lost");
  EXPECT_EQ(nvml_error_name(NVML_ERROR_ARGUMENT_VERSION_MISMATCH), "Argument version mismatch");
  EXPECT_EQ(nvml_error_name(12345), "Unknown Error (code 12345)");
}

}  // namespace
}  // namespace memscope::nvml
