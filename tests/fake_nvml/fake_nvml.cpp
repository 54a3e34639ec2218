// A fake libnvidia-ml: the NVML entry points memscope uses, with the real driver's signatures
// and return-code conventions, serving devices from a JSON scenario (tests/data/nvml/README.md).
// C ABI outward: every entry point catches everything and answers NVML_ERROR_UNKNOWN instead.
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "child_pids.hpp"
#include "collect/nvml/nvml_api.hpp"
#include "scenario.hpp"

namespace memscope::fake_nvml {
namespace {

namespace api = memscope::nvml;
using api::nvmlDevice_t;

// Handles are the device index offset by a tag: never dangling when a test re-initialises with
// another scenario, and a garbage handle is refused rather than dereferenced.
constexpr std::uintptr_t kHandleTag = 0xfa4e0000;

struct Driver {
  std::mutex mutex;
  int init_count = 0;  // nvmlInit_v2 minus nvmlShutdown, as NVML counts them
  Scenario scenario;
  std::chrono::steady_clock::time_point started;
  unsigned long long memory_calls = 0;  // the "calls" clock: memory reads of device 0
  std::map<std::string, unsigned> call_counts;
};

Driver& driver() {
  static Driver instance;
  return instance;
}

// Runs an entry point's body under the driver lock; nothing escapes into C.
template <class Body>
nvmlReturn_t guarded(const char* symbol, Body body) noexcept {
  try {
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    ++d.call_counts[symbol];
    return body(d);
  } catch (...) {
    return api::NVML_ERROR_UNKNOWN;
  }
}

nvmlReturn_t load_scenario(Scenario* scenario) {
  const char* path = std::getenv("MEMSCOPE_FAKE_NVML_SCENARIO");
  if (path == nullptr || *path == '\0') {
    *scenario = default_scenario();
    return api::NVML_SUCCESS;
  }
  std::string message;
  try {
    std::ifstream file(path);
    if (!file) {
      message = std::string("cannot open: ") + std::strerror(errno);
    } else {
      std::ostringstream text;
      text << file.rdbuf();
      *scenario = parse_scenario(text.str());
      return api::NVML_SUCCESS;
    }
  } catch (const std::exception& error) {
    message = error.what();
  }
  std::fprintf(stderr, "fake NVML: scenario %s: %s\n", path, message.c_str());
  return api::NVML_ERROR_UNKNOWN;
}

// The device behind a handle, or null for a handle this driver never gave out.
FakeDevice* find_device(Driver& d, nvmlDevice_t handle, size_t* index) {
  const auto value = reinterpret_cast<std::uintptr_t>(handle);
  if (value < kHandleTag || value - kHandleTag >= d.scenario.devices.size()) return nullptr;
  *index = value - kHandleTag;
  return &d.scenario.devices[*index];
}

const DeviceState& current_state(const Driver& d, const FakeDevice& device) {
  const std::vector<DeviceState>& states = device.states;
  if (d.scenario.advance == Advance::kCalls) {
    const unsigned long long tick = d.memory_calls == 0 ? 0 : d.memory_calls - 1;
    return states[tick < states.size() ? static_cast<size_t>(tick) : states.size() - 1];
  }
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - d.started).count();
  size_t index = 0;
  while (index + 1 < states.size() && states[index + 1].at_seconds <= elapsed) ++index;
  return states[index];
}

// The error injected for `function` in this state: its own entry, its group's, or "all".
nvmlReturn_t injected(const DeviceState& state, const char* function, const char* group) {
  for (const char* key : {function, group, "all"}) {
    if (key == nullptr) continue;
    if (auto it = state.errors.find(key); it != state.errors.end()) return it->second;
  }
  return api::NVML_SUCCESS;
}

// Checks shared by per-device calls; on NVML_SUCCESS *device and *state are set.
nvmlReturn_t begin_device_call(Driver& d, nvmlDevice_t handle, const void* out,
                               const char* function, const char* group, FakeDevice** device,
                               const DeviceState** state) {
  if (d.init_count == 0) return api::NVML_ERROR_UNINITIALIZED;
  size_t index = 0;
  *device = find_device(d, handle, &index);
  if (*device == nullptr || out == nullptr) return api::NVML_ERROR_INVALID_ARGUMENT;
  *state = &current_state(d, **device);
  return injected(**state, function, group);
}

nvmlReturn_t copy_string(const std::string& text, char* out, unsigned length) {
  if (out == nullptr) return api::NVML_ERROR_INVALID_ARGUMENT;
  if (length < text.size() + 1) return api::NVML_ERROR_INSUFFICIENT_SIZE;
  std::memcpy(out, text.c_str(), text.size() + 1);
  return api::NVML_SUCCESS;
}

// A memory read: on device 0 it starts the next state of the "calls" clock, unless the call
// was refused for an API reason before reaching the device.
nvmlReturn_t begin_memory_call(Driver& d, nvmlDevice_t handle, const void* out,
                               const char* function, FakeDevice** device,
                               const DeviceState** state) {
  if (d.init_count == 0) return api::NVML_ERROR_UNINITIALIZED;
  size_t index = 0;
  *device = find_device(d, handle, &index);
  if (*device == nullptr || out == nullptr) return api::NVML_ERROR_INVALID_ARGUMENT;
  if (index == 0) ++d.memory_calls;
  *state = &current_state(d, **device);
  return injected(**state, function, "memory");
}

struct ListedProcess {
  unsigned pid;
  unsigned long long used_bytes;
};

std::vector<ListedProcess> listed_processes(const DeviceState& state, bool graphics) {
  std::vector<ListedProcess> listed;
  for (const FakeProcess& process : state.processes) {
    if (graphics ? !process.graphics : !process.compute) continue;
    switch (process.kind) {
      case PidKind::kNumber:
        listed.push_back({process.pid, process.used_bytes});
        break;
      case PidKind::kSelf:
        listed.push_back({static_cast<unsigned>(getpid()), process.used_bytes});
        break;
      case PidKind::kChild:
        for (const unsigned pid : child_pids()) listed.push_back({pid, process.used_bytes});
        break;
    }
  }
  return listed;
}

void fill(const ListedProcess& from, api::nvmlProcessInfo_v1_t* to) {
  to->pid = from.pid;
  to->usedGpuMemory = from.used_bytes;
}

void fill(const ListedProcess& from, api::nvmlProcessInfo_v2_t* to) {
  to->pid = from.pid;
  to->usedGpuMemory = from.used_bytes;
  to->gpuInstanceId = 0xFFFFFFFFU;  // not a MIG device
  to->computeInstanceId = 0xFFFFFFFFU;
}

template <class Info>
nvmlReturn_t running_processes(const char* symbol, int version, bool graphics, nvmlDevice_t handle,
                               unsigned* count, Info* infos) {
  return guarded(symbol, [&](Driver& d) {
    FakeDevice* device = nullptr;
    const DeviceState* state = nullptr;
    const char* function = graphics ? "graphics_processes" : "compute_processes";
    if (nvmlReturn_t rc = begin_device_call(d, handle, count, nullptr, nullptr, &device, &state);
        rc != api::NVML_SUCCESS) {
      return rc;
    }
    // A version newer than the scenario's driver behaves as if the driver lacked it.
    if (version > device->process_api) return api::NVML_ERROR_FUNCTION_NOT_FOUND;
    if (nvmlReturn_t rc = injected(*state, function, "processes"); rc != api::NVML_SUCCESS) {
      return rc;
    }
    const std::vector<ListedProcess> listed = listed_processes(*state, graphics);
    if (*count < listed.size()) {
      *count = static_cast<unsigned>(listed.size());
      return api::NVML_ERROR_INSUFFICIENT_SIZE;
    }
    if (!listed.empty() && infos == nullptr) return api::NVML_ERROR_INVALID_ARGUMENT;
    for (size_t i = 0; i < listed.size(); ++i) fill(listed[i], &infos[i]);
    *count = static_cast<unsigned>(listed.size());
    return api::NVML_SUCCESS;
  });
}

}  // namespace

// The exported C ABI. Each signature is checked against nvml_api.hpp's below.
extern "C" {

nvmlReturn_t nvmlInit_v2() {
  return guarded("nvmlInit_v2", [](Driver& d) {
    if (d.init_count > 0) {  // nested init, as NVML allows: same scenario, same clock
      ++d.init_count;
      return api::NVML_SUCCESS;
    }
    Scenario scenario;
    if (nvmlReturn_t rc = load_scenario(&scenario); rc != api::NVML_SUCCESS) return rc;
    if (scenario.init_error != api::NVML_SUCCESS) return scenario.init_error;
    d.scenario = std::move(scenario);
    d.started = std::chrono::steady_clock::now();
    d.memory_calls = 0;
    d.call_counts.clear();
    d.call_counts["nvmlInit_v2"] = 1;
    d.init_count = 1;
    return api::NVML_SUCCESS;
  });
}

nvmlReturn_t nvmlShutdown() {
  return guarded("nvmlShutdown", [](Driver& d) {
    if (d.init_count == 0) return api::NVML_ERROR_UNINITIALIZED;
    --d.init_count;
    return api::NVML_SUCCESS;
  });
}

const char* nvmlErrorString(nvmlReturn_t result) {
  const api::ReturnCodeInfo* info = api::find_return_code(result);
  return info != nullptr ? info->description : "Unknown Error";
}

nvmlReturn_t nvmlSystemGetDriverVersion(char* version, unsigned length) {
  return guarded("nvmlSystemGetDriverVersion", [&](Driver& d) {
    if (d.init_count == 0) return api::NVML_ERROR_UNINITIALIZED;
    return copy_string(d.scenario.driver_version, version, length);
  });
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned* device_count) {
  return guarded("nvmlDeviceGetCount_v2", [&](Driver& d) {
    if (d.init_count == 0) return api::NVML_ERROR_UNINITIALIZED;
    if (device_count == nullptr) return api::NVML_ERROR_INVALID_ARGUMENT;
    *device_count = static_cast<unsigned>(d.scenario.devices.size());
    return api::NVML_SUCCESS;
  });
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned index, nvmlDevice_t* device) {
  return guarded("nvmlDeviceGetHandleByIndex_v2", [&](Driver& d) {
    if (d.init_count == 0) return api::NVML_ERROR_UNINITIALIZED;
    if (device == nullptr || index >= d.scenario.devices.size()) {
      return api::NVML_ERROR_INVALID_ARGUMENT;
    }
    const FakeDevice& fake = d.scenario.devices[index];
    if (nvmlReturn_t rc = injected(current_state(d, fake), "handle", nullptr);
        rc != api::NVML_SUCCESS) {
      return rc;
    }
    *device = reinterpret_cast<nvmlDevice_t>(kHandleTag + index);
    return api::NVML_SUCCESS;
  });
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char* name, unsigned length) {
  return guarded("nvmlDeviceGetName", [&](Driver& d) {
    FakeDevice* fake = nullptr;
    const DeviceState* state = nullptr;
    if (nvmlReturn_t rc = begin_device_call(d, device, name, "name", nullptr, &fake, &state);
        rc != api::NVML_SUCCESS) {
      return rc;
    }
    return copy_string(fake->name, name, length);
  });
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char* uuid, unsigned length) {
  return guarded("nvmlDeviceGetUUID", [&](Driver& d) {
    FakeDevice* fake = nullptr;
    const DeviceState* state = nullptr;
    if (nvmlReturn_t rc = begin_device_call(d, device, uuid, "uuid", nullptr, &fake, &state);
        rc != api::NVML_SUCCESS) {
      return rc;
    }
    return copy_string(fake->uuid, uuid, length);
  });
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, api::nvmlMemory_t* memory) {
  return guarded("nvmlDeviceGetMemoryInfo", [&](Driver& d) {
    FakeDevice* fake = nullptr;
    const DeviceState* state = nullptr;
    if (nvmlReturn_t rc = begin_memory_call(d, device, memory, "memory_v1", &fake, &state);
        rc != api::NVML_SUCCESS) {
      return rc;
    }
    // v1 counts the driver's reservation as used, as the real driver does.
    memory->total = fake->total_bytes;
    memory->used = state->used_bytes + state->reserved_bytes;
    memory->free = fake->total_bytes - memory->used;
    return api::NVML_SUCCESS;
  });
}

nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, api::nvmlMemory_v2_t* memory) {
  return guarded("nvmlDeviceGetMemoryInfo_v2", [&](Driver& d) {
    if (d.init_count == 0) return api::NVML_ERROR_UNINITIALIZED;
    size_t index = 0;
    const FakeDevice* fake = find_device(d, device, &index);
    if (fake == nullptr || memory == nullptr) return api::NVML_ERROR_INVALID_ARGUMENT;
    if (fake->memory_v2 != api::NVML_SUCCESS) return fake->memory_v2;
    if (memory->version != api::nvmlMemory_v2) return api::NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    FakeDevice* current = nullptr;
    const DeviceState* state = nullptr;
    if (nvmlReturn_t rc = begin_memory_call(d, device, memory, "memory_v2", &current, &state);
        rc != api::NVML_SUCCESS) {
      return rc;
    }
    memory->total = current->total_bytes;
    memory->reserved = state->reserved_bytes;
    memory->used = state->used_bytes;
    memory->free = current->total_bytes - state->used_bytes - state->reserved_bytes;
    return api::NVML_SUCCESS;
  });
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t device, unsigned* count,
                                                  api::nvmlProcessInfo_v1_t* infos) {
  return running_processes("nvmlDeviceGetComputeRunningProcesses", 1, false, device, count, infos);
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t device, unsigned* count,
                                                     api::nvmlProcessInfo_v2_t* infos) {
  return running_processes("nvmlDeviceGetComputeRunningProcesses_v2", 2, false, device, count,
                           infos);
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, unsigned* count,
                                                     api::nvmlProcessInfo_t* infos) {
  return running_processes("nvmlDeviceGetComputeRunningProcesses_v3", 3, false, device, count,
                           infos);
}

nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses(nvmlDevice_t device, unsigned* count,
                                                   api::nvmlProcessInfo_v1_t* infos) {
  return running_processes("nvmlDeviceGetGraphicsRunningProcesses", 1, true, device, count, infos);
}

nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v2(nvmlDevice_t device, unsigned* count,
                                                      api::nvmlProcessInfo_v2_t* infos) {
  return running_processes("nvmlDeviceGetGraphicsRunningProcesses_v2", 2, true, device, count,
                           infos);
}

nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v3(nvmlDevice_t device, unsigned* count,
                                                      api::nvmlProcessInfo_t* infos) {
  return running_processes("nvmlDeviceGetGraphicsRunningProcesses_v3", 3, true, device, count,
                           infos);
}

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device,
                                           api::nvmlUtilization_t* utilization) {
  return guarded("nvmlDeviceGetUtilizationRates", [&](Driver& d) {
    FakeDevice* fake = nullptr;
    const DeviceState* state = nullptr;
    if (nvmlReturn_t rc =
            begin_device_call(d, device, utilization, "utilization", nullptr, &fake, &state);
        rc != api::NVML_SUCCESS) {
      return rc;
    }
    utilization->gpu = state->utilization_percent;
    utilization->memory = state->memory_utilization_percent;
    return api::NVML_SUCCESS;
  });
}

nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, api::nvmlTemperatureSensors_t sensor,
                                      unsigned* temperature) {
  return guarded("nvmlDeviceGetTemperature", [&](Driver& d) {
    FakeDevice* fake = nullptr;
    const DeviceState* state = nullptr;
    if (nvmlReturn_t rc =
            begin_device_call(d, device, temperature, "temperature", nullptr, &fake, &state);
        rc != api::NVML_SUCCESS) {
      return rc;
    }
    if (sensor != api::NVML_TEMPERATURE_GPU) return api::NVML_ERROR_INVALID_ARGUMENT;
    *temperature = state->temperature_celsius;
    return api::NVML_SUCCESS;
  });
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned* milliwatts) {
  return guarded("nvmlDeviceGetPowerUsage", [&](Driver& d) {
    FakeDevice* fake = nullptr;
    const DeviceState* state = nullptr;
    if (nvmlReturn_t rc = begin_device_call(d, device, milliwatts, "power", nullptr, &fake, &state);
        rc != api::NVML_SUCCESS) {
      return rc;
    }
    *milliwatts = state->power_milliwatts;
    return api::NVML_SUCCESS;
  });
}

// Test hook, not part of NVML: how often `symbol` was called since the first nvmlInit_v2 of the
// current initialisation (so tests can check that a refused call is not retried every sample).
unsigned memscope_fake_nvml_call_count(const char* symbol) {
  try {
    Driver& d = driver();
    std::lock_guard<std::mutex> lock(d.mutex);
    auto it = d.call_counts.find(symbol != nullptr ? symbol : "");
    return it == d.call_counts.end() ? 0 : it->second;
  } catch (...) {
    return 0;
  }
}

}  // extern "C"

// The fake must be callable through the collector's function-pointer types.
static_assert(std::is_same_v<decltype(&nvmlInit_v2), api::nvmlInit_v2_fn>);
static_assert(std::is_same_v<decltype(&nvmlShutdown), api::nvmlShutdown_fn>);
static_assert(std::is_same_v<decltype(&nvmlErrorString), api::nvmlErrorString_fn>);
static_assert(
    std::is_same_v<decltype(&nvmlSystemGetDriverVersion), api::nvmlSystemGetDriverVersion_fn>);
static_assert(std::is_same_v<decltype(&nvmlDeviceGetCount_v2), api::nvmlDeviceGetCount_v2_fn>);
static_assert(std::is_same_v<decltype(&nvmlDeviceGetHandleByIndex_v2),
                             api::nvmlDeviceGetHandleByIndex_v2_fn>);
static_assert(std::is_same_v<decltype(&nvmlDeviceGetName), api::nvmlDeviceGetName_fn>);
static_assert(std::is_same_v<decltype(&nvmlDeviceGetUUID), api::nvmlDeviceGetUUID_fn>);
static_assert(std::is_same_v<decltype(&nvmlDeviceGetMemoryInfo), api::nvmlDeviceGetMemoryInfo_fn>);
static_assert(
    std::is_same_v<decltype(&nvmlDeviceGetMemoryInfo_v2), api::nvmlDeviceGetMemoryInfo_v2_fn>);
static_assert(std::is_same_v<decltype(&nvmlDeviceGetComputeRunningProcesses),
                             api::nvmlDeviceGetRunningProcesses_v1_fn>);
static_assert(std::is_same_v<decltype(&nvmlDeviceGetComputeRunningProcesses_v2),
                             api::nvmlDeviceGetRunningProcesses_v2_fn>);
static_assert(std::is_same_v<decltype(&nvmlDeviceGetComputeRunningProcesses_v3),
                             api::nvmlDeviceGetRunningProcesses_v3_fn>);
static_assert(std::is_same_v<decltype(&nvmlDeviceGetGraphicsRunningProcesses),
                             api::nvmlDeviceGetRunningProcesses_v1_fn>);
static_assert(std::is_same_v<decltype(&nvmlDeviceGetGraphicsRunningProcesses_v2),
                             api::nvmlDeviceGetRunningProcesses_v2_fn>);
static_assert(std::is_same_v<decltype(&nvmlDeviceGetGraphicsRunningProcesses_v3),
                             api::nvmlDeviceGetRunningProcesses_v3_fn>);
static_assert(std::is_same_v<decltype(&nvmlDeviceGetUtilizationRates),
                             api::nvmlDeviceGetUtilizationRates_fn>);
static_assert(
    std::is_same_v<decltype(&nvmlDeviceGetTemperature), api::nvmlDeviceGetTemperature_fn>);
static_assert(std::is_same_v<decltype(&nvmlDeviceGetPowerUsage), api::nvmlDeviceGetPowerUsage_fn>);

}  // namespace memscope::fake_nvml
