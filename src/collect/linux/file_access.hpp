// The file system calls the collectors make on <proc> and <sys>, behind an interface (the seam
// of ninja's DiskInterface): tests substitute failures that fixture files cannot produce, such
// as EACCES for a root test runner or a process exiting between two reads.
#pragma once

#include <cstddef>
#include <string>

namespace memscope::procfs {

class FileAccess {
 public:
  virtual ~FileAccess() = default;
  // open(path, O_RDONLY | O_CLOEXEC): the descriptor, or -errno.
  virtual int open_read(const char* path) = 0;
  // Reads from offset 0 (pread) until `size` bytes or the end of the file: the byte count, or
  // -errno. procfs regenerates a file's content on a read at offset 0, so a descriptor kept
  // open can be read again for fresh figures.
  virtual long read_from_start(int fd, char* buffer, size_t size) = 0;
  virtual void close_fd(int fd) = 0;
};

// The real system calls.
FileAccess& system_file_access();

// The whole content behind an open descriptor, read from offset 0 into `out` (its capacity is
// reused), at most max_bytes: 0, or the errno of the failure (out is then empty).
int read_fd(FileAccess& files, int fd, std::string& out, size_t max_bytes);

// open + read_fd + close: 0, or the errno of the failure.
int read_file(FileAccess& files, const char* path, std::string& out, size_t max_bytes);
int read_file(FileAccess& files, const std::string& path, std::string& out, size_t max_bytes);

}  // namespace memscope::procfs
