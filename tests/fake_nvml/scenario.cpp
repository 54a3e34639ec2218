#include "scenario.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>

namespace memscope::fake_nvml {
namespace {

using nlohmann::json;

constexpr double kMiB = 1024.0 * 1024.0;
constexpr double kGiB = 1024.0 * kMiB;

std::string at(const std::string& where, std::string_view key) {
  return where.empty() ? std::string(key) : where + "." + std::string(key);
}

std::string at(const std::string& where, size_t index) {
  return where + "[" + std::to_string(index) + "]";
}

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw ScenarioError(where + ": " + what);
}

// Unknown keys are typos more often than not: refuse them.
void check_keys(const json& object, std::initializer_list<std::string_view> allowed,
                const std::string& where) {
  if (!object.is_object()) fail(where, "expected an object");
  for (const auto& item : object.items()) {
    if (std::find(allowed.begin(), allowed.end(), item.key()) == allowed.end()) {
      fail(at(where, item.key()), "unknown key");
    }
  }
}

double get_number(const json& value, const std::string& where, double min, double max) {
  if (!value.is_number()) fail(where, "expected a number");
  const double number = value.get<double>();
  if (!(number >= min && number <= max)) {
    fail(where, "out of range [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return number;
}

unsigned get_unsigned(const json& value, const std::string& where, unsigned max) {
  if (!value.is_number_unsigned()) fail(where, "expected a non-negative integer");
  const auto number = value.get<unsigned long long>();
  if (number > max) fail(where, "larger than " + std::to_string(max));
  return static_cast<unsigned>(number);
}

std::string get_string(const json& value, const std::string& where) {
  if (!value.is_string()) fail(where, "expected a string");
  return value.get<std::string>();
}

// A byte count given as <stem>_bytes (integer), <stem>_mib or <stem>_gib (numbers); with
// allow_not_available, <stem>_bytes may be "not_available" (NVML_VALUE_NOT_AVAILABLE).
std::optional<unsigned long long> get_bytes(const json& object, const std::string& stem,
                                            const std::string& where,
                                            bool allow_not_available = false) {
  std::optional<unsigned long long> bytes;
  int found = 0;
  if (auto it = object.find(stem + "_bytes"); it != object.end()) {
    ++found;
    if (allow_not_available && it->is_string() && it->get<std::string>() == "not_available") {
      bytes = nvml::NVML_VALUE_NOT_AVAILABLE;
    } else if (it->is_number_unsigned()) {
      bytes = it->get<unsigned long long>();
    } else {
      fail(at(where, stem + "_bytes"), allow_not_available
                                           ? "expected a non-negative integer or \"not_available\""
                                           : "expected a non-negative integer");
    }
  }
  for (const auto& [suffix, unit] : {std::pair{"_mib", kMiB}, std::pair{"_gib", kGiB}}) {
    if (auto it = object.find(stem + suffix); it != object.end()) {
      ++found;
      const double amount = get_number(*it, at(where, stem + suffix), 0, 1e9);
      bytes = static_cast<unsigned long long>(std::llround(amount * unit));
    }
  }
  if (found > 1) fail(at(where, stem), "given in more than one unit");
  return bytes;
}

nvmlReturn_t get_code(const json& value, const std::string& where) {
  std::string name = get_string(value, where);
  for (const std::string_view prefix : {"NVML_ERROR_", "NVML_"}) {
    if (name.rfind(prefix, 0) == 0) name.erase(0, prefix.size());
  }
  for (const nvml::ReturnCodeInfo& info : nvml::kReturnCodes) {
    if (name == info.identifier) return info.code;
  }
  fail(where, "unknown NVML return code \"" + name + "\"");
}

FakeProcess parse_process(const json& object, const std::string& where) {
  check_keys(object, {"pid", "used_bytes", "used_mib", "used_gib", "type"}, where);
  FakeProcess process;
  const auto pid = object.find("pid");
  if (pid == object.end()) fail(at(where, "pid"), "missing");
  if (pid->is_string()) {
    const std::string kind = pid->get<std::string>();
    if (kind == "self") {
      process.kind = PidKind::kSelf;
    } else if (kind == "child") {
      process.kind = PidKind::kChild;
    } else {
      fail(at(where, "pid"), "expected a number, \"self\" or \"child\"");
    }
  } else {
    process.pid = get_unsigned(*pid, at(where, "pid"), std::numeric_limits<unsigned>::max());
  }
  process.used_bytes = get_bytes(object, "used", where, true).value_or(0);
  if (auto type = object.find("type"); type != object.end()) {
    const std::string kind = get_string(*type, at(where, "type"));
    if (kind != "compute" && kind != "graphics" && kind != "both") {
      fail(at(where, "type"), "expected \"compute\", \"graphics\" or \"both\"");
    }
    process.compute = kind != "graphics";
    process.graphics = kind != "compute";
  }
  return process;
}

DeviceState parse_state(const json& object, DeviceState state, const std::string& where) {
  check_keys(object,
             {"at_seconds", "used_bytes", "used_mib", "used_gib", "reserved_bytes", "reserved_mib",
              "reserved_gib", "utilization_percent", "memory_utilization_percent",
              "temperature_celsius", "power_watts", "processes", "errors", "description"},
             where);
  if (auto it = object.find("at_seconds"); it != object.end()) {
    state.at_seconds = get_number(*it, at(where, "at_seconds"), 0, 1e9);
  }
  if (auto used = get_bytes(object, "used", where)) state.used_bytes = *used;
  if (auto reserved = get_bytes(object, "reserved", where)) state.reserved_bytes = *reserved;
  if (auto it = object.find("utilization_percent"); it != object.end()) {
    state.utilization_percent = get_unsigned(*it, at(where, "utilization_percent"), 100);
  }
  if (auto it = object.find("memory_utilization_percent"); it != object.end()) {
    state.memory_utilization_percent =
        get_unsigned(*it, at(where, "memory_utilization_percent"), 100);
  }
  if (auto it = object.find("temperature_celsius"); it != object.end()) {
    state.temperature_celsius = get_unsigned(*it, at(where, "temperature_celsius"), 200);
  }
  if (auto it = object.find("power_watts"); it != object.end()) {
    const double watts = get_number(*it, at(where, "power_watts"), 0, 10000);
    state.power_milliwatts = static_cast<unsigned>(std::lround(watts * 1000.0));
  }
  if (auto it = object.find("processes"); it != object.end()) {
    const std::string list_where = at(where, "processes");
    if (!it->is_array()) fail(list_where, "expected an array");
    state.processes.clear();
    for (size_t i = 0; i < it->size(); ++i) {
      state.processes.push_back(parse_process((*it)[i], at(list_where, i)));
    }
  }
  if (auto it = object.find("errors"); it != object.end()) {
    const std::string errors_where = at(where, "errors");
    if (!it->is_object()) fail(errors_where, "expected an object");
    for (const auto& item : it->items()) {
      const std::string key_where = at(errors_where, item.key());
      if (std::find(std::begin(kErrorFunctions), std::end(kErrorFunctions), item.key()) ==
          std::end(kErrorFunctions)) {
        fail(key_where, "unknown function (see tests/data/nvml/README.md)");
      }
      const nvmlReturn_t code =
          item.value().is_null() ? nvml::NVML_SUCCESS : get_code(item.value(), key_where);
      if (code == nvml::NVML_SUCCESS) {
        state.errors.erase(item.key());  // a later state clears an injected error
      } else {
        state.errors[item.key()] = code;
      }
    }
  }
  return state;
}

// "memory_v2": true (works), false (FUNCTION_NOT_FOUND) or the code it fails with.
nvmlReturn_t get_memory_v2(const json& value, const std::string& where) {
  if (value.is_boolean()) {
    return value.get<bool>() ? nvml::NVML_SUCCESS : nvml::NVML_ERROR_FUNCTION_NOT_FOUND;
  }
  return get_code(value, where);
}

struct DeviceDefaults {
  nvmlReturn_t memory_v2 = nvml::NVML_SUCCESS;
  int process_api = 3;
  Advance advance = Advance::kCalls;
  double seconds_per_state = 0;  // 0: each state needs at_seconds (seconds mode)
};

FakeDevice parse_device(const json& object, size_t index, const DeviceDefaults& defaults,
                        const std::string& where) {
  check_keys(object,
             {"name", "uuid", "total_bytes", "total_mib", "total_gib", "memory_v2", "process_api",
              "states", "description"},
             where);
  FakeDevice device;
  char uuid[64];
  std::snprintf(uuid, sizeof uuid, "GPU-fa4e0000-0000-4000-8000-%012zx", index);
  device.uuid = uuid;
  device.name = "NVIDIA A100-SXM4-80GB";
  device.total_bytes = 80ULL << 30;
  if (auto it = object.find("name"); it != object.end())
    device.name = get_string(*it, at(where, "name"));
  if (auto it = object.find("uuid"); it != object.end())
    device.uuid = get_string(*it, at(where, "uuid"));
  if (auto total = get_bytes(object, "total", where)) device.total_bytes = *total;
  device.memory_v2 = defaults.memory_v2;
  if (auto it = object.find("memory_v2"); it != object.end()) {
    device.memory_v2 = get_memory_v2(*it, at(where, "memory_v2"));
  }
  device.process_api = defaults.process_api;
  if (auto it = object.find("process_api"); it != object.end()) {
    device.process_api = static_cast<int>(get_unsigned(*it, at(where, "process_api"), 3));
    if (device.process_api < 1) fail(at(where, "process_api"), "expected 1, 2 or 3");
  }

  DeviceState previous;
  if (auto states = object.find("states"); states != object.end()) {
    const std::string states_where = at(where, "states");
    if (!states->is_array()) fail(states_where, "expected an array");
    for (size_t i = 0; i < states->size(); ++i) {
      const std::string state_where = at(states_where, i);
      const json& state_json = (*states)[i];
      DeviceState state = parse_state(state_json, previous, state_where);
      if (defaults.advance == Advance::kSeconds && !state_json.contains("at_seconds")) {
        if (defaults.seconds_per_state <= 0 && i > 0) {
          fail(at(state_where, "at_seconds"), "missing (or set \"seconds_per_state\")");
        }
        state.at_seconds = static_cast<double>(i) * defaults.seconds_per_state;
      }
      if (i > 0 && state.at_seconds < previous.at_seconds) {
        fail(at(state_where, "at_seconds"), "earlier than the state before");
      }
      if (state.used_bytes > device.total_bytes ||
          state.reserved_bytes > device.total_bytes - state.used_bytes) {
        fail(state_where, "used + reserved exceed the device's total memory");
      }
      device.states.push_back(state);
      previous = state;
    }
  }
  if (device.states.empty()) device.states.push_back(previous);
  return device;
}

}  // namespace

Scenario parse_scenario(std::string_view json_text) {
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::parse_error& error) {
    throw ScenarioError(std::string("invalid JSON: ") + error.what());
  }
  check_keys(root,
             {"description", "driver_version", "init_error", "advance", "seconds_per_state",
              "memory_v2", "process_api", "devices"},
             "");
  Scenario scenario;
  DeviceDefaults defaults;
  if (auto it = root.find("driver_version"); it != root.end()) {
    scenario.driver_version = get_string(*it, "driver_version");
  }
  if (auto it = root.find("init_error"); it != root.end()) {
    scenario.init_error = get_code(*it, "init_error");
  }
  if (auto it = root.find("advance"); it != root.end()) {
    const std::string advance = get_string(*it, "advance");
    if (advance == "calls") {
      scenario.advance = Advance::kCalls;
    } else if (advance == "seconds") {
      scenario.advance = Advance::kSeconds;
    } else {
      fail("advance", "expected \"calls\" or \"seconds\"");
    }
  }
  defaults.advance = scenario.advance;
  if (auto it = root.find("seconds_per_state"); it != root.end()) {
    defaults.seconds_per_state = get_number(*it, "seconds_per_state", 0, 1e6);
  }
  if (auto it = root.find("memory_v2"); it != root.end()) {
    defaults.memory_v2 = get_memory_v2(*it, "memory_v2");
  }
  if (auto it = root.find("process_api"); it != root.end()) {
    defaults.process_api = static_cast<int>(get_unsigned(*it, "process_api", 3));
    if (defaults.process_api < 1) fail("process_api", "expected 1, 2 or 3");
  }
  if (auto devices = root.find("devices"); devices != root.end()) {
    if (!devices->is_array()) fail("devices", "expected an array");
    for (size_t i = 0; i < devices->size(); ++i) {
      scenario.devices.push_back(parse_device((*devices)[i], i, defaults, at("devices", i)));
    }
  }
  return scenario;
}

Scenario default_scenario() {
  FakeDevice device;
  device.name = "NVIDIA A100-SXM4-80GB";
  device.uuid = "GPU-fa4e0000-0000-4000-8000-000000000000";
  device.total_bytes = 80ULL << 30;
  DeviceState idle;
  idle.used_bytes = 1ULL << 30;
  idle.reserved_bytes = 531ULL << 20;
  idle.temperature_celsius = 34;
  idle.power_milliwatts = 62500;
  device.states.push_back(idle);
  Scenario scenario;
  scenario.devices.push_back(device);
  return scenario;
}

}  // namespace memscope::fake_nvml
