#include "act/system_actions.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace memscope::act {
namespace {

std::string errno_text(int error_number) {
  const char* text = strerrordesc_np(error_number);
  return text != nullptr ? text : fmt::format("error {}", error_number);
}

CleanupStep write_knob(std::string action, const std::string& path) {
  CleanupStep step{std::move(action), path, true, {}};
  const int fd = open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) {
    step.ok = false;
    step.error = fmt::format("cannot open {}: {}", path, errno_text(errno));
    return step;
  }
  if (write(fd, "1", 1) != 1) {
    step.ok = false;
    step.error = fmt::format("cannot write {}: {}", path, errno_text(errno));
  }
  close(fd);
  return step;
}

}  // namespace

std::vector<CleanupStep> cleanup_steps(const std::string& proc_root) {
  return {{"sync", "", true, {}},
          {"drop page cache", proc_root + "/sys/vm/drop_caches", true, {}},
          {"compact memory", proc_root + "/sys/vm/compact_memory", true, {}}};
}

std::vector<CleanupStep> run_cleanup(const std::string& proc_root) {
  std::vector<CleanupStep> steps = cleanup_steps(proc_root);
  sync();  // dirty pages cannot be dropped: write them first
  steps[1] = write_knob(steps[1].action, steps[1].path);
  steps[2] = write_knob(steps[2].action, steps[2].path);
  return steps;
}

Result<int> run_shell_command(const std::string& command) {
  std::string shell = "/bin/sh";
  std::string dash_c = "-c";
  std::string script = command;
  char* argv[] = {shell.data(), dash_c.data(), script.data(), nullptr};
  const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0) return make_error(fmt::format("cannot open /dev/null: {}", errno_text(errno)));
  sigset_t no_signals;
  sigemptyset(&no_signals);
  const pid_t pid = fork();
  if (pid < 0) {
    const int error_number = errno;
    close(null_fd);
    return make_error(fmt::format("cannot start '{}': {}", command, errno_text(error_number)));
  }
  if (pid == 0) {
    dup2(null_fd, STDIN_FILENO);
    sigprocmask(SIG_SETMASK, &no_signals, nullptr);
    execv(shell.c_str(), argv);
    _exit(127);
  }
  close(null_fd);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      return make_error(fmt::format("waiting for '{}': {}", command, errno_text(errno)));
    }
  }
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

Result<int> parse_kill_signal(std::string_view text) {
  std::string name(text);
  for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (name.rfind("SIG", 0) == 0) name.erase(0, 3);
  if (name == "TERM" || name == "15") return SIGTERM;
  if (name == "KILL" || name == "9") return SIGKILL;
  return make_error(fmt::format("--signal '{}': expected TERM or KILL", text));
}

KillChoice choose_kill_target(const std::vector<ProcessSample>& processes,
                              const std::regex* pattern, const std::vector<int>& excluded) {
  constexpr size_t kMatchedCmdlineBytes = 4096;
  KillChoice choice;
  for (const auto& process : processes) {
    if (process.state == 'Z') continue;
    // std::regex recurses per character: a 64 KiB command line (a Java classpath, inline JSON)
    // would overflow the stack, so the match looks at its first kMatchedCmdlineBytes.
    const size_t matched = std::min(process.cmdline.size(), kMatchedCmdlineBytes);
    if (pattern != nullptr && !std::regex_search(process.comm, *pattern) &&
        !std::regex_search(process.cmdline.begin(),
                           process.cmdline.begin() + static_cast<std::ptrdiff_t>(matched),
                           *pattern)) {
      continue;
    }
    ++choice.matched;
    if (std::find(excluded.begin(), excluded.end(), process.pid) != excluded.end()) {
      choice.protected_matches.push_back(process.pid);
      continue;
    }
    const bool larger =
        !choice.victim || process.uss_bytes > choice.victim->uss_bytes ||
        (process.uss_bytes == choice.victim->uss_bytes && process.pid < choice.victim->pid);
    if (larger) choice.victim = process;
  }
  return choice;
}

std::vector<int> other_instances_of_this_program() {
  std::vector<int> pids;
  struct stat self {};
  if (::stat("/proc/self/exe", &self) != 0) return pids;
  DIR* dir = ::opendir("/proc");
  if (dir == nullptr) return pids;
  const int me = ::getpid();
  while (const dirent* entry = ::readdir(dir)) {
    int pid = 0;
    const std::string_view name = entry->d_name;
    const auto [end, error] = std::from_chars(name.data(), name.data() + name.size(), pid);
    if (error != std::errc() || end != name.data() + name.size() || pid <= 0 || pid == me) continue;
    struct stat exe {};
    if (::stat(fmt::format("/proc/{}/exe", pid).c_str(), &exe) == 0 && exe.st_dev == self.st_dev &&
        exe.st_ino == self.st_ino) {
      pids.push_back(pid);
    }
  }
  ::closedir(dir);
  return pids;
}

}  // namespace memscope::act
