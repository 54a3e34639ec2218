// A tree of sleeping processes for the benchmarks: a root that forks size-1 children, each
// touching some memory. Header-only, since every bench/*.cpp is a program of its own.
#pragma once

#include <fcntl.h>
#include <fmt/core.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace memscope::bench {

struct Tree {
  pid_t root = -1;
  std::vector<int> pids;  // root first, then its children
};

inline bool read_all(int fd, void* data, size_t size) {
  auto* bytes = static_cast<char*>(data);
  while (size > 0) {
    const ssize_t got = read(fd, bytes, size);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    bytes += got;
    size -= static_cast<size_t>(got);
  }
  return true;
}

inline void touch_memory(size_t bytes) {
  if (bytes == 0) return;
  void* memory = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (memory != MAP_FAILED) std::memset(memory, 1, bytes);
}

// The root blocks SIGTERM and waits for it; then it kills and reaps its children and exits.
// Children die with the root (PR_SET_PDEATHSIG), and the root with this program.
inline std::optional<Tree> spawn_tree(int size, size_t bytes_per_process) {
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) != 0) return std::nullopt;
  const pid_t root = fork();
  if (root < 0) return std::nullopt;
  if (root == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(ready[0]);
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, nullptr);
    int up[2];
    if (pipe2(up, O_CLOEXEC) != 0) _exit(1);
    std::vector<pid_t> children;
    children.reserve(static_cast<size_t>(size));
    for (int i = 1; i < size; ++i) {
      const pid_t child = fork();
      if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(ready[1]);
        close(up[0]);
        touch_memory(bytes_per_process);
        const char byte = 'x';
        if (write(up[1], &byte, 1) != 1) _exit(1);
        close(up[1]);
        for (;;) pause();
      }
      if (child < 0) break;
      children.push_back(child);
    }
    close(up[1]);
    for (size_t i = 0; i < children.size(); ++i) {
      char byte = 0;
      if (!read_all(up[0], &byte, 1)) break;
    }
    close(up[0]);
    touch_memory(bytes_per_process);
    const uint32_t count = static_cast<uint32_t>(children.size());
    bool written = write(ready[1], &count, sizeof count) == static_cast<ssize_t>(sizeof count);
    if (written && count > 0) {
      const size_t bytes = children.size() * sizeof(pid_t);
      written = write(ready[1], children.data(), bytes) == static_cast<ssize_t>(bytes);
    }
    close(ready[1]);
    int signal_number = 0;
    sigwait(&term, &signal_number);
    for (pid_t child : children) kill(child, SIGKILL);
    for (pid_t child : children) waitpid(child, nullptr, 0);
    _exit(written ? 0 : 1);
  }
  close(ready[1]);
  Tree tree;
  tree.root = root;
  tree.pids.push_back(root);
  uint32_t count = 0;
  bool ok = read_all(ready[0], &count, sizeof count);
  if (ok) {
    std::vector<pid_t> children(count);
    ok = count == 0 || read_all(ready[0], children.data(), children.size() * sizeof(pid_t));
    tree.pids.insert(tree.pids.end(), children.begin(), children.end());
  }
  close(ready[0]);
  if (!ok || tree.pids.size() != static_cast<size_t>(size)) {
    kill(root, SIGTERM);
    waitpid(root, nullptr, 0);
    std::fprintf(stderr, "sample_cost: could only spawn %zu of %d processes\n", tree.pids.size(),
                 size);
    return std::nullopt;
  }
  return tree;
}

// What one process of the tree looks like to smaps_rollup (its cost grows with mappings and
// resident pages): "RSS 1276 KiB, PSS 385 KiB, 41 mappings".
inline std::string describe_process(int pid) {
  std::string text;
  std::vector<char> buffer(1 << 16);
  const auto read_text = [&](const char* name) {
    text.clear();
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/%s", pid, name);
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    for (;;) {
      const ssize_t got = read(fd, buffer.data(), buffer.size());
      if (got <= 0) break;
      text.append(buffer.data(), static_cast<size_t>(got));
    }
    close(fd);
  };
  const auto kib_of = [&](std::string_view key) {
    const size_t at = text.find(key);
    return at == std::string::npos ? 0L : std::atol(text.c_str() + at + key.size());
  };
  read_text("smaps_rollup");
  const long rss = kib_of("\nRss:");
  const long pss = kib_of("\nPss:");
  read_text("maps");
  const auto mappings = std::count(text.begin(), text.end(), '\n');
  return fmt::format("RSS {} KiB, PSS {} KiB, {} mappings", rss, pss, mappings);
}

inline void end_tree(const Tree& tree) {
  kill(tree.root, SIGTERM);
  waitpid(tree.root, nullptr, 0);
}

}  // namespace memscope::bench
