// Options every subcommand shares, and the table of subcommands.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace memscope::cli {

struct GlobalOptions {
  std::string nvml_library;  // --nvml-library; else $MEMSCOPE_NVML_LIBRARY; else the driver's
  std::string proc_root = "/proc";  // --proc-root: for containers with /proc elsewhere, and tests
  std::string sys_root = "/sys";    // --sys-root
  bool verbose = false;
  bool quiet = false;
};

// A subcommand adds its options to `sub` and returns the function that runs it after parsing.
using Runner = std::function<int()>;
struct Subcommand {
  const char* name;
  const char* help;
  Runner (*attach)(CLI::App& sub, const GlobalOptions& global);
};

const std::vector<Subcommand>& subcommands();

// Each lives in its own cmd_*.cpp.
Runner attach_profile(CLI::App& sub, const GlobalOptions& global);
Runner attach_run(CLI::App& sub, const GlobalOptions& global);
Runner attach_report(CLI::App& sub, const GlobalOptions& global);
Runner attach_oom(CLI::App& sub, const GlobalOptions& global);
Runner attach_leak(CLI::App& sub, const GlobalOptions& global);
Runner attach_fragment(CLI::App& sub, const GlobalOptions& global);
Runner attach_agent(CLI::App& sub, const GlobalOptions& global);
Runner attach_estimate(CLI::App& sub, const GlobalOptions& global);
Runner attach_distributed(CLI::App& sub, const GlobalOptions& global);
Runner attach_env(CLI::App& sub, const GlobalOptions& global);
Runner attach_system(CLI::App& sub, const GlobalOptions& global);
Runner attach_interactive(CLI::App& sub, const GlobalOptions& global);  // also `top`

}  // namespace memscope::cli
