#include "collect/nvml/nvml_collector.hpp"

#include <fmt/format.h>

#include <array>
#include <cstdlib>
#include <utility>

#include "core/log.hpp"

namespace memscope::nvml {
namespace {

Error unavailable(const std::string& detail) {
  return make_error(fmt::format("NVML not available ({}): host-only monitoring", detail));
}

// Codes meaning "this entry point does not work here", as opposed to a failure of the device:
// an older API version may still answer.
bool worth_older_version(nvmlReturn_t rc) {
  return rc == NVML_ERROR_FUNCTION_NOT_FOUND || rc == NVML_ERROR_NOT_SUPPORTED ||
         rc == NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
}

// Codes after which nothing more can be read from the device.
bool device_gone(nvmlReturn_t rc) {
  return rc == NVML_ERROR_GPU_IS_LOST || rc == NVML_ERROR_RESET_REQUIRED;
}

// A string query into a fixed buffer, always NUL-terminated.
template <class Fn, class... Args>
nvmlReturn_t read_string(Fn fn, std::string* out, Args... args) {
  std::array<char, 128> buffer{};
  const nvmlReturn_t rc = fn(args..., buffer.data(), static_cast<unsigned>(buffer.size() - 1));
  if (rc == NVML_SUCCESS) *out = buffer.data();
  return rc;
}

}  // namespace

Result<std::unique_ptr<NvmlCollector>> NvmlCollector::open(const std::string& library_path) {
  std::string path = library_path;
  if (path.empty()) {
    const char* from_env = std::getenv("MEMSCOPE_NVML_LIBRARY");
    path = (from_env != nullptr && *from_env != '\0') ? from_env : kDefaultNvmlLibrary;
  }
  Result<NvmlLibrary> library = NvmlLibrary::load(path);
  if (!library) return unavailable(library.message());
  return from_library(std::move(library).value());
}

Result<std::unique_ptr<NvmlCollector>> NvmlCollector::from_library(NvmlLibrary library) {
  const NvmlFunctions& f = library.functions();
  if (const nvmlReturn_t rc = f.init_v2(); rc != NVML_SUCCESS) {
    return unavailable(fmt::format("nvmlInit_v2: {}", library.error_text(rc)));
  }
  unsigned count = 0;
  if (const nvmlReturn_t rc = f.device_get_count_v2(&count); rc != NVML_SUCCESS) {
    const std::string text = library.error_text(rc);
    f.shutdown();
    return unavailable(fmt::format("nvmlDeviceGetCount_v2: {}", text));
  }
  std::string driver_version;
  if (f.system_get_driver_version != nullptr) {
    if (const nvmlReturn_t rc = read_string(f.system_get_driver_version, &driver_version);
        rc != NVML_SUCCESS) {
      log::debug("NVML: nvmlSystemGetDriverVersion: {}", library.error_text(rc));
    }
  }
  return std::unique_ptr<NvmlCollector>(
      new NvmlCollector(std::move(library), static_cast<int>(count), std::move(driver_version)));
}

NvmlCollector::NvmlCollector(NvmlLibrary library, int device_count, std::string driver_version)
    : library_(std::move(library)),
      device_count_(device_count),
      driver_version_(std::move(driver_version)),
      devices_(static_cast<size_t>(device_count)) {}

NvmlCollector::~NvmlCollector() { library_.functions().shutdown(); }

std::vector<DeviceSample> NvmlCollector::collect(const std::vector<int>& indices) {
  std::vector<DeviceSample> samples;
  if (indices.empty()) {
    samples.reserve(static_cast<size_t>(device_count_));
    for (int index = 0; index < device_count_; ++index) samples.push_back(read_device(index));
  } else {
    samples.reserve(indices.size());
    for (const int index : indices) samples.push_back(read_device(index));
  }
  return samples;
}

bool NvmlCollector::record_error(DeviceCache& cache, DeviceSample& sample, const char* what,
                                 nvmlReturn_t rc) {
  sample.errors.push_back(fmt::format("{}: {}", what, library_.error_text(rc)));
  if (!device_gone(rc)) return true;
  sample.ok = false;
  // Ask for a fresh handle next time: after a reset the old one may be stale.
  cache.has_handle = false;
  return false;
}

DeviceSample NvmlCollector::read_device(int index) {
  DeviceSample sample;
  sample.index = index;
  if (index < 0 || index >= device_count_) {
    sample.ok = false;
    sample.errors.push_back(
        fmt::format("no device with index {} ({} present)", index, device_count_));
    return sample;
  }
  DeviceCache& cache = devices_[static_cast<size_t>(index)];
  sample.name = cache.name;
  sample.uuid = cache.uuid;
  if (!cache.has_handle) {
    const nvmlReturn_t rc = library_.functions().device_get_handle_by_index_v2(
        static_cast<unsigned>(index), &cache.handle);
    if (rc != NVML_SUCCESS) {
      record_error(cache, sample, "handle", rc);
      sample.ok = false;
      return sample;
    }
    cache.has_handle = true;
  }
  // Memory first: it is what memscope is for, and the fake driver's "calls" clock ticks on it.
  if (!read_memory(cache, sample)) return sample;
  if (!read_identity(cache, sample)) return sample;
  if (!read_gauges(cache, sample)) return sample;
  read_processes(cache, sample);
  return sample;
}

bool NvmlCollector::read_memory(DeviceCache& cache, DeviceSample& sample) {
  const NvmlFunctions& f = library_.functions();
  if (!cache.memory_v1_only && f.device_get_memory_info_v2 != nullptr) {
    nvmlMemory_v2_t memory{};
    memory.version = nvmlMemory_v2;
    const nvmlReturn_t rc = f.device_get_memory_info_v2(cache.handle, &memory);
    if (rc == NVML_SUCCESS) {
      sample.total_bytes = memory.total;
      sample.used_bytes = memory.used;
      sample.free_bytes = memory.free;
      sample.reserved_bytes = memory.reserved;
      sample.memory_api = "v2";
      return true;
    }
    if (!worth_older_version(rc)) return record_error(cache, sample, "memory", rc);
    log::debug(
        "NVML device {}: nvmlDeviceGetMemoryInfo_v2: {}; using v1, whose used memory "
        "includes reserved memory",
        sample.index, library_.error_text(rc));
    cache.memory_v1_only = true;
  }
  nvmlMemory_t memory{};
  const nvmlReturn_t rc = f.device_get_memory_info(cache.handle, &memory);
  if (rc != NVML_SUCCESS) return record_error(cache, sample, "memory", rc);
  sample.total_bytes = memory.total;
  sample.used_bytes = memory.used;
  sample.free_bytes = memory.free;
  sample.memory_api = "v1";
  return true;
}

bool NvmlCollector::read_identity(DeviceCache& cache, DeviceSample& sample) {
  if (cache.has_identity) return true;
  const NvmlFunctions& f = library_.functions();
  bool complete = true;
  if (f.device_get_name != nullptr) {
    const nvmlReturn_t rc = read_string(f.device_get_name, &cache.name, cache.handle);
    if (rc != NVML_SUCCESS) {
      complete = false;
      if (!record_error(cache, sample, "name", rc)) return false;
    }
  }
  if (f.device_get_uuid != nullptr) {
    const nvmlReturn_t rc = read_string(f.device_get_uuid, &cache.uuid, cache.handle);
    if (rc != NVML_SUCCESS) {
      complete = false;
      if (!record_error(cache, sample, "uuid", rc)) return false;
    }
  }
  cache.has_identity = complete;  // what failed is asked again next sample
  sample.name = cache.name;
  sample.uuid = cache.uuid;
  return true;
}

bool NvmlCollector::read_gauges(DeviceCache& cache, DeviceSample& sample) {
  const NvmlFunctions& f = library_.functions();
  if (f.device_get_utilization_rates != nullptr) {
    nvmlUtilization_t utilization{};
    const nvmlReturn_t rc = f.device_get_utilization_rates(cache.handle, &utilization);
    if (rc == NVML_SUCCESS) {
      sample.utilization_percent = utilization.gpu;
      sample.memory_utilization_percent = utilization.memory;
    } else if (!record_error(cache, sample, "utilization", rc)) {
      return false;
    }
  }
  if (f.device_get_temperature != nullptr) {
    unsigned celsius = 0;
    const nvmlReturn_t rc = f.device_get_temperature(cache.handle, NVML_TEMPERATURE_GPU, &celsius);
    if (rc == NVML_SUCCESS) {
      sample.temperature_celsius = celsius;
    } else if (!record_error(cache, sample, "temperature", rc)) {
      return false;
    }
  }
  if (f.device_get_power_usage != nullptr) {
    unsigned milliwatts = 0;
    const nvmlReturn_t rc = f.device_get_power_usage(cache.handle, &milliwatts);
    if (rc == NVML_SUCCESS) {
      sample.power_watts = static_cast<double>(milliwatts) / 1000.0;
    } else if (!record_error(cache, sample, "power", rc)) {
      return false;
    }
  }
  return true;
}

bool NvmlCollector::read_processes(DeviceCache& cache, DeviceSample& sample) {
  std::vector<RawGpuProcess> compute;
  std::vector<RawGpuProcess> graphics;
  if (!read_process_kind(cache, ProcessKind::kCompute, sample, &compute)) return false;
  if (!read_process_kind(cache, ProcessKind::kGraphics, sample, &graphics)) return false;
  sample.processes = merge_gpu_processes(compute, graphics);
  return true;
}

bool NvmlCollector::read_process_kind(DeviceCache& cache, ProcessKind kind, DeviceSample& sample,
                                      std::vector<RawGpuProcess>* out) {
  const NvmlFunctions& f = library_.functions();
  const bool compute = kind == ProcessKind::kCompute;
  const char* what = compute ? "compute processes" : "graphics processes";
  ProcessApi& api = compute ? cache.compute_api : cache.graphics_api;
  // Newest first; a version the driver lacks (null) or refuses is skipped for good.
  for (; api.version >= 1; --api.version) {
    nvmlReturn_t rc = NVML_ERROR_FUNCTION_NOT_FOUND;
    if (api.version == 3) {
      auto fn = compute ? f.compute_processes_v3 : f.graphics_processes_v3;
      if (fn != nullptr) rc = read_process_list(fn, cache.handle, out);
    } else if (api.version == 2) {
      auto fn = compute ? f.compute_processes_v2 : f.graphics_processes_v2;
      if (fn != nullptr) rc = read_process_list(fn, cache.handle, out);
    } else {
      auto fn = compute ? f.compute_processes_v1 : f.graphics_processes_v1;
      if (fn != nullptr) rc = read_process_list(fn, cache.handle, out);
    }
    if (rc == NVML_SUCCESS) return true;
    if (!worth_older_version(rc)) return record_error(cache, sample, what, rc);
    api.refusal = rc;
    log::debug("NVML device {}: {} v{}: {}", sample.index, what, api.version,
               library_.error_text(rc));
  }
  // No version works on this device: report it each sample without asking again.
  return record_error(cache, sample, what, api.refusal);
}

}  // namespace memscope::nvml
