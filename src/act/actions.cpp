#include "act/actions.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <string_view>
#include <tuple>

#include "core/units.hpp"

namespace memscope::act {
namespace {

using analyze::Assessment;
using analyze::RiskLevel;

constexpr int kMaxSignal = 64;

std::string upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t");
  return std::string(text.substr(first, last - first + 1));
}

// "SIGUSR1" for 10; "signal 40" where glibc has no abbreviation (real-time signals).
std::string signal_name(int signal_number) {
  const char* abbreviation = sigabbrev_np(signal_number);
  return abbreviation != nullptr ? fmt::format("SIG{}", abbreviation)
                                 : fmt::format("signal {}", signal_number);
}

// A name (USR1, SIGUSR1, usr1) or a number 1..64; the error says which part is wrong.
Result<int> parse_signal(std::string_view text) {
  if (text.empty()) return make_error("no signal given after 'signal:'");
  if (std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    const int number = text.size() > 3 ? kMaxSignal + 1 : std::stoi(std::string(text));
    if (number < 1 || number > kMaxSignal) {
      return make_error(fmt::format("signal number {} is out of range 1..{}", text, kMaxSignal));
    }
    return number;
  }
  std::string name = upper(text);
  if (name.rfind("SIG", 0) == 0) name.erase(0, 3);
  // Common aliases glibc's table lists under another name.
  if (name == "IO") return SIGIO;
  if (name == "IOT") return SIGABRT;
  if (name == "CLD") return SIGCHLD;
  for (int number = 1; number < NSIG; ++number) {
    const char* abbreviation = sigabbrev_np(number);
    if (abbreviation != nullptr && name == abbreviation) return number;
  }
  return make_error(
      fmt::format("unknown signal '{}' (a name such as USR1, SIGTERM, INT, or a number 1..{})",
                  text, kMaxSignal));
}

std::string describe_errno(int error_number) {
  if (error_number == ESRCH) return "no such process (it has exited)";
  return strerrordesc_np(error_number) != nullptr ? strerrordesc_np(error_number)
                                                  : fmt::format("error {}", error_number);
}

// The fields of /proc/PID/stat this module needs.
struct StatFields {
  int ppid = 0;
  char state = '?';
  uint64_t start_time_ticks = 0;  // field 22
};

// comm (field 2) may hold spaces and parentheses: the fields resume after the last ')'.
std::optional<StatFields> parse_stat(std::string_view text) {
  const auto close = text.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  std::vector<std::string_view> values;  // values[0] is field 3, values[19] field 22
  std::string_view rest = text.substr(close + 1);
  while (values.size() < 20) {
    const auto start = rest.find_first_not_of(" \n");
    if (start == std::string_view::npos) return std::nullopt;
    rest.remove_prefix(start);
    const auto end = std::min(rest.find_first_of(" \n"), rest.size());
    values.push_back(rest.substr(0, end));
    rest.remove_prefix(end);
  }
  StatFields stat;
  stat.state = values[0][0];
  const auto number = [](std::string_view field, auto& out) {
    const auto [end, error] = std::from_chars(field.data(), field.data() + field.size(), out);
    return error == std::errc() && end == field.data() + field.size();
  };
  if (!number(values[1], stat.ppid) || !number(values[19], stat.start_time_ticks)) {
    return std::nullopt;
  }
  return stat;
}

// Read with one read(2): /proc/PID/stat is generated whole on the first read.
std::optional<StatFields> read_stat(const std::string& pid) {
  const std::string path = "/proc/" + pid + "/stat";
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char buffer[4096];
  const ssize_t size = read(fd, buffer, sizeof buffer);
  close(fd);
  if (size <= 0) return std::nullopt;
  return parse_stat(std::string_view(buffer, static_cast<size_t>(size)));
}

int open_pidfd(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0U)); }

int send_through_pidfd(int pidfd, int signal_number) {
  return static_cast<int>(syscall(SYS_pidfd_send_signal, pidfd, signal_number, nullptr, 0U));
}

// Whether pid is still the process started at `start_time_ticks` (0: unknown) and not a zombie;
// for kernels without pidfds.
bool still_same_process(pid_t pid, uint64_t start_time_ticks) {
  const auto stat = read_stat(std::to_string(pid));
  return stat && stat->state != 'Z' &&
         (start_time_ticks == 0 || stat->start_time_ticks == start_time_ticks);
}

struct Sent {
  bool ok = true;
  std::string error;
  int pidfd = -1;  // kept when asked for; -1 without pidfd support (then kill(2) was used)
};

// Sends through a pidfd opened now and checked against the start time the sample saw, so a pid
// recycled since the sample is never signalled. Falls back to kill(2) on kernels without pidfds.
Sent send_verified(pid_t pid, uint64_t start_time_ticks, int signal_number, bool keep_pidfd) {
  Sent sent;
  const std::string name = signal_name(signal_number);
  int pidfd = open_pidfd(pid);
  if (pidfd < 0 && errno != ENOSYS) {
    sent.ok = false;
    sent.error = fmt::format("{} to pid {} failed: {}", name, pid, describe_errno(errno));
    return sent;
  }
  if (start_time_ticks != 0) {
    const auto stat = read_stat(std::to_string(pid));
    if (!stat || stat->start_time_ticks != start_time_ticks) {
      if (pidfd >= 0) close(pidfd);
      sent.ok = false;
      sent.error =
          stat ? fmt::format("pid {} was recycled (start time {}, expected {}); {} not sent", pid,
                             stat->start_time_ticks, start_time_ticks, name)
               : fmt::format("{} to pid {} failed: {}", name, pid, describe_errno(ESRCH));
      return sent;
    }
  }
  const int rc = pidfd >= 0 ? send_through_pidfd(pidfd, signal_number) : kill(pid, signal_number);
  if (rc != 0) {
    const int error_number = errno;
    if (pidfd >= 0) close(pidfd);
    sent.ok = false;
    sent.error = fmt::format("{} to pid {} failed: {}", name, pid, describe_errno(error_number));
    return sent;
  }
  if (keep_pidfd) {
    sent.pidfd = pidfd;
  } else if (pidfd >= 0) {
    close(pidfd);
  }
  return sent;
}

extern "C" char** environ;

// Forks /bin/sh -c COMMAND, stdin from /dev/null, with `variables` over the inherited
// environment. Everything the child needs is built before fork: between fork and exec only
// async-signal-safe calls.
Result<pid_t> start_command(const std::string& command,
                            const std::vector<std::pair<std::string, std::string>>& variables) {
  std::set<std::string, std::less<>> replaced;
  for (const auto& variable : variables) replaced.insert(variable.first);
  std::vector<std::string> entries;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    if (replaced.count(text.substr(0, text.find('='))) == 0) entries.emplace_back(text);
  }
  for (const auto& [name, value] : variables) entries.push_back(name + "=" + value);
  std::vector<char*> envp;
  envp.reserve(entries.size() + 1);
  for (auto& entry : entries) envp.push_back(entry.data());
  envp.push_back(nullptr);
  std::string shell = "/bin/sh";
  std::string dash_c = "-c";
  std::string script = command;
  char* argv[] = {shell.data(), dash_c.data(), script.data(), nullptr};
  sigset_t no_signals;
  sigemptyset(&no_signals);

  const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0)
    return make_error(fmt::format("cannot open /dev/null: {}", describe_errno(errno)));
  const pid_t pid = fork();
  if (pid < 0) {
    const int error_number = errno;
    close(null_fd);
    return make_error(fmt::format("fork failed: {}", describe_errno(error_number)));
  }
  if (pid == 0) {
    dup2(null_fd, STDIN_FILENO);  // the copy on 0 is not close-on-exec
    // memscope blocks SIGINT/SIGTERM for its signalfd and a blocked mask survives exec.
    sigprocmask(SIG_SETMASK, &no_signals, nullptr);
    signal(SIGPIPE, SIG_DFL);
    execve(shell.c_str(), argv, envp.data());
    _exit(127);
  }
  close(null_fd);
  return pid;
}

ActionRecord base_record(double now, const Assessment& cause, RiskLevel level, bool dry_run) {
  ActionRecord record;
  record.t_seconds = now;
  record.resource = cause.resource;
  record.level = level;
  record.dry_run = dry_run;
  return record;
}

}  // namespace

Result<ActionSpec> parse_action(const std::string& text) {
  const auto fail = [&](const std::string& why) {
    return make_error(fmt::format("--on '{}': {}", text, why));
  };
  const auto equals = text.find('=');
  if (equals == std::string::npos) {
    return fail("expected LEVEL=signal:SIG or LEVEL=exec:CMD (no '=')");
  }
  ActionSpec spec;
  spec.text = text;
  const std::string level_text = trim(std::string_view(text).substr(0, equals));
  const auto level = analyze::parse_risk_level(level_text);
  if (level == RiskLevel::kLow) {
    return fail("'low' is not an action level: actions fire on medium, high or critical");
  }
  if (!level) {
    return fail(fmt::format("unknown level '{}' (valid: medium, high, critical)", level_text));
  }
  spec.level = *level;
  const std::string_view action = std::string_view(text).substr(equals + 1);
  const auto colon = action.find(':');
  const std::string kind = trim(action.substr(0, colon));
  const std::string_view argument =
      colon == std::string_view::npos ? std::string_view() : action.substr(colon + 1);
  if (kind == "signal") {
    spec.kind = ActionSpec::Kind::kSignal;
    const auto signal_number = parse_signal(trim(argument));
    if (!signal_number) return fail(signal_number.message());
    spec.signal = *signal_number;
  } else if (kind == "exec") {
    spec.kind = ActionSpec::Kind::kExec;
    if (trim(argument).empty()) return fail("empty command after 'exec:'");
    spec.command = std::string(argument);
  } else {
    return fail(fmt::format("unknown action '{}' (valid: signal:SIG, exec:CMD)", kind));
  }
  return spec;
}

struct ActionRunner::Pending {
  pid_t pid = 0;
  uint64_t start_time_ticks = 0;
  std::string comm;
  int pidfd = -1;  // -1: no pidfd support, start time checked again before SIGKILL
  double sigterm_at = 0;
  std::string resource;
  RiskLevel level = RiskLevel::kCritical;
};

struct ActionRunner::Impl {
  struct Command {
    pid_t pid = 0;
    std::string command;
    std::string resource;
    RiskLevel level = RiskLevel::kLow;
  };

  std::vector<ActionSpec> actions;
  std::vector<bool> fired;  // per action: crossed upwards, not re-armed yet
  KillPolicy kill;
  bool kill_fired = false;
  bool dry_run = false;
  ActionTarget target;
  std::vector<Pending> pending;
  std::vector<Command> commands;

  ActionRecord run_signal(const ActionSpec& spec, ActionRecord record,
                          const std::vector<ProcessSample>& processes) const;
  ActionRecord run_exec(const ActionSpec& spec, ActionRecord record, const Assessment& cause);
  ActionRecord stop_largest(ActionRecord record, const Assessment& cause,
                            const std::vector<ProcessSample>& processes, double now);
};

ActionRecord ActionRunner::Impl::run_signal(const ActionSpec& spec, ActionRecord record,
                                            const std::vector<ProcessSample>& processes) const {
  const std::string name = signal_name(spec.signal);
  const pid_t pid = target.root_pid;
  if (pid <= 0) {
    record.action = fmt::format("signal {}", name);
    record.ok = false;
    record.error = "no target process to signal";
    return record;
  }
  record.pid = pid;
  if (dry_run) {
    record.action = fmt::format("would send {} to pid {}", name, pid);
    return record;
  }
  record.action = fmt::format("signal {} to pid {}", name, pid);
  uint64_t start_time_ticks = 0;  // checked when the sample saw the target
  for (const auto& process : processes) {
    if (process.pid == pid) start_time_ticks = process.start_time_ticks;
  }
  const Sent sent = send_verified(pid, start_time_ticks, spec.signal, false);
  record.ok = sent.ok;
  record.error = sent.error;
  return record;
}

ActionRecord ActionRunner::Impl::run_exec(const ActionSpec& spec, ActionRecord record,
                                          const Assessment& cause) {
  if (dry_run) {
    record.action = "would exec: " + spec.command;
    return record;
  }
  record.action = "exec: " + spec.command;
  const auto pid = start_command(spec.command, action_environment(cause, target.root_pid));
  if (!pid) {
    record.ok = false;
    record.error = fmt::format("exec: {}: {}", spec.command, pid.message());
    return record;
  }
  record.pid = *pid;
  commands.push_back({*pid, spec.command, cause.resource, record.level});
  return record;
}

ActionRecord ActionRunner::Impl::stop_largest(ActionRecord record, const Assessment& cause,
                                              const std::vector<ProcessSample>& processes,
                                              double now) {
  record.action = "kill";
  if (target.root_pid <= 0) {
    record.ok = false;
    record.error = "no target process tree to stop";
    return record;
  }
  const bool by_gpu = cause.kind == analyze::ResourceKind::kGpu;
  const auto victim = choose_victim(processes, target.root_pid, by_gpu, protected_pids());
  if (!victim) {
    record.ok = false;
    record.error = fmt::format(
        "no process of pid {}'s tree may be stopped (none seen, or only "
        "pid 1, memscope and its ancestors)",
        target.root_pid);
    return record;
  }
  record.pid = victim->pid;
  const std::string what = by_gpu ? fmt::format("pid {} ({}, {} GPU)", victim->pid, victim->comm,
                                                format_bytes(victim->gpu_bytes))
                                  : fmt::format("pid {} ({}, {})", victim->pid, victim->comm,
                                                format_bytes(victim->pss_bytes));
  if (dry_run) {
    record.action = "kill: would send SIGTERM to " + what;
    return record;
  }
  const bool already = std::any_of(pending.begin(), pending.end(), [&](const Pending& p) {
    return p.pid == victim->pid && p.start_time_ticks == victim->start_time_ticks;
  });
  if (already) {
    record.action = "kill: " + what + " was sent SIGTERM already, waiting for it to exit";
    return record;
  }
  record.action = "kill: SIGTERM to " + what;
  const Sent sent = send_verified(victim->pid, victim->start_time_ticks, SIGTERM, true);
  record.ok = sent.ok;
  record.error = sent.error;
  if (sent.ok) {
    pending.push_back({victim->pid, victim->start_time_ticks, victim->comm, sent.pidfd, now,
                       cause.resource, record.level});
  }
  return record;
}

ActionRunner::ActionRunner(std::vector<ActionSpec> actions, KillPolicy kill, bool dry_run,
                           ActionTarget target)
    : impl_(std::make_unique<Impl>()) {
  impl_->fired.assign(actions.size(), false);
  impl_->actions = std::move(actions);
  impl_->kill = kill;
  impl_->dry_run = dry_run;
  impl_->target = target;
}

ActionRunner::~ActionRunner() {
  for (const Pending& pending : impl_->pending) {
    if (pending.pidfd >= 0) close(pending.pidfd);
  }
  // Commands still running are left to finish; init reaps them once memscope has exited.
  for (const auto& command : impl_->commands) waitpid(command.pid, nullptr, WNOHANG);
}

std::vector<ActionRecord> ActionRunner::on_level_change(RiskLevel from, RiskLevel to,
                                                        const Assessment& cause,
                                                        const std::vector<ProcessSample>& processes,
                                                        double now_seconds) {
  std::vector<ActionRecord> records;
  Impl& impl = *impl_;
  for (size_t i = 0; i < impl.actions.size(); ++i) {
    const ActionSpec& spec = impl.actions[i];
    if (to < spec.level) {
      impl.fired[i] = false;
      continue;
    }
    if (from >= spec.level || impl.fired[i]) continue;
    impl.fired[i] = true;
    ActionRecord record = base_record(now_seconds, cause, to, impl.dry_run);
    records.push_back(spec.kind == ActionSpec::Kind::kSignal
                          ? impl.run_signal(spec, std::move(record), processes)
                          : impl.run_exec(spec, std::move(record), cause));
  }
  if (impl.kill.enabled) {
    if (to < RiskLevel::kCritical) {
      impl.kill_fired = false;
    } else if (from < RiskLevel::kCritical && !impl.kill_fired) {
      impl.kill_fired = true;
      records.push_back(impl.stop_largest(base_record(now_seconds, cause, to, impl.dry_run), cause,
                                          processes, now_seconds));
    }
  }
  return records;
}

bool ActionRunner::has_pending_kill() const { return !impl_->pending.empty(); }

std::vector<ActionRecord> ActionRunner::tick(double now_seconds) {
  std::vector<ActionRecord> records;
  Impl& impl = *impl_;
  for (auto it = impl.pending.begin(); it != impl.pending.end();) {
    Pending& victim = *it;
    bool exited = false;
    if (victim.pidfd >= 0) {
      pollfd readable{victim.pidfd, POLLIN, 0};  // a pidfd turns readable when the process exits
      exited = poll(&readable, 1, 0) > 0;
    } else {
      exited = !still_same_process(victim.pid, victim.start_time_ticks);
    }
    if (!exited && now_seconds < victim.sigterm_at + impl.kill.grace_seconds) {
      ++it;
      continue;
    }
    if (!exited) {
      ActionRecord record;
      record.t_seconds = now_seconds;
      record.resource = victim.resource;
      record.level = victim.level;
      record.pid = victim.pid;
      record.action =
          fmt::format("kill: SIGKILL to pid {} ({}), still running {:.1f} s after SIGTERM",
                      victim.pid, victim.comm, now_seconds - victim.sigterm_at);
      const int rc =
          victim.pidfd >= 0 ? send_through_pidfd(victim.pidfd, SIGKILL) : kill(victim.pid, SIGKILL);
      const int error_number = rc != 0 ? errno : 0;
      if (rc != 0 && error_number != ESRCH) {  // ESRCH: it exited meanwhile, which was the point
        record.ok = false;
        record.error =
            fmt::format("SIGKILL to pid {} failed: {}", victim.pid, describe_errno(error_number));
      }
      if (rc == 0 || !record.ok) records.push_back(std::move(record));
    }
    if (victim.pidfd >= 0) close(victim.pidfd);
    it = impl.pending.erase(it);
  }
  for (auto it = impl.commands.begin(); it != impl.commands.end();) {
    int status = 0;
    const pid_t reaped = waitpid(it->pid, &status, WNOHANG);
    if (reaped == 0) {
      ++it;
      continue;
    }
    // reaped < 0 (ECHILD): someone else reaped it, nothing to tell.
    if (reaped > 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
      ActionRecord record;
      record.t_seconds = now_seconds;
      record.resource = it->resource;
      record.level = it->level;
      record.pid = it->pid;
      record.action = "exec: " + it->command;
      record.ok = false;
      record.error = WIFEXITED(status) ? fmt::format("exec: {} exited with status {}", it->command,
                                                     WEXITSTATUS(status))
                                       : fmt::format("exec: {} was killed by {}", it->command,
                                                     signal_name(WTERMSIG(status)));
      records.push_back(std::move(record));
    }
    it = impl.commands.erase(it);
  }
  return records;
}

std::optional<ProcessSample> ActionRunner::choose_victim(
    const std::vector<ProcessSample>& processes, pid_t root_pid, bool by_gpu,
    const std::vector<pid_t>& excluded) {
  if (root_pid <= 0) return std::nullopt;
  std::multimap<int, size_t> children;  // ppid -> index in processes
  for (size_t i = 0; i < processes.size(); ++i) children.emplace(processes[i].ppid, i);
  std::set<int> tree{root_pid};
  std::vector<int> to_visit{root_pid};
  while (!to_visit.empty()) {
    const int parent = to_visit.back();
    to_visit.pop_back();
    const auto [first, last] = children.equal_range(parent);
    for (auto it = first; it != last; ++it) {
      if (tree.insert(processes[it->second].pid).second)
        to_visit.push_back(processes[it->second].pid);
    }
  }
  const auto size_of = [by_gpu](const ProcessSample& process) {
    return std::make_tuple(by_gpu ? process.gpu_bytes : 0, process.pss_bytes);
  };
  const ProcessSample* best = nullptr;
  for (const auto& process : processes) {
    if (process.pid <= 1 || tree.count(process.pid) == 0 ||
        std::find(excluded.begin(), excluded.end(), process.pid) != excluded.end()) {
      continue;
    }
    if (best == nullptr || size_of(process) > size_of(*best) ||
        (size_of(process) == size_of(*best) && process.pid < best->pid)) {
      best = &process;
    }
  }
  if (best == nullptr) return std::nullopt;
  return *best;
}

std::vector<std::pair<std::string, std::string>> action_environment(const Assessment& cause,
                                                                    pid_t target_pid) {
  double growth_mib = cause.growth_bytes_per_second / static_cast<double>(kMiB);
  if (std::abs(growth_mib) < 0.0005) growth_mib = 0;  // no "-0.000"
  return {
      {"MEMSCOPE_LEVEL", analyze::to_string(cause.level)},
      {"MEMSCOPE_RESOURCE", cause.resource},
      {"MEMSCOPE_USAGE_PERCENT", fmt::format("{:.1f}", cause.usage_percent)},
      {"MEMSCOPE_USED_BYTES", std::to_string(cause.used_bytes)},
      {"MEMSCOPE_LIMIT_BYTES", std::to_string(cause.limit_bytes)},
      {"MEMSCOPE_GROWTH_MB_PER_SEC", fmt::format("{:.3f}", growth_mib)},
      {"MEMSCOPE_PREDICTED_OOM_SECONDS",
       cause.predicted_oom_seconds ? fmt::format("{:.1f}", *cause.predicted_oom_seconds) : ""},
      {"MEMSCOPE_CONFIDENCE", fmt::format("{:.2f}", cause.confidence)},
      {"MEMSCOPE_TARGET_PID", target_pid > 0 ? std::to_string(target_pid) : ""},
      {"MEMSCOPE_RECOMMENDATION", cause.recommendation},
  };
}

std::vector<pid_t> protected_pids() {
  std::vector<pid_t> excluded{1, getpid()};
  auto stat = read_stat("self");
  for (int depth = 0; stat && stat->ppid > 1 && depth < 4096; ++depth) {
    excluded.push_back(stat->ppid);
    stat = read_stat(std::to_string(stat->ppid));
  }
  return excluded;
}

Status signal_verified(pid_t pid, uint64_t start_time_ticks, int signal_number) {
  const Sent sent = send_verified(pid, start_time_ticks, signal_number, false);
  if (!sent.ok) return make_error(sent.error);
  return Status::success();
}

}  // namespace memscope::act
