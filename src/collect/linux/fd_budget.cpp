#include "collect/linux/fd_budget.hpp"

#include <sys/resource.h>

#include <mutex>

namespace memscope::procfs {

size_t raise_open_file_limit() {
  static std::once_flag once;
  std::call_once(once, [] {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
    // An unlimited hard limit is still bounded by fs.nr_open (1048576 by default): try that
    // and smaller values until the kernel accepts one.
    rlim_t want = limit.rlim_max == RLIM_INFINITY ? rlim_t{1} << 20 : limit.rlim_max;
    while (want > limit.rlim_cur) {
      rlimit raised{want, limit.rlim_max};
      if (setrlimit(RLIMIT_NOFILE, &raised) == 0) break;
      want /= 2;
    }
  });
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024;
  return limit.rlim_cur == RLIM_INFINITY ? size_t{1} << 20 : static_cast<size_t>(limit.rlim_cur);
}

}  // namespace memscope::procfs
