#include "cli/common.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

#include "cli/exit_codes.hpp"
#include "collect/linux/file_access.hpp"
#include "core/log.hpp"

namespace memscope::cli {

Status check_writable(const std::string& path) {
  if (path.empty()) return make_error("the output path is empty");
  const bool existed = access(path.c_str(), F_OK) == 0;
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return make_error(fmt::format("cannot write '{}': {}", path, std::strerror(errno)));
  close(fd);
  if (!existed) unlink(path.c_str());
  return {};
}

namespace {
int64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}
}  // namespace

RecordingClock::RecordingClock() : start_ns_(monotonic_ns()) {}

double RecordingClock::seconds() const {
  return static_cast<double>(monotonic_ns() - start_ns_) / 1e9;
}

int64_t RecordingClock::unix_ms() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

SignalWatcher::SignalWatcher(std::initializer_list<int> signals) {
  sigset_t mask;
  sigemptyset(&mask);
  for (int signal_number : signals) sigaddset(&mask, signal_number);
  sigprocmask(SIG_BLOCK, &mask, &previous_);
  fd_ = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
}

SignalWatcher::~SignalWatcher() {
  if (fd_ >= 0) close(fd_);
  sigprocmask(SIG_SETMASK, &previous_, nullptr);
}

std::optional<SignalWatcher::Received> SignalWatcher::wait(double timeout_seconds) {
  if (fd_ < 0) return std::nullopt;
  pollfd descriptor{fd_, POLLIN, 0};
  // Clamped to a day: a huge --interval must not overflow poll's int milliseconds.
  const int timeout_ms =
      timeout_seconds <= 0
          ? 0
          : static_cast<int>(std::ceil(std::min(timeout_seconds, 86400.0) * 1000.0));
  if (poll(&descriptor, 1, timeout_ms) <= 0) return std::nullopt;
  signalfd_siginfo info{};
  if (read(fd_, &info, sizeof info) != static_cast<ssize_t>(sizeof info)) return std::nullopt;
  Received received;
  received.signal = static_cast<int>(info.ssi_signo);
  received.from_terminal = info.ssi_code == SI_KERNEL;
  received.sender_pid = static_cast<int>(info.ssi_pid);
  return received;
}

uint64_t own_peak_rss_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      std::istringstream fields(line.substr(6));
      uint64_t kib = 0;
      fields >> kib;
      return kib * 1024;
    }
  }
  return 0;
}

Result<std::unique_ptr<Sampler>> open_sampler(const GlobalOptions& global,
                                              const std::vector<int>& devices, bool use_gpus) {
  SamplerOptions options;
  options.roots.proc = global.proc_root;
  options.roots.sys = global.sys_root;
  options.nvml_library = global.nvml_library;
  options.devices = devices;
  options.use_gpus = use_gpus;
  auto sampler = Sampler::create(options);
  if (sampler) {
    for (const auto& note : (*sampler)->notes()) log::info("{}", note);
  }
  return sampler;
}

Launch launch(const std::vector<std::string>& command, const sigset_t& child_mask) {
  int report_pipe[2];
  Launch result;
  if (pipe2(report_pipe, O_CLOEXEC) != 0) {
    result.exec_errno = errno;
    return result;
  }
  std::vector<char*> argv;
  argv.reserve(command.size() + 1);
  for (const auto& arg : command) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);

  const pid_t pid = fork();
  if (pid == 0) {
    close(report_pipe[0]);
    sigprocmask(SIG_SETMASK, &child_mask, nullptr);
    execvp(argv[0], argv.data());
    const int error = errno;
    ssize_t ignored = write(report_pipe[1], &error, sizeof error);
    (void)ignored;
    _exit(kExitNotFound);
  }
  close(report_pipe[1]);
  if (pid < 0) {
    result.exec_errno = errno;
    close(report_pipe[0]);
    return result;
  }
  result.pid = pid;
  int error = 0;
  if (read(report_pipe[0], &error, sizeof error) == static_cast<ssize_t>(sizeof error)) {
    result.exec_errno = error;
    waitpid(pid, nullptr, 0);
  }
  close(report_pipe[0]);
  return result;
}

std::string describe_signal(int signal_number) {
  const char* name = sigabbrev_np(signal_number);
  return name ? fmt::format("signal {} (SIG{})", signal_number, name)
              : fmt::format("signal {}", signal_number);
}

bool process_exists(const std::string& proc_root, int pid) {
  return access(fmt::format("{}/{}", proc_root, pid).c_str(), F_OK) == 0;
}

Status write_text_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return make_error(fmt::format("cannot write '{}': {}", path, std::strerror(errno)));
  out << text;
  out.close();
  if (!out) return make_error(fmt::format("cannot write '{}': write failed", path));
  return {};
}

std::optional<std::string> read_small_file(const std::string& path, size_t max_bytes) {
  std::string text;
  if (procfs::read_file(procfs::system_file_access(), path, text, max_bytes) != 0) {
    return std::nullopt;
  }
  return text;
}

}  // namespace memscope::cli
