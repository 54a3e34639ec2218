// Detection of the machine facts `memscope env` recommends from (CPUs and the cgroup CPU quota,
// RAM, swap and the memory cgroup, GPUs, the installed torch version, a `fragment --simulate`
// result), and applying the recommendations to a job (`memscope run --tune`).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "analyze/env_advice.hpp"
#include "cli/options.hpp"
#include "collect/linux/roots.hpp"
#include "core/result.hpp"

namespace memscope::cli {

struct EnvTuningOptions {
  std::string torch_version;  // "" detect; "unknown" do not; else the version to assume
  std::string snapshot_sim;   // a `fragment --simulate --output` JSON file; "" look for one in
                              // the working directory; "none" use none
  unsigned processes = 1;     // --procs
  bool use_gpus = true;
};

// cgroup v2 cpu.max ("max 100000" or "250000 100000"): CPUs (quota ÷ period), nullopt for max.
Result<std::optional<double>> parse_cpu_max(std::string_view text);
// cgroup v1 cpu.cfs_quota_us and cpu.cfs_period_us: CPUs, nullopt for a quota of -1.
Result<std::optional<double>> parse_cfs_quota(std::string_view quota_text,
                                              std::string_view period_text);
// <sys>/devices/system/cpu/online ("0-3,8-11\n"): how many CPUs the list names.
Result<unsigned> parse_cpu_list(std::string_view text);

struct CpuQuota {
  double cpus = 0;
  std::string source;  // "cgroup v2 /job.slice/cpu.max"
};
// The tightest CPU quota from <proc>/self/cgroup's path up to the hierarchy's root; reasons
// for what could not be read go to notes.
std::optional<CpuQuota> read_cpu_quota(const procfs::Roots& roots,
                                       std::vector<std::string>& notes);

// A `fragment --simulate --output F.json` report: the first device's recommendation.
Result<analyze::MeasuredAllocConf> read_simulate_report(const std::string& path);
// The newest `fragment --simulate` report among the *.json files of `directory` (at most 256
// looked at, each at most 4 MiB); nullopt when there is none. Used when --snapshot-sim is not
// given (and not "none").
std::optional<analyze::MeasuredAllocConf> find_simulate_report(const std::string& directory);

// Everything recommend_env needs. Fails only for a bad --snapshot-sim file (exit 3).
Result<analyze::MachineFacts> detect_machine(const GlobalOptions& global,
                                             const EnvTuningOptions& options,
                                             std::vector<std::string>& notes);

// What `run --tune` did with one recommended variable.
struct TunedVariable {
  std::string name;
  std::string value;       // what the job sees
  bool applied = false;    // false: kept the user's value
  std::string recommended;
  std::string reason;
};
// Sets each recommended environment variable in this process (the job inherits it) unless the
// user already set it.
std::vector<TunedVariable> apply_recommendations(const analyze::EnvAdvice& advice);
// `run --tune`: detect (no --snapshot-sim, one process), recommend, apply, and say on stderr
// what was applied and what was kept.
std::vector<TunedVariable> tune_environment(const GlobalOptions& global, bool use_gpus);
// {"applied": {"NAME": "value", ...}, "kept": {"NAME": {"value": ..., "recommended": ...}}}
std::string tuned_env_json(const std::vector<TunedVariable>& tuned);

}  // namespace memscope::cli
