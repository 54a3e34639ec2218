#include "collect/linux/file_access.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace memscope::procfs {
namespace {

class SystemFileAccess final : public FileAccess {
 public:
  int open_read(const char* path) override {
    int fd;
    do {
      fd = ::open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    } while (fd < 0 && errno == EINTR);
    return fd < 0 ? -errno : fd;
  }

  long read_from_start(int fd, char* buffer, size_t size) override {
    size_t total = 0;
    while (total < size) {
      const ssize_t got = ::pread(fd, buffer + total, size - total, static_cast<off_t>(total));
      if (got < 0) {
        if (errno == EINTR) continue;
        return -errno;
      }
      if (got == 0) break;
      total += static_cast<size_t>(got);
    }
    return static_cast<long>(total);
  }

  void close_fd(int fd) override { ::close(fd); }
};

}  // namespace

FileAccess& system_file_access() {
  static SystemFileAccess files;
  return files;
}

int read_fd(FileAccess& files, int fd, std::string& out, size_t max_bytes) {
  size_t size = std::min(std::max<size_t>(out.capacity(), 4096), max_bytes);
  for (;;) {
    out.resize(size);
    const long got = files.read_from_start(fd, out.data(), size);
    if (got < 0) {
      out.clear();
      return static_cast<int>(-got);
    }
    const auto bytes = static_cast<size_t>(got);
    if (bytes < size || size >= max_bytes) {
      out.resize(std::min(bytes, size));
      return 0;
    }
    // The buffer filled up: there may be more. Read it all again, from the start, into a larger
    // buffer, so the content is one consistent snapshot.
    size = std::min(size * 2, max_bytes);
  }
}

int read_file(FileAccess& files, const char* path, std::string& out, size_t max_bytes) {
  const int fd = files.open_read(path);
  if (fd < 0) {
    out.clear();
    return -fd;
  }
  const int error = read_fd(files, fd, out, max_bytes);
  files.close_fd(fd);
  return error;
}

int read_file(FileAccess& files, const std::string& path, std::string& out, size_t max_bytes) {
  return read_file(files, path.c_str(), out, max_bytes);
}

}  // namespace memscope::procfs
