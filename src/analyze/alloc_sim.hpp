// A model of PyTorch's CUDA caching allocator (c10/cuda/CUDACachingAllocator.cpp; the rules in
// ../shared/specs/pytorch-memory.md section 3) that replays a snapshot's device trace
// (alloc / free_requested / free_completed / oom) under a given PYTORCH_CUDA_ALLOC_CONF: rounding,
// small and large pools per stream, segment sizes, best fit, splitting, max_split_size_mb,
// max_non_split_rounding_mb, roundup_power2_divisions, garbage_collection_threshold,
// expandable segments, and release-and-retry before an OOM. Pure: no files, no clocks.
// The rule decisions where the spec is silent are listed at the top of alloc_sim.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.hpp"
#include "core/torch_snapshot.hpp"

namespace memscope::alloc_sim {

inline constexpr uint64_t kMiB = uint64_t{1} << 20;
inline constexpr uint64_t kUnlimited = UINT64_MAX;

struct AllocatorConfig {
  bool native = true;                    // backend:native (cudaMallocAsync: not modelled)
  uint64_t max_split_size = kUnlimited;  // bytes
  uint64_t max_non_split_rounding = 20 * kMiB;
  // roundup_power2_divisions per power-of-two bucket: index i covers sizes in
  // [2^i MiB, 2^(i+1) MiB) (index 0 also everything below 1 MiB; the last, 2^15 MiB and up);
  // 0 or 1 = off.
  std::vector<uint64_t> roundup_power2_divisions = std::vector<uint64_t>(16, 0);
  double garbage_collection_threshold = 0;  // 0 = off; (0, 1) otherwise
  bool expandable_segments = false;
  // Options the model does not use (release_lock_on_cudamalloc, pinned_*, ...), "key:value"
  // as given, kept so that to_conf() gives them back.
  std::vector<std::string> other_options;

  // PYTORCH_CUDA_ALLOC_CONF syntax ("key:value,key:value"; roundup_power2_divisions takes a
  // number or "[256:1,512:2,>:4]"); unknown keys and bad values are errors naming them.
  static Result<AllocatorConfig> parse(std::string_view conf);
  // What a snapshot's allocator_settings say the process ran with (the structured fields; the
  // raw string adds max_non_split_rounding_mb, backend and the options the model ignores).
  static AllocatorConfig from_settings(const torch::AllocatorSettings& settings);
  // The canonical PYTORCH_CUDA_ALLOC_CONF value for this configuration ("" = all defaults);
  // parse(to_conf()) gives this configuration back.
  std::string to_conf() const;

  // Rule 1: the rounded size of a request.
  uint64_t round_size(uint64_t size) const;

  bool operator==(const AllocatorConfig&) const = default;
};

struct SimOptions {
  // The device's memory the allocator may take (cudaMalloc / cuMemCreate fail beyond it).
  // 0: derived from the trace's oom entries (the recorded reserved bytes + device_free at the
  // OOM, the smallest over all OOMs), else unlimited.
  uint64_t device_capacity = 0;
  // The reserved bytes of the snapshot's segments of this device (Σ total_size), 0 = unknown.
  // With it the recorded reserved bytes at an OOM are counted back from the end, which holds
  // even when the ring buffer dropped the trace's first entries; without it, forward from 0.
  uint64_t snapshot_reserved_bytes = 0;
};

struct SimResult {
  std::string config;            // AllocatorConfig::to_conf()
  uint64_t events = 0;           // trace entries replayed
  uint64_t device_capacity = 0;  // the capacity the replay ran with; 0 = unlimited
  uint64_t peak_reserved_bytes = 0;
  uint64_t peak_allocated_bytes = 0;  // rounded sizes of live blocks
  uint64_t final_reserved_bytes = 0;
  uint64_t final_allocated_bytes = 0;
  // 1 − largest free block / total free, at the moment reserved peaked (0 when nothing free).
  double fragmentation_at_peak = 0;
  double peak_fragmentation = 0;          // the largest value over the replay (reserved > 0)
  uint64_t ooms = 0;                      // requests the device could not satisfy after retrying
  uint64_t retries = 0;                   // release-all-and-retry rounds (num_alloc_retries)
  uint64_t recorded_ooms = 0;             // oom entries in the trace (each replayed as a request)
  uint64_t recorded_ooms_reproduced = 0;  // of those, the ones that fail here too
  uint64_t device_allocs = 0;             // cudaMalloc calls (or mappings, expandable)
  uint64_t device_frees = 0;              // cudaFree calls (or unmappings)
  uint64_t gc_freed_bytes = 0;            // released by garbage_collection_threshold
  uint64_t gc_released_segments = 0;
  std::vector<uint64_t> final_segment_sizes;  // per segment (contiguous mapped range), by address
  bool complete = true;                       // false: the trace started mid-ring-buffer
  uint64_t unknown_frees = 0;                 // frees of blocks the trace never allocated
  std::vector<std::string> notes;
};

// Replays one device's trace from an empty allocator. An empty trace, or a configuration the
// model cannot run (backend:cudaMallocAsync), is an error. A trace that starts mid-ring-buffer
// (frees of blocks it never allocated: PyTorch overwrote the oldest entries) cannot be replayed
// faithfully: those frees are skipped, `complete` is false and a note says how many — callers
// report that the figures are not the run's.
Result<SimResult> simulate(const std::vector<torch::TraceEntry>& trace,
                           const AllocatorConfig& config, const SimOptions& options = {});

// The built-in sweep: first the user's settings (label "current"), then
// expandable_segments on/off, max_split_size_mb 64/128/256/512, roundup_power2_divisions 4/8,
// garbage_collection_threshold 0.6/0.8, each on top of the user's settings (label: the change).
std::vector<std::pair<std::string, AllocatorConfig>> sweep(const AllocatorConfig& base);

struct Recommendation {
  size_t index = 0;         // into the results given; 0 = keep the current settings
  std::string reason;       // one line
  std::string export_line;  // "export PYTORCH_CUDA_ALLOC_CONF=..." (or "unset ...")
};

// Picks one candidate of a sweep (results[0] = the current settings): the one that avoids the
// most OOMs, then the lowest peak reserved; a candidate must beat the current settings by 2 %
// of peak reserved (or an OOM) to be recommended. Empty results → index 0, no line.
Recommendation recommend(const std::vector<std::pair<std::string, SimResult>>& results,
                         const std::vector<std::pair<std::string, AllocatorConfig>>& configs);

}  // namespace memscope::alloc_sim
