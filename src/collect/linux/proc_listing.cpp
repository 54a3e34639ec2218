#include "collect/linux/proc_listing.hpp"

#include <algorithm>
#include <cerrno>

#include "collect/linux/text_scan.hpp"

namespace memscope::procfs {

PidLister::~PidLister() {
  if (dir_ != nullptr) closedir(dir_);
}

int PidLister::list(std::vector<PidEntry>& out) {
  out.clear();
  if (dir_ == nullptr) {
    dir_ = opendir(proc_root_.c_str());
    if (dir_ == nullptr) return errno;
  } else {
    rewinddir(dir_);
  }
  while (const dirent* entry = readdir(dir_)) {
    const char first = entry->d_name[0];
    if (first < '1' || first > '9') continue;
    const auto pid = to_int(entry->d_name);
    if (!pid || *pid <= 0) continue;
    out.push_back({*pid, static_cast<uint64_t>(entry->d_ino)});
  }
  std::sort(out.begin(), out.end(),
            [](const PidEntry& a, const PidEntry& b) { return a.pid < b.pid; });
  return 0;
}

}  // namespace memscope::procfs
