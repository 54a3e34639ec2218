#include "collect/nvml/nvml_library.hpp"

#include <dlfcn.h>
#include <fmt/format.h>

#include <utility>

namespace memscope::nvml {
namespace {

// dlsym for a function pointer of type Fn; null when the symbol is absent.
template <class Fn>
Fn find_symbol(void* handle, const char* name) {
  return reinterpret_cast<Fn>(dlsym(handle, name));
}

}  // namespace

std::string nvml_error_name(int code) {
  if (const ReturnCodeInfo* info = find_return_code(code)) return info->description;
  return fmt::format("Unknown Error (code {})", code);
}

Result<NvmlLibrary> NvmlLibrary::load(const std::string& path) {
  dlerror();  // clear any stale error so the one below is ours
  // RTLD_LOCAL: the driver's symbols must not interpose on anything else in the process.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* reason = dlerror();
    return make_error(reason != nullptr ? std::string(reason) : path + ": cannot be loaded");
  }
  NvmlLibrary library(path, handle);
  NvmlFunctions& f = library.functions_;

  f.init_v2 = find_symbol<nvmlInit_v2_fn>(handle, "nvmlInit_v2");
  f.shutdown = find_symbol<nvmlShutdown_fn>(handle, "nvmlShutdown");
  f.device_get_count_v2 = find_symbol<nvmlDeviceGetCount_v2_fn>(handle, "nvmlDeviceGetCount_v2");
  f.device_get_handle_by_index_v2 =
      find_symbol<nvmlDeviceGetHandleByIndex_v2_fn>(handle, "nvmlDeviceGetHandleByIndex_v2");
  f.device_get_memory_info =
      find_symbol<nvmlDeviceGetMemoryInfo_fn>(handle, "nvmlDeviceGetMemoryInfo");
  const std::pair<const void*, const char*> required[] = {
      {reinterpret_cast<const void*>(f.init_v2), "nvmlInit_v2"},
      {reinterpret_cast<const void*>(f.shutdown), "nvmlShutdown"},
      {reinterpret_cast<const void*>(f.device_get_count_v2), "nvmlDeviceGetCount_v2"},
      {reinterpret_cast<const void*>(f.device_get_handle_by_index_v2),
       "nvmlDeviceGetHandleByIndex_v2"},
      {reinterpret_cast<const void*>(f.device_get_memory_info), "nvmlDeviceGetMemoryInfo"},
  };
  for (const auto& [symbol, name] : required) {
    if (symbol == nullptr) return make_error(fmt::format("{}: missing symbol {}", path, name));
  }

  f.error_string = find_symbol<nvmlErrorString_fn>(handle, "nvmlErrorString");
  f.system_get_driver_version =
      find_symbol<nvmlSystemGetDriverVersion_fn>(handle, "nvmlSystemGetDriverVersion");
  f.device_get_name = find_symbol<nvmlDeviceGetName_fn>(handle, "nvmlDeviceGetName");
  f.device_get_uuid = find_symbol<nvmlDeviceGetUUID_fn>(handle, "nvmlDeviceGetUUID");
  f.device_get_memory_info_v2 =
      find_symbol<nvmlDeviceGetMemoryInfo_v2_fn>(handle, "nvmlDeviceGetMemoryInfo_v2");
  f.compute_processes_v3 = find_symbol<nvmlDeviceGetRunningProcesses_v3_fn>(
      handle, "nvmlDeviceGetComputeRunningProcesses_v3");
  f.compute_processes_v2 = find_symbol<nvmlDeviceGetRunningProcesses_v2_fn>(
      handle, "nvmlDeviceGetComputeRunningProcesses_v2");
  f.compute_processes_v1 = find_symbol<nvmlDeviceGetRunningProcesses_v1_fn>(
      handle, "nvmlDeviceGetComputeRunningProcesses");
  f.graphics_processes_v3 = find_symbol<nvmlDeviceGetRunningProcesses_v3_fn>(
      handle, "nvmlDeviceGetGraphicsRunningProcesses_v3");
  f.graphics_processes_v2 = find_symbol<nvmlDeviceGetRunningProcesses_v2_fn>(
      handle, "nvmlDeviceGetGraphicsRunningProcesses_v2");
  f.graphics_processes_v1 = find_symbol<nvmlDeviceGetRunningProcesses_v1_fn>(
      handle, "nvmlDeviceGetGraphicsRunningProcesses");
  f.device_get_utilization_rates =
      find_symbol<nvmlDeviceGetUtilizationRates_fn>(handle, "nvmlDeviceGetUtilizationRates");
  f.device_get_temperature =
      find_symbol<nvmlDeviceGetTemperature_fn>(handle, "nvmlDeviceGetTemperature");
  f.device_get_power_usage =
      find_symbol<nvmlDeviceGetPowerUsage_fn>(handle, "nvmlDeviceGetPowerUsage");
  return library;
}

NvmlLibrary::NvmlLibrary(NvmlLibrary&& other) noexcept
    : path_(std::move(other.path_)),
      handle_(std::exchange(other.handle_, nullptr)),
      functions_(std::exchange(other.functions_, NvmlFunctions{})) {}

NvmlLibrary& NvmlLibrary::operator=(NvmlLibrary&& other) noexcept {
  if (this != &other) {
    if (handle_ != nullptr) dlclose(handle_);
    path_ = std::move(other.path_);
    handle_ = std::exchange(other.handle_, nullptr);
    functions_ = std::exchange(other.functions_, NvmlFunctions{});
  }
  return *this;
}

NvmlLibrary::~NvmlLibrary() {
  if (handle_ != nullptr) dlclose(handle_);
}

std::string NvmlLibrary::error_text(nvmlReturn_t code) const {
  if (functions_.error_string != nullptr) {
    const char* text = functions_.error_string(code);
    if (text != nullptr && *text != '\0') return text;
  }
  return nvml_error_name(code);
}

}  // namespace memscope::nvml
