// memscope profile [--devices 0 1] [--duration S] [--interval S] [--output FILE.json] [--plot FILE]
// Samples GPUs and host until the duration ends or Ctrl-C (which still writes the report).
#include <unistd.h>

#include <csignal>
#include <iostream>
#include <memory>

#include "analyze/peaks.hpp"
#include "analyze/time_series.hpp"
#include "cli/common.hpp"
#include "cli/exit_codes.hpp"
#include "cli/options.hpp"
#include "core/log.hpp"
#include "core/units.hpp"
#include "report/plot.hpp"
#include "report/profile_report.hpp"

namespace memscope::cli {
namespace {

struct ProfileOptions {
  std::vector<int> devices;
  double duration_seconds = 60;
  double interval_seconds = 1;
  std::string output = "memscope-profile.json";
  std::string plot;
  bool no_gpu = false;
};

std::string live_line(const Sample& sample) {
  const auto& system = sample.system;
  std::string line = fmt::format("{:>7} host {} / {}", format_duration(sample.t_seconds),
                                 format_bytes(system.used_bytes), format_bytes(system.limit_bytes));
  for (const auto& device : sample.devices) {
    line += fmt::format(" | GPU{} {} / {}", device.index, format_bytes(device.used_bytes),
                        format_bytes(device.total_bytes));
  }
  return line;
}

int profile(const GlobalOptions& global, const ProfileOptions& options) {
  if (!(options.duration_seconds > 0)) {
    std::cerr << fmt::format("memscope profile: --duration must be positive (got {})\n",
                             options.duration_seconds);
    return kExitUsage;
  }
  if (!(options.interval_seconds > 0)) {
    std::cerr << fmt::format("memscope profile: --interval must be positive (got {})\n",
                             options.interval_seconds);
    return kExitUsage;
  }
  for (const std::string* path : {&options.output, &options.plot}) {
    if (path->empty()) continue;
    if (Status writable = check_writable(*path); !writable) {
      std::cerr << "memscope profile: " << writable.message() << "\n";
      return kExitUsage;
    }
  }
  if (!options.plot.empty()) {
    if (Status supported = report::check_plot_path(options.plot); !supported) {
      std::cerr << "memscope profile: " << supported.message() << "\n";
      return kExitUsage;
    }
  }
  auto sampler = open_sampler(global, options.devices, !options.no_gpu);
  if (!sampler) {
    std::cerr << "memscope profile: " << sampler.message() << "\n";
    return kExitUsage;
  }

  RecordingInfo info;
  info.memscope_version = "0.1.0";
  info.interval_seconds = options.interval_seconds;
  info.device_filter = options.devices;
  info.start_unix_ms = RecordingClock::unix_ms();

  SignalWatcher signals({SIGINT, SIGTERM, SIGHUP});
  RecordingClock clock;
  analyze::PeakTracker peaks;
  analyze::TimeSeriesRecorder series;
  Sample last;
  const bool live = isatty(STDERR_FILENO) == 1 && log::enabled(log::Level::kInfo);
  double next_sample = 0;
  bool interrupted = false;
  while (!interrupted) {
    const double now = clock.seconds();
    if (now >= next_sample) {
      last = (*sampler)->sample(now, RecordingClock::unix_ms());
      peaks.add(last);
      series.add(last);
      if (live) std::cerr << "\r" << live_line(last) << "\033[K" << std::flush;
      next_sample += options.interval_seconds;
      if (next_sample < now) next_sample = now + options.interval_seconds;
    }
    if (next_sample > options.duration_seconds) break;
    const auto received = signals.wait(next_sample - clock.seconds());
    if (received) interrupted = true;
  }
  if (live) std::cerr << "\n";
  info.end_unix_ms = RecordingClock::unix_ms();
  info.outcome = interrupted ? "interrupted" : "completed";

  const analyze::PeakSummary summary = peaks.summary();
  nlohmann::json document = report::profile_json(summary, last, info);
  for (const auto& note : (*sampler)->notes()) document["notes"].push_back(note);
  if (Status written = write_text_file(
          options.output,
          document.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
      !written) {
    std::cerr << "memscope profile: " << written.message() << "\n";
    return kExitFailure;
  }
  if (!options.plot.empty()) {
    if (Status plotted = report::write_plot(options.plot, series, summary, info); !plotted) {
      std::cerr << "memscope profile: " << plotted.message() << "\n";
      return kExitFailure;
    }
  }
  if (log::enabled(log::Level::kInfo)) {
    std::cerr << fmt::format("memscope: {} samples over {}; host peak {} of {} ({})",
                             summary.sample_count, format_duration(summary.duration_seconds),
                             format_bytes(summary.host.peak_used.bytes),
                             format_bytes(summary.host.limit_bytes), summary.host.limit_source);
    for (const auto& device : summary.devices) {
      std::cerr << fmt::format("; GPU{} peak {} of {}", device.index,
                               format_bytes(device.peak_used.bytes),
                               format_bytes(device.total_bytes));
    }
    std::cerr << fmt::format("\nreport: {}{}\n", options.output,
                             options.plot.empty() ? "" : ", plot: " + options.plot);
  }
  return kExitOk;
}

}  // namespace

Runner attach_profile(CLI::App& sub, const GlobalOptions& global) {
  auto options = std::make_shared<ProfileOptions>();
  sub.add_option("-d,--devices", options->devices, "GPU indices to sample (default: all)");
  sub.add_option("-t,--duration", options->duration_seconds,
                 "Seconds to sample (Ctrl-C ends early)")
      ->capture_default_str();
  sub.add_option("-i,--interval", options->interval_seconds, "Seconds between samples")
      ->capture_default_str();
  sub.add_option("-o,--output", options->output, "JSON report file")->capture_default_str();
  sub.add_option("--plot", options->plot,
                 "Chart of memory over time: FILE.html (interactive), FILE.svg or FILE.png");
  sub.add_flag("--no-gpu", options->no_gpu, "Do not load NVML; host only");
  return [&global, options]() { return profile(global, *options); };
}

}  // namespace memscope::cli
