// memscope: one binary, a table of subcommands (see options.hpp), each in its own cmd_*.cpp.
#include <cstdio>
#include <iostream>
#include <map>
#include <string>

#include "cli/exit_codes.hpp"
#include "cli/options.hpp"
#include "core/log.hpp"

namespace memscope::cli {

const std::vector<Subcommand>& subcommands() {
  static const std::vector<Subcommand> table = {
      {"run", "Launch a command, record its process tree and the GPUs, report at the end",
       attach_run},
      {"profile", "Sample GPUs and host for a while; JSON report, peaks, charts", attach_profile},
      {"oom", "Forecast when memory runs out (host, GPUs, a process tree) and act before it does",
       attach_oom},
      {"leak", "Growth verdicts per process and GPU process: leak suspected, plateaued, none",
       attach_leak},
      {"fragment",
       "PyTorch memory snapshots: fragmentation, call sites, timeline, allocator what-if",
       attach_fragment},
      {"report", "Render a recorded session: summary, --html, --json, --csv", attach_report},
      {"estimate", "Training memory per GPU for a model, batch and parallel layout", attach_estimate},
      {"agent", "Serve this node's memory over HTTP: Prometheus /metrics, JSON snapshot",
       attach_agent},
      {"distributed", "A job across nodes: workers register, a master follows ranks, imbalance, OOM", attach_distributed},
      {"env", "Recommended environment for a training job on this machine (threads, allocator, DataLoader), with reasons", attach_env},
      {"system", "Host memory health, cleanup, monitoring, swap, kill the largest process", attach_system},
      {"interactive", "Full-screen live view: GPUs, host, processes; sort, filter, details, signal",
       attach_interactive},
      {"top", "Same as interactive", attach_interactive},
  };
  return table;
}

namespace {

int main_impl(int argc, char** argv) {
  GlobalOptions global;
  CLI::App app{
      "memscope: where a training job's memory goes (host RAM and NVIDIA GPUs), and "
      "warnings before it runs out.",
      "memscope"};
  app.footer(kExitStatusHelp);
  app.require_subcommand(1);
  app.set_version_flag("--version", "memscope 0.1.0");
  app.add_option("--nvml-library", global.nvml_library,
                 "NVML library to load (default: $MEMSCOPE_NVML_LIBRARY, else libnvidia-ml.so.1)");
  app.add_option("--proc-root", global.proc_root, "Where procfs is mounted")->capture_default_str();
  app.add_option("--sys-root", global.sys_root, "Where sysfs is mounted")->capture_default_str();
  app.add_flag("-v,--verbose", global.verbose, "More detail on stderr");
  app.add_flag("-q,--quiet", global.quiet, "Only errors on stderr");

  std::map<CLI::App*, Runner> runners;
  for (const auto& command : subcommands()) {
    CLI::App* sub = app.add_subcommand(command.name, command.help);
    sub->footer(kExitStatusHelp);
    runners[sub] = command.attach(*sub, global);
  }

  // CLI11 would only say "A subcommand is required"; name the word it did not know.
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    if (word.empty() || word[0] == '-') {
      if (word == "--nvml-library" || word == "--proc-root" || word == "--sys-root") ++i;
      continue;
    }
    bool known = false;
    for (const auto& command : subcommands()) known = known || word == command.name;
    if (!known) {
      std::cerr << "memscope: unknown subcommand '" << word << "'\n"
                << "Run 'memscope --help' for the list of subcommands.\n";
      return kExitUsage;
    }
    break;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return kExitOk;
  } catch (const CLI::CallForAllHelp&) {
    std::cout << app.help("", CLI::AppFormatMode::All);
    return kExitOk;
  } catch (const CLI::CallForVersion&) {
    std::cout << "memscope 0.1.0\n";
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    std::cerr << "memscope: " << e.what() << "\n";
    std::cerr << "Run 'memscope --help' or 'memscope SUBCOMMAND --help' for usage.\n";
    return kExitUsage;
  }
  if (global.verbose) log::set_level(log::Level::kDebug);
  if (global.quiet) log::set_level(log::Level::kError);
  for (auto& [sub, runner] : runners) {
    if (sub->parsed()) return runner();
  }
  return kExitUsage;
}

}  // namespace
}  // namespace memscope::cli

int main(int argc, char** argv) {
  try {
    return memscope::cli::main_impl(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "memscope: internal error: %s\n", e.what());
    return memscope::cli::kExitFailure;
  }
}
