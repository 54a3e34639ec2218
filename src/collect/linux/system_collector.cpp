#include "collect/linux/system_collector.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <system_error>
#include <utility>

#include "collect/linux/cgroup_reader.hpp"
#include "collect/linux/pid_files.hpp"
#include "collect/linux/system_files.hpp"

namespace memscope::procfs {
namespace {

constexpr size_t kMaxProcFileBytes = 1024 * 1024;
constexpr const char* kNoPressureNote = "memory pressure (PSI) unavailable";

std::string unreadable(const std::string& path, int error) {
  return fmt::format("{} unreadable: {}", path, std::generic_category().message(error));
}

}  // namespace

SystemCollector::SystemCollector(Roots roots, FileAccess* files)
    : roots_(std::move(roots)), files_(files != nullptr ? files : &system_file_access()) {}

SystemSample SystemCollector::collect(int pid) {
  SystemSample sample;
  auto& notes = sample.notes;

  const std::string meminfo_path = roots_.proc + "/meminfo";
  if (const int error = read_file(*files_, meminfo_path, buffer_, kMaxProcFileBytes)) {
    notes.push_back(unreadable(meminfo_path, error));
  } else {
    bool estimated = false;
    if (auto meminfo = parse_meminfo(buffer_, &estimated)) {
      sample.meminfo = *meminfo;
      if (estimated) {
        notes.push_back(
            "MemAvailable missing (Linux < 3.14): estimated as MemFree + Buffers + Cached");
      }
    } else {
      notes.push_back(fmt::format("{}: {}", meminfo_path, meminfo.message()));
    }
  }

  const std::string pressure_path = roots_.proc + "/pressure/memory";
  if (const int error = read_file(*files_, pressure_path, buffer_, kMaxProcFileBytes)) {
    // No PSI in the kernel (ENOENT) or switched off at boot (EOPNOTSUPP): normal, not an error.
    notes.push_back(error == ENOENT || error == EOPNOTSUPP
                        ? std::string(kNoPressureNote)
                        : fmt::format("{}: {}", kNoPressureNote, unreadable(pressure_path, error)));
  } else if (auto pressure = parse_pressure(buffer_)) {
    sample.pressure = *pressure;
  } else {
    notes.push_back(fmt::format("{}: {}: {}", kNoPressureNote, pressure_path, pressure.message()));
  }

  const std::string vmstat_path = roots_.proc + "/vmstat";
  if (const int error = read_file(*files_, vmstat_path, buffer_, kMaxProcFileBytes)) {
    notes.push_back(unreadable(vmstat_path, error));
  } else if (auto vmstat = parse_vmstat(buffer_)) {
    sample.vmstat = *vmstat;
  } else {
    notes.push_back(fmt::format("{}: {}", vmstat_path, vmstat.message()));
  }

  const std::string cgroup_path =
      roots_.proc + "/" + (pid == 0 ? std::string("self") : std::to_string(pid)) + "/cgroup";
  uint64_t cgroup_used = 0;
  // An exiting process leaves its cgroups before it is reaped (on its way out, as a zombie,
  // /proc/PID/cgroup names the root cgroups; once reaped there is no file). The limit that
  // killed it is that of the cgroup it was in, so once a non-root cgroup is known for this pid,
  // a move to the root or a vanished file means "exited" and the known membership is kept.
  int error = read_file(*files_, cgroup_path, buffer_, kMaxProcFileBytes);
  if (pid != 0) {
    const auto at_root = [](const CgroupMembership& membership) {
      const auto root = [](const std::optional<std::string>& path) { return !path || *path == "/"; };
      return root(membership.v1_memory_path) && root(membership.v2_path);
    };
    const bool known = membership_pid_ == pid && !at_root(parse_pid_cgroup(membership_));
    if (known && (error != 0 || at_root(parse_pid_cgroup(buffer_)))) {
      buffer_ = membership_;
      error = 0;
    } else if (error == 0) {
      membership_pid_ = pid;
      membership_ = buffer_;
    }
  }
  if (error != 0) {
    notes.push_back(unreadable(cgroup_path, error) + ": no cgroup limit applied");
  } else {
    CgroupReading reading = read_memory_cgroup(*files_, roots_, parse_pid_cgroup(buffer_));
    for (auto& note : reading.notes) notes.push_back(std::move(note));
    sample.cgroup = std::move(reading.memory);
    cgroup_used = reading.limit_holder_usage_bytes;
  }

  // The limit every "percent used" is measured against: the tighter of the cgroup's and RAM.
  const uint64_t total = sample.meminfo.total_bytes;
  const auto& cgroup = sample.cgroup;
  if (cgroup && cgroup->limit_bytes && (total == 0 || *cgroup->limit_bytes <= total)) {
    sample.limit_bytes = *cgroup->limit_bytes;
    sample.limit_source = "cgroup:" + cgroup->limit_path;
    sample.used_bytes = cgroup_used;
  } else {
    sample.limit_bytes = total;
    sample.limit_source = "MemTotal";
    const uint64_t available = sample.meminfo.available_bytes;
    sample.used_bytes = total > available ? total - available : 0;
  }
  return sample;
}

}  // namespace memscope::procfs
