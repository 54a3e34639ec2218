// Host-wide memory state: /proc/meminfo, /proc/pressure/memory, /proc/vmstat, and the memory
// cgroup (v1 or v2) of one process with the tightest limit on its path.
#pragma once

#include <string>

#include "collect/linux/file_access.hpp"
#include "collect/linux/roots.hpp"
#include "core/sample.hpp"

namespace memscope::procfs {

class SystemCollector {
 public:
  // files: the seam for tests; nullptr means the real system calls.
  explicit SystemCollector(Roots roots, FileAccess* files = nullptr);

  // pid 0 is the caller itself (<proc>/self). Never fails: whatever cannot be read degrades to
  // zeros or absent values with a line in SystemSample::notes. A missing /proc/pressure/memory
  // gives pressure.available == false and the note "memory pressure (PSI) unavailable".
  // limit_bytes is the smaller of the cgroup's tightest limit and MemTotal; used_bytes is then
  // the usage of the cgroup holding that limit, or MemTotal - MemAvailable.
  // A process that has exited (a zombie reports the root cgroups, a reaped one nothing) is
  // measured against the cgroup it was in when last seen alive: the limit that killed it.
  SystemSample collect(int pid = 0);

  const Roots& roots() const { return roots_; }

 private:
  Roots roots_;
  FileAccess* files_;
  std::string buffer_;
  int membership_pid_ = -1;        // whose /proc/PID/cgroup membership_ holds
  std::string membership_;         // as read while that process was alive
};

}  // namespace memscope::procfs
