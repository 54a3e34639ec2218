// The NVML driver library opened with dlopen, and the functions memscope resolved from it.
#pragma once

#include <string>
#include <utility>

#include "collect/nvml/nvml_api.hpp"
#include "core/result.hpp"

namespace memscope::nvml {

// Function pointers resolved from the library. Required ones are never null after load();
// optional ones are null when the driver is too old to export them.
struct NvmlFunctions {
  // Required.
  nvmlInit_v2_fn init_v2 = nullptr;
  nvmlShutdown_fn shutdown = nullptr;
  nvmlDeviceGetCount_v2_fn device_get_count_v2 = nullptr;
  nvmlDeviceGetHandleByIndex_v2_fn device_get_handle_by_index_v2 = nullptr;
  nvmlDeviceGetMemoryInfo_fn device_get_memory_info = nullptr;
  // Optional.
  nvmlErrorString_fn error_string = nullptr;
  nvmlSystemGetDriverVersion_fn system_get_driver_version = nullptr;
  nvmlDeviceGetName_fn device_get_name = nullptr;
  nvmlDeviceGetUUID_fn device_get_uuid = nullptr;
  nvmlDeviceGetMemoryInfo_v2_fn device_get_memory_info_v2 = nullptr;
  nvmlDeviceGetRunningProcesses_v3_fn compute_processes_v3 = nullptr;
  nvmlDeviceGetRunningProcesses_v2_fn compute_processes_v2 = nullptr;
  nvmlDeviceGetRunningProcesses_v1_fn compute_processes_v1 = nullptr;
  nvmlDeviceGetRunningProcesses_v3_fn graphics_processes_v3 = nullptr;
  nvmlDeviceGetRunningProcesses_v2_fn graphics_processes_v2 = nullptr;
  nvmlDeviceGetRunningProcesses_v1_fn graphics_processes_v1 = nullptr;
  nvmlDeviceGetUtilizationRates_fn device_get_utilization_rates = nullptr;
  nvmlDeviceGetTemperature_fn device_get_temperature = nullptr;
  nvmlDeviceGetPowerUsage_fn device_get_power_usage = nullptr;
};

// Owns the dlopen handle (dlclose on destruction). Move-only. Loading does not call nvmlInit.
class NvmlLibrary {
 public:
  // Errors name the library and what is wrong: dlerror()'s text, or the missing required symbol.
  static Result<NvmlLibrary> load(const std::string& path);

  NvmlLibrary(NvmlLibrary&& other) noexcept;
  NvmlLibrary& operator=(NvmlLibrary&& other) noexcept;
  NvmlLibrary(const NvmlLibrary&) = delete;
  NvmlLibrary& operator=(const NvmlLibrary&) = delete;
  ~NvmlLibrary();

  const std::string& path() const { return path_; }
  // Mutable so tests can null optional entries to play an older driver.
  NvmlFunctions& functions() { return functions_; }
  const NvmlFunctions& functions() const { return functions_; }

  // nvmlErrorString's text for `code`, or memscope's own when the library gives none.
  std::string error_text(nvmlReturn_t code) const;

 private:
  NvmlLibrary(std::string path, void* handle) : path_(std::move(path)), handle_(handle) {}

  std::string path_;
  void* handle_ = nullptr;
  NvmlFunctions functions_;
};

// The text NVML gives for a return code ("Not Supported"), for messages without the library;
// "Unknown Error (code N)" for a code NVML does not define.
std::string nvml_error_name(int code);

}  // namespace memscope::nvml
