// Where procfs and sysfs are mounted. Collectors take these as parameters so tests can point
// them at the captured fixture trees under tests/data/linux/.
#pragma once

#include <string>

namespace memscope::procfs {

struct Roots {
  std::string proc = "/proc";
  std::string sys = "/sys";
};

}  // namespace memscope::procfs
