// FragmentationAnalyzer: `memscope fragment --snapshot` on PyTorch memory snapshots
// (torch.cuda.memory._snapshot() pickles) inside a program. Stateless: each call reads the file.
// Definitions of the figures: docs/report-formats.md ("memscope-fragment").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "memscope/result.hpp"

namespace memscope {

struct DeviceFragmentationSummary {
  int device = 0;
  uint64_t reserved_bytes = 0;       // Σ segment sizes
  uint64_t allocated_bytes = 0;      // Σ allocated block sizes
  uint64_t requested_bytes = 0;      // what the program asked for (≤ allocated)
  uint64_t internal_free_bytes = 0;  // allocated - requested (rounding inside blocks)
  uint64_t external_free_bytes = 0;  // inactive blocks in segments
  uint64_t largest_free_block_bytes = 0;
  double fragmentation_ratio = 0;  // 1 - largest free block / external free (0 when none free)
  size_t segment_count = 0;
  size_t block_count = 0;
};

// One allocator configuration replayed over a device's recorded trace (`fragment --simulate`).
struct AllocatorCandidate {
  std::string label;   // "as recorded", the config as given, or the sweep's change
  std::string config;  // canonical PYTORCH_CUDA_ALLOC_CONF value ("" = defaults)
  uint64_t peak_reserved_bytes = 0;
  double fragmentation_at_peak = 0;  // 1 - largest free block / free, when reserved peaked
  double peak_fragmentation = 0;
  uint64_t ooms = 0;
  uint64_t retries = 0;  // release-all-and-retry rounds
};

struct DeviceSimulation {
  int device = 0;
  bool complete = true;  // false: the trace starts mid-ring-buffer; figures are approximate
  std::vector<AllocatorCandidate> candidates;  // [0]: as recorded
  size_t recommended = 0;                      // index into candidates; 0 = keep the settings
  std::string recommended_line;  // "export PYTORCH_CUDA_ALLOC_CONF=..." ("" when keeping)
  std::string reason;            // one line
};

struct FragmentationOptions {
  int device = -1;        // only this device (≥ 0), else every device with segments
  size_t top_sites = 10;  // call sites listed per device in report_json()
};

class FragmentationAnalyzer {
 public:
  explicit FragmentationAnalyzer(FragmentationOptions options = {});

  // One summary per device (by device). Errors: unreadable or malformed snapshot, a device that
  // is not in it; the message names the file.
  Result<std::vector<DeviceFragmentationSummary>> analyze(const std::string& snapshot_path) const;
  // The `memscope fragment --snapshot FILE --output` document.
  Result<std::string> report_json(const std::string& snapshot_path) const;
  // Replays each device's recorded trace (torch.cuda.memory._record_memory_history) under the
  // recorded allocator settings, each of `configs` (PYTORCH_CUDA_ALLOC_CONF values) and, with
  // `sweep`, the built-in variations; recommends the one with the fewest OOMs, then the lowest
  // peak reserved. Errors: a config that does not parse (named), a snapshot without traces.
  Result<std::vector<DeviceSimulation>> simulate(const std::string& snapshot_path,
                                                 const std::vector<std::string>& configs = {},
                                                 bool sweep = true) const;

 private:
  FragmentationOptions options_;
};

}  // namespace memscope
