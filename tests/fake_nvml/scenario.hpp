// The scenario that drives the fake NVML driver: devices, their states over time, injected
// errors. The format is documented in tests/data/nvml/README.md.
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "collect/nvml/nvml_api.hpp"

namespace memscope::fake_nvml {

using nvml::nvmlReturn_t;

// A bad scenario file; the message names the place ("devices[1].states[2].used_mib: ...").
class ScenarioError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class PidKind { kNumber, kSelf, kChild };

struct FakeProcess {
  PidKind kind = PidKind::kNumber;
  unsigned pid = 0;                   // kNumber only
  unsigned long long used_bytes = 0;  // may be NVML_VALUE_NOT_AVAILABLE
  bool compute = true;                // listed by the compute / graphics calls
  bool graphics = false;
};

// Everything that changes over time. Each state inherits what it does not set from the one
// before it, so errors and processes persist until a later state changes them.
struct DeviceState {
  double at_seconds = 0;                  // "advance": "seconds" only
  unsigned long long used_bytes = 0;      // as nvmlDeviceGetMemoryInfo_v2 reports it
  unsigned long long reserved_bytes = 0;  // v1 adds it to used
  unsigned utilization_percent = 0;
  unsigned memory_utilization_percent = 0;
  unsigned temperature_celsius = 30;
  unsigned power_milliwatts = 50000;
  std::vector<FakeProcess> processes;
  std::map<std::string, nvmlReturn_t> errors;  // function name (see kErrorFunctions) -> code
};

struct FakeDevice {
  std::string name;
  std::string uuid;
  unsigned long long total_bytes = 0;
  // NVML_SUCCESS: nvmlDeviceGetMemoryInfo_v2 works; otherwise the code it refuses with.
  nvmlReturn_t memory_v2 = nvml::NVML_SUCCESS;
  int process_api = 3;              // newest running-process call version that works (1..3)
  std::vector<DeviceState> states;  // at least one
};

enum class Advance { kCalls, kSeconds };

struct Scenario {
  std::string driver_version = "535.183.01";
  nvmlReturn_t init_error = nvml::NVML_SUCCESS;
  Advance advance = Advance::kCalls;
  std::vector<FakeDevice> devices;
};

// Function names an "errors" object may use, as the fake looks them up for each call: the
// call's own name, then its group ("memory", "processes"), then "all".
inline constexpr std::string_view kErrorFunctions[] = {
    "all",
    "handle",
    "name",
    "uuid",
    "memory",
    "memory_v1",
    "memory_v2",
    "processes",
    "compute_processes",
    "graphics_processes",
    "utilization",
    "temperature",
    "power",
};

// Throws ScenarioError (also for malformed JSON).
Scenario parse_scenario(std::string_view json_text);
// One A100 80GB with plausible figures: what the fake serves without a scenario file.
Scenario default_scenario();

}  // namespace memscope::fake_nvml
