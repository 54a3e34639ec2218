// Reads the memory cgroup a process belongs to, v2 or v1, and the tightest limit on its path up
// to the hierarchy's mount root.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "collect/linux/file_access.hpp"
#include "collect/linux/pid_files.hpp"
#include "collect/linux/roots.hpp"
#include "core/sample.hpp"

namespace memscope::procfs {

struct CgroupReading {
  std::optional<CgroupMemory> memory;  // nullopt: no memory cgroup to account against
  // memory.current / usage_in_bytes of the cgroup holding the tightest limit (limit_path): the
  // figure the limit is enforced against, which includes that cgroup's other members.
  uint64_t limit_holder_usage_bytes = 0;
  std::vector<std::string> notes;  // why something could not be read
};

// Where the files are:
// - a v1 memory controller line ("N:memory:/x", or combined "N:cpu,memory:/x") wins, since a
//   controller is attached to one hierarchy only: <sys>/fs/cgroup/memory/x;
// - else the v2 line "0::/x": <sys>/fs/cgroup/x, or <sys>/fs/cgroup/unified/x on a hybrid host.
// "0::/" inside a container is its cgroup namespace root, whose files sit at the mount root.
// When the path is not found under the mount (a container without a cgroup namespace sees the
// host path but has only its own cgroup mounted), the mount root is used, with a note.
// The root cgroup of a host has no memory.current: then memory is nullopt (no cgroup limit).
CgroupReading read_memory_cgroup(FileAccess& files, const Roots& roots,
                                 const CgroupMembership& membership);

}  // namespace memscope::procfs
