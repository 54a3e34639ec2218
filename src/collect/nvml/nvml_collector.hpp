// Samples NVIDIA GPUs through NVML, loaded with dlopen at run time: without a driver memscope
// still runs, host-only. Thread-compatible: one caller at a time.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "collect/nvml/nvml_library.hpp"
#include "collect/nvml/nvml_processes.hpp"
#include "core/result.hpp"
#include "core/sample.hpp"

namespace memscope::nvml {

// The library opened when no path is given and $MEMSCOPE_NVML_LIBRARY is unset.
inline constexpr const char* kDefaultNvmlLibrary = "libnvidia-ml.so.1";

class NvmlCollector {
 public:
  // library_path empty: $MEMSCOPE_NVML_LIBRARY if set, else "libnvidia-ml.so.1". An error (never
  // a crash) when the library is missing, lacks a required symbol, or nvmlInit fails (no
  // driver); its message is one informational line, e.g. "NVML not available
  // (libnvidia-ml.so.1: cannot open shared object file: No such file or directory): host-only
  // monitoring".
  static Result<std::unique_ptr<NvmlCollector>> open(const std::string& library_path = "");
  // The same from a library already loaded; tests null optional functions in it to play an
  // older driver.
  static Result<std::unique_ptr<NvmlCollector>> from_library(NvmlLibrary library);

  NvmlCollector(const NvmlCollector&) = delete;
  NvmlCollector& operator=(const NvmlCollector&) = delete;
  ~NvmlCollector();  // nvmlShutdown, then dlclose

  int device_count() const { return device_count_; }
  std::string driver_version() const { return driver_version_; }  // "" when unreadable
  const std::string& library_path() const { return library_.path(); }

  // Reads the given device indices (all when empty), in that order. Never fails as a whole:
  // each NVML error goes into that device's `errors` ("temperature: Not Supported"); a lost GPU
  // or an index without a device gives ok=false; what could not be read stays unset or 0.
  std::vector<DeviceSample> collect(const std::vector<int>& indices = {});

 private:
  // Which running-process call version to use for one list of one device.
  struct ProcessApi {
    int version = 3;  // newest version still worth trying; 0: none works here
    nvmlReturn_t refusal = NVML_ERROR_FUNCTION_NOT_FOUND;  // why the last one tried did not
  };
  // What is learnt about a device once and kept between samples.
  struct DeviceCache {
    bool has_handle = false;
    nvmlDevice_t handle = nullptr;
    bool has_identity = false;
    std::string name;
    std::string uuid;
    bool memory_v1_only = false;  // the v2 call was refused once: do not ask again
    ProcessApi compute_api;
    ProcessApi graphics_api;
  };
  enum class ProcessKind { kCompute, kGraphics };

  NvmlCollector(NvmlLibrary library, int device_count, std::string driver_version);

  DeviceSample read_device(int index);
  // Each returns false when the device turned out lost (the sample is then finished).
  bool read_memory(DeviceCache& cache, DeviceSample& sample);
  bool read_identity(DeviceCache& cache, DeviceSample& sample);
  bool read_gauges(DeviceCache& cache, DeviceSample& sample);
  bool read_processes(DeviceCache& cache, DeviceSample& sample);
  bool read_process_kind(DeviceCache& cache, ProcessKind kind, DeviceSample& sample,
                         std::vector<RawGpuProcess>* out);
  // Records a failed call in `sample`; false when the code means the device is gone.
  bool record_error(DeviceCache& cache, DeviceSample& sample, const char* what, nvmlReturn_t rc);

  NvmlLibrary library_;
  int device_count_ = 0;
  std::string driver_version_;
  std::vector<DeviceCache> devices_;
};

}  // namespace memscope::nvml
