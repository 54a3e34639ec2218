// Test helper (header only, used by the *_test.cpp beside it): the real file system calls, with
// failures injected where fixture files cannot produce them. A root test runner reads every
// plain file, so EACCES comes from here; a process that exits between two reads is simulated
// with hooks that run just before an open or a read.
#pragma once

#include <cerrno>
#include <cstdint>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>

#include "collect/linux/file_access.hpp"

namespace memscope::procfs {

class FaultFileAccess final : public FileAccess {
 public:
  // EACCES for opening `path`.
  void deny(const std::string& path) { denied_.insert(path); }
  // EACCES for every path a fixture's eacces.txt lists (relative to the fixture folder).
  void deny_listed_in(const std::string& fixture) {
    std::ifstream list(fixture + "/eacces.txt");
    for (std::string line; std::getline(list, line);) {
      if (!line.empty()) deny(fixture + "/" + line);
    }
  }
  // The next read of a descriptor opened on `path` fails with `error` (once).
  void fail_next_read(const std::string& path, int error) { read_failures_[path] = error; }
  // Opens beyond this many descriptors open at once fail with EMFILE.
  void set_max_open(size_t limit) { max_open_ = limit; }
  // Run just before opening / reading a path.
  std::function<void(const std::string&)> before_open;
  std::function<void(const std::string&)> before_read;

  size_t open_now() const { return paths_.size(); }
  // Descriptors open on paths that start with `prefix` ("/proc/PID/").
  size_t open_under(const std::string& prefix) const {
    size_t count = 0;
    for (const auto& entry : paths_) count += entry.second.rfind(prefix, 0) == 0 ? 1U : 0U;
    return count;
  }

  int open_read(const char* path) override {
    if (before_open) before_open(path);
    if (denied_.count(path) != 0) return -EACCES;
    if (paths_.size() >= max_open_) return -EMFILE;
    const int fd = real().open_read(path);
    if (fd >= 0) paths_[fd] = path;
    return fd;
  }

  long read_from_start(int fd, char* buffer, size_t size) override {
    const auto open = paths_.find(fd);
    if (open != paths_.end()) {
      if (before_read) before_read(open->second);
      const auto failure = read_failures_.find(open->second);
      if (failure != read_failures_.end()) {
        const int error = failure->second;
        read_failures_.erase(failure);
        return -error;
      }
    }
    return real().read_from_start(fd, buffer, size);
  }

  void close_fd(int fd) override {
    paths_.erase(fd);
    real().close_fd(fd);
  }

 private:
  static FileAccess& real() { return system_file_access(); }

  std::set<std::string> denied_;
  std::map<std::string, int> read_failures_;
  std::map<int, std::string> paths_;  // open descriptors
  size_t max_open_ = SIZE_MAX;
};

}  // namespace memscope::procfs
