// Environment settings for a training job on this machine (`memscope env`, `memscope run
// --tune`): pure rules from a plain struct of machine facts to a list of recommendations, each
// with a one-line reason and a longer explanation. Detection lives in cli/env_tuning.
//
// The rules (README "memscope env" repeats them):
// - usable CPUs = online CPUs, or floor(cgroup quota) when that is lower (at least 1);
//   per process = usable ÷ processes (--procs), at least 1.
// - OMP_NUM_THREADS = MKL_NUM_THREADS = OPENBLAS_NUM_THREADS = CPUs per process.
// - PYTORCH_CUDA_ALLOC_CONF (only with GPUs):
//   1. a measured config from `fragment --simulate` wins;
//   2. else expandable_segments:True when torch >= 2.1 (its first release with the option);
//   3. else (older or unknown torch: older releases reject keys they do not know)
//      max_split_size_mb:S,garbage_collection_threshold:0.8 with S = smallest GPU's memory / 128,
//      rounded down to a power of two, clamped to [64, 1024] MiB.
// - MALLOC_ARENA_MAX = 2 with at most 2 CPUs per process, else 4 (glibc's default cap is
//   8 arenas per core); MALLOC_TRIM_THRESHOLD_ = 131072 (glibc's starting value, kept fixed).
// - DataLoader num_workers = min(CPUs per process - 1, headroom / 2 / processes / 1 GiB, 8):
//   one core stays with the training process, half the memory headroom stays with the job, a
//   worker is budgeted 1 GiB. pin_memory = GPUs present; persistent_workers = num_workers > 0.
// - TOKENIZERS_PARALLELISM = false when DataLoader workers are recommended (their fork would
//   make the tokenizers library warn and fall back), else true.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace memscope::analyze {

struct GpuFact {
  int index = 0;
  std::string name;
  uint64_t total_bytes = 0;
};

// What `fragment --simulate --output F.json` measured on one snapshot.
struct MeasuredAllocConf {
  std::string config;         // the recommended PYTORCH_CUDA_ALLOC_CONF value ("" = defaults)
  std::string snapshot;       // the snapshot the replay ran on
  std::string source;         // the JSON file it came from
  uint64_t recorded_peak_reserved_bytes = 0;  // "as recorded" candidate
  uint64_t peak_reserved_bytes = 0;           // the recommended candidate
  std::string reason;         // fragment's own one-line reason
};

struct MachineFacts {
  unsigned online_cpus = 1;               // CPUs this process may run on
  std::optional<double> cpu_quota_cores;  // cgroup quota ÷ period; nullopt: no quota
  std::string cpu_quota_source;           // e.g. "cgroup v2 /job.slice/cpu.max"
  uint64_t ram_total_bytes = 0;           // MemTotal
  uint64_t ram_available_bytes = 0;       // MemAvailable
  uint64_t swap_total_bytes = 0;
  uint64_t swap_free_bytes = 0;
  std::optional<uint64_t> memory_limit_bytes;  // tightest memory cgroup limit
  uint64_t memory_limit_usage_bytes = 0;       // usage counted against that limit
  std::vector<GpuFact> gpus;
  std::string gpu_unavailable_reason;  // why no GPU was seen (NVML's message), when none
  std::string driver_version;
  std::string torch_version;           // "" when unknown
  std::string torch_version_source;    // the file it came from, or "--torch-version"
  unsigned processes = 1;              // training processes (ranks) sharing the machine
  std::optional<MeasuredAllocConf> measured;
};

struct Recommendation {
  std::string name;    // an environment variable, or "DataLoader(num_workers=...)" style advice
  std::string value;
  std::string reason;  // one line
  std::string detail;  // the longer reasoning (--explain)
  bool is_env = true;  // false: advice for the program (DataLoader arguments), not a variable
};

struct EnvAdvice {
  unsigned usable_cpus = 1;
  unsigned cpus_per_process = 1;
  uint64_t memory_headroom_bytes = 0;
  std::vector<Recommendation> items;
  std::vector<std::string> notes;  // e.g. "no NVIDIA GPU: CUDA allocator advice skipped"
};

// The rules at the top of this file.
EnvAdvice recommend_env(const MachineFacts& facts);

// The version in a torch/version.py ("__version__ = '2.1.0+cu121'"); "" when absent.
std::string parse_torch_version_py(std::string_view text);

// Whether a torch version string ("2.1.0+cu121", "2.10.0a0", "1.13.1") has
// expandable_segments (>= 2.1). nullopt when it is not a version.
std::optional<bool> torch_has_expandable_segments(std::string_view version);

// max_split_size_mb for a GPU of this size (rule 3 above).
uint64_t max_split_size_mb_for(uint64_t gpu_total_bytes);

}  // namespace memscope::analyze
