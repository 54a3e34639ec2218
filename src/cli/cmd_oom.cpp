// memscope oom [--threshold 85] [--monitor | --duration S] [--interval S] [--output FILE.json]
//              [--limit SIZE] [--on LEVEL=ACTION]... [--kill] [--dry-run] [--events FILE]
//              [--pid PID | -- CMD ARGS... | --replay SESSION.db | --replay-csv FILE --limit SIZE]
// Live: one line per resource per interval, level changes and actions as they happen, a JSON
// report at the end. Replay: the same model over a recorded session or a CSV trace, printing
// when each level would have been raised (actions are only reported, never taken).
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstring>
#include <iostream>
#include <iterator>
#include <memory>

#include "cli/common.hpp"
#include "cli/exit_codes.hpp"
#include "cli/oom_guard.hpp"
#include "cli/options.hpp"
#include "collect/trace_csv.hpp"
#include "core/log.hpp"
#include "core/units.hpp"
#include "report/oom_report.hpp"
#include "store/session_reader.hpp"

namespace memscope::cli {
namespace {

struct OomOptions {
  GuardFlags guard;
  bool monitor = false;
  double duration_seconds = 0;  // 0: not given
  double interval_seconds = 1;
  std::string output;
  int pid = 0;
  std::string replay;
  std::string replay_csv;
  std::vector<int> devices;
  bool no_gpu = false;
  std::vector<std::string> command;
};

constexpr double kDefaultHostOnlySeconds = 30;

int usage_error(const std::string& message) {
  std::cerr << "memscope oom: " << message << "\n";
  return kExitUsage;
}

// Prints what a change or an action event says, one line each.
void print_events(const std::vector<nlohmann::json>& events,
                  const std::vector<analyze::LevelChange>& changes) {
  for (const analyze::LevelChange& change : changes) {
    std::cout << report::level_change_line(change) << "\n";
  }
  for (const nlohmann::json& event : events) {
    if (!event.contains("action")) continue;
    std::cout << fmt::format(
        "{:>8}  {:<8} action: {}{}\n", format_duration(event.value("t", 0.0)),
        event.value("resource", std::string()), event.value("action", std::string()),
        event.value("ok", true) ? std::string()
                                : " — failed: " + event.value("error", std::string()));
  }
  std::cout << std::flush;
}

// The level changes in `events` (Guard returns them as JSON; the lines need the model's types),
// taken from the monitor's latest assessments.
std::vector<analyze::LevelChange> changes_of(const std::vector<nlohmann::json>& events,
                                             const analyze::OomMonitor& monitor) {
  std::vector<analyze::LevelChange> changes;
  for (const nlohmann::json& event : events) {
    if (event.contains("action")) continue;
    analyze::LevelChange change;
    change.t_seconds = event.value("t", 0.0);
    change.resource = event.value("resource", std::string());
    change.from = analyze::parse_risk_level(event.value("previous_level", std::string("low")))
                      .value_or(analyze::RiskLevel::kLow);
    change.to = analyze::parse_risk_level(event.value("level", std::string("low")))
                    .value_or(analyze::RiskLevel::kLow);
    for (const analyze::Assessment& a : monitor.assessments()) {
      if (a.resource == change.resource) change.assessment = a;
    }
    changes.push_back(std::move(change));
  }
  return changes;
}

void print_summary(const analyze::OomMonitor& monitor) {
  std::cout << "\nsummary:\n";
  if (monitor.assessments().empty()) {
    std::cout << "  no resource with a known limit was seen\n";
    return;
  }
  for (const analyze::Assessment& a : monitor.assessments()) {
    std::string raised;
    const auto found = monitor.first_raised().find(a.resource);
    if (found != monitor.first_raised().end()) {
      for (const auto& [level, when] : found->second) {
        raised += fmt::format("{}{} at {}", raised.empty() ? "" : ", ", analyze::to_string(level),
                              format_duration(when.t_seconds));
        if (when.predicted_oom_seconds) {
          raised +=
              fmt::format(" (OOM predicted in {})", format_duration(*when.predicted_oom_seconds));
        }
      }
    }
    std::cout << fmt::format("  {:<8} now {}; {}\n", a.resource, analyze::to_string(a.level),
                             raised.empty() ? "never above low" : "raised " + raised);
    std::cout << fmt::format("           {}\n", a.recommendation);
  }
}

Status write_report(const std::string& path, const analyze::OomMonitor& monitor,
                    const std::string& mode, const std::string& source,
                    const std::vector<nlohmann::json>& changes,
                    const std::vector<nlohmann::json>& actions) {
  if (path.empty()) return {};
  nlohmann::json document = report::oom_report_json(monitor, mode, source);
  document["level_changes"] = changes;
  document["actions"] = actions;
  return write_text_file(
      path, document.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

// --replay and --replay-csv: the recorded samples through the same Guard as a live run.
int replay(const OomOptions& options, const GuardConfig& config) {
  const bool csv = !options.replay_csv.empty();
  const std::string& path = csv ? options.replay_csv : options.replay;
  analyze::ObservationScope scope;
  scope.root_pid = 0;  // every process of a recording is the job's
  scope.has_tree = true;
  scope.tree_limit = config.tree_limit;
  scope.host = !csv;
  scope.gpus = !csv;

  std::optional<store::SessionReader> reader;
  pid_t target = 0;
  if (!csv) {
    auto opened = store::SessionReader::open(path);
    if (!opened) {
      std::cerr << "memscope oom: " << opened.message() << "\n";
      return kExitBadInput;
    }
    reader.emplace(std::move(*opened));
    target = reader->info().root_pid;
    // The tree as the live guard saw it: from the recorded root down (a process whose parent
    // was missed mid-read is outside it there too).
    if (target > 0) scope.root_pid = target;
  }
  // The guard is made at the first sample: a CSV trace names its root process only there (the
  // target that replayed actions say they would have signalled).
  std::unique_ptr<Guard> guard;
  Status guard_error;
  std::vector<nlohmann::json> changes;
  size_t samples = 0;
  const auto visit = [&](const Sample& sample) {
    if (!guard) {
      pid_t root = target;
      for (const ProcessSample& p : sample.processes) {
        if (root != 0) break;
        bool parent_listed = false;
        for (const ProcessSample& q : sample.processes) parent_listed |= q.pid == p.ppid;
        if (!parent_listed) root = p.pid;
      }
      auto created = Guard::create(config, scope, root, /*replay=*/true);
      if (!created) {
        guard_error = created.error();
        return false;
      }
      guard = std::move(*created);
    }
    ++samples;
    std::vector<nlohmann::json> events = guard->add(sample);
    print_events(events, changes_of(events, guard->monitor()));
    for (auto& event : events) {
      if (!event.contains("action")) changes.push_back(std::move(event));
    }
    return true;
  };
  if (csv) {
    // A malformed trace is refused before anything is printed or appended to --events (a
    // session's header and size are checked when it is opened).
    Status valid = trace::for_each_csv_sample_file(path, [](const Sample&) { return true; });
    if (!valid) {
      std::cerr << "memscope oom: " << valid.message() << "\n";
      return kExitBadInput;
    }
  }
  const Status streamed =
      csv ? trace::for_each_csv_sample_file(path, visit) : reader->for_each_sample(visit);
  if (!streamed) {
    std::cerr << "memscope oom: " << streamed.message() << "\n";
    return kExitBadInput;
  }
  if (!guard_error) return usage_error(guard_error.message());
  if (samples == 0) {
    std::cerr << fmt::format("memscope oom: '{}' holds no samples\n", path);
    return kExitBadInput;
  }
  print_summary(guard->monitor());
  if (Status written = write_report(options.output, guard->monitor(), "replay", path, changes,
                                    guard->actions_taken());
      !written) {
    std::cerr << "memscope oom: " << written.message() << "\n";
    return kExitFailure;
  }
  return kExitOk;
}

int live(const GlobalOptions& global, const OomOptions& options, const GuardConfig& config) {
  const bool has_command = !options.command.empty();
  auto sampler = open_sampler(global, options.devices, !options.no_gpu);
  if (!sampler) return usage_error(sampler.message());

  double duration = options.duration_seconds;
  if (!options.monitor && duration == 0 && !has_command && options.pid == 0) {
    duration = kDefaultHostOnlySeconds;
    log::info("watching the host for {} s (--monitor: until Ctrl-C; --duration S)", duration);
  }

  SignalWatcher signals({SIGCHLD, SIGINT, SIGTERM, SIGHUP});
  RecordingClock clock;
  pid_t target = options.pid;
  if (has_command) {
    const Launch child = launch(options.command, signals.previous_mask());
    if (child.pid < 0 || child.exec_errno != 0) {
      const int error = child.exec_errno;
      std::cerr << fmt::format("memscope oom: cannot run '{}': {}\n", options.command[0],
                               error == ENOENT ? "command not found" : std::strerror(error));
      return error == ENOENT ? kExitNotFound : kExitNotExecutable;
    }
    target = child.pid;
  }
  if (target != 0) {
    (*sampler)->set_scope(target, target);
  } else {
    (*sampler)->set_process_sampling(false);
  }
  analyze::ObservationScope scope;
  scope.root_pid = target;
  scope.has_tree = target != 0;
  scope.tree_limit = config.tree_limit;
  auto guard = Guard::create(config, scope, target, /*replay=*/false);
  if (!guard) {
    if (has_command) kill(target, SIGTERM);
    return usage_error(guard.message());
  }

  std::vector<nlohmann::json> changes;
  int wait_status = 0;
  bool command_exited = false;
  bool stop = false;
  double next_sample = 0;
  uint64_t target_start = 0;  // --pid: the target's start time, so a recycled pid is not it
  while (!stop) {
    const double now = clock.seconds();
    if (now >= next_sample) {
      const Sample sample = (*sampler)->sample(now, RecordingClock::unix_ms());
      if (!has_command && target != 0) {
        const ProcessSample* root = nullptr;
        for (const ProcessSample& p : sample.processes) {
          if (p.pid == target) root = &p;
        }
        if (target_start == 0 && root) target_start = root->start_time_ticks;
        if (!root || root->start_time_ticks != target_start) {
          log::info("pid {} has exited", target);
          break;  // gone (or its pid reused): never act on what is not the target
        }
      }
      std::vector<nlohmann::json> events = (*guard)->add(sample);
      for (const analyze::Assessment& a : (*guard)->monitor().assessments()) {
        std::cout << report::assessment_line(a) << "\n";
      }
      print_events(events, changes_of(events, (*guard)->monitor()));
      for (auto& event : events) {
        if (!event.contains("action")) changes.push_back(std::move(event));
      }
      next_sample += options.interval_seconds;
      if (next_sample < now) next_sample = now + options.interval_seconds;
    }
    print_events((*guard)->tick(clock.seconds()), {});
    if (duration > 0 && next_sample > duration) break;
    const auto received = signals.wait(std::min(next_sample - clock.seconds(), 0.25));
    if (received && received->signal != SIGCHLD) {
      if (has_command && !received->from_terminal) kill(target, received->signal);
      if (!has_command) stop = true;
    }
    if (has_command && waitpid(target, &wait_status, WNOHANG) == target) {
      command_exited = true;
      stop = true;
    } else if (!has_command && target != 0 && !process_exists(global.proc_root, target)) {
      log::info("pid {} has exited", target);
      stop = true;
    }
  }
  // A --kill victim still in its grace period gets its SIGKILL before memscope leaves.
  while ((*guard)->has_pending_kill()) {
    print_events((*guard)->tick(clock.seconds()), {});
    if ((*guard)->has_pending_kill()) signals.wait(0.1);
  }
  if (has_command && !command_exited) {
    // --duration ended first: the command keeps running on its own; say so.
    log::info("monitoring ended; pid {} ({}) keeps running", target, options.command[0]);
  }
  print_summary((*guard)->monitor());
  const std::string source =
      has_command ? fmt::format("command: {}", fmt::join(options.command, " "))
                  : (target != 0 ? fmt::format("pid {}", target) : std::string("host"));
  int exit_status = kExitOk;
  if (command_exited) {
    if (WIFEXITED(wait_status)) exit_status = WEXITSTATUS(wait_status);
    if (WIFSIGNALED(wait_status)) exit_status = 128 + WTERMSIG(wait_status);
  }
  if (Status written = write_report(options.output, (*guard)->monitor(), "live", source, changes,
                                    (*guard)->actions_taken());
      !written) {
    std::cerr << "memscope oom: " << written.message() << "\n";
    if (exit_status == kExitOk) exit_status = kExitFailure;  // the command's failure comes first
  }
  return exit_status;
}

int oom_command(const GlobalOptions& global, const OomOptions& options) {
  const bool has_command = !options.command.empty();
  const int sources =
      (options.pid != 0) + has_command + !options.replay.empty() + !options.replay_csv.empty();
  if (sources > 1) {
    return usage_error("give one of --pid, a command after --, --replay or --replay-csv");
  }
  if (options.pid < 0) return usage_error(fmt::format("--pid {} is not a process id", options.pid));
  if (options.monitor && options.duration_seconds != 0) {
    return usage_error("--monitor and --duration exclude each other");
  }
  if (options.duration_seconds < 0 || !std::isfinite(options.duration_seconds)) {
    return usage_error(
        fmt::format("--duration must be positive (got {})", options.duration_seconds));
  }
  if (!(options.interval_seconds >= 0.1) || !std::isfinite(options.interval_seconds)) {
    return usage_error(
        fmt::format("--interval must be at least 0.1 seconds (got {})", options.interval_seconds));
  }
  const bool replaying = !options.replay.empty() || !options.replay_csv.empty();
  if (!options.replay_csv.empty() && options.guard.limit.empty()) {
    return usage_error(
        "--replay-csv needs --limit SIZE (the limit to replay the trace against, e.g. 2GiB)");
  }
  if (!replaying && !options.guard.limit.empty() && options.pid == 0 && !has_command) {
    return usage_error("--limit applies to a process tree: give --pid PID or a command after --");
  }
  const bool has_target = options.pid != 0 || has_command || replaying;
  auto config = check_guard_flags(options.guard, has_target);
  if (!config) return usage_error(config.message());
  if (options.pid != 0 && !process_exists(global.proc_root, options.pid)) {
    return usage_error(fmt::format("--pid {}: no such process", options.pid));
  }
  const std::vector<pid_t> protected_pids = act::protected_pids();
  const bool is_protected =
      std::find(protected_pids.begin(), protected_pids.end(), options.pid) != protected_pids.end();
  if (options.pid != 0 && options.guard.any_action() && is_protected) {
    return usage_error(fmt::format(
        "--pid {} is {}: signals and --kill are never aimed at init, memscope or its ancestors",
        options.pid, options.pid == 1 ? "init" : "memscope itself or one of its ancestors"));
  }
  if (!options.output.empty()) {
    if (Status writable = check_writable(options.output); !writable) {
      return usage_error(writable.message());
    }
  }
  return replaying ? replay(options, *config) : live(global, options, *config);
}

}  // namespace

Runner attach_oom(CLI::App& sub, const GlobalOptions& global) {
  auto options = std::make_shared<OomOptions>();
  options->guard.add_flags(sub);
  sub.add_flag("--monitor", options->monitor, "Watch until Ctrl-C (or until the target exits)");
  sub.add_option("-t,--duration", options->duration_seconds,
                 "Seconds to watch (default: until the target exits; 30 s for the host alone)");
  sub.add_option("-i,--interval", options->interval_seconds,
                 "Seconds between assessments (at least 0.1)")
      ->capture_default_str();
  sub.add_option("-o,--output", options->output, "JSON report written at the end");
  sub.add_option("-p,--pid", options->pid, "Watch this process and its children");
  sub.add_option("--replay", options->replay,
                 "Run the model over a session recorded by `memscope run`");
  sub.add_option("--replay-csv", options->replay_csv,
                 "Run the model over a CSV trace (t,pid,ppid,comm,rss_bytes,pss_bytes,...); "
                 "the tree's PSS against --limit");
  sub.add_option("-d,--devices", options->devices, "GPU indices to watch (default: all)");
  sub.add_flag("--no-gpu", options->no_gpu, "Do not load NVML; host only");
  sub.add_option("command", options->command, "A command to start and watch, after --");
  sub.positionals_at_end(true);
  return [&global, options]() { return oom_command(global, *options); };
}

}  // namespace memscope::cli
