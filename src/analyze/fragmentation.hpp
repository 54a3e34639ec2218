// What a PyTorch memory snapshot says about fragmentation, per device (`memscope fragment`):
// reserved, allocated, active, requested, internal and external free bytes, what empty_cache
// cannot return, the largest free block, external fragmentation, per-segment occupancy,
// oversize blocks and the call sites holding memory; the difference between two snapshots;
// and memory over time from the recorded trace. Definitions in docs/report-formats.md
// ("memscope-fragment"). Pure functions over core/torch_snapshot's types.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/torch_snapshot.hpp"

namespace memscope::fragment {

struct SegmentSummary {
  uint64_t address = 0;
  uint64_t total_bytes = 0;
  uint64_t allocated_bytes = 0;  // Σ active_allocated block sizes
  uint64_t free_bytes = 0;       // Σ inactive block sizes
  int64_t stream = 0;
  bool large = true;
  bool expandable = false;
  size_t blocks = 0;
  double occupancy = 0;  // allocated / total
};

// Active (allocated or pending free) memory of one call stack.
struct SiteBytes {
  uint32_t stack = 0;  // id in the snapshot's FrameTable; 0 = no frames recorded
  uint64_t bytes = 0;
  uint64_t count = 0;
};

struct DeviceFragmentation {
  int device = 0;
  uint64_t reserved_bytes = 0;
  uint64_t allocated_bytes = 0;
  uint64_t active_bytes = 0;
  uint64_t requested_bytes = 0;
  uint64_t pending_free_bytes = 0;
  uint64_t internal_free_bytes = 0;
  uint64_t external_free_bytes = 0;
  uint64_t inactive_split_bytes = 0;
  uint64_t largest_free_block_bytes = 0;
  double external_fragmentation = 0;
  size_t segment_count = 0;
  size_t block_count = 0;
  uint64_t max_split_size = 0;  // from allocator_settings; 0 = unlimited
  uint64_t oversize_count = 0;
  uint64_t oversize_bytes = 0;
  double oversize_share = 0;  // oversize bytes / reserved
  // requested + internal free + external free + pending free == reserved, and every segment's
  // total_size == Σ its block sizes; what does not add up is listed.
  bool identity_holds = true;
  std::vector<std::string> inconsistencies;
  std::vector<SegmentSummary> segments;  // by address
  std::vector<SiteBytes> top_sites;      // by bytes, largest first
};

// One entry per device that has segments (or only `device` when it is ≥ 0), by device.
std::vector<DeviceFragmentation> analyze(const torch::Snapshot& snapshot, int device = -1,
                                         size_t top_sites = 10);

// `--compare A B`: what is live in B and was not in A (a block is the same when its device,
// address, size and stack are), by call site; and the segments of B not in A (gained) and of A
// not in B (lost), by device and address.
struct SegmentChange {
  int device = 0;
  uint64_t address = 0;
  uint64_t bytes = 0;
};
struct Comparison {
  std::vector<SiteBytes> new_live;  // stacks are B's
  uint64_t new_live_bytes = 0;
  uint64_t new_live_count = 0;
  std::vector<SegmentChange> gained;
  std::vector<SegmentChange> lost;
  int64_t reserved_delta_bytes = 0;  // B − A, all devices
  int64_t allocated_delta_bytes = 0;
};
Comparison compare(const torch::Snapshot& a, const torch::Snapshot& b, size_t top_sites = 10);

// `--timeline`: allocated and reserved bytes after each entry of a device's trace. The figures
// at the end are the snapshot's own (taken with the trace), and the trace is walked backwards
// from them, so a trace whose start the ring buffer overwrote still gets true levels; when
// the levels would go below zero (the trace and segments disagree) it is walked forwards from
// zero instead and `anchored` is false.
struct TimelinePoint {
  double t_seconds = 0;  // since the first entry (time_us), or the entry's index without times
  uint64_t allocated_bytes = 0;  // requested bytes of live blocks
  uint64_t reserved_bytes = 0;
};
struct OomMark {
  double t_seconds = 0;
  uint64_t requested_bytes = 0;
  uint64_t device_free_bytes = 0;
  uint64_t allocated_bytes = 0;  // the levels at the OOM
  uint64_t reserved_bytes = 0;
};
struct Timeline {
  int device = 0;
  bool has_times = false;  // time_us recorded (2.2+)
  bool anchored = true;
  std::vector<TimelinePoint> points;
  std::vector<OomMark> ooms;
  uint64_t peak_allocated_bytes = 0;
  uint64_t peak_reserved_bytes = 0;
};
std::vector<Timeline> timelines(const torch::Snapshot& snapshot, int device = -1);

}  // namespace memscope::fragment
