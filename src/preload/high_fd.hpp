// A descriptor of the tracker's own, moved to the top of the descriptor table: the program
// expects the low numbers to be free (it may close and reopen its stdio, or dup2 onto them).
#pragma once

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

namespace memscope::track {

// Duplicates `fd` (close-on-exec) to the lowest free number at or above the table's top
// (RLIMIT_NOFILE, at most 65536) minus 1 minus `below_top`, and closes `fd`. Returns the new
// descriptor, or `fd` itself when the limit is under 64 or the move fails.
inline int move_fd_high(int fd, int below_top) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur < 64) return fd;
  const rlim_t top = limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur > 65536 ? 65536 : limit.rlim_cur;
  const int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, static_cast<int>(top) - 1 - below_top);
  if (moved < 0) return fd;
  ::close(fd);
  return moved;
}

}  // namespace memscope::track
