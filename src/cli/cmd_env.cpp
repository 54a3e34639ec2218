// memscope env [--shell bash|zsh|fish|powershell] [--write FILE [--force]] [--explain] [--json]
//              [--procs N] [--torch-version V] [--snapshot-sim F.json] [--no-gpu]
// Detects the machine and prints the environment a training job should run with, each setting
// with its reason (rules: analyze/env_advice.hpp).
#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "analyze/env_advice.hpp"
#include "cli/env_tuning.hpp"
#include "cli/exit_codes.hpp"
#include "cli/options.hpp"
#include "core/units.hpp"

namespace memscope::cli {
namespace {

struct EnvOptions {
  EnvTuningOptions tuning;
  std::string shell;
  std::string write;
  bool force = false;
  bool explain = false;
  bool json = false;
  bool no_gpu = false;
};

int usage_error(const std::string& message) {
  std::cerr << "memscope env: " << message << "\n";
  return kExitUsage;
}

// A value quoted for the shell: single quotes for the POSIX shells and fish, double for
// PowerShell (its escape character is the backtick).
std::string quoted(const std::string& shell, const std::string& value) {
  std::string out;
  if (shell == "powershell") {
    out = "\"";
    for (const char c : value) {
      if (c == '"' || c == '`' || c == '$') out += '`';
      out += c;
    }
    return out + "\"";
  }
  out = "'";
  for (const char c : value) {
    if (c == '\'') {
      out += shell == "fish" ? "\\'" : "'\\''";
    } else if (c == '\\' && shell == "fish") {
      out += "\\\\";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string assignment(const std::string& shell, const std::string& name, const std::string& value) {
  if (shell == "fish") return fmt::format("set -gx {} {}", name, quoted(shell, value));
  if (shell == "powershell") return fmt::format("$env:{} = {}", name, quoted(shell, value));
  return fmt::format("export {}={}", name, quoted(shell, value));
}

// DataLoader(num_workers=4, pin_memory=True, persistent_workers=True)
std::string dataloader_call(const analyze::EnvAdvice& advice) {
  std::string args;
  for (const auto& item : advice.items) {
    if (item.is_env) continue;
    const std::string key = item.name.substr(item.name.find(' ') + 1);
    args += fmt::format("{}{}={}", args.empty() ? "" : ", ", key, item.value);
  }
  return fmt::format("DataLoader({})", args);
}

// Text for a comment line of the script: a line break in it (from a file's content or a
// report's field) would end the comment and make the rest a command when the script is sourced.
std::string one_line(std::string text) {
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return text;
}

std::string script(const std::string& shell, const analyze::EnvAdvice& advice) {
  std::string out = fmt::format("# memscope env --shell {}: source this file before the job.\n", shell);
  for (const auto& item : advice.items) {
    if (!item.is_env) continue;
    out += fmt::format("# {}\n{}\n", one_line(item.reason), assignment(shell, item.name, item.value));
  }
  out += fmt::format("# In the training script: {}\n", one_line(dataloader_call(advice)));
  for (const std::string& note : advice.notes) out += fmt::format("# note: {}\n", one_line(note));
  return out;
}

// Words of `text` on lines of at most `width` columns, each starting with `indent`.
std::string wrapped(const std::string& text, const std::string& indent, size_t width) {
  std::string out;
  std::string line = indent;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    const std::string word = text.substr(start, end - start);
    if (line.size() > indent.size() && line.size() + 1 + word.size() > width) {
      out += line + "\n";
      line = indent;
    }
    if (line.size() > indent.size()) line += ' ';
    line += word;
    start = end + 1;
  }
  if (line.size() > indent.size()) out += line + "\n";
  return out;
}

std::string machine_table(const analyze::MachineFacts& facts, const analyze::EnvAdvice& advice) {
  std::string out = "Machine\n";
  std::string cpus = fmt::format("{} online", facts.online_cpus);
  if (facts.cpu_quota_cores) {
    cpus += fmt::format(", cgroup quota {:.2f} ({})", *facts.cpu_quota_cores,
                        facts.cpu_quota_source);
  }
  out += fmt::format("  {:<9} {}: {} usable, {} per process ({} process{})\n", "CPUs", cpus,
                     advice.usable_cpus, advice.cpus_per_process, facts.processes,
                     facts.processes == 1 ? "" : "es");
  std::string memory = fmt::format("RAM {}, available {}, swap {}", format_bytes(facts.ram_total_bytes),
                                   format_bytes(facts.ram_available_bytes),
                                   format_bytes(facts.swap_total_bytes));
  if (facts.memory_limit_bytes) {
    memory += fmt::format(", cgroup limit {} ({} used)", format_bytes(*facts.memory_limit_bytes),
                          format_bytes(facts.memory_limit_usage_bytes));
  }
  out += fmt::format("  {:<9} {}: headroom {}\n", "memory", memory,
                     format_bytes(advice.memory_headroom_bytes));
  if (facts.gpus.empty()) {
    out += fmt::format("  {:<9} none ({})\n", "GPUs", facts.gpu_unavailable_reason);
  } else {
    for (const auto& gpu : facts.gpus) {
      out += fmt::format("  {:<9} {}: {}, {}\n", gpu.index == facts.gpus.front().index ? "GPUs" : "",
                         gpu.index, gpu.name, format_bytes(gpu.total_bytes));
    }
    out += fmt::format("  {:<9} {}\n", "driver", facts.driver_version.empty() ? "unknown" : facts.driver_version);
  }
  out += fmt::format("  {:<9} {}\n", "torch",
                     facts.torch_version.empty()
                         ? "unknown"
                         : fmt::format("{} ({})", facts.torch_version, facts.torch_version_source));
  return out;
}

std::string human(const analyze::MachineFacts& facts, const analyze::EnvAdvice& advice,
                  bool explain) {
  std::string out = machine_table(facts, advice);
  size_t width = 0;  // settings longer than 34 columns push their reason to the right
  for (const auto& item : advice.items) {
    width = std::max(width, std::min<size_t>(34, item.name.size() + 1 + item.value.size()));
  }
  std::string previous_detail;  // the three thread counts share one explanation
  for (const bool env : {true, false}) {
    out += env ? "\nRecommended environment\n" : "\nDataLoader (in the training script)\n";
    for (const auto& item : advice.items) {
      if (item.is_env != env) continue;
      const std::string setting =
          env ? item.name + "=" + item.value
              : item.name.substr(item.name.find(' ') + 1) + "=" + item.value;
      out += fmt::format("  {:<{}}  {}\n", setting, width, item.reason);
      if (explain && item.detail != previous_detail) out += wrapped(item.detail, "      ", 100);
      previous_detail = item.detail;
    }
  }
  if (!advice.notes.empty()) {
    out += "\nNotes\n";
    for (const std::string& note : advice.notes) out += "  " + note + "\n";
  }
  return out;
}

nlohmann::json as_json(const analyze::MachineFacts& facts, const analyze::EnvAdvice& advice) {
  nlohmann::json gpus = nlohmann::json::array();
  for (const auto& gpu : facts.gpus) {
    gpus.push_back({{"index", gpu.index}, {"name", gpu.name}, {"total_bytes", gpu.total_bytes}});
  }
  nlohmann::json machine = {
      {"online_cpus", facts.online_cpus},
      {"cpu_quota_cpus", facts.cpu_quota_cores ? nlohmann::json(*facts.cpu_quota_cores) : nullptr},
      {"cpu_quota_source", facts.cpu_quota_source},
      {"usable_cpus", advice.usable_cpus},
      {"processes", facts.processes},
      {"cpus_per_process", advice.cpus_per_process},
      {"ram_total_bytes", facts.ram_total_bytes},
      {"ram_available_bytes", facts.ram_available_bytes},
      {"swap_total_bytes", facts.swap_total_bytes},
      {"swap_free_bytes", facts.swap_free_bytes},
      {"memory_limit_bytes",
       facts.memory_limit_bytes ? nlohmann::json(*facts.memory_limit_bytes) : nullptr},
      {"memory_limit_usage_bytes", facts.memory_limit_usage_bytes},
      {"memory_headroom_bytes", advice.memory_headroom_bytes},
      {"gpus", gpus},
      {"gpu_unavailable_reason", facts.gpu_unavailable_reason},
      {"driver_version", facts.driver_version},
      {"torch_version", facts.torch_version},
      {"torch_version_source", facts.torch_version_source}};
  nlohmann::json env = nlohmann::json::object();
  nlohmann::json dataloader = nlohmann::json::object();
  nlohmann::json items = nlohmann::json::array();
  for (const auto& item : advice.items) {
    if (item.is_env) {
      env[item.name] = item.value;
    } else {
      dataloader[item.name.substr(item.name.find(' ') + 1)] = item.value;
    }
    items.push_back({{"name", item.name},
                     {"value", item.value},
                     {"reason", item.reason},
                     {"detail", item.detail},
                     {"environment_variable", item.is_env}});
  }
  nlohmann::json out = {{"report", "memscope-env"},
                        {"schema_version", 1},
                        {"machine", machine},
                        {"env", env},
                        {"dataloader", dataloader},
                        {"recommendations", items},
                        {"notes", advice.notes}};
  if (facts.measured) {
    out["measured"] = {{"source", facts.measured->source},
                       {"snapshot", facts.measured->snapshot},
                       {"config", facts.measured->config},
                       {"recorded_peak_reserved_bytes", facts.measured->recorded_peak_reserved_bytes},
                       {"peak_reserved_bytes", facts.measured->peak_reserved_bytes}};
  }
  return out;
}

// Creates FILE (never replacing one unless --force) and writes the script. errno on failure.
int write_script(const std::string& path, const std::string& text, bool force) {
  const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (force ? O_TRUNC : O_EXCL);
  const int fd = open(path.c_str(), flags, 0644);
  if (fd < 0) return errno;
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = n < 0 ? errno : EIO;
      close(fd);
      return error;
    }
    done += static_cast<size_t>(n);
  }
  return close(fd) == 0 ? 0 : errno;
}

int env_command(const GlobalOptions& global, EnvOptions options) {
  if (!options.shell.empty() && options.shell != "bash" && options.shell != "zsh" &&
      options.shell != "fish" && options.shell != "powershell") {
    return usage_error(fmt::format("unknown shell '{}' (expected bash, zsh, fish or powershell)",
                                   options.shell));
  }
  if (options.json && !options.shell.empty()) {
    return usage_error("--json and --shell print different things: give one");
  }
  if (options.tuning.processes == 0) return usage_error("--procs must be at least 1");
  if (options.force && options.write.empty()) return usage_error("--force goes with --write");
  options.tuning.use_gpus = !options.no_gpu;

  std::vector<std::string> detection_notes;
  auto facts = detect_machine(global, options.tuning, detection_notes);
  if (!facts) {
    std::cerr << "memscope env: " << facts.message() << "\n";
    return kExitBadInput;
  }
  analyze::EnvAdvice advice = analyze::recommend_env(*facts);
  for (std::string& note : detection_notes) advice.notes.push_back(std::move(note));

  if (!options.write.empty()) {
    const std::string shell = options.shell.empty() ? "bash" : options.shell;
    if (const int error = write_script(options.write, script(shell, advice), options.force);
        error != 0) {
      return usage_error(fmt::format("--write {}: {}{}", options.write, std::strerror(error),
                                     error == EEXIST ? " (add --force to replace it)" : ""));
    }
    std::cerr << fmt::format("memscope env: wrote {} ({} syntax); load it with: {}\n",
                             options.write, shell,
                             shell == "powershell" ? ". " + options.write
                                                   : "source " + options.write);
  }
  if (options.json) {
    std::cout << as_json(*facts, advice).dump(2, ' ', false,
                                              nlohmann::json::error_handler_t::replace)
              << "\n";
  } else if (!options.shell.empty() && options.write.empty()) {
    std::cout << script(options.shell, advice);
  } else {
    std::cout << human(*facts, advice, options.explain);
  }
  return kExitOk;
}

}  // namespace

Runner attach_env(CLI::App& sub, const GlobalOptions& global) {
  auto options = std::make_shared<EnvOptions>();
  sub.add_option("--shell", options->shell,
                 "Print export lines for bash, zsh, fish or powershell (e.g. eval \"$(memscope "
                 "env --shell bash)\")");
  sub.add_option("--write", options->write,
                 "Write a script to source (in --shell's syntax, default bash); an existing file "
                 "is kept unless --force");
  sub.add_flag("--force", options->force, "With --write: replace an existing file");
  sub.add_flag("--explain", options->explain, "The longer reasoning and the facts behind each");
  sub.add_flag("--json", options->json, "Machine facts and recommendations as JSON");
  sub.add_option("--procs", options->tuning.processes,
                 "Training processes (ranks) sharing this machine: CPUs are divided among them")
      ->capture_default_str();
  sub.add_option("--torch-version", options->tuning.torch_version,
                 "The torch version to advise for (default: read torch/version.py from the usual "
                 "install locations; 'unknown' to skip)");
  sub.add_option("--snapshot-sim", options->tuning.snapshot_sim,
                 "A `memscope fragment --simulate SNAP --output F.json` report: its measured "
                 "PYTORCH_CUDA_ALLOC_CONF wins (default: the newest such report in the working "
                 "directory; 'none': none)");
  sub.add_flag("--no-gpu", options->no_gpu, "Do not load NVML; advise as for a host without GPUs");
  return [&global, options]() { return env_command(global, *options); };
}

}  // namespace memscope::cli
