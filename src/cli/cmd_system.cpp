// memscope system status [--json] [--check] [--top N]
// memscope system cleanup [--dry-run]
// memscope system monitor [--log FILE] [--interval S] [--duration S]
// memscope system swap [--clear] [--json] [--top N]
// memscope system kill [--match REGEX] [--yes] [--signal TERM|KILL]
// The host's memory at a glance, against documented thresholds (analyze/system_health.hpp), and
// the few things people do by hand on a machine that is swapping (act/system_actions.hpp).
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>

#include "act/actions.hpp"
#include "act/system_actions.hpp"
#include "analyze/system_health.hpp"
#include "cli/common.hpp"
#include "cli/exit_codes.hpp"
#include "cli/options.hpp"
#include "collect/linux/cgroup_reader.hpp"
#include "collect/linux/file_access.hpp"
#include "collect/linux/pid_files.hpp"
#include "collect/linux/process_collector.hpp"
#include "collect/linux/system_collector.hpp"
#include "core/units.hpp"

namespace memscope::cli {
namespace {

using analyze::Verdict;

constexpr size_t kMaxProcFileBytes = 1 << 20;
constexpr double kMinInterval = 0.1;
constexpr double kMaxInterval = 86400;

struct SystemOptions {
  bool json = false;
  bool check = false;
  size_t status_top = 5;
  size_t swap_top = 10;
  bool dry_run = false;
  std::string log;
  double interval = 30;
  double duration = 0;
  bool clear = false;
  std::string match;
  bool yes = false;
  std::string signal = "TERM";
};

int fail(const std::string& command, int status, const std::string& message) {
  std::cerr << "memscope system" << (command.empty() ? "" : " ") << command << ": " << message
            << "\n";
  return status;
}

procfs::Roots roots_of(const GlobalOptions& global) { return {global.proc_root, global.sys_root}; }

std::optional<std::string> read_text(const std::string& path) {
  return read_small_file(path, kMaxProcFileBytes);
}

std::optional<uint64_t> read_pid_max(const std::string& proc_root) {
  const auto text = read_text(proc_root + "/sys/kernel/pid_max");
  if (!text) return std::nullopt;
  uint64_t value = 0;
  try {
    value = std::stoull(*text);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  return value;
}

std::string percent_text(double value) { return fmt::format("{:.1f}", value); }

std::string shorten(const std::string& text, size_t width) {
  return text.size() <= width ? text : text.substr(0, width - 3) + "...";
}

// ---------------------------------------------------------------------------------------- status

nlohmann::json process_json(const ProcessSample& process) {
  return {{"pid", process.pid},
          {"comm", process.comm},
          {"cmdline", process.cmdline},
          {"uss_bytes", process.uss_bytes},
          {"rss_bytes", process.rss_bytes},
          {"swap_bytes", process.swap_bytes},
          {"uss_exact", process.smaps_readable}};
}

int run_status(const GlobalOptions& global, const SystemOptions& options) {
  const procfs::Roots roots = roots_of(global);
  procfs::SystemCollector system_collector(roots);
  const SystemSample system = system_collector.collect(0);
  procfs::ProcessCollector process_collector(roots);
  const std::vector<ProcessSample> processes = process_collector.collect(0.0);
  if (!process_collector.listing_error().empty()) {
    return fail("status", kExitFailure, process_collector.listing_error());
  }
  const auto checks =
      analyze::check_system_health(system, processes.size(), read_pid_max(global.proc_root));
  const Verdict overall = analyze::overall_verdict(checks);
  const auto top = analyze::largest_by_uss(processes, options.status_top);

  if (options.json) {
    nlohmann::json doc;
    doc["overall"] = analyze::verdict_name(overall);
    doc["checks"] = nlohmann::json::array();
    for (const auto& check : checks) {
      nlohmann::json item = {{"name", check.name},
                             {"verdict", analyze::verdict_name(check.verdict)},
                             {"detail", check.detail}};
      item["value_percent"] = check.value ? nlohmann::json(*check.value) : nlohmann::json();
      if (check.threshold) {
        item["warning_percent"] = check.threshold->warning;
        item["critical_percent"] = check.threshold->critical;
      }
      doc["checks"].push_back(item);
    }
    const MemInfo& mem = system.meminfo;
    doc["memory"] = {
        {"total_bytes", mem.total_bytes},           {"available_bytes", mem.available_bytes},
        {"swap_total_bytes", mem.swap_total_bytes}, {"swap_free_bytes", mem.swap_free_bytes},
        {"limit_bytes", system.limit_bytes},        {"limit_source", system.limit_source},
        {"used_bytes", system.used_bytes}};
    doc["pressure"] = system.pressure.available
                          ? nlohmann::json{{"some_avg10", system.pressure.some.avg10},
                                           {"some_avg60", system.pressure.some.avg60},
                                           {"full_avg10", system.pressure.full.avg10},
                                           {"full_avg60", system.pressure.full.avg60}}
                          : nlohmann::json();
    doc["process_count"] = processes.size();
    doc["top_processes_by"] = "uss";
    doc["top_processes"] = nlohmann::json::array();
    for (const auto& process : top) doc["top_processes"].push_back(process_json(process));
    doc["notes"] = system.notes;
    std::cout << doc.dump(2) << "\n";
  } else {
    std::string out = fmt::format("memscope system status: {}\n", analyze::verdict_name(overall));
    for (const auto& check : checks) {
      const std::string value =
          check.value ? fmt::format("{:6.1f} %", *check.value) : std::string("     -  ");
      const std::string limits =
          check.threshold ? fmt::format(" (warning >= {:g} %, critical >= {:g} %)",
                                        check.threshold->warning, check.threshold->critical)
                          : "";
      out += fmt::format("  {:<14} {}  {:<8}  {}{}\n", check.name, value,
                         analyze::verdict_name(check.verdict), check.detail, limits);
    }
    out += fmt::format("Top processes by USS (* = RSS: smaps_rollup unreadable):\n");
    out += fmt::format("  {:>8}  {:>11}  {:>11}  {:>11}  {}\n", "PID", "USS", "RSS", "SWAP",
                       "COMMAND");
    for (const auto& process : top) {
      out += fmt::format("  {:>8}  {:>10}{}  {:>11}  {:>11}  {}\n", process.pid,
                         format_bytes(process.uss_bytes), process.smaps_readable ? " " : "*",
                         format_bytes(process.rss_bytes), format_bytes(process.swap_bytes),
                         shorten(process.cmdline.empty() ? process.comm : process.cmdline, 60));
    }
    for (const auto& note : system.notes) out += fmt::format("note: {}\n", note);
    std::cout << out;
  }
  if (!options.check) return kExitOk;
  if (overall == Verdict::kCritical) return kExitSystemCritical;
  if (overall == Verdict::kWarning) return kExitSystemWarning;
  return kExitOk;
}

// --------------------------------------------------------------------------------------- cleanup

int run_cleanup(const GlobalOptions& global, const SystemOptions& options) {
  const auto steps = act::cleanup_steps(global.proc_root);
  const auto describe = [](const act::CleanupStep& step) {
    return step.path.empty() ? std::string("sync: write dirty pages to disk first")
                             : fmt::format("{}: write 1 to {}", step.action, step.path);
  };
  if (geteuid() != 0 || options.dry_run) {
    std::string plan;
    for (size_t i = 0; i < steps.size(); ++i) {
      plan += fmt::format("  {}. {}\n", i + 1, describe(steps[i]));
    }
    if (options.dry_run) {
      std::cout << "memscope system cleanup would (nothing is killed):\n" << plan;
      return kExitOk;
    }
    std::cerr << fmt::format(
        "memscope system cleanup: needs root (effective uid {}); nothing was changed. As root "
        "it would (nothing is killed):\n{}",
        geteuid(), plan);
    return kExitSystemRefused;
  }
  procfs::SystemCollector collector(roots_of(global));
  const uint64_t before = collector.collect(0).meminfo.available_bytes;
  const auto done = act::run_cleanup(global.proc_root);
  const uint64_t after = collector.collect(0).meminfo.available_bytes;
  bool all_ok = true;
  for (const auto& step : done) {
    if (step.ok) {
      std::cout << fmt::format("  done    {}\n", describe(step));
    } else {
      all_ok = false;
      std::cout << fmt::format("  FAILED  {}: {}\n", step.action, step.error);
    }
  }
  std::cout << fmt::format(
      "MemAvailable: {} before, {} after ({})\n", format_bytes(before), format_bytes(after),
      format_bytes_delta(static_cast<int64_t>(after) - static_cast<int64_t>(before)));
  return all_ok ? kExitOk : kExitFailure;
}

// --------------------------------------------------------------------------------------- monitor

constexpr const char* kMonitorHeader =
    "time cpu_percent mem_available_percent swap_used_percent psi_some_avg10 psi_full_avg10\n";

std::string monitor_line(const SystemSample& system, double cpu_percent) {
  const MemInfo& mem = system.meminfo;
  const double available = mem.total_bytes == 0 ? 0.0
                                                : 100.0 * static_cast<double>(mem.available_bytes) /
                                                      static_cast<double>(mem.total_bytes);
  const std::string swap =
      mem.swap_total_bytes == 0
          ? "-"
          : percent_text(100.0 *
                         static_cast<double>(mem.swap_total_bytes -
                                             std::min(mem.swap_free_bytes, mem.swap_total_bytes)) /
                         static_cast<double>(mem.swap_total_bytes));
  const std::string some =
      system.pressure.available ? fmt::format("{:.2f}", system.pressure.some.avg10) : "-";
  const std::string full =
      system.pressure.available ? fmt::format("{:.2f}", system.pressure.full.avg10) : "-";
  return fmt::format("{} {} {} {} {} {}\n", rfc3339_utc(RecordingClock::unix_ms()),
                     percent_text(cpu_percent), percent_text(available), swap, some, full);
}

int run_monitor(const GlobalOptions& global, const SystemOptions& options) {
  if (!std::isfinite(options.interval) || options.interval < kMinInterval ||
      options.interval > kMaxInterval) {
    return fail("monitor", kExitUsage,
                fmt::format("--interval {:g}: expected seconds between {:g} and {:g}",
                            options.interval, kMinInterval, kMaxInterval));
  }
  if (!std::isfinite(options.duration) || options.duration < 0) {
    return fail("monitor", kExitUsage,
                fmt::format("--duration {:g}: expected seconds >= 0 (0: until interrupted)",
                            options.duration));
  }
  int fd = STDOUT_FILENO;
  bool header = true;
  if (!options.log.empty()) {
    fd = open(options.log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
      return fail("monitor", kExitUsage,
                  fmt::format("cannot write log '{}': {}", options.log, std::strerror(errno)));
    }
    struct stat info {};
    header = fstat(fd, &info) == 0 && info.st_size == 0;
  }
  const auto write_all = [fd](const std::string& text) {
    size_t written = 0;
    while (written < text.size()) {
      const ssize_t n = write(fd, text.data() + written, text.size() - written);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      written += static_cast<size_t>(n);
    }
    return true;
  };
  const std::string stat_path = global.proc_root + "/stat";
  const auto read_cpu = [&]() -> std::optional<analyze::CpuTimes> {
    const auto text = read_text(stat_path);
    if (!text) return std::nullopt;
    auto times = analyze::parse_proc_stat_cpu(*text);
    if (!times) return std::nullopt;
    return *times;
  };

  SignalWatcher signals({SIGINT, SIGTERM});
  procfs::SystemCollector collector(roots_of(global));
  RecordingClock clock;
  auto cpu_before = read_cpu();
  if (!cpu_before) std::cerr << "memscope system monitor: cannot read " << stat_path << "\n";
  if (header && !write_all(kMonitorHeader)) {
    return fail("monitor", kExitFailure, fmt::format("cannot write: {}", std::strerror(errno)));
  }
  int status = kExitOk;
  for (long tick = 1;; ++tick) {
    const double due = static_cast<double>(tick) * options.interval;
    if (options.duration > 0 && due > options.duration + 1e-9) break;
    if (signals.wait(std::max(0.0, due - clock.seconds()))) break;  // SIGINT/SIGTERM: exit 0
    const auto cpu_now = read_cpu();
    const double cpu =
        cpu_before && cpu_now ? analyze::cpu_busy_percent(*cpu_before, *cpu_now) : 0.0;
    if (cpu_now) cpu_before = cpu_now;
    if (!write_all(monitor_line(collector.collect(0), cpu))) {
      status = fail("monitor", kExitFailure, fmt::format("cannot write: {}", std::strerror(errno)));
      break;
    }
  }
  if (fd != STDOUT_FILENO) close(fd);
  return status;
}

// ------------------------------------------------------------------------------------------ swap

// The first memory cgroup whose limit cannot take back the pages its members have in swap
// (limit - usage of the cgroup holding the limit < their swap), as a one-line reason; empty
// when every swapped process's cgroup has room (or has no limit).
std::string cgroup_without_room_for_swap(const procfs::Roots& roots,
                                         const std::vector<ProcessSample>& processes) {
  struct Holder {
    uint64_t limit = 0;
    uint64_t usage = 0;
    uint64_t swapped = 0;
  };
  std::map<std::string, Holder> holders;  // by the cgroup whose limit applies
  for (const ProcessSample& process : processes) {
    if (process.swap_bytes == 0) continue;
    const auto text = read_text(fmt::format("{}/{}/cgroup", roots.proc, process.pid));
    if (!text) continue;
    const procfs::CgroupReading reading = procfs::read_memory_cgroup(
        procfs::system_file_access(), roots, procfs::parse_pid_cgroup(*text));
    if (!reading.memory || !reading.memory->limit_bytes) continue;
    Holder& holder = holders[reading.memory->limit_path];
    holder.limit = *reading.memory->limit_bytes;
    holder.usage = reading.limit_holder_usage_bytes;
    holder.swapped += process.swap_bytes;
  }
  for (const auto& [cgroup, holder] : holders) {
    const uint64_t room = holder.limit - std::min(holder.limit, holder.usage);
    if (room < holder.swapped) {
      return fmt::format(
          "cgroup {} has {} swapped out but only {} of room under its limit {} (swapoff would "
          "OOM-kill there)",
          cgroup, format_bytes(holder.swapped), format_bytes(room), format_bytes(holder.limit));
    }
  }
  return {};
}

int run_swap(const GlobalOptions& global, const SystemOptions& options) {
  const procfs::Roots roots = roots_of(global);
  std::vector<analyze::SwapDevice> devices;
  std::string devices_note;
  if (const auto text = read_text(global.proc_root + "/swaps")) {
    auto parsed = analyze::parse_proc_swaps(*text);
    if (!parsed) return fail("swap", kExitFailure, parsed.message());
    devices = std::move(*parsed);
  } else {
    devices_note = fmt::format("{}/swaps unreadable: no swap support", global.proc_root);
  }
  procfs::SystemCollector system_collector(roots);
  const MemInfo mem = system_collector.collect(0).meminfo;
  procfs::ProcessCollector process_collector(roots);
  const auto processes = process_collector.collect(0.0);
  const auto top = analyze::largest_by_swap(processes, options.swap_top);
  const uint64_t swapped =
      mem.swap_total_bytes - std::min(mem.swap_free_bytes, mem.swap_total_bytes);

  if (options.json) {
    nlohmann::json doc;
    doc["swap_total_bytes"] = mem.swap_total_bytes;
    doc["swap_used_bytes"] = swapped;
    doc["devices"] = nlohmann::json::array();
    for (const auto& device : devices) {
      doc["devices"].push_back({{"name", device.name},
                                {"type", device.type},
                                {"size_bytes", device.size_bytes},
                                {"used_bytes", device.used_bytes},
                                {"priority", device.priority}});
    }
    doc["processes"] = nlohmann::json::array();
    for (const auto& process : top) doc["processes"].push_back(process_json(process));
    std::cout << doc.dump(2) << "\n";
  } else {
    std::string out = fmt::format("Swap: {} of {} used\n", format_bytes(swapped),
                                  format_bytes(mem.swap_total_bytes));
    if (!devices_note.empty()) out += "  " + devices_note + "\n";
    for (const auto& device : devices) {
      out += fmt::format("  {:<28} {:<9} {:>11} of {:>11}  priority {}\n", device.name, device.type,
                         format_bytes(device.used_bytes), format_bytes(device.size_bytes),
                         device.priority);
    }
    out += fmt::format("Processes by swap (from smaps_rollup; other users' need root):\n");
    if (top.empty()) out += "  none swapped\n";
    for (const auto& process : top) {
      out += fmt::format("  {:>8}  {:>11}  {}\n", process.pid, format_bytes(process.swap_bytes),
                         shorten(process.cmdline.empty() ? process.comm : process.cmdline, 60));
    }
    std::cout << out;
  }
  if (!options.clear) return kExitOk;

  // --clear: outcome lines go to stderr under --json, so stdout stays one JSON document.
  std::ostream& say = options.json ? std::cerr : std::cout;
  if (mem.total_bytes == 0) {
    return fail("swap", kExitFailure,
                fmt::format("--clear: {}/meminfo unreadable: cannot tell what RAM would hold",
                            global.proc_root));
  }
  const auto decision = analyze::decide_swap_clear(mem);
  if (decision.nothing_swapped) {
    say << "swap --clear: nothing is swapped out; nothing to do\n";
    return kExitOk;
  }
  if (!decision.allowed) {
    return fail("swap", kExitSystemRefused,
                fmt::format("--clear refused: {} (needs swapped + max(1 GiB, 10 % of MemTotal))",
                            decision.reason));
  }
  // swapoff charges each page back to the memory cgroup it came from: a job near its cgroup
  // limit would be OOM-killed there however much RAM the host has free.
  if (const std::string crowded = cgroup_without_room_for_swap(roots, processes);
      !crowded.empty()) {
    return fail("swap", kExitSystemRefused, fmt::format("--clear refused: {}", crowded));
  }
  if (geteuid() != 0) {
    return fail("swap", kExitSystemRefused,
                fmt::format("--clear needs root (effective uid {}); it would run: {}", geteuid(),
                            act::kSwapClearCommand));
  }
  if (global.proc_root != "/proc") {
    return fail("swap", kExitSystemRefused,
                fmt::format("--clear refused: --proc-root is {}, not this machine's /proc",
                            global.proc_root));
  }
  say << fmt::format("swap --clear: {}; running: {}\n", decision.reason, act::kSwapClearCommand);
  const auto ran = act::run_shell_command(act::kSwapClearCommand);
  if (!ran) return fail("swap", kExitFailure, ran.message());
  if (*ran != 0) {
    return fail("swap", kExitFailure,
                fmt::format("'{}' exited with status {}", act::kSwapClearCommand, *ran));
  }
  const MemInfo after = system_collector.collect(0).meminfo;
  say << fmt::format("swap --clear: done; swap used {} (was {}), MemAvailable {} (was {})\n",
                     format_bytes(after.swap_total_bytes -
                                  std::min(after.swap_free_bytes, after.swap_total_bytes)),
                     format_bytes(swapped), format_bytes(after.available_bytes),
                     format_bytes(mem.available_bytes));
  return kExitOk;
}

// ------------------------------------------------------------------------------------------ kill

int run_kill(const GlobalOptions& global, const SystemOptions& options) {
  const auto signal_number = act::parse_kill_signal(options.signal);
  if (!signal_number) return fail("kill", kExitUsage, signal_number.message());
  std::optional<std::regex> pattern;
  if (!options.match.empty()) {
    try {
      pattern.emplace(options.match, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      return fail(
          "kill", kExitUsage,
          fmt::format("--match '{}' is not a regular expression: {}", options.match, e.what()));
    }
  } else if (isatty(STDIN_FILENO) != 1) {
    return fail("kill", kExitUsage,
                "no --match and stdin is not a terminal: refusing to pick the largest process "
                "of the whole machine unattended (give --match REGEX)");
  }
  if (options.yes && global.proc_root != "/proc") {
    return fail("kill", kExitSystemRefused,
                fmt::format("--yes refused: --proc-root is {}, whose pids are not this "
                            "machine's",
                            global.proc_root));
  }
  procfs::ProcessCollector collector(roots_of(global));
  const auto processes = collector.collect(0.0);
  if (!collector.listing_error().empty()) {
    return fail("kill", kExitFailure, collector.listing_error());
  }
  std::vector<int> excluded;
  for (const pid_t pid : act::protected_pids()) excluded.push_back(static_cast<int>(pid));
  for (const int pid : act::other_instances_of_this_program()) excluded.push_back(pid);
  const auto choice = act::choose_kill_target(processes, pattern ? &*pattern : nullptr, excluded);
  if (!choice.victim) {
    if (choice.matched == 0) {
      return fail("kill", kExitFailure,
                  fmt::format("no process matches '{}'; nothing sent", options.match));
    }
    std::string pids;
    for (const int pid : choice.protected_matches) pids += fmt::format(" {}", pid);
    return fail("kill", kExitFailure,
                fmt::format("only protected processes match (pid 1, this memscope and its "
                            "ancestors, other memscopes:{}); nothing sent",
                            pids));
  }
  const ProcessSample& victim = *choice.victim;
  const char* abbreviation = sigabbrev_np(*signal_number);
  const std::string signal_name =
      fmt::format("SIG{}", abbreviation != nullptr ? abbreviation : "?");
  const std::string who = fmt::format(
      "pid {} ({}, USS {}{}) {}", victim.pid, victim.comm, format_bytes(victim.uss_bytes),
      victim.smaps_readable ? "" : " [RSS: smaps unreadable]", shorten(victim.cmdline, 80));
  const std::string among = fmt::format("largest of {} matching process{}", choice.matched,
                                        choice.matched == 1 ? "" : "es");
  if (!options.yes) {
    std::cout << fmt::format("dry run: would send {} to {} ({}); add --yes to send it\n",
                             signal_name, who, among);
    return kExitOk;
  }
  const Status sent = act::signal_verified(victim.pid, victim.start_time_ticks, *signal_number);
  if (!sent.ok()) return fail("kill", kExitFailure, sent.message());
  std::cout << fmt::format("sent {} to {} ({})\n", signal_name, who, among);
  return kExitOk;
}

}  // namespace

Runner attach_system(CLI::App& sub, const GlobalOptions& global) {
  auto options = std::make_shared<SystemOptions>();
  sub.require_subcommand(0, 1);  // none: our own message below, naming the choices
  sub.footer(kExitStatusHelp);

  CLI::App* status = sub.add_subcommand(
      "status", "Memory, swap, pressure, cgroup limit, processes: each against its threshold");
  status->add_flag("--json", options->json, "One JSON document");
  status->add_flag("--check", options->check,
                   "Exit 5 when the overall verdict is warning, 6 when critical");
  status->add_option("--top", options->status_top, "How many of the largest processes (by USS)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000));

  CLI::App* cleanup = sub.add_subcommand(
      "cleanup",
      "As root: sync, drop the page cache, compact memory (never kills); exit 4 as a user");
  cleanup->add_flag("--dry-run", options->dry_run, "Only say what would be done");

  CLI::App* monitor = sub.add_subcommand(
      "monitor", "One line per interval: time, CPU %, memory available %, swap %, pressure");
  monitor->add_option("--log", options->log, "Append to FILE (a header first when it is new)");
  monitor->add_option("--interval", options->interval, "Seconds between lines (0.1 .. 86400)")
      ->capture_default_str();
  monitor
      ->add_option("--duration", options->duration,
                   "Stop after S seconds (0: until SIGINT/SIGTERM)")
      ->capture_default_str();

  CLI::App* swap = sub.add_subcommand(
      "swap", "Swap per device and per process; --clear (root) when RAM can hold it all");
  swap->add_flag("--clear", options->clear,
                 "swapoff -a && swapon -a, only if MemAvailable >= swapped + max(1 GiB, 10 % RAM)");
  swap->add_flag("--json", options->json, "One JSON document");
  swap->add_option("--top", options->swap_top, "How many processes")
      ->capture_default_str()
      ->check(CLI::Range(0, 100000));

  CLI::App* kill = sub.add_subcommand(
      "kill", "Signal the largest process (USS) matching --match; dry run without --yes");
  kill->add_option("--match", options->match,
                   "ECMAScript regex searched in the name and the command line");
  kill->add_flag("--yes", options->yes, "Send the signal (default: only say what would be done)");
  kill->add_option("--signal", options->signal, "TERM or KILL")->capture_default_str();

  for (CLI::App* child : {status, cleanup, monitor, swap, kill}) child->footer(kExitStatusHelp);

  return [options, &global, status, cleanup, monitor, swap, kill]() {
    if (status->parsed()) return run_status(global, *options);
    if (cleanup->parsed()) return run_cleanup(global, *options);
    if (monitor->parsed()) return run_monitor(global, *options);
    if (swap->parsed()) return run_swap(global, *options);
    if (kill->parsed()) return run_kill(global, *options);
    return fail("", kExitUsage, "expected one of: status, cleanup, monitor, swap, kill");
  };
}

}  // namespace memscope::cli
