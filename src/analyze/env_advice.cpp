#include "analyze/env_advice.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/units.hpp"

namespace memscope::analyze {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr uint64_t kWorkerBudgetBytes = kGiB;  // memory budgeted per DataLoader worker
constexpr unsigned kMaxWorkers = 8;            // more rarely helps and multiplies host memory
constexpr uint64_t kMinSplitMb = 64;
constexpr uint64_t kMaxSplitMb = 1024;

unsigned usable_cpus(const MachineFacts& facts) {
  unsigned cpus = std::max(1u, facts.online_cpus);
  if (facts.cpu_quota_cores && *facts.cpu_quota_cores > 0) {
    const double quota = std::floor(*facts.cpu_quota_cores);
    if (quota < static_cast<double>(cpus)) cpus = std::max(1u, static_cast<unsigned>(quota));
  }
  return cpus;
}

// Memory the job may still take: MemAvailable, or the room under the cgroup limit if less.
uint64_t headroom(const MachineFacts& facts) {
  uint64_t room = facts.ram_available_bytes;
  if (facts.memory_limit_bytes) {
    const uint64_t limit = *facts.memory_limit_bytes;
    const uint64_t under = limit > facts.memory_limit_usage_bytes
                               ? limit - facts.memory_limit_usage_bytes
                               : 0;
    room = std::min(room, under);
  }
  return room;
}

std::string cpu_facts(const MachineFacts& facts, unsigned usable) {
  std::string text = fmt::format("{} online CPUs", facts.online_cpus);
  if (facts.cpu_quota_cores) {
    text += fmt::format(", cgroup CPU quota {:.2f} CPUs ({})", *facts.cpu_quota_cores,
                        facts.cpu_quota_source);
  } else {
    text += ", no cgroup CPU quota";
  }
  return text + fmt::format(": {} usable", usable);
}

std::string memory_facts(const MachineFacts& facts, uint64_t room) {
  std::string text = fmt::format("RAM {} (available {}), swap {}", format_bytes(facts.ram_total_bytes),
                                 format_bytes(facts.ram_available_bytes),
                                 format_bytes(facts.swap_total_bytes));
  if (facts.memory_limit_bytes) {
    text += fmt::format(", cgroup limit {} with {} used", format_bytes(*facts.memory_limit_bytes),
                        format_bytes(facts.memory_limit_usage_bytes));
  }
  return text + fmt::format(": headroom {}", format_bytes(room));
}

std::string per_process(unsigned processes) {
  return processes > 1 ? fmt::format(" ÷ {} processes", processes) : "";
}

void add_threads(const MachineFacts& facts, EnvAdvice& advice) {
  const std::string value = std::to_string(advice.cpus_per_process);
  const std::string reason = fmt::format("{} usable CPUs{} = {} per process", advice.usable_cpus,
                                         per_process(facts.processes), advice.cpus_per_process);
  const std::string detail = fmt::format(
      "Facts: {}. OpenMP, MKL and OpenBLAS start one thread per online CPU by default, not per "
      "CPU the cgroup quota allows: a process limited to fewer CPUs than it sees is throttled "
      "and its threads wait on each other. Each of the {} process(es) gets an equal share "
      "(rule: floor(min(online, quota)) ÷ processes, at least 1).",
      cpu_facts(facts, advice.usable_cpus), facts.processes);
  for (const char* name : {"OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"}) {
    advice.items.push_back({name, value, reason, detail, true});
  }
}

void add_alloc_conf(const MachineFacts& facts, EnvAdvice& advice) {
  if (facts.gpus.empty()) {
    advice.notes.push_back(fmt::format(
        "no NVIDIA GPU found{}: PYTORCH_CUDA_ALLOC_CONF skipped, pin_memory off",
        facts.gpu_unavailable_reason.empty() ? "" : " (" + facts.gpu_unavailable_reason + ")"));
    return;
  }
  const std::string name = "PYTORCH_CUDA_ALLOC_CONF";
  const std::string torch = facts.torch_version.empty()
                                ? "torch version unknown"
                                : fmt::format("torch {} (from {})", facts.torch_version,
                                              facts.torch_version_source);
  if (facts.measured && !facts.measured->config.empty()) {
    const MeasuredAllocConf& m = *facts.measured;
    advice.items.push_back(
        {name, m.config,
         fmt::format("measured by fragment --simulate on {}: peak reserved {} → {}", m.snapshot,
                     format_bytes(m.recorded_peak_reserved_bytes),
                     format_bytes(m.peak_reserved_bytes)),
         fmt::format("From {}: the allocator replay of the snapshot's trace under candidate "
                     "settings chose this one ({}). A measurement on your own workload beats "
                     "the generic rule; {}.",
                     m.source, m.reason, torch),
         true});
    return;
  }
  if (facts.measured) {
    advice.notes.push_back(fmt::format(
        "fragment --simulate ({}) found nothing better than the recorded settings for {}; "
        "using the generic rule",
        facts.measured->source, facts.measured->snapshot));
  }
  const std::optional<bool> expandable =
      facts.torch_version.empty() ? std::nullopt : torch_has_expandable_segments(facts.torch_version);
  if (expandable.value_or(false)) {
    advice.items.push_back(
        {name, "expandable_segments:True",
         fmt::format("{} >= 2.1: segments grow in place, so freed blocks are not stranded",
                     facts.torch_version),
         fmt::format("Facts: {}. With expandable segments the caching allocator maps physical "
                     "pages into one growing virtual range per stream instead of cudaMalloc'ing "
                     "fixed segments, which removes most fragmentation between differently sized "
                     "allocations (e.g. varying sequence lengths); max_split_size_mb and "
                     "garbage_collection_threshold are then not needed. Newer releases also read "
                     "PYTORCH_ALLOC_CONF.",
                     torch),
         true});
    return;
  }
  uint64_t smallest = facts.gpus.front().total_bytes;
  for (const GpuFact& gpu : facts.gpus) smallest = std::min(smallest, gpu.total_bytes);
  const uint64_t split = max_split_size_mb_for(smallest);
  const std::string why_not =
      facts.torch_version.empty()
          ? "torch version unknown (give --torch-version): expandable_segments is not offered "
            "because releases before 2.1 reject options they do not know"
          : (expandable ? fmt::format("torch {} predates expandable_segments (2.1)",
                                      facts.torch_version)
                        : fmt::format("torch version '{}' not understood", facts.torch_version));
  advice.items.push_back(
      {name, fmt::format("max_split_size_mb:{},garbage_collection_threshold:0.8", split),
       fmt::format("{}; blocks over {} MiB (smallest GPU {} / 128) are never split", why_not,
                   split, format_bytes(smallest)),
       fmt::format("Facts: {}; smallest GPU {}. Blocks at or above max_split_size_mb are not "
                   "split, so large cached blocks are not carved into pieces that no later "
                   "large request fits (rule: GPU memory / 128, rounded down to a power of two, "
                   "between {} and {} MiB). garbage_collection_threshold:0.8 frees unused "
                   "cached blocks once reserved memory passes 80% — it acts only when the "
                   "program sets torch.cuda.set_per_process_memory_fraction.",
                   torch, format_bytes(smallest), kMinSplitMb, kMaxSplitMb),
       true});
}

void add_malloc(EnvAdvice& advice) {
  const unsigned arenas = advice.cpus_per_process <= 2 ? 2 : 4;
  advice.items.push_back(
      {"MALLOC_ARENA_MAX", std::to_string(arenas),
       fmt::format("caps glibc's heap arenas at {} (default up to 8 per core) for many-threaded "
                   "loaders",
                   arenas),
       fmt::format("glibc gives threads that contend for the heap their own arena, up to 8 × "
                   "cores of them ({} here); each keeps the memory its threads freed, so a "
                   "DataLoader or tokenizer with many threads grows RSS by hundreds of MiB. "
                   "Rule: 2 with at most 2 CPUs per process, else 4.",
                   8 * advice.usable_cpus),
       true});
  advice.items.push_back(
      {"MALLOC_TRIM_THRESHOLD_", "131072",
       "keeps glibc's trim threshold at 128 KiB so freed heap returns to the system",
       "glibc starts at 128 KiB but raises the trim threshold (up to 64 MiB) each time a large "
       "mmap'ed block is freed, after which freed memory at the top of the heap stays in the "
       "process. Setting it fixes the value (and turns off that dynamic adjustment).",
       true});
}

void add_dataloader(const MachineFacts& facts, EnvAdvice& advice) {
  const unsigned processes = std::max(1u, facts.processes);
  const unsigned by_cpu = advice.cpus_per_process > 0 ? advice.cpus_per_process - 1 : 0;
  const uint64_t by_memory_64 =
      advice.memory_headroom_bytes / 2 / processes / kWorkerBudgetBytes;
  const unsigned by_memory = static_cast<unsigned>(std::min<uint64_t>(by_memory_64, kMaxWorkers));
  const unsigned workers = std::min({by_cpu, by_memory, kMaxWorkers});
  std::string limited_by = "the cap of 8";
  if (workers == by_cpu && by_cpu < kMaxWorkers) limited_by = "CPUs";
  if (workers == by_memory && by_memory < by_cpu) limited_by = "memory";
  advice.items.push_back(
      {"DataLoader num_workers", std::to_string(workers),
       fmt::format("{} CPUs per process leave {} for workers, memory headroom {} allows {}: "
                   "limited by {}",
                   advice.cpus_per_process, by_cpu, format_bytes(advice.memory_headroom_bytes),
                   by_memory, limited_by),
       fmt::format("Facts: {}; {}. Rule: min(CPUs per process - 1, headroom / 2 / {} "
                   "process(es) / 1 GiB per worker, 8): one core stays with the training "
                   "loop, half the headroom stays with the job, each worker (a forked copy of "
                   "the dataset plus prefetched batches) is budgeted 1 GiB.",
                   cpu_facts(facts, advice.usable_cpus),
                   memory_facts(facts, advice.memory_headroom_bytes), processes),
       false});
  const bool gpus = !facts.gpus.empty();
  advice.items.push_back(
      {"DataLoader pin_memory", gpus ? "True" : "False",
       gpus ? fmt::format("{} GPU(s): page-locked batches copy to the GPU asynchronously",
                          facts.gpus.size())
            : "no GPU: pinned host memory would only be locked RAM",
       "pin_memory=True puts batches in page-locked host memory so .to('cuda', "
       "non_blocking=True) overlaps the copy with compute; pinned memory cannot be swapped, so "
       "it counts fully against RAM.",
       false});
  advice.items.push_back(
      {"DataLoader persistent_workers", workers > 0 ? "True" : "False",
       workers > 0 ? "keeps the workers between epochs instead of forking them again"
                   : "no workers (PyTorch rejects persistent_workers without them)",
       "persistent_workers=True keeps worker processes (and their copy of the dataset) alive "
       "across epochs, avoiding a fork and dataset re-initialisation per epoch; it needs "
       "num_workers > 0.",
       false});
  advice.items.push_back(
      {"TOKENIZERS_PARALLELISM", workers > 0 ? "false" : "true",
       workers > 0 ? "DataLoader workers fork: tokenizers' own threads would be disabled with a "
                     "warning and oversubscribe the CPUs"
                   : "no DataLoader workers: the tokenizer may use its threads",
       "The Hugging Face tokenizers library disables its thread pool (with a warning) in a "
       "process forked after it was used; with DataLoader workers the parallelism comes from "
       "the workers, so its own threads would only compete for the same CPUs.",
       true});
}

// "2.1.0+cu121" -> {2, 1}; nullopt unless it starts with digits '.' digits.
std::optional<std::pair<unsigned, unsigned>> major_minor(std::string_view version) {
  unsigned parts[2] = {0, 0};
  size_t i = 0;
  for (unsigned& part : parts) {
    const size_t start = i;
    while (i < version.size() && version[i] >= '0' && version[i] <= '9' && i - start < 6) {
      part = part * 10 + static_cast<unsigned>(version[i] - '0');
      ++i;
    }
    if (i == start) return std::nullopt;
    if (&part == &parts[0]) {
      if (i >= version.size() || version[i] != '.') return std::nullopt;
      ++i;
    }
  }
  return std::make_pair(parts[0], parts[1]);
}

}  // namespace

uint64_t max_split_size_mb_for(uint64_t gpu_total_bytes) {
  const uint64_t target = gpu_total_bytes / kMiB / 128;
  uint64_t split = kMinSplitMb;
  while (split * 2 <= target && split * 2 <= kMaxSplitMb) split *= 2;
  return split;
}

std::optional<bool> torch_has_expandable_segments(std::string_view version) {
  const auto parsed = major_minor(version);
  if (!parsed) return std::nullopt;
  return parsed->first > 2 || (parsed->first == 2 && parsed->second >= 1);
}

std::string parse_torch_version_py(std::string_view text) {
  // setup.py writes `__version__ = '2.1.0+cu121'` (quotes of either kind).
  size_t pos = 0;
  while ((pos = text.find("__version__", pos)) != std::string_view::npos) {
    const bool line_start = pos == 0 || text[pos - 1] == '\n';
    pos += 11;
    if (!line_start) continue;
    size_t i = pos;
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    if (i < text.size() && text[i] == ':') {  // `__version__: str = '...'`
      const size_t eq = text.find('=', i);
      if (eq == std::string_view::npos) return "";
      i = eq;
    }
    if (i >= text.size() || text[i] != '=') continue;
    ++i;
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    if (i >= text.size() || (text[i] != '\'' && text[i] != '"')) continue;
    const char quote = text[i];
    const size_t end = text.find(quote, i + 1);
    if (end == std::string_view::npos || text.substr(i + 1, end - i - 1).find('\n') != std::string_view::npos) {
      return "";
    }
    return std::string(text.substr(i + 1, end - i - 1));
  }
  return "";
}

EnvAdvice recommend_env(const MachineFacts& facts) {
  EnvAdvice advice;
  advice.usable_cpus = usable_cpus(facts);
  advice.cpus_per_process = std::max(1u, advice.usable_cpus / std::max(1u, facts.processes));
  advice.memory_headroom_bytes = headroom(facts);
  if (facts.processes > advice.usable_cpus) {
    advice.notes.push_back(fmt::format("{} processes share {} usable CPUs: each gets 1 thread and "
                                       "they still oversubscribe",
                                       facts.processes, advice.usable_cpus));
  }
  add_alloc_conf(facts, advice);
  add_threads(facts, advice);
  add_malloc(advice);
  add_dataloader(facts, advice);
  return advice;
}

}  // namespace memscope::analyze
