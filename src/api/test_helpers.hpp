// Test helpers of the api module: waiting for a condition, and a child process whose memory
// grows at a known pace (for the OOM and leak detectors).
#pragma once

#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <functional>
#include <stdexcept>
#include <thread>

namespace memscope {

// Polls `done` every 20 ms for at most `seconds`; true once it holds.
inline bool wait_until(const std::function<bool()>& done, double seconds) {
  using std::chrono::steady_clock;
  const auto deadline = steady_clock::now() + std::chrono::duration_cast<steady_clock::duration>(
                                                  std::chrono::duration<double>(seconds));
  while (!done()) {
    if (steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

// A forked child that touches `start_bytes` of memory, says so on a pipe, then touches
// `step_bytes` more every `step_ms` until `top_bytes`, and holds it until killed. The memory is
// one anonymous mapping touched with memset: no malloc after fork.
class MemoryChild {
 public:
  MemoryChild(size_t start_bytes, size_t step_bytes, int step_ms, size_t top_bytes) {
    int ready[2];
    if (pipe(ready) != 0) throw std::runtime_error("pipe");
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork");
    if (pid_ == 0) {
      close(ready[0]);
      run_child(ready[1], start_bytes, step_bytes, step_ms, top_bytes);
    }
    close(ready[1]);
    pollfd wait_ready{ready[0], POLLIN, 0};
    char byte = 0;
    const bool started = poll(&wait_ready, 1, 10'000) == 1 && read(ready[0], &byte, 1) == 1;
    close(ready[0]);
    if (!started) {
      kill_and_reap();
      throw std::runtime_error("the memory child did not start");
    }
  }
  ~MemoryChild() { kill_and_reap(); }
  MemoryChild(const MemoryChild&) = delete;
  MemoryChild& operator=(const MemoryChild&) = delete;

  int pid() const { return pid_; }

 private:
  [[noreturn]] static void run_child(int ready_fd, size_t start_bytes, size_t step_bytes,
                                     int step_ms, size_t top_bytes) {
    void* mapping =
        mmap(nullptr, top_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapping == MAP_FAILED) _exit(2);
    auto* memory = static_cast<char*>(mapping);
    size_t touched = std::min(start_bytes, top_bytes);
    std::memset(memory, 1, touched);
    const char byte = 'r';
    if (write(ready_fd, &byte, 1) != 1) _exit(3);
    close(ready_fd);
    const timespec step{step_ms / 1000, static_cast<long>(step_ms % 1000) * 1'000'000};
    while (step_bytes > 0 && touched < top_bytes) {
      nanosleep(&step, nullptr);
      const size_t more = std::min(step_bytes, top_bytes - touched);
      std::memset(memory + touched, 1, more);
      touched += more;
    }
    for (;;) pause();
  }

  void kill_and_reap() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  pid_t pid_ = -1;
};

}  // namespace memscope
