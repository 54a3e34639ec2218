// Lists the process directories of a procfs root, without allocating per call.
#pragma once

#include <dirent.h>

#include <cstdint>
#include <string>
#include <vector>

namespace memscope::procfs {

struct PidEntry {
  int pid = 0;
  uint64_t inode = 0;  // d_ino: procfs gives a new one to a new process's directory
};

class PidLister {
 public:
  explicit PidLister(std::string proc_root) : proc_root_(std::move(proc_root)) {}
  ~PidLister();
  PidLister(const PidLister&) = delete;
  PidLister& operator=(const PidLister&) = delete;

  // The numeric entries of the root (one getdents pass over a directory kept open and rewound),
  // sorted by pid, into `out`. Returns 0, or the errno of opening the root.
  int list(std::vector<PidEntry>& out);

 private:
  std::string proc_root_;
  DIR* dir_ = nullptr;
};

}  // namespace memscope::procfs
