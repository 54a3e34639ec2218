// memscope leak [--threshold MB/min] [--duration S] [--interval S] [--output FILE.json]
//               (--pid PID | -- CMD ARGS... | --session S.db | --csv TRACE.csv)
// memscope leak --enable-tracking [--trace-dir DIR] [--top N] [--flamegraph PREFIX] -- CMD ARGS...
// memscope leak --trace FILE.mst [--top N] [--output FILE.json] [--flamegraph PREFIX]
// Growth verdicts per process (USS) and per GPU process, from the same trend code as `oom`:
// leak suspected / growth plateaued / no growth. With --enable-tracking the command also runs
// under libmemscope_track.so (LD_PRELOAD), and the traces it leaves name the leaking call sites.
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "analyze/leak.hpp"
#include "cli/common.hpp"
#include "cli/exit_codes.hpp"
#include "cli/leak_tracking.hpp"
#include "cli/options.hpp"
#include "collect/alloc_trace.hpp"
#include "collect/trace_csv.hpp"
#include "core/log.hpp"
#include "core/units.hpp"
#include "report/leak_report.hpp"
#include "store/session_reader.hpp"

namespace memscope::cli {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;

struct LeakOptions {
  double threshold_mb_per_min = 1.0;
  double duration_seconds = 0;
  double interval_seconds = 1;
  std::string output;
  int pid = 0;
  std::string session;
  std::string csv;
  bool no_gpu = false;
  bool enable_tracking = false;
  std::string trace_dir = ".";
  std::string trace_file;
  std::string flamegraph;
  size_t top = 10;
  std::string tracker_library;  // found when --enable-tracking is checked
  std::vector<std::string> command;
};

int usage_error(const std::string& message) {
  std::cerr << "memscope leak: " << message << "\n";
  return kExitUsage;
}

void print_verdicts(const std::vector<analyze::LeakVerdict>& verdicts, bool tracked) {
  std::cout << fmt::format("{:>8}  {:<16} {:<6} {:<17} {:>12} {:>12} {:>8}  {}\n", "pid", "comm",
                           "memory", "verdict", "MiB/min", "now", "conf", "reason");
  for (const analyze::LeakVerdict& v : verdicts) {
    std::cout << fmt::format("{:>8}  {:<16} {:<6} {:<17} {:>12.2f} {:>12} {:>8.2f}  {}\n", v.pid,
                             v.comm.substr(0, 16), v.memory, v.verdict,
                             v.growth_bytes_per_second * 60 / kMiB, format_bytes(v.current_bytes),
                             v.confidence, v.reason);
  }
  size_t leaks = 0;
  for (const analyze::LeakVerdict& v : verdicts) leaks += v.verdict == "leak suspected";
  std::cout << fmt::format("\n{} of {} series: leak suspected{}\n", leaks, verdicts.size(),
                           leaks && !tracked
                               ? " — `memscope leak --enable-tracking -- CMD` names the call sites"
                               : "");
}

// Prints the verdicts (trend verdicts unless a lone --trace was read, and the tracked call
// sites when there are traces) and writes --output and --flamegraph.
int finish(const LeakOptions& options, const analyze::LeakDetector& detector,
           const std::string& source, const std::vector<TracedProcess>* traces = nullptr) {
  const bool trend = options.trace_file.empty();
  const std::vector<analyze::LeakVerdict> verdicts =
      trend ? detector.verdicts() : std::vector<analyze::LeakVerdict>{};
  if (trend) print_verdicts(verdicts, traces != nullptr);
  if (traces != nullptr) std::cout << tracking_text(*traces, options.top);
  if (traces != nullptr && !options.flamegraph.empty()) {
    if (Status written = write_flamegraphs(options.flamegraph, *traces); !written) {
      std::cerr << "memscope leak: " << written.message() << "\n";
      return kExitFailure;
    }
  }
  if (!options.output.empty()) {
    nlohmann::json document = report::leak_json(source, options.threshold_mb_per_min, verdicts);
    if (traces != nullptr) add_tracking_json(document, *traces);
    if (Status written = write_text_file(
            options.output,
            document.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
        !written) {
      std::cerr << "memscope leak: " << written.message() << "\n";
      return kExitFailure;
    }
  }
  return kExitOk;
}

int replay(const LeakOptions& options, analyze::LeakDetector& detector) {
  const bool csv = !options.csv.empty();
  const std::string& path = csv ? options.csv : options.session;
  size_t samples = 0;
  const auto visit = [&](const Sample& sample) {
    ++samples;
    detector.add(sample);
    return true;
  };
  Status streamed;
  if (csv) {
    streamed = trace::for_each_csv_sample_file(path, visit);
  } else {
    auto reader = store::SessionReader::open(path);
    if (!reader) {
      std::cerr << "memscope leak: " << reader.message() << "\n";
      return kExitBadInput;
    }
    streamed = reader->for_each_sample(visit);
  }
  if (!streamed) {
    std::cerr << "memscope leak: " << streamed.message() << "\n";
    return kExitBadInput;
  }
  if (samples == 0) {
    std::cerr << fmt::format("memscope leak: '{}' holds no samples\n", path);
    return kExitBadInput;
  }
  return finish(options, detector, path);
}

// The traces a tracked command left (a process that exec'd, or children that exec'd, leave
// more than one). A trace that cannot be read is reported and skipped.
std::vector<TracedProcess> read_traces(const std::string& prefix, const std::string& program,
                                       bool all_frames) {
  std::vector<TracedProcess> traces;
  const std::vector<std::string> files = alloc::find_trace_files(prefix);
  if (files.empty()) {
    std::cerr << fmt::format(
        "memscope leak: tracking could not attach to '{}': it wrote no trace (a statically "
        "linked or setuid program ignores LD_PRELOAD); the trend verdicts still hold\n",
        program);
  }
  for (const std::string& file : files) {
    Result<TracedProcess> traced = analyse_trace(file, all_frames);
    if (!traced) {
      std::cerr << "memscope leak: " << traced.message() << "\n";
      continue;
    }
    if (traced->report.end.truncated) {
      std::cerr << fmt::format("memscope leak: {} is truncated; analysed what it holds\n", file);
    }
    traces.push_back(std::move(*traced));
  }
  return traces;
}

// --trace FILE: the call sites of a trace written earlier.
int trace_only(const LeakOptions& options, const analyze::LeakDetector& detector) {
  Result<TracedProcess> traced = analyse_trace(options.trace_file, !options.flamegraph.empty());
  if (!traced) {
    std::cerr << "memscope leak: " << traced.message() << "\n";
    return kExitBadInput;
  }
  const bool truncated = traced->report.end.truncated;
  std::vector<TracedProcess> traces;
  traces.push_back(std::move(*traced));
  const int status = finish(options, detector, options.trace_file, &traces);
  if (status != kExitOk) return status;
  if (truncated) {
    std::cerr << fmt::format(
        "memscope leak: {} is truncated (the file ends inside a chunk): the report covers what "
        "was written before the cut\n",
        options.trace_file);
    return kExitBadInput;
  }
  return kExitOk;
}

int live(const GlobalOptions& global, const LeakOptions& options, analyze::LeakDetector& detector) {
  auto sampler = open_sampler(global, {}, !options.no_gpu);
  if (!sampler) return usage_error(sampler.message());
  SignalWatcher signals({SIGCHLD, SIGINT, SIGTERM, SIGHUP});
  RecordingClock clock;
  const bool has_command = !options.command.empty();
  pid_t target = options.pid;
  const std::string trace_prefix =
      fmt::format("{}/memscope-track.{}", options.trace_dir, getpid());
  if (has_command) {
    std::optional<TrackingEnvironment> tracking;
    if (options.enable_tracking) tracking.emplace(options.tracker_library, trace_prefix);
    const Launch child = launch(options.command, signals.previous_mask());
    tracking.reset();
    if (child.pid < 0 || child.exec_errno != 0) {
      const int error = child.exec_errno;
      std::cerr << fmt::format("memscope leak: cannot run '{}': {}\n", options.command[0],
                               error == ENOENT ? "command not found" : std::strerror(error));
      return error == ENOENT ? kExitNotFound : kExitNotExecutable;
    }
    target = child.pid;
  }
  (*sampler)->set_scope(target, target);
  int wait_status = 0;
  bool command_exited = false;
  double next_sample = 0;
  bool stop = false;
  while (!stop) {
    const double now = clock.seconds();
    if (now >= next_sample) {
      detector.add((*sampler)->sample(now, RecordingClock::unix_ms()));
      next_sample += options.interval_seconds;
      if (next_sample < now) next_sample = now + options.interval_seconds;
    }
    if (options.duration_seconds > 0 && next_sample > options.duration_seconds) break;
    const auto received = signals.wait(next_sample - clock.seconds());
    if (received && received->signal != SIGCHLD) {
      if (has_command && !received->from_terminal) kill(target, received->signal);
      if (!has_command) stop = true;
    }
    if (has_command && waitpid(target, &wait_status, WNOHANG) == target) {
      command_exited = true;
      stop = true;
    } else if (!has_command && !process_exists(global.proc_root, target)) {
      stop = true;
    }
  }
  std::vector<TracedProcess> traces;
  if (options.enable_tracking) traces = read_traces(trace_prefix, options.command[0], !options.flamegraph.empty());
  const int status =
      finish(options, detector,
             has_command ? fmt::format("command: {}", fmt::join(options.command, " "))
                         : fmt::format("pid {}", target),
             options.enable_tracking ? &traces : nullptr);
  if (status != kExitOk) return status;
  if (command_exited) {
    if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
    if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  }
  return kExitOk;
}

int leak_command(const GlobalOptions& global, const LeakOptions& options) {
  const int sources = (options.pid != 0) + !options.command.empty() + !options.session.empty() +
                      !options.csv.empty() + !options.trace_file.empty();
  if (sources != 1) {
    return usage_error(
        "give one of --pid PID, a command after --, --session S.db, --csv F, --trace F.mst");
  }
  if (options.enable_tracking && options.command.empty()) {
    return usage_error(
        "--enable-tracking starts the program under the tracker: give the command after --");
  }
  if (!options.flamegraph.empty() && !options.enable_tracking && options.trace_file.empty()) {
    return usage_error("--flamegraph needs --enable-tracking or --trace");
  }
  if (options.top == 0) return usage_error("--top must be at least 1");
  if (options.pid < 0) return usage_error(fmt::format("--pid {} is not a process id", options.pid));
  if (!(options.threshold_mb_per_min > 0) || !std::isfinite(options.threshold_mb_per_min)) {
    return usage_error(
        fmt::format("--threshold must be a positive number of MiB per minute (got {})",
                    options.threshold_mb_per_min));
  }
  if (options.duration_seconds < 0 || !std::isfinite(options.duration_seconds)) {
    return usage_error(
        fmt::format("--duration must be positive (got {})", options.duration_seconds));
  }
  if (!(options.interval_seconds >= 0.1) || !std::isfinite(options.interval_seconds)) {
    return usage_error(
        fmt::format("--interval must be at least 0.1 seconds (got {})", options.interval_seconds));
  }
  if (options.pid != 0 && !process_exists(global.proc_root, options.pid)) {
    return usage_error(fmt::format("--pid {}: no such process", options.pid));
  }
  if (!options.output.empty()) {
    if (Status writable = check_writable(options.output); !writable) {
      return usage_error(writable.message());
    }
  }
  if (!options.flamegraph.empty()) {
    for (const char* suffix : {".end.folded", ".peak.folded"}) {
      if (Status writable = check_writable(options.flamegraph + suffix); !writable) {
        return usage_error(writable.message());
      }
    }
  }
  analyze::LeakParams params;
  params.threshold_mb_per_min = options.threshold_mb_per_min;
  analyze::LeakDetector detector(params);
  if (!options.trace_file.empty()) return trace_only(options, detector);
  if (options.enable_tracking) {
    Result<std::string> library = find_tracker_library();
    if (!library) {
      std::cerr << "memscope leak: " << library.message() << "\n";
      return kExitFailure;
    }
    if (Status writable = check_writable(fmt::format("{}/memscope-track.{}.probe",
                                                     options.trace_dir, getpid()));
        !writable) {
      return usage_error(fmt::format("--trace-dir: {}", writable.message()));
    }
    auto tracked = options;
    tracked.tracker_library = *library;
    std::error_code error;  // the command may change directory: give it an absolute prefix
    const std::filesystem::path dir = std::filesystem::absolute(options.trace_dir, error);
    if (!error) tracked.trace_dir = dir.lexically_normal().string();
    return live(global, tracked, detector);
  }
  if (!options.session.empty() || !options.csv.empty()) return replay(options, detector);
  return live(global, options, detector);
}

}  // namespace

Runner attach_leak(CLI::App& sub, const GlobalOptions& global) {
  auto options = std::make_shared<LeakOptions>();
  sub.add_option("--threshold", options->threshold_mb_per_min,
                 "Growth (MiB per minute) from which a steady rise is a suspected leak")
      ->capture_default_str();
  sub.add_option("-t,--duration", options->duration_seconds,
                 "Seconds to watch (default: until the target exits or Ctrl-C)");
  sub.add_option("-i,--interval", options->interval_seconds, "Seconds between samples")
      ->capture_default_str();
  sub.add_option("-o,--output", options->output, "JSON report (memscope-leak)");
  sub.add_option("-p,--pid", options->pid, "Watch this process and its children");
  sub.add_option("--session", options->session, "Verdicts for a session recorded by `run`");
  sub.add_option("--csv", options->csv, "Verdicts for a CSV trace (t,pid,ppid,comm,...)");
  sub.add_flag("--no-gpu", options->no_gpu, "Do not load NVML; host only");
  sub.add_flag("--enable-tracking", options->enable_tracking,
               "Run the command under the allocation tracker (LD_PRELOAD) and name the call "
               "sites of what it leaks");
  sub.add_option("--trace-dir", options->trace_dir,
                 "Where tracked processes write their traces (memscope-track.*.mst)")
      ->capture_default_str();
  sub.add_option("--trace", options->trace_file, "Call sites of a trace written earlier");
  sub.add_option("--top", options->top, "Leak sites shown per trace")->capture_default_str();
  sub.add_option("--flamegraph", options->flamegraph,
                 "Write PREFIX.end.folded and PREFIX.peak.folded (live bytes, folded stacks)");
  sub.add_option("command", options->command, "A command to start and watch, after --");
  sub.positionals_at_end(true);
  return [&global, options]() { return leak_command(global, *options); };
}

}  // namespace memscope::cli
