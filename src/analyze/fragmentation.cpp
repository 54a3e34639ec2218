#include "analyze/fragmentation.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <tuple>
#include <unordered_map>

namespace memscope::fragment {

namespace {

using torch::BlockState;
using torch::Snapshot;
using torch::TraceAction;

bool is_active(BlockState state) { return state != BlockState::inactive; }

// Sites by bytes, largest first (ties: more blocks, then the lower stack id), at most `top`.
std::vector<SiteBytes> ranked(const std::unordered_map<uint32_t, SiteBytes>& sites, size_t top) {
  std::vector<SiteBytes> out;
  out.reserve(sites.size());
  for (const auto& [stack, site] : sites) out.push_back(site);
  std::sort(out.begin(), out.end(), [](const SiteBytes& a, const SiteBytes& b) {
    return std::tie(b.bytes, b.count, a.stack) < std::tie(a.bytes, a.count, b.stack);
  });
  if (out.size() > top) out.resize(top);
  return out;
}

DeviceFragmentation analyze_device(const Snapshot& snapshot, int device, size_t top) {
  DeviceFragmentation out;
  out.device = device;
  const int64_t max_split = snapshot.settings.max_split_size;
  out.max_split_size = max_split > 0 ? static_cast<uint64_t>(max_split) : 0;
  std::unordered_map<uint32_t, SiteBytes> sites;
  for (const torch::Segment& segment : snapshot.segments) {
    if (segment.device != device) continue;
    SegmentSummary summary;
    summary.address = segment.address;
    summary.total_bytes = segment.total_size;
    summary.stream = segment.stream;
    summary.large = segment.large;
    summary.expandable = segment.expandable;
    summary.blocks = segment.blocks.size();
    uint64_t block_sum = 0;
    for (const torch::Block& block : segment.blocks) {
      block_sum += block.size;
      switch (block.state) {
        case BlockState::active_allocated:
          out.allocated_bytes += block.size;
          out.requested_bytes += block.requested_size;
          summary.allocated_bytes += block.size;
          if (block.requested_size > block.size) {
            out.inconsistencies.push_back(fmt::format(
                "block at {:#x}: requested_size {} is larger than its size {}", block.address,
                block.requested_size, block.size));
          } else {
            out.internal_free_bytes += block.size - block.requested_size;
          }
          break;
        case BlockState::active_pending_free:
          out.pending_free_bytes += block.size;
          break;
        case BlockState::inactive:
          out.external_free_bytes += block.size;
          summary.free_bytes += block.size;
          out.largest_free_block_bytes = std::max(out.largest_free_block_bytes, block.size);
          if (segment.blocks.size() > 1) out.inactive_split_bytes += block.size;
          break;
      }
      if (is_active(block.state)) {
        out.active_bytes += block.size;
        SiteBytes& site = sites[block.stack];
        site.stack = block.stack;
        site.bytes += block.size;
        ++site.count;
      }
      if (out.max_split_size > 0 && block.size >= out.max_split_size) {
        ++out.oversize_count;
        out.oversize_bytes += block.size;
      }
    }
    if (block_sum != segment.total_size) {
      out.inconsistencies.push_back(
          fmt::format("segment at {:#x}: total_size {} but its blocks add up to {}",
                      segment.address, segment.total_size, block_sum));
    }
    summary.occupancy = segment.total_size > 0 ? static_cast<double>(summary.allocated_bytes) /
                                                     static_cast<double>(segment.total_size)
                                               : 0.0;
    out.reserved_bytes += segment.total_size;
    out.block_count += segment.blocks.size();
    out.segments.push_back(summary);
  }
  std::sort(out.segments.begin(), out.segments.end(),
            [](const SegmentSummary& a, const SegmentSummary& b) { return a.address < b.address; });
  out.segment_count = out.segments.size();
  if (out.external_free_bytes > 0) {
    out.external_fragmentation = 1.0 - static_cast<double>(out.largest_free_block_bytes) /
                                           static_cast<double>(out.external_free_bytes);
  }
  if (out.reserved_bytes > 0) {
    out.oversize_share =
        static_cast<double>(out.oversize_bytes) / static_cast<double>(out.reserved_bytes);
  }
  const uint64_t sum = out.requested_bytes + out.internal_free_bytes + out.external_free_bytes +
                       out.pending_free_bytes;
  if (sum != out.reserved_bytes) {
    out.inconsistencies.push_back(fmt::format(
        "requested {} + internal free {} + external free {} + pending free {} = {}, but {} "
        "reserved",
        out.requested_bytes, out.internal_free_bytes, out.external_free_bytes,
        out.pending_free_bytes, sum, out.reserved_bytes));
  }
  out.identity_holds = out.inconsistencies.empty();
  out.top_sites = ranked(sites, top);
  return out;
}

std::set<int> devices_of(const Snapshot& snapshot) {
  std::set<int> devices;
  for (const torch::Segment& segment : snapshot.segments) devices.insert(segment.device);
  return devices;
}

// The frames of a stack, compared by content: stack ids of two snapshots are unrelated.
std::vector<std::tuple<std::string, int64_t, std::string>> frames_of(const Snapshot& snapshot,
                                                                     uint32_t stack) {
  std::vector<std::tuple<std::string, int64_t, std::string>> out;
  const auto [ids, count] = snapshot.frames.stack(stack);
  for (size_t i = 0; i < count; ++i) {
    const torch::Frame& frame = snapshot.frames.frame(ids[i]);
    out.emplace_back(frame.filename, frame.line, frame.name);
  }
  return out;
}

// a + b, held at the int64 range (crafted sizes near 2^63 must not overflow).
int64_t add_saturated(int64_t a, int64_t b) {
  int64_t sum = 0;
  if (!__builtin_add_overflow(a, b, &sum)) return sum;
  return b > 0 ? INT64_MAX : INT64_MIN;
}

int64_t signed_of(uint64_t value) {
  return value > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(value);
}

}  // namespace

std::vector<DeviceFragmentation> analyze(const Snapshot& snapshot, int device, size_t top_sites) {
  std::vector<DeviceFragmentation> out;
  for (const int d : devices_of(snapshot)) {
    if (device >= 0 && d != device) continue;
    out.push_back(analyze_device(snapshot, d, top_sites));
  }
  return out;
}

Comparison compare(const Snapshot& a, const Snapshot& b, size_t top_sites) {
  Comparison out;
  // A's active blocks by (device, address, size, frames).
  using BlockKey = std::tuple<int, uint64_t, uint64_t,
                              std::vector<std::tuple<std::string, int64_t, std::string>>>;
  std::set<BlockKey> before;
  std::map<uint32_t, std::vector<std::tuple<std::string, int64_t, std::string>>> a_frames;
  for (const torch::Segment& segment : a.segments) {
    for (const torch::Block& block : segment.blocks) {
      if (!is_active(block.state)) continue;
      auto found = a_frames.find(block.stack);
      if (found == a_frames.end()) found = a_frames.emplace(block.stack, frames_of(a, block.stack)).first;
      before.emplace(segment.device, block.address, block.size, found->second);
    }
  }
  std::unordered_map<uint32_t, SiteBytes> sites;
  std::map<uint32_t, std::vector<std::tuple<std::string, int64_t, std::string>>> b_frames;
  for (const torch::Segment& segment : b.segments) {
    for (const torch::Block& block : segment.blocks) {
      if (!is_active(block.state)) continue;
      auto found = b_frames.find(block.stack);
      if (found == b_frames.end()) found = b_frames.emplace(block.stack, frames_of(b, block.stack)).first;
      if (before.count(BlockKey{segment.device, block.address, block.size, found->second}) != 0) {
        continue;
      }
      SiteBytes& site = sites[block.stack];
      site.stack = block.stack;
      site.bytes += block.size;
      ++site.count;
      out.new_live_bytes += block.size;
      ++out.new_live_count;
    }
  }
  out.new_live = ranked(sites, top_sites);

  std::map<std::pair<int, uint64_t>, uint64_t> segments_a;
  std::map<std::pair<int, uint64_t>, uint64_t> segments_b;
  for (const torch::Segment& segment : a.segments) segments_a[{segment.device, segment.address}] = segment.total_size;
  for (const torch::Segment& segment : b.segments) segments_b[{segment.device, segment.address}] = segment.total_size;
  for (const auto& [key, bytes] : segments_b) {
    const auto found = segments_a.find(key);
    if (found == segments_a.end() || found->second != bytes) out.gained.push_back({key.first, key.second, bytes});
  }
  for (const auto& [key, bytes] : segments_a) {
    const auto found = segments_b.find(key);
    if (found == segments_b.end() || found->second != bytes) out.lost.push_back({key.first, key.second, bytes});
  }
  for (const DeviceFragmentation& d : analyze(b)) {
    out.reserved_delta_bytes = add_saturated(out.reserved_delta_bytes, signed_of(d.reserved_bytes));
    out.allocated_delta_bytes = add_saturated(out.allocated_delta_bytes, signed_of(d.allocated_bytes));
  }
  for (const DeviceFragmentation& d : analyze(a)) {
    out.reserved_delta_bytes = add_saturated(out.reserved_delta_bytes, -signed_of(d.reserved_bytes));
    out.allocated_delta_bytes = add_saturated(out.allocated_delta_bytes, -signed_of(d.allocated_bytes));
  }
  return out;
}

namespace {

// How an entry moves the two levels.
struct Delta {
  int64_t allocated = 0;
  int64_t reserved = 0;
};

Delta delta_of(const torch::TraceEntry& entry) {
  const int64_t size = signed_of(entry.size);
  switch (entry.action) {
    case TraceAction::alloc: return {size, 0};
    case TraceAction::free_completed: return {-size, 0};
    case TraceAction::segment_alloc:
    case TraceAction::segment_map: return {0, size};
    case TraceAction::segment_free:
    case TraceAction::segment_unmap: return {0, -size};
    default: return {};
  }
}

Timeline timeline_of(const Snapshot& snapshot, int device) {
  Timeline out;
  out.device = device;
  const std::vector<torch::TraceEntry>& trace = snapshot.device_traces[static_cast<size_t>(device)];
  // The levels at the end: the snapshot's own.
  int64_t allocated_end = 0;
  int64_t reserved_end = 0;
  for (const torch::Segment& segment : snapshot.segments) {
    if (segment.device != device) continue;
    reserved_end = add_saturated(reserved_end, signed_of(segment.total_size));
    for (const torch::Block& block : segment.blocks) {
      if (is_active(block.state)) allocated_end = add_saturated(allocated_end, signed_of(block.requested_size));
    }
  }
  // Walk backwards to the level before the first entry.
  int64_t allocated = allocated_end;
  int64_t reserved = reserved_end;
  bool anchored = true;
  for (size_t i = trace.size(); i-- > 0;) {
    const Delta delta = delta_of(trace[i]);
    allocated = add_saturated(allocated, -delta.allocated);
    reserved = add_saturated(reserved, -delta.reserved);
    if (allocated < 0 || reserved < 0) anchored = false;
  }
  if (!anchored) {
    allocated = 0;
    reserved = 0;
  }
  out.anchored = anchored;
  int64_t first_time = -1;
  for (const torch::TraceEntry& entry : trace) {
    if (entry.time_us >= 0) {
      first_time = entry.time_us;
      break;
    }
  }
  out.has_times = first_time >= 0;
  double last_t = 0;
  const auto time_of = [&](size_t index, const torch::TraceEntry& entry) {
    if (!out.has_times) return static_cast<double>(index);
    if (entry.time_us >= 0) last_t = static_cast<double>(entry.time_us - first_time) / 1e6;
    return last_t;  // an entry without a time keeps the previous one's
  };
  const auto level = [](int64_t value) { return value > 0 ? static_cast<uint64_t>(value) : 0; };
  out.points.reserve(trace.size() + 1);
  out.points.push_back({0, level(allocated), level(reserved)});
  for (size_t i = 0; i < trace.size(); ++i) {
    const torch::TraceEntry& entry = trace[i];
    const double t = time_of(i + 1, entry);
    const Delta delta = delta_of(entry);
    allocated = add_saturated(allocated, delta.allocated);
    reserved = add_saturated(reserved, delta.reserved);
    if (entry.action == TraceAction::oom) {
      out.ooms.push_back({t, entry.size, entry.device_free, level(allocated), level(reserved)});
    }
    out.points.push_back({t, level(allocated), level(reserved)});
    out.peak_allocated_bytes = std::max(out.peak_allocated_bytes, level(allocated));
    out.peak_reserved_bytes = std::max(out.peak_reserved_bytes, level(reserved));
  }
  out.peak_allocated_bytes = std::max(out.peak_allocated_bytes, out.points.front().allocated_bytes);
  out.peak_reserved_bytes = std::max(out.peak_reserved_bytes, out.points.front().reserved_bytes);
  return out;
}

}  // namespace

std::vector<Timeline> timelines(const Snapshot& snapshot, int device) {
  std::vector<Timeline> out;
  for (size_t d = 0; d < snapshot.device_traces.size(); ++d) {
    if (device >= 0 && static_cast<size_t>(device) != d) continue;
    if (snapshot.device_traces[d].empty()) continue;
    out.push_back(timeline_of(snapshot, static_cast<int>(d)));
  }
  return out;
}

}  // namespace memscope::fragment
