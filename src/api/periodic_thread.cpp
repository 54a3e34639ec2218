#include "api/periodic_thread.hpp"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <utility>

#include "core/log.hpp"

namespace memscope::api {

namespace {
using Clock = std::chrono::steady_clock;
// The PeriodicThread whose thread this is: lets stop() from a tick only ask.
thread_local const PeriodicThread* tls_current = nullptr;
}  // namespace

PeriodicThread::PeriodicThread(std::string owner, double interval_seconds)
    : owner_(std::move(owner)),
      interval_(std::chrono::duration_cast<Clock::duration>(
          std::chrono::duration<double>(interval_seconds))) {}

PeriodicThread::~PeriodicThread() { stop(); }

Status PeriodicThread::start(std::function<void()> tick) {
  std::lock_guard control(control_mutex_);
  if (running_) return make_error(fmt::format("{}: monitoring has already started", owner_));
  // A thread told to stop by its own tick has not been joined yet.
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard lock(stop_mutex_);
    stop_requested_ = false;
  }
  tick_ = std::move(tick);
  running_ = true;
  thread_ = std::thread([this] { run(); });
  return {};
}

void PeriodicThread::run() {
  tls_current = this;
  Clock::time_point next = Clock::now();
  for (;;) {
    tick_();
    next += interval_;
    const Clock::time_point now = Clock::now();
    if (next < now) next = now + interval_;
    std::unique_lock lock(stop_mutex_);
    if (stop_wakeup_.wait_until(lock, next, [this] { return stop_requested_; })) break;
  }
  running_ = false;
  tls_current = nullptr;
}

void PeriodicThread::stop() {
  {
    std::lock_guard lock(stop_mutex_);
    stop_requested_ = true;
  }
  stop_wakeup_.notify_all();
  if (tls_current == this) return;  // the thread cannot join itself
  std::lock_guard control(control_mutex_);
  if (thread_.joinable()) thread_.join();
  running_ = false;
}

int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status check_interval(const char* name, double seconds, double minimum) {
  if (!(std::isfinite(seconds) && seconds >= minimum)) {
    return make_error(
        fmt::format("{} must be a finite number >= {} (got {})", name, minimum, seconds));
  }
  return {};
}

Status check_pid(int pid, const std::string& proc_root) {
  if (pid < 0) return make_error(fmt::format("pid must be >= 0 (got {})", pid));
  if (pid > 0) {
    const std::string path = fmt::format("{}/{}", proc_root, pid);
    struct stat info {};
    if (stat(path.c_str(), &info) != 0) {
      return make_error(fmt::format("pid {} does not exist (no {})", pid, path));
    }
  }
  return {};
}

Result<std::unique_ptr<Sampler>> open_sampler(const SamplerSetup& setup) {
  SamplerOptions options;
  options.roots.proc = setup.proc_root;
  options.roots.sys = setup.sys_root;
  options.use_gpus = setup.gpus;
  options.nvml_library = setup.nvml_library;
  options.devices = setup.devices;
  auto sampler = Sampler::create(options);
  if (!sampler) return sampler.error();
  if (!setup.devices.empty() && !(*sampler)->has_gpus()) {
    return make_error(fmt::format(
        "devices: no GPU can be read ({})",
        (*sampler)->notes().empty() ? "NVML is not available" : (*sampler)->notes().front()));
  }
  for (const std::string& note : (*sampler)->notes()) log::info("{}", note);
  const int pid = setup.pid > 0 ? setup.pid : static_cast<int>(getpid());
  (*sampler)->set_scope(pid, pid);
  return sampler;
}

}  // namespace memscope::api
