#include "core/torch_snapshot.hpp"

#include <functional>

namespace memscope::torch {

namespace {

uint64_t mix(uint64_t hash, uint64_t value) {
  hash ^= value + 0x9E3779B97F4A7C15ULL + (hash << 6) + (hash >> 2);
  return hash;
}

uint64_t hash_frame(const Frame& frame) {
  uint64_t hash = std::hash<std::string>{}(frame.filename);
  hash = mix(hash, std::hash<std::string>{}(frame.name));
  return mix(hash, static_cast<uint64_t>(frame.line));
}

bool same_frame(const Frame& a, const Frame& b) {
  return a.line == b.line && a.name == b.name && a.filename == b.filename;
}

// Open addressing over `index` (entries are id + 1; 0 = empty): the slot holding an id for
// which `equal` holds, or the empty slot where it belongs.
template <class Equal>
size_t probe(const std::vector<uint32_t>& index, uint64_t hash, Equal equal) {
  const size_t mask = index.size() - 1;
  for (size_t slot = static_cast<size_t>(hash) & mask;; slot = (slot + 1) & mask) {
    if (index[slot] == 0 || equal(index[slot] - 1)) return slot;
  }
}

}  // namespace

uint32_t FrameTable::intern_frame(const Frame& frame) {
  if ((frames_.size() + 1) * 2 > frame_index_.size()) {
    std::vector<uint32_t> grown(frame_index_.empty() ? 1024 : frame_index_.size() * 2, 0);
    for (uint32_t id = 0; id < frames_.size(); ++id) {
      grown[probe(grown, hash_frame(frames_[id]), [](uint32_t) { return false; })] = id + 1;
    }
    frame_index_ = std::move(grown);
  }
  const size_t slot = probe(frame_index_, hash_frame(frame),
                            [&](uint32_t id) { return same_frame(frames_[id], frame); });
  if (frame_index_[slot] != 0) return frame_index_[slot] - 1;
  const auto id = static_cast<uint32_t>(frames_.size());
  frames_.push_back(frame);
  frame_index_[slot] = id + 1;
  return id;
}

uint32_t FrameTable::intern_stack(const std::vector<uint32_t>& frame_ids) {
  if (frame_ids.empty()) return 0;
  const auto hash_of = [](const uint32_t* ids, size_t count) {
    uint64_t hash = count;
    for (size_t i = 0; i < count; ++i) hash = mix(hash, ids[i]);
    return hash;
  };
  if ((stacks_.size() + 1) * 2 > stack_index_.size()) {
    std::vector<uint32_t> grown(stack_index_.empty() ? 1024 : stack_index_.size() * 2, 0);
    for (uint32_t id = 1; id < stacks_.size(); ++id) {
      const auto [ids, count] = stack(id);
      grown[probe(grown, hash_of(ids, count), [](uint32_t) { return false; })] = id + 1;
    }
    stack_index_ = std::move(grown);
  }
  const size_t slot =
      probe(stack_index_, hash_of(frame_ids.data(), frame_ids.size()), [&](uint32_t id) {
        const auto [ids, count] = stack(id);
        if (count != frame_ids.size()) return false;
        for (size_t i = 0; i < count; ++i) {
          if (ids[i] != frame_ids[i]) return false;
        }
        return true;
      });
  if (stack_index_[slot] != 0) return stack_index_[slot] - 1;
  const auto id = static_cast<uint32_t>(stacks_.size());
  stacks_.emplace_back(static_cast<uint32_t>(stack_frames_.size()),
                       static_cast<uint32_t>(frame_ids.size()));
  stack_frames_.insert(stack_frames_.end(), frame_ids.begin(), frame_ids.end());
  stack_index_[slot] = id + 1;
  return id;
}

std::string_view block_state_name(BlockState state) {
  switch (state) {
    case BlockState::active_allocated: return "active_allocated";
    case BlockState::active_pending_free: return "active_pending_free";
    case BlockState::inactive: return "inactive";
  }
  return "inactive";
}

std::string_view trace_action_name(TraceAction action) {
  switch (action) {
    case TraceAction::alloc: return "alloc";
    case TraceAction::free_requested: return "free_requested";
    case TraceAction::free_completed: return "free_completed";
    case TraceAction::segment_alloc: return "segment_alloc";
    case TraceAction::segment_free: return "segment_free";
    case TraceAction::segment_map: return "segment_map";
    case TraceAction::segment_unmap: return "segment_unmap";
    case TraceAction::snapshot: return "snapshot";
    case TraceAction::oom: return "oom";
    case TraceAction::user_defined: return "user_defined";
    case TraceAction::annotate: return "annotate";
    case TraceAction::unknown: return "unknown";
  }
  return "unknown";
}

}  // namespace memscope::torch
