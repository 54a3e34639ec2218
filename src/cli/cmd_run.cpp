// memscope run [options] -- CMD ARGS...
// Starts CMD with inherited stdio, samples its process tree and the GPUs every --interval,
// records everything to a session file, prints a summary at the end and exits with CMD's status.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <iostream>
#include <memory>

#include "analyze/peaks.hpp"
#include "cli/common.hpp"
#include "cli/env_tuning.hpp"
#include "cli/exit_codes.hpp"
#include "cli/oom_guard.hpp"
#include "cli/options.hpp"
#include "cli/session_outputs.hpp"
#include "core/log.hpp"
#include "core/units.hpp"
#include "report/summary_table.hpp"
#include "store/session_writer.hpp"

namespace memscope::cli {
namespace {

struct RunOptions {
  double interval_seconds = 1.0;
  std::string output;
  std::vector<int> devices;
  bool no_gpu = false;
  SessionOutputs outputs;
  bool oom_guard = false;
  GuardFlags guard;
  bool tune = false;  // --tune: the recommended environment (memscope env) for the job
  std::vector<std::string> command;
};

std::string default_session_path() {
  const int64_t now = RecordingClock::unix_ms() / 1000;
  const auto seconds = static_cast<time_t>(now);
  std::tm tm{};
  localtime_r(&seconds, &tm);
  return fmt::format("memscope-run-{:04}{:02}{:02}-{:02}{:02}{:02}.db", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

std::string hostname() {
  char name[256] = {};
  gethostname(name, sizeof name - 1);
  return name;
}

// The kernel's OOM-kill counters: /proc/vmstat oom_kill and the cgroup's memory.events.
uint64_t oom_kills(const SystemSample& system) {
  return system.vmstat.oom_kill + (system.cgroup ? system.cgroup->oom_kill_events : 0);
}

int run_command(const GlobalOptions& global, const RunOptions& options) {
  if (options.command.empty()) {
    std::cerr << "memscope run: no command given (usage: memscope run [options] -- CMD ARGS...)\n";
    return kExitUsage;
  }
  if (!(options.interval_seconds >= 0.1)) {
    std::cerr << fmt::format("memscope run: --interval must be at least 0.1 seconds (got {})\n",
                             options.interval_seconds);
    return kExitUsage;
  }
  const std::string session_path = options.output.empty() ? default_session_path() : options.output;
  if (Status writable = options.outputs.check(); !writable) {
    std::cerr << "memscope run: " << writable.message() << "\n";
    return kExitUsage;
  }

  std::optional<GuardConfig> guard_config;
  if (options.oom_guard) {
    auto checked = check_guard_flags(options.guard, /*has_target=*/true);
    if (!checked) {
      std::cerr << "memscope run: " << checked.message() << "\n";
      return kExitUsage;
    }
    guard_config = std::move(*checked);
  } else if (options.guard.any_action() || !options.guard.events_path.empty() ||
             !options.guard.limit.empty() || options.guard.dry_run ||
             options.guard.threshold_percent != GuardFlags{}.threshold_percent ||
             options.guard.kill_grace_seconds != GuardFlags{}.kill_grace_seconds) {
    std::cerr << "memscope run: --threshold, --limit, --on, --kill, --kill-grace, --dry-run and "
                 "--events belong to --oom-guard; add --oom-guard\n";
    return kExitUsage;
  }

  auto sampler = open_sampler(global, options.devices, !options.no_gpu);
  if (!sampler) {
    std::cerr << "memscope run: " << sampler.message() << "\n";
    return kExitUsage;
  }

  RecordingInfo info;
  info.command = options.command;
  info.hostname = hostname();
  info.memscope_version = "0.1.0";
  info.interval_seconds = options.interval_seconds;
  info.device_filter = options.devices;
  info.start_unix_ms = RecordingClock::unix_ms();
  auto writer = store::SessionWriter::create(session_path, info, /*overwrite=*/true);
  if (!writer) {
    std::cerr << "memscope run: " << writer.message() << "\n";
    return kExitUsage;
  }

  SignalWatcher signals({SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGQUIT});
  RecordingClock clock;
  const uint64_t oom_kills_before = oom_kills((*sampler)->sample_system(0));

  if (options.tune) {
    const std::vector<TunedVariable> tuned = tune_environment(global, !options.no_gpu);
    writer->add_event({clock.seconds(), "tuned-env", tuned_env_json(tuned)}).ok();
  }
  const Launch child = launch(options.command, signals.previous_mask());
  if (child.pid < 0 || child.exec_errno != 0) {
    const int error = child.exec_errno;
    writer->finish(info).ok();  // nothing ran; the file says so
    unlink(session_path.c_str());
    std::cerr << fmt::format("memscope run: cannot run '{}': {}\n", options.command[0],
                             error == ENOENT ? "command not found" : std::strerror(error));
    return error == ENOENT ? kExitNotFound : kExitNotExecutable;
  }
  info.root_pid = child.pid;
  (*sampler)->set_scope(child.pid, child.pid);
  log::debug("started '{}' as pid {}", options.command[0], child.pid);
  writer->add_event({clock.seconds(), "start", fmt::format("pid {}", child.pid)}).ok();

  // The guard watches the job's tree like `memscope oom -- CMD`; a replay of this session
  // (`memscope oom --replay`) sees the same samples and gives the same answers.
  std::unique_ptr<Guard> guard;
  if (guard_config) {
    analyze::ObservationScope scope;
    scope.root_pid = child.pid;
    scope.has_tree = true;
    scope.tree_limit = guard_config->tree_limit;
    auto created = Guard::create(*guard_config, scope, child.pid, /*replay=*/false);
    if (!created) {
      log::error("--oom-guard: {}; the job runs without the guard", created.message());
    } else {
      guard = std::move(*created);
    }
  }
  const auto record_guard_events = [&](const std::vector<nlohmann::json>& events) {
    for (const nlohmann::json& event : events) {
      const bool action = event.contains("action");
      if (action) {
        log::warn("oom-guard: {} ({})", event.value("action", std::string()),
                  event.value("level", std::string()));
      } else {
        log::warn("oom-guard: {} {} -> {} ({})", event.value("resource", std::string()),
                  event.value("previous_level", std::string()), event.value("level", std::string()),
                  event.value("reason", std::string()));
      }
      writer
          ->add_event({event.value("t", 0.0), action ? "oom-action" : "oom-level",
                       event.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)})
          .ok();
    }
  };

  analyze::PeakTracker peaks;
  int wait_status = 0;
  bool exited = false;
  double next_sample = 0;
  Status record_status;
  while (!exited) {
    const double now = clock.seconds();
    if (now >= next_sample) {
      Sample sample = (*sampler)->sample(now, RecordingClock::unix_ms());
      peaks.add(sample);
      if (guard) record_guard_events(guard->add(sample));
      if (record_status.ok()) {
        record_status = writer->append(sample);
        if (!record_status) log::error("recording stopped: {}", record_status.message());
      }
      next_sample += options.interval_seconds;
      if (next_sample < now) next_sample = now + options.interval_seconds;  // fell behind
    }
    if (guard) record_guard_events(guard->tick(clock.seconds()));
    const auto received = signals.wait(guard ? std::min(next_sample - clock.seconds(), 0.25)
                                             : next_sample - clock.seconds());
    if (received && received->signal != SIGCHLD) {
      // Ctrl-C reaches the whole foreground process group, the command included; only a
      // signal sent to memscope alone (kill, a scheduler) is passed on.
      const bool forward = !received->from_terminal;
      if (forward) kill(child.pid, received->signal);
      writer
          ->add_event({clock.seconds(), "signal",
                       fmt::format("{} {}", describe_signal(received->signal),
                                   forward ? "forwarded to the command" : "from the terminal")})
          .ok();
    }
    // Reap the command if it ended (SIGCHLD may be coalesced, so always check).
    const pid_t reaped = waitpid(child.pid, &wait_status, WNOHANG);
    if (reaped == child.pid) exited = true;
  }
  while (guard && guard->has_pending_kill()) {
    record_guard_events(guard->tick(clock.seconds()));
    if (guard->has_pending_kill()) signals.wait(0.1);
  }
  const double end_seconds = clock.seconds();

  info.end_unix_ms = RecordingClock::unix_ms();
  int exit_status = kExitFailure;
  if (WIFEXITED(wait_status)) {
    info.exit_code = WEXITSTATUS(wait_status);
    info.outcome = fmt::format("exited with status {}", *info.exit_code);
    exit_status = *info.exit_code;
  } else if (WIFSIGNALED(wait_status)) {
    const int signal_number = WTERMSIG(wait_status);
    info.term_signal = signal_number;
    exit_status = 128 + signal_number;
    const SystemSample after = (*sampler)->sample_system(0);
    if (signal_number == SIGKILL && oom_kills(after) > oom_kills_before) {
      info.oom_killed = true;
      info.outcome = "killed by the kernel OOM killer (SIGKILL while the oom_kill counter rose)";
      writer->add_event({end_seconds, "oom-kill", info.outcome}).ok();
    } else {
      info.outcome = fmt::format("killed by {}", describe_signal(signal_number));
    }
  }
  writer->add_event({end_seconds, "exit", info.outcome}).ok();
  const uint64_t own_rss = own_peak_rss_bytes();
  writer->add_event({end_seconds, "memscope-rss", fmt::format("{}", own_rss)}).ok();
  if (Status finished = writer->finish(info); !finished) {
    log::error("could not complete the session file: {}", finished.message());
  }

  const analyze::PeakSummary summary = peaks.summary();
  std::cerr << "\n" << report::render_summary(summary, info);
  std::cerr << fmt::format("memscope itself: peak RSS {}. Session: {}\n", format_bytes(own_rss),
                           session_path);
  if (Status rendered = options.outputs.write_from_session(session_path); !rendered) {
    std::cerr << "memscope run: " << rendered.message() << "\n";
    if (exit_status == 0) exit_status = kExitFailure;
  }
  if (!record_status) return exit_status == 0 ? kExitFailure : exit_status;
  return exit_status;
}

}  // namespace

Runner attach_run(CLI::App& sub, const GlobalOptions& global) {
  auto options = std::make_shared<RunOptions>();
  sub.add_option("-i,--interval", options->interval_seconds,
                 "Seconds between samples (at least 0.1)")
      ->capture_default_str();
  sub.add_option("-o,--output", options->output,
                 "Session file to record to (default: memscope-run-DATE-TIME.db)");
  sub.add_option("-d,--devices", options->devices, "GPU indices to sample (default: all)");
  sub.add_flag("--no-gpu", options->no_gpu, "Do not load NVML; host only");
  options->outputs.add_flags(sub);
  sub.add_flag("--oom-guard", options->oom_guard,
               "Forecast OOM while the job runs (like `memscope oom`), take the --on/--kill "
               "actions, record the guard's events in the session");
  options->guard.add_flags(sub);
  sub.add_flag("--tune", options->tune,
               "Start the command with the environment `memscope env` recommends (never "
               "replacing a variable already set); recorded as a tuned-env event");
  sub.add_option("command", options->command, "The command to run, after --")->required();
  sub.positionals_at_end(true);
  return [&global, options]() { return run_command(global, *options); };
}

}  // namespace memscope::cli
