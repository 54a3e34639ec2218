#include "store/rows.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace memscope::store::rows {
namespace {

using nlohmann::json;

void bind_strings(sqlite::Binder& bind, const std::vector<std::string>& strings) {
  if (strings.empty()) {
    bind.null();
  } else {
    bind(encode_strings(strings));
  }
}

Status read_strings(sqlite::Columns& columns, std::vector<std::string>& strings, const char* what) {
  strings.clear();
  if (columns.next_is_null()) {
    columns.skip();
    return Status::success();
  }
  auto decoded = decode_strings(columns.text());
  if (!decoded) return make_error(std::string(what) + ": " + decoded.message());
  strings = std::move(*decoded);
  return Status::success();
}

void bind_pressure_line(sqlite::Binder& bind, const PressureLine& line) {
  bind(line.avg10)(line.avg60)(line.avg300)(line.total_microseconds);
}

void read_pressure_line(sqlite::Columns& columns, PressureLine& line) {
  line.avg10 = columns.real();
  line.avg60 = columns.real();
  line.avg300 = columns.real();
  line.total_microseconds = columns.u64();
}

}  // namespace

std::string placeholders(std::string_view columns) {
  const auto count = std::count(columns.begin(), columns.end(), ',') + 1;
  std::string text = "?";
  for (long i = 1; i < count; ++i) text += ", ?";
  return text;
}

const char* const kSampleColumns =
    "t_seconds, unix_ms, "
    "mem_total_bytes, mem_free_bytes, mem_available_bytes, mem_cached_bytes, mem_shmem_bytes, "
    "swap_total_bytes, swap_free_bytes, "
    "psi_available, psi_some_avg10, psi_some_avg60, psi_some_avg300, psi_some_total_us, "
    "psi_full_avg10, psi_full_avg60, psi_full_avg300, psi_full_total_us, "
    "vm_has_oom_kill, vm_oom_kill, vm_pgmajfault, "
    "cg_version, cg_path, cg_usage_bytes, cg_limit_bytes, cg_limit_path, cg_oom_events, "
    "cg_oom_kill_events, cg_swap_usage_bytes, "
    "limit_bytes, limit_source, used_bytes, notes";

void bind_sample(sqlite::Binder& bind, const Sample& sample) {
  const SystemSample& system = sample.system;
  const MemInfo& meminfo = system.meminfo;
  bind(sample.t_seconds)(sample.unix_ms);
  bind(meminfo.total_bytes)(meminfo.free_bytes)(meminfo.available_bytes)(meminfo.cached_bytes);
  bind(meminfo.shmem_bytes)(meminfo.swap_total_bytes)(meminfo.swap_free_bytes);
  bind(system.pressure.available);
  bind_pressure_line(bind, system.pressure.some);
  bind_pressure_line(bind, system.pressure.full);
  bind(system.vmstat.has_oom_kill)(system.vmstat.oom_kill)(system.vmstat.pgmajfault);
  if (system.cgroup) {
    const CgroupMemory& cgroup = *system.cgroup;
    bind(cgroup.version)(cgroup.path)(cgroup.usage_bytes)(cgroup.limit_bytes)(cgroup.limit_path);
    bind(cgroup.oom_events)(cgroup.oom_kill_events)(cgroup.swap_usage_bytes);
  } else {
    for (int i = 0; i < 8; ++i) bind.null();
  }
  bind(system.limit_bytes)(system.limit_source)(system.used_bytes);
  bind_strings(bind, system.notes);
}

Status read_sample(sqlite::Columns& columns, Sample& sample) {
  SystemSample& system = sample.system;
  MemInfo& meminfo = system.meminfo;
  sample.t_seconds = columns.real();
  sample.unix_ms = columns.i64();
  meminfo.total_bytes = columns.u64();
  meminfo.free_bytes = columns.u64();
  meminfo.available_bytes = columns.u64();
  meminfo.cached_bytes = columns.u64();
  meminfo.shmem_bytes = columns.u64();
  meminfo.swap_total_bytes = columns.u64();
  meminfo.swap_free_bytes = columns.u64();
  system.pressure.available = columns.boolean();
  read_pressure_line(columns, system.pressure.some);
  read_pressure_line(columns, system.pressure.full);
  system.vmstat.has_oom_kill = columns.boolean();
  system.vmstat.oom_kill = columns.u64();
  system.vmstat.pgmajfault = columns.u64();
  if (columns.next_is_null()) {
    system.cgroup.reset();
    for (int i = 0; i < 8; ++i) columns.skip();
  } else {
    CgroupMemory& cgroup = system.cgroup.emplace();
    cgroup.version = columns.i32();
    cgroup.path = columns.text();
    cgroup.usage_bytes = columns.u64();
    cgroup.limit_bytes = columns.optional<uint64_t>();
    cgroup.limit_path = columns.text();
    cgroup.oom_events = columns.u64();
    cgroup.oom_kill_events = columns.u64();
    cgroup.swap_usage_bytes = columns.u64();
  }
  system.limit_bytes = columns.u64();
  system.limit_source = columns.text();
  system.used_bytes = columns.u64();
  return read_strings(columns, system.notes, "notes");
}

const char* const kProcessColumns =
    "pid, start_time_ticks, ppid, comm, cmdline, rank, local_rank, world_size";

void bind_process(sqlite::Binder& bind, const ProcessSample& process) {
  bind(process.pid)(process.start_time_ticks)(process.ppid)(process.comm)(process.cmdline);
  bind(process.rank)(process.local_rank)(process.world_size);
}

void read_process(sqlite::Columns& columns, ProcessSample& process) {
  process.pid = columns.i32();
  process.start_time_ticks = columns.u64();
  process.ppid = columns.i32();
  process.comm = columns.text();
  process.cmdline = columns.text();
  process.rank = columns.optional<int>();
  process.local_rank = columns.optional<int>();
  process.world_size = columns.optional<int>();
}

bool same_process_row(const ProcessSample& a, const ProcessSample& b) {
  return a.pid == b.pid && a.start_time_ticks == b.start_time_ticks && a.ppid == b.ppid &&
         a.comm == b.comm && a.cmdline == b.cmdline && a.rank == b.rank &&
         a.local_rank == b.local_rank && a.world_size == b.world_size;
}

const char* const kProcessSampleColumns =
    "state, rss_bytes, pss_bytes, uss_bytes, swap_bytes, gpu_bytes, smaps_readable, "
    "smaps_age_seconds";

void bind_process_sample(sqlite::Binder& bind, const ProcessSample& process) {
  bind(std::string_view(&process.state, 1));
  bind(process.rss_bytes)(process.pss_bytes)(process.uss_bytes)(process.swap_bytes);
  bind(process.gpu_bytes)(process.smaps_readable)(process.smaps_age_seconds);
}

void read_process_sample(sqlite::Columns& columns, ProcessSample& process) {
  const std::string state = columns.text();
  process.state = state.empty() ? '\0' : state.front();
  process.rss_bytes = columns.u64();
  process.pss_bytes = columns.u64();
  process.uss_bytes = columns.u64();
  process.swap_bytes = columns.u64();
  process.gpu_bytes = columns.u64();
  process.smaps_readable = columns.boolean();
  process.smaps_age_seconds = columns.real();
}

const char* const kDeviceColumns = "device_index, uuid, name, total_bytes, memory_api";

void bind_device(sqlite::Binder& bind, const DeviceSample& device) {
  bind(device.index)(device.uuid)(device.name)(device.total_bytes)(device.memory_api);
}

void read_device(sqlite::Columns& columns, DeviceSample& device) {
  device.index = columns.i32();
  device.uuid = columns.text();
  device.name = columns.text();
  device.total_bytes = columns.u64();
  device.memory_api = columns.text();
}

bool same_device_row(const DeviceSample& a, const DeviceSample& b) {
  return a.index == b.index && a.uuid == b.uuid && a.name == b.name &&
         a.total_bytes == b.total_bytes && a.memory_api == b.memory_api;
}

const char* const kDeviceSampleColumns =
    "ok, errors, used_bytes, free_bytes, reserved_bytes, utilization_percent, "
    "memory_utilization_percent, temperature_celsius, power_watts";

void bind_device_sample(sqlite::Binder& bind, const DeviceSample& device) {
  bind(device.ok);
  bind_strings(bind, device.errors);
  bind(device.used_bytes)(device.free_bytes)(device.reserved_bytes);
  bind(device.utilization_percent)(device.memory_utilization_percent);
  bind(device.temperature_celsius)(device.power_watts);
}

Status read_device_sample(sqlite::Columns& columns, DeviceSample& device) {
  device.ok = columns.boolean();
  if (Status read = read_strings(columns, device.errors, "device errors"); !read) return read;
  device.used_bytes = columns.u64();
  device.free_bytes = columns.u64();
  device.reserved_bytes = columns.optional<uint64_t>();
  device.utilization_percent = columns.optional<unsigned>();
  device.memory_utilization_percent = columns.optional<unsigned>();
  device.temperature_celsius = columns.optional<unsigned>();
  device.power_watts = columns.optional<double>();
  return Status::success();
}

const char* const kGpuProcessColumns = "pid, used_bytes, graphics";

void bind_gpu_process(sqlite::Binder& bind, const GpuProcess& process) {
  bind(static_cast<int64_t>(process.pid))(process.used_bytes)(process.graphics);
}

void read_gpu_process(sqlite::Columns& columns, GpuProcess& process) {
  process.pid = static_cast<unsigned>(columns.i64());
  process.used_bytes = columns.u64();
  process.graphics = columns.boolean();
}

std::string encode_strings(const std::vector<std::string>& strings) {
  return json(strings).dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<std::vector<std::string>> decode_strings(std::string_view text) {
  const json parsed = json::parse(text, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_array()) return make_error("not a JSON array");
  std::vector<std::string> strings;
  strings.reserve(parsed.size());
  for (const json& item : parsed) {
    if (!item.is_string()) return make_error("not a JSON array of strings");
    strings.push_back(item.get<std::string>());
  }
  return strings;
}

std::string encode_ints(const std::vector<int>& values) { return json(values).dump(); }

Result<std::vector<int>> decode_ints(std::string_view text) {
  const json parsed = json::parse(text, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_array()) return make_error("not a JSON array");
  std::vector<int> values;
  values.reserve(parsed.size());
  for (const json& item : parsed) {
    if (!item.is_number_integer()) return make_error("not a JSON array of integers");
    values.push_back(item.get<int>());
  }
  return values;
}

}  // namespace memscope::store::rows
