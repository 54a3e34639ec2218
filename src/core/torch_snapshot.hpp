// Value types of a PyTorch CUDA memory snapshot (`torch.cuda.memory._dump_snapshot`, layout in
// ../shared/specs/pytorch-memory.md section 1): what collect/torch_snapshot decodes from the
// pickle and analyze/fragmentation and analyze/alloc_sim consume. Call stacks are interned: a
// snapshot of 1 GB repeats the same few thousand stacks millions of times.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace memscope::torch {

struct Frame {
  std::string filename;
  int64_t line = 0;
  std::string name;
};

// Interned frames and stacks. Stack 0 is the empty stack (no frames recorded); a stack's frames
// are innermost first, as PyTorch lists them.
class FrameTable {
 public:
  FrameTable() { stacks_.emplace_back(0, 0); }

  // The id of this frame (the same id for the same filename, line and name).
  uint32_t intern_frame(const Frame& frame);
  // The id of this list of frame ids (the same id for the same list); {} → 0.
  uint32_t intern_stack(const std::vector<uint32_t>& frame_ids);

  const Frame& frame(uint32_t id) const { return frames_[id]; }
  size_t frame_count() const { return frames_.size(); }
  size_t stack_count() const { return stacks_.size(); }
  // The frame ids of a stack, innermost first.
  std::pair<const uint32_t*, size_t> stack(uint32_t id) const {
    const auto& [offset, count] = stacks_[id];
    return {stack_frames_.data() + offset, count};
  }

 private:
  std::vector<Frame> frames_;
  std::vector<uint32_t> stack_frames_;
  std::vector<std::pair<uint32_t, uint32_t>> stacks_;  // [offset into stack_frames_, count)
  // Hash buckets (open addressing over ids + 1; 0 = empty), grown by doubling.
  std::vector<uint32_t> frame_index_;
  std::vector<uint32_t> stack_index_;
};

enum class BlockState : uint8_t { active_allocated, active_pending_free, inactive };
std::string_view block_state_name(BlockState state);

struct Block {
  uint64_t address = 0;  // 2.0 files: segment address + sizes of the blocks before it
  uint64_t size = 0;     // rounded
  uint64_t requested_size = 0;  // meaningful for active blocks only
  BlockState state = BlockState::inactive;
  uint32_t stack = 0;  // 2.1+ frames; 2.0: the frames of the block's last history entry
};

struct Segment {
  int device = 0;
  uint64_t address = 0;
  uint64_t total_size = 0;
  uint64_t allocated_size = 0;
  uint64_t active_size = 0;
  uint64_t requested_size = 0;
  int64_t stream = 0;
  bool large = true;        // segment_type 'large' | 'small'
  bool expandable = false;  // is_expandable (2.1+)
  std::pair<int64_t, int64_t> pool{0, 0};  // segment_pool_id: (0, 0) = the default pool
  uint32_t stack = 0;
  std::vector<Block> blocks;
};

enum class TraceAction : uint8_t {
  alloc,
  free_requested,
  free_completed,
  segment_alloc,
  segment_free,
  segment_map,
  segment_unmap,
  snapshot,
  oom,
  user_defined,
  annotate,
  unknown,  // a newer action: kept (and counted), never replayed
};
std::string_view trace_action_name(TraceAction action);

struct TraceEntry {  // 48 bytes: a 1 GB snapshot holds millions
  uint64_t addr = 0;         // for oom: 0 (device_free holds the driver's free bytes)
  uint64_t size = 0;         // alloc/free_*: the caller's unrounded request; segment_*: its size
  int64_t stream = 0;
  int64_t time_us = -1;      // epoch microseconds (2.2+); -1 when absent
  uint64_t device_free = 0;  // oom only
  uint32_t stack = 0;
  TraceAction action = TraceAction::unknown;
};

// `allocator_settings` (2.3+): what the snapshot's process ran with.
struct AllocatorSettings {
  bool present = false;
  std::string conf;                     // PYTORCH_CUDA_ALLOC_CONF as given ("" when unset)
  int64_t max_split_size = -1;          // bytes; -1 = unlimited
  double garbage_collection_threshold = 0;  // 0 = off
  bool expandable_segments = false;
  // roundup_power2_divisions: bucket lower bound in MiB → divisions (0 or 1 = off).
  std::vector<std::pair<uint64_t, int64_t>> roundup_power2_divisions;
};

// `external_annotations` (2.5+): record_function ranges.
struct Annotation {
  std::string stage;  // "START" | "END"
  std::string name;
  int device = 0;
  int64_t time_us = -1;
};

struct Snapshot {
  bool bare_segment_list = false;  // an old file whose top level is the segment list
  bool block_addresses = false;    // blocks carried `address` (2.1+)
  bool block_history = false;      // some block carried `history` (2.0)
  std::vector<Segment> segments;   // every device, sorted by address as written
  std::vector<std::vector<TraceEntry>> device_traces;  // index = device ordinal
  AllocatorSettings settings;
  std::vector<Annotation> annotations;
  FrameTable frames;
  // Fields and actions this reader does not know (newer PyTorch): counted, otherwise ignored.
  uint64_t unknown_fields = 0;
  uint64_t unknown_actions = 0;
};

}  // namespace memscope::torch
