// A background thread that calls a function every interval until stopped: the monitor loop of
// MemoryProfiler, MemoryLeakDetector and DistributedMemoryMonitor. stop() from inside the
// function (a user callback calling stop_monitoring()) only asks: the thread ends after it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include <memory>
#include <vector>

#include "collect/sampler.hpp"
#include "core/result.hpp"

namespace memscope::api {

class PeriodicThread {
 public:
  PeriodicThread(std::string owner, double interval_seconds);
  ~PeriodicThread();
  PeriodicThread(const PeriodicThread&) = delete;
  PeriodicThread& operator=(const PeriodicThread&) = delete;

  // Calls tick at once, then every interval (after a slow tick, a whole interval later). An
  // error when already running.
  Status start(std::function<void()> tick);
  // Idempotent; joins unless called from the tick itself.
  void stop();
  bool running() const { return running_; }

 private:
  void run();

  const std::string owner_;
  const std::chrono::steady_clock::duration interval_;
  std::function<void()> tick_;
  std::mutex control_mutex_;  // start and stop, one at a time
  std::thread thread_;
  std::mutex stop_mutex_;
  std::condition_variable stop_wakeup_;
  bool stop_requested_ = false;
  std::atomic<bool> running_{false};
};

// Seconds since the Unix epoch in milliseconds, for samples' wall-clock times.
int64_t unix_ms_now();

// Shared option checks; errors name the option.
Status check_interval(const char* name, double seconds, double minimum);
Status check_pid(int pid, const std::string& proc_root);

// The sampler every API object watches with: host and GPUs (all, or `devices`, which then must
// be readable) under the given roots, scoped to the process tree of `pid` (0: this process);
// its notes (no NVML, unreadable files) are logged.
struct SamplerSetup {
  std::string proc_root;
  std::string sys_root;
  bool gpus = true;
  std::string nvml_library;
  std::vector<int> devices;
  int pid = 0;
};
Result<std::unique_ptr<Sampler>> open_sampler(const SamplerSetup& setup);

}  // namespace memscope::api
