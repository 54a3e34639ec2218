#include "analyze/fragmentation.hpp"

#include <gtest/gtest.h>

namespace memscope::fragment {
namespace {

using torch::Block;
using torch::BlockState;
using torch::Segment;
using torch::Snapshot;
using torch::TraceAction;
using torch::TraceEntry;

constexpr uint64_t kMiB = uint64_t{1} << 20;

uint32_t stack_of(Snapshot& snapshot, const std::string& name) {
  const uint32_t frame = snapshot.frames.intern_frame({"train.py", 10, name});
  return snapshot.frames.intern_stack({frame});
}

// Blocks laid out one after the other from the segment's address.
Segment segment(int device, uint64_t address, std::vector<Block> blocks) {
  Segment s;
  s.device = device;
  s.address = address;
  uint64_t at = address;
  for (Block& block : blocks) {
    block.address = at;
    at += block.size;
    s.total_size += block.size;
  }
  s.blocks = std::move(blocks);
  return s;
}

Block block(uint64_t size, BlockState state, uint64_t requested = 0, uint32_t stack = 0) {
  Block b;
  b.size = size;
  b.state = state;
  b.requested_size = requested;
  b.stack = stack;
  return b;
}

// Device 0: a 20 MiB segment split into 8 MiB allocated (7.5 requested), 2 MiB free, 6 MiB
// pending free, 4 MiB free; a 2 MiB segment wholly free. Device 1: one 2 MiB allocated block.
Snapshot two_devices() {
  Snapshot snapshot;
  const uint32_t forward = stack_of(snapshot, "forward");
  const uint32_t loss = stack_of(snapshot, "loss");
  snapshot.segments.push_back(segment(
      0, 0x10000000,
      {block(8 * kMiB, BlockState::active_allocated, 7 * kMiB + kMiB / 2, forward),
       block(2 * kMiB, BlockState::inactive),
       block(6 * kMiB, BlockState::active_pending_free, 6 * kMiB, loss),
       block(4 * kMiB, BlockState::inactive)}));
  snapshot.segments.push_back(segment(0, 0x20000000, {block(2 * kMiB, BlockState::inactive)}));
  snapshot.segments.push_back(
      segment(1, 0x30000000, {block(2 * kMiB, BlockState::active_allocated, 2 * kMiB, loss)}));
  return snapshot;
}

TEST(Fragmentation, MeasuresEachDevice) {
  const auto devices = analyze(two_devices());
  ASSERT_EQ(devices.size(), 2u);
  const DeviceFragmentation& d = devices[0];
  EXPECT_EQ(d.device, 0);
  EXPECT_EQ(d.reserved_bytes, 22 * kMiB);
  EXPECT_EQ(d.allocated_bytes, 8 * kMiB);
  EXPECT_EQ(d.active_bytes, 14 * kMiB);
  EXPECT_EQ(d.requested_bytes, 7 * kMiB + kMiB / 2);
  EXPECT_EQ(d.pending_free_bytes, 6 * kMiB);
  EXPECT_EQ(d.internal_free_bytes, kMiB / 2);
  EXPECT_EQ(d.external_free_bytes, 8 * kMiB);
  EXPECT_EQ(d.inactive_split_bytes, 6 * kMiB) << "the wholly free segment can be returned";
  EXPECT_EQ(d.largest_free_block_bytes, 4 * kMiB);
  EXPECT_DOUBLE_EQ(d.external_fragmentation, 0.5);
  EXPECT_EQ(d.segment_count, 2u);
  EXPECT_EQ(d.block_count, 5u);
  EXPECT_TRUE(d.identity_holds) << (d.inconsistencies.empty() ? "" : d.inconsistencies[0]);
  ASSERT_EQ(d.segments.size(), 2u);
  EXPECT_DOUBLE_EQ(d.segments[0].occupancy, 8.0 / 20.0);
  EXPECT_EQ(d.segments[1].free_bytes, 2 * kMiB);
  ASSERT_EQ(d.top_sites.size(), 2u);
  EXPECT_EQ(d.top_sites[0].bytes, 8 * kMiB);
  EXPECT_EQ(d.top_sites[1].bytes, 6 * kMiB);
  EXPECT_EQ(devices[1].reserved_bytes, 2 * kMiB);
  EXPECT_EQ(devices[1].external_fragmentation, 0.0) << "nothing free";
  EXPECT_EQ(analyze(two_devices(), 1).size(), 1u);
  EXPECT_TRUE(analyze(two_devices(), 7).empty());
}

TEST(Fragmentation, SaysWhatDoesNotAddUp) {
  Snapshot snapshot = two_devices();
  snapshot.segments[0].total_size += 2 * kMiB;  // a damaged segment
  snapshot.segments[0].blocks[0].requested_size = 9 * kMiB;  // more than the block
  const DeviceFragmentation d = analyze(snapshot, 0)[0];
  EXPECT_FALSE(d.identity_holds);
  ASSERT_EQ(d.inconsistencies.size(), 3u);
  EXPECT_NE(d.inconsistencies[0].find("larger than its size"), std::string::npos);
  EXPECT_NE(d.inconsistencies[1].find("blocks add up to"), std::string::npos);
  EXPECT_NE(d.inconsistencies[2].find("reserved"), std::string::npos);
}

TEST(Fragmentation, OversizeBlocksCountOnlyWithAMaxSplitSize) {
  Snapshot snapshot = two_devices();
  EXPECT_EQ(analyze(snapshot, 0)[0].oversize_count, 0u);
  snapshot.settings.present = true;
  snapshot.settings.max_split_size = static_cast<int64_t>(6 * kMiB);
  const DeviceFragmentation d = analyze(snapshot, 0)[0];
  EXPECT_EQ(d.oversize_count, 2u);
  EXPECT_EQ(d.oversize_bytes, 14 * kMiB);
  EXPECT_DOUBLE_EQ(d.oversize_share, 14.0 / 22.0);
}

TEST(Fragmentation, CompareFindsWhatBecameLiveAndSegmentChanges) {
  const Snapshot a = two_devices();
  Snapshot b = two_devices();
  // In B the first free block of device 0 is allocated by a new site, and a segment was added.
  const uint32_t leak = stack_of(b, "leaky_cache");
  b.segments[0].blocks[1].state = BlockState::active_allocated;
  b.segments[0].blocks[1].requested_size = 2 * kMiB;
  b.segments[0].blocks[1].stack = leak;
  b.segments.push_back(
      segment(0, 0x40000000, {block(20 * kMiB, BlockState::active_allocated, 20 * kMiB, leak)}));
  const Comparison c = compare(a, b);
  EXPECT_EQ(c.new_live_bytes, 22 * kMiB);
  EXPECT_EQ(c.new_live_count, 2u);
  ASSERT_EQ(c.new_live.size(), 1u);
  EXPECT_EQ(c.new_live[0].stack, leak);
  ASSERT_EQ(c.gained.size(), 1u);
  EXPECT_EQ(c.gained[0].address, 0x40000000u);
  EXPECT_TRUE(c.lost.empty());
  EXPECT_EQ(c.reserved_delta_bytes, static_cast<int64_t>(20 * kMiB));
  EXPECT_EQ(c.allocated_delta_bytes, static_cast<int64_t>(22 * kMiB));
  // The same blocks under different stacks are different blocks.
  const Comparison self = compare(a, a);
  EXPECT_EQ(self.new_live_bytes, 0u);
  EXPECT_TRUE(self.gained.empty());
}

TraceEntry entry(TraceAction action, uint64_t addr, uint64_t size, int64_t time_us = -1) {
  TraceEntry e;
  e.action = action;
  e.addr = addr;
  e.size = size;
  e.time_us = time_us;
  return e;
}

TEST(FragmentationTimeline, EndsAtTheSnapshotsOwnLevelsEvenWhenTheStartWasOverwritten) {
  Snapshot snapshot;
  snapshot.segments.push_back(segment(0, 0x1000, {block(20 * kMiB, BlockState::active_allocated, 12 * kMiB)}));
  // The ring buffer lost the segment_alloc and an alloc of 4 MiB (freed below): only these.
  snapshot.device_traces.push_back({
      entry(TraceAction::free_requested, 0x9000, 4 * kMiB, 1'000'000),
      entry(TraceAction::free_completed, 0x9000, 4 * kMiB, 1'500'000),
      entry(TraceAction::alloc, 0x1000, 12 * kMiB, 2'000'000),
      entry(TraceAction::oom, 0, 40 * kMiB, 3'000'000),
  });
  snapshot.device_traces.back().back().device_free = 5 * kMiB;
  const auto all = timelines(snapshot);
  ASSERT_EQ(all.size(), 1u);
  const Timeline& t = all[0];
  EXPECT_TRUE(t.anchored);
  EXPECT_TRUE(t.has_times);
  ASSERT_EQ(t.points.size(), 5u);
  EXPECT_EQ(t.points[0].allocated_bytes, 4 * kMiB) << "the block freed first was live before";
  EXPECT_EQ(t.points[0].reserved_bytes, 20 * kMiB);
  EXPECT_EQ(t.points[2].allocated_bytes, 0u);
  EXPECT_DOUBLE_EQ(t.points[2].t_seconds, 0.5);
  EXPECT_EQ(t.points[4].allocated_bytes, 12 * kMiB);
  EXPECT_EQ(t.peak_allocated_bytes, 12 * kMiB);
  ASSERT_EQ(t.ooms.size(), 1u);
  EXPECT_DOUBLE_EQ(t.ooms[0].t_seconds, 2.0);
  EXPECT_EQ(t.ooms[0].requested_bytes, 40 * kMiB);
  EXPECT_EQ(t.ooms[0].device_free_bytes, 5 * kMiB);
  EXPECT_EQ(t.ooms[0].reserved_bytes, 20 * kMiB);
}

TEST(FragmentationTimeline, TraceThatDisagreesWithTheSegmentsStartsFromZero) {
  Snapshot snapshot;  // no segments at all, yet the trace allocated a segment
  snapshot.device_traces.push_back({entry(TraceAction::segment_alloc, 0x1000, 20 * kMiB),
                                    entry(TraceAction::alloc, 0x1000, kMiB)});
  const Timeline t = timelines(snapshot)[0];
  EXPECT_FALSE(t.anchored);
  EXPECT_FALSE(t.has_times);
  EXPECT_EQ(t.points.back().reserved_bytes, 20 * kMiB);
  EXPECT_EQ(t.points.back().allocated_bytes, kMiB);
  EXPECT_DOUBLE_EQ(t.points.back().t_seconds, 2.0) << "entry index without times";
}

TEST(FragmentationTimeline, DevicesWithoutEntriesHaveNoTimeline) {
  Snapshot snapshot;
  snapshot.device_traces.resize(2);
  snapshot.device_traces[1].push_back(entry(TraceAction::alloc, 1, 512));
  const auto all = timelines(snapshot);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].device, 1);
}

}  // namespace
}  // namespace memscope::fragment
