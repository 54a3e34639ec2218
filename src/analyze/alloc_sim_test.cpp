#include "analyze/alloc_sim.hpp"

#include <gtest/gtest.h>

namespace memscope::alloc_sim {
namespace {

using torch::TraceAction;
using torch::TraceEntry;

constexpr uint64_t MiB = kMiB;

// A recorded trace, written the way PyTorch records it: addresses name blocks, sizes are the
// caller's requests.
class Trace {
 public:
  Trace& alloc(uint64_t addr, uint64_t size, int64_t stream = 0) {
    return add(TraceAction::alloc, addr, size, stream);
  }
  Trace& free(uint64_t addr, int64_t stream = 0) {
    add(TraceAction::free_requested, addr, 0, stream);
    return add(TraceAction::free_completed, addr, 0, stream);
  }
  Trace& free_requested(uint64_t addr) { return add(TraceAction::free_requested, addr, 0, 0); }
  Trace& free_completed(uint64_t addr) { return add(TraceAction::free_completed, addr, 0, 0); }
  Trace& segment(TraceAction action, uint64_t size) { return add(action, 0xdead, size, 0); }
  Trace& oom(uint64_t size, uint64_t device_free, int64_t stream = 0) {
    add(TraceAction::oom, 0, size, stream);
    entries_.back().device_free = device_free;
    return *this;
  }
  const std::vector<TraceEntry>& entries() const { return entries_; }

 private:
  Trace& add(TraceAction action, uint64_t addr, uint64_t size, int64_t stream) {
    TraceEntry entry;
    entry.action = action;
    entry.addr = addr;
    entry.size = size;
    entry.stream = stream;
    entries_.push_back(entry);
    return *this;
  }
  std::vector<TraceEntry> entries_;
};

AllocatorConfig conf(std::string_view text) {
  Result<AllocatorConfig> config = AllocatorConfig::parse(text);
  EXPECT_TRUE(config.ok()) << (config.ok() ? "" : config.message());
  return config.ok() ? *config : AllocatorConfig{};
}

SimResult run(const Trace& trace, std::string_view config = "", uint64_t capacity = 0) {
  SimOptions options;
  options.device_capacity = capacity;
  Result<SimResult> result = simulate(trace.entries(), conf(config), options);
  EXPECT_TRUE(result.ok()) << (result.ok() ? "" : result.message());
  return result.ok() ? *result : SimResult{};
}

using Sizes = std::vector<uint64_t>;

// ---- rule 1: rounding

TEST(AllocSimRounding, MinimumIs512AndSizesRoundUpTo512) {
  const AllocatorConfig config;
  EXPECT_EQ(config.round_size(1), 512u);
  EXPECT_EQ(config.round_size(512), 512u);
  EXPECT_EQ(config.round_size(513), 1024u);
  EXPECT_EQ(config.round_size(84 * MiB), 84 * MiB);  // PyTorch test_allocator_settings, no knob
}

TEST(AllocSimRounding, PowerOfTwoDivisions) {
  const AllocatorConfig four = conf("roundup_power2_divisions:4");
  EXPECT_EQ(four.round_size(1200 * MiB), 1280 * MiB);  // PyTorch's comment: 1200 → 1280 (x MiB)
  EXPECT_EQ(four.round_size(84 * MiB), 96 * MiB);      // test_allocator_settings: power2_div(,4)
  EXPECT_EQ(four.round_size(1024 * MiB), 1024 * MiB);  // a power of two stays
  EXPECT_EQ(four.round_size(1500), 1536u);             // not above 512 × 4: plain 512 rounding
  EXPECT_EQ(four.round_size(3000), 3072u);             // 2048 + a quarter of 2048 steps
}

TEST(AllocSimRounding, PerBucketListAsPyTorchsTest) {
  // test_allocator_settings: [64:8,128:2,256:2,512:2,1024:1,>:1]; 84 MiB → 88, 400 MiB → 512.
  const AllocatorConfig config =
      conf("roundup_power2_divisions:[64:8,128:2,256:2,512:2,1024:1,>:1]");
  EXPECT_EQ(config.round_size(84 * MiB), 88 * MiB);
  EXPECT_EQ(config.round_size(400 * MiB), 512 * MiB);
  EXPECT_EQ(config.round_size(1500 * MiB + 1), 1500 * MiB + 512);  // 1024:1: plain rounding
}

TEST(AllocSimRounding, ListBucketsAsPyTorchsAllocatorConfigTest) {
  // c10/test/core/AllocatorConfig_test.cpp; bucket i = sizes in [2^i MiB, 2^(i+1) MiB).
  AllocatorConfig config = conf("roundup_power2_divisions:[64:8,128:2,256:4,512:2,1024:4,>:1]");
  const auto& b = config.roundup_power2_divisions;
  EXPECT_EQ(b[5], 8u);  // 32 MiB: the first entry also fills the buckets below it
  EXPECT_EQ(b[6], 8u);
  EXPECT_EQ(b[7], 2u);
  EXPECT_EQ(b[8], 4u);
  EXPECT_EQ(b[9], 2u);
  EXPECT_EQ(b[10], 4u);  // '>' starts after the last named bucket
  EXPECT_EQ(b[11], 1u);
  EXPECT_EQ(b[13], 1u);
  config = conf("roundup_power2_divisions:[128:8,256:16,512:1,2048:8,>:2]");
  EXPECT_EQ(config.roundup_power2_divisions[6], 8u);
  EXPECT_EQ(config.roundup_power2_divisions[8], 16u);
  EXPECT_EQ(config.roundup_power2_divisions[9], 1u);
  EXPECT_EQ(config.roundup_power2_divisions[10], 0u);  // unnamed, before '>'
  EXPECT_EQ(config.roundup_power2_divisions[11], 8u);
  EXPECT_EQ(config.roundup_power2_divisions[12], 2u);
}

// ---- rules 2, 3: pools and segment sizes

TEST(AllocSimSegments, SmallAndLargePoolsAndSegmentSizes) {
  EXPECT_EQ(run(Trace().alloc(1, 512)).final_segment_sizes, Sizes{2 * MiB});
  EXPECT_EQ(run(Trace().alloc(1, MiB)).final_segment_sizes, Sizes{2 * MiB});  // 1 MiB is small
  EXPECT_EQ(run(Trace().alloc(1, MiB + 1)).final_segment_sizes, Sizes{20 * MiB});
  EXPECT_EQ(run(Trace().alloc(1, 5 * MiB)).final_segment_sizes, Sizes{20 * MiB});
  EXPECT_EQ(run(Trace().alloc(1, 10 * MiB)).final_segment_sizes, Sizes{10 * MiB});
  EXPECT_EQ(run(Trace().alloc(1, 10 * MiB + 1)).final_segment_sizes, Sizes{12 * MiB});
}

TEST(AllocSimSegments, SmallRequestsShareTwoMiBSegmentsAndNeverLargeOnes) {
  Trace trace;
  for (uint64_t i = 1; i <= 5; ++i) trace.alloc(i, 512 * 1024);
  trace.alloc(6, 5 * MiB);  // large: its 15 MiB remainder is not for small requests
  trace.alloc(7, 512 * 1024);
  const SimResult result = run(trace);
  EXPECT_EQ(result.final_segment_sizes, (Sizes{2 * MiB, 2 * MiB, 20 * MiB}));
  EXPECT_EQ(result.peak_reserved_bytes, 24 * MiB);
  EXPECT_EQ(result.device_allocs, 3u);
}

// ---- rule 4: best fit

TEST(AllocSimBestFit, ChoosesTheSmallestFittingBlock) {
  // Free blocks of 20 and 30 MiB; 15 MiB must take the 20 so that 25 MiB still fits the 30.
  Trace trace;
  trace.alloc(1, 20 * MiB).alloc(2, 30 * MiB).free(1).free(2).alloc(3, 15 * MiB).alloc(4, 25 * MiB);
  const SimResult result = run(trace);
  EXPECT_EQ(result.device_allocs, 2u);
  EXPECT_EQ(result.peak_reserved_bytes, 50 * MiB);
}

TEST(AllocSimBestFit, TakesTheLowestAddressOnTies) {
  // Two free 16 MiB blocks: one inside the older 20 MiB segment (lower address), one a
  // segment of its own. Taking the lower one keeps the 16 MiB segment whole, so the release
  // before the last request frees it; taking the other would free the 20 MiB segment instead.
  Trace trace;
  trace
      .alloc(1, 4 * MiB)   // segment A: 20 MiB = [1: 4 | free 16]
      .alloc(3, 16 * MiB)  // A's free 16
      .alloc(2, 16 * MiB)  // segment B: 16 MiB
      .free(3)
      .free(2)
      .alloc(4, 16 * MiB)  // tie: A's block is at the lower address
      .free(1)
      .alloc(5, 30 * MiB);  // 36 + 30 > 50: release the unsplit B, then 20 + 30 fits
  const SimResult result = run(trace, "", 50 * MiB);
  EXPECT_EQ(result.final_segment_sizes, (Sizes{20 * MiB, 30 * MiB}));
  EXPECT_EQ(result.retries, 1u);
  EXPECT_EQ(result.ooms, 0u);
}

// ---- rule 6: splitting

TEST(AllocSimSplit, LargeBlocksSplitOnlyForRemaindersAboveOneMiB) {
  // 19 MiB in a 20 MiB segment leaves exactly 1 MiB: not split, the block is 20 MiB.
  EXPECT_EQ(run(Trace().alloc(1, 19 * MiB)).final_allocated_bytes, 20 * MiB);
  const uint64_t size = 18 * MiB + 512 * 1024;  // leaves 1.5 MiB of a cached 20 MiB block
  EXPECT_EQ(run(Trace().alloc(1, 20 * MiB).free(1).alloc(2, size)).final_allocated_bytes, size);
  EXPECT_EQ(run(Trace().alloc(1, 3 * MiB)).final_allocated_bytes, 3 * MiB);
}

TEST(AllocSimSplit, SmallBlocksSplitForAnyRemainder) {
  const SimResult result = run(Trace().alloc(1, MiB).alloc(2, MiB - 512).alloc(3, 512));
  EXPECT_EQ(result.final_segment_sizes, Sizes{2 * MiB});
  EXPECT_EQ(result.peak_allocated_bytes, 2 * MiB);
}

TEST(AllocSimSplit, ExpandableSegmentsSplitLargeBlocksToo) {
  EXPECT_EQ(run(Trace().alloc(1, 19 * MiB), "expandable_segments:True").final_allocated_bytes,
            19 * MiB);
}

TEST(AllocSimSplit, MaxSplitSizeKeepsSmallRequestsOffOversizeBlocks) {
  Trace trace;
  trace.alloc(1, 100 * MiB).free(1).alloc(2, 30 * MiB);
  EXPECT_EQ(run(trace).device_allocs, 1u);  // the 100 MiB block is split
  const SimResult limited = run(trace, "max_split_size_mb:64");
  EXPECT_EQ(limited.device_allocs, 2u);
  EXPECT_EQ(limited.final_segment_sizes, (Sizes{100 * MiB, 30 * MiB}));
}

TEST(AllocSimSplit, OversizeBlocksAreHandedOutWhole) {
  Trace trace;
  trace.alloc(1, 80 * MiB).free(1).alloc(2, 70 * MiB);
  const SimResult result = run(trace, "max_split_size_mb:64");
  EXPECT_EQ(result.device_allocs, 1u);
  EXPECT_EQ(result.final_allocated_bytes, 80 * MiB);
}

TEST(AllocSimSplit, MaxNonSplitRoundingBoundsTheSlack) {
  Trace trace;
  trace.alloc(1, 100 * MiB).free(1).alloc(2, 70 * MiB);
  // 100 >= 70 + 20: the block is refused, a 70 MiB segment is made.
  EXPECT_EQ(run(trace, "max_split_size_mb:64").device_allocs, 2u);
  const SimResult wider = run(trace, "max_split_size_mb:64,max_non_split_rounding_mb:40");
  EXPECT_EQ(wider.device_allocs, 1u);
  EXPECT_EQ(wider.final_allocated_bytes, 100 * MiB);
}

// ---- rule 7: free and merge

TEST(AllocSimFree, FreedNeighboursMergeBackIntoOneBlock) {
  Trace trace;
  trace.alloc(1, 4 * MiB).alloc(2, 4 * MiB).free(1).free(2).alloc(3, 20 * MiB);
  const SimResult result = run(trace);
  EXPECT_EQ(result.device_allocs, 1u);
  EXPECT_EQ(result.final_segment_sizes, Sizes{20 * MiB});
}

TEST(AllocSimFree, AFreeRequestedBlockStaysInUseUntilCompleted) {
  Trace pending;
  pending.alloc(1, 15 * MiB).free_requested(1).alloc(2, 15 * MiB);
  const SimResult held = run(pending);
  EXPECT_EQ(held.device_allocs, 2u);
  EXPECT_EQ(held.peak_allocated_bytes, 16 * MiB);  // allocated drops at free_requested
  Trace completed;
  completed.alloc(1, 15 * MiB).free_requested(1).free_completed(1).alloc(2, 15 * MiB);
  EXPECT_EQ(run(completed).device_allocs, 1u);
}

TEST(AllocSimFree, FragmentationIsOneMinusLargestOverTotalFree) {
  Trace trace;
  trace.alloc(1, 4 * MiB).alloc(2, 4 * MiB).alloc(3, 4 * MiB).free(2);  // free: 4 and 8 MiB
  const SimResult result = run(trace);
  EXPECT_DOUBLE_EQ(result.peak_fragmentation, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(result.fragmentation_at_peak, 0.0);  // the peak came with one free block
}

// ---- rule 5: release, retry, OOM

TEST(AllocSimRelease, ReleasesCachedBlocksAndRetriesBeforeAnOom) {
  Trace trace;
  trace.alloc(1, 30 * MiB).free(1).alloc(2, 35 * MiB);
  const SimResult result = run(trace, "", 40 * MiB);
  EXPECT_EQ(result.retries, 1u);
  EXPECT_EQ(result.ooms, 0u);
  EXPECT_EQ(result.device_frees, 1u);
  EXPECT_EQ(result.final_segment_sizes, Sizes{36 * MiB});
  EXPECT_EQ(run(trace).retries, 0u);  // unlimited: the 30 MiB stays cached
}

TEST(AllocSimRelease, CountsAnOomWhenNothingHelps) {
  Trace trace;
  trace.alloc(1, 30 * MiB).alloc(2, 20 * MiB).free(2).alloc(3, 512 * 1024);
  const SimResult result = run(trace, "", 40 * MiB);
  EXPECT_EQ(result.ooms, 1u);
  EXPECT_EQ(result.retries, 1u);
  EXPECT_EQ(result.unknown_frees, 0u);  // the free of the failed block is not unknown
  EXPECT_TRUE(result.complete);
  EXPECT_EQ(result.final_segment_sizes, (Sizes{30 * MiB, 2 * MiB}));  // the small one fits
}

TEST(AllocSimRelease, OversizeBlocksAreReleasedFirstAsInPyTorchsMaxSplitTest) {
  // test_max_split_expandable (without its toggles): 120 MiB allowed, max_split 40 MiB; the
  // fourth 40 MiB OOMs; after freeing all, 120 MiB is satisfied by releasing the three
  // oversize blocks (release_available_cached_blocks), with no further retry.
  Trace trace;
  trace.alloc(1, 40 * MiB).alloc(2, 40 * MiB).alloc(3, 40 * MiB).alloc(4, 40 * MiB);
  trace.free(1).free(2).free(3).alloc(5, 120 * MiB);
  const SimResult result = run(trace, "max_split_size_mb:40", 120 * MiB);
  EXPECT_EQ(result.ooms, 1u);
  EXPECT_EQ(result.retries, 1u);
  EXPECT_EQ(result.final_segment_sizes, Sizes{120 * MiB});
  EXPECT_EQ(result.device_frees, 3u);
}

TEST(AllocSimRelease, GarbageCollectionFreesOldCachedBlocksBeforeGrowing) {
  // 100 MiB, threshold 0.5: reserved 62 MiB > 50 when 40 MiB does not fit: the older free
  // block (30 MiB, age 2 against the mean 1.5) goes, the younger 32 MiB stays.
  Trace trace;
  trace.alloc(1, 30 * MiB).free(1).alloc(2, 32 * MiB).free(2).alloc(3, 40 * MiB);
  const SimResult gc = run(trace, "garbage_collection_threshold:0.5", 100 * MiB);
  EXPECT_EQ(gc.final_segment_sizes, (Sizes{32 * MiB, 40 * MiB}));
  EXPECT_EQ(gc.gc_freed_bytes, 30 * MiB);
  EXPECT_EQ(gc.gc_released_segments, 1u);
  EXPECT_EQ(gc.retries, 0u);
  const SimResult plain = run(trace, "", 100 * MiB);  // 102 MiB: release all, retry
  EXPECT_EQ(plain.final_segment_sizes, Sizes{40 * MiB});
  EXPECT_EQ(plain.retries, 1u);
}

TEST(AllocSimRelease, CapacityComesFromTheTracesOomEntries) {
  Trace trace;
  trace.segment(TraceAction::segment_alloc, 30 * MiB).alloc(1, 30 * MiB);
  trace.oom(20 * MiB, 5 * MiB);  // recorded: 30 MiB reserved, 5 MiB free → 35 MiB device
  const SimResult result = run(trace);
  EXPECT_EQ(result.device_capacity, 35 * MiB);
  EXPECT_EQ(result.recorded_ooms, 1u);
  EXPECT_EQ(result.recorded_ooms_reproduced, 1u);
  // With expandable segments the 30 MiB alloc needs two 20 MiB pages: 40 MiB do not fit 35;
  // the recorded 20 MiB request then fits.
  const SimResult expandable = run(trace, "expandable_segments:True");
  EXPECT_EQ(expandable.ooms, 1u);
  EXPECT_EQ(expandable.recorded_ooms_reproduced, 0u);
}

TEST(AllocSimRelease, SnapshotReservedCountsBackFromTheEnd) {
  Trace trace;  // the ring buffer kept only the end: a segment allocated before it is freed
  trace.segment(TraceAction::segment_free, 10 * MiB).oom(64 * MiB, 5 * MiB);
  SimOptions options;
  options.snapshot_reserved_bytes = 30 * MiB;
  Result<SimResult> result = simulate(trace.entries(), AllocatorConfig{}, options);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->device_capacity, 35 * MiB);
}

TEST(AllocSimRelease, ARecordedOomThatFitsIsNotReproduced) {
  // Recorded: 36 MiB reserved, nothing free. The model's 20 + 16 MiB segments fill it too, and
  // a 4 MiB request needs a new 20 MiB segment: reproduced.
  Trace trace;
  trace.segment(TraceAction::segment_alloc, 36 * MiB).alloc(1, 20 * MiB).alloc(2, 15 * MiB);
  trace.oom(4 * MiB, 0);
  const SimResult result = run(trace);
  EXPECT_EQ(result.device_capacity, 36 * MiB);
  EXPECT_EQ(result.recorded_ooms_reproduced, 1u);
  // Recorded with 40 MiB reserved: the model has 4 MiB left, a 2 MiB small segment fits.
  Trace roomy;
  roomy.segment(TraceAction::segment_alloc, 40 * MiB).alloc(1, 20 * MiB).alloc(2, 16 * MiB);
  roomy.oom(512 * 1024, 0);
  const SimResult fits = run(roomy);
  EXPECT_EQ(fits.recorded_ooms, 1u);
  EXPECT_EQ(fits.recorded_ooms_reproduced, 0u);
  EXPECT_EQ(fits.ooms, 0u);
  EXPECT_EQ(fits.final_allocated_bytes, 36 * MiB);  // the block was freed at once
}

// ---- rule 8: expandable segments

TEST(AllocSimExpandable, MapsPagesOnDemandAndShowsOneSegment) {
  Trace trace;
  trace.alloc(1, 5 * MiB).alloc(2, 5 * MiB).alloc(3, 30 * MiB);
  const SimResult result = run(trace, "expandable_segments:True");
  EXPECT_EQ(result.peak_reserved_bytes, 40 * MiB);  // 20 MiB page, then one more
  EXPECT_EQ(result.device_allocs, 2u);
  EXPECT_EQ(result.final_segment_sizes, Sizes{40 * MiB});
  EXPECT_EQ(run(trace).final_segment_sizes, (Sizes{20 * MiB, 30 * MiB}));
}

TEST(AllocSimExpandable, ReleaseUnmapsWholeFreePages) {
  // [1: 5 | 2: 30 | free 5] in two pages; 2 freed; stream 1 needs 40 MiB of a 60 MiB device:
  // the release unmaps the free second page (20..40 MiB) and keeps 5..20 MiB mapped.
  Trace trace;
  trace.alloc(1, 5 * MiB).alloc(2, 30 * MiB).free(2).alloc(3, 30 * MiB, 1);
  const SimResult result = run(trace, "expandable_segments:True", 60 * MiB);
  EXPECT_EQ(result.retries, 1u);
  EXPECT_EQ(result.ooms, 0u);
  EXPECT_EQ(result.final_reserved_bytes, 60 * MiB);
  EXPECT_EQ(result.final_segment_sizes, (Sizes{20 * MiB, 40 * MiB}));
  EXPECT_EQ(result.device_frees, 1u);
}

TEST(AllocSimExpandable, AFullyFreeSegmentIsDroppedOnRelease) {
  Trace trace;
  trace.alloc(1, 30 * MiB).free(1).alloc(2, 30 * MiB, 1);
  const SimResult result = run(trace, "expandable_segments:True", 60 * MiB);
  EXPECT_EQ(result.retries, 1u);
  EXPECT_EQ(result.final_segment_sizes, Sizes{40 * MiB});
  EXPECT_EQ(result.peak_reserved_bytes, 40 * MiB);
}

// ---- streams, unknown frees

TEST(AllocSimStreams, StreamsDoNotShareBlocks) {
  EXPECT_EQ(run(Trace().alloc(1, 4 * MiB).free(1).alloc(2, 4 * MiB, 0)).device_allocs, 1u);
  EXPECT_EQ(run(Trace().alloc(1, 4 * MiB).free(1).alloc(2, 4 * MiB, 7)).device_allocs, 2u);
}

TEST(AllocSimTrace, FreesOfUnknownBlocksMakeTheReplayIncomplete) {
  const SimResult result = run(Trace().free(99).alloc(1, MiB).free(1).free_completed(98));
  EXPECT_EQ(result.unknown_frees, 2u);  // one per block, free_requested + free_completed
  EXPECT_FALSE(result.complete);
  ASSERT_FALSE(result.notes.empty());
  EXPECT_NE(result.notes.back().find("2 frees"), std::string::npos);
}

TEST(AllocSimTrace, SegmentEntriesDoNotDriveTheReplay) {
  Trace trace;
  trace.segment(TraceAction::segment_alloc, 200 * MiB).alloc(1, 4 * MiB);
  trace.segment(TraceAction::segment_free, 200 * MiB);
  const SimResult result = run(trace);
  EXPECT_EQ(result.final_segment_sizes, Sizes{20 * MiB});
  // A release with no allocation after it is the program's empty_cache(): said, not replayed.
  ASSERT_EQ(result.notes.size(), 1u);
  EXPECT_NE(result.notes[0].find("empty_cache"), std::string::npos);
  Trace retry;  // a release inside a malloc: segment_free, then the retried segment_alloc
  retry.segment(TraceAction::segment_free, 20 * MiB).segment(TraceAction::segment_alloc, 30 * MiB);
  retry.alloc(1, 30 * MiB);
  EXPECT_TRUE(run(retry).notes.empty());
}

TEST(AllocSimTrace, EmptyTracesAndCudaMallocAsyncAreErrors) {
  EXPECT_FALSE(simulate({}, AllocatorConfig{}).ok());
  const Result<SimResult> async =
      simulate(Trace().alloc(1, 512).entries(), conf("backend:cudaMallocAsync"));
  ASSERT_FALSE(async.ok());
  EXPECT_NE(async.message().find("cudaMallocAsync"), std::string::npos);
}

// Random traces on two streams with late frees, under every candidate of the sweep on a tight
// device: the books balance, and once everything is freed an impossible request (which
// releases all it can before its OOM) leaves nothing reserved — which holds only if every
// freed block merged back into whole segments.
TEST(AllocSimTrace, RandomTracesLeaveNothingReservedOnceAllIsFreed) {
  uint64_t state = 12345;
  auto next = [&state](uint64_t n) {
    state = state * 6364136223846793005u + 1442695040888963407u;
    return (state >> 33) % n;
  };
  Trace trace;
  std::vector<uint64_t> live;
  std::vector<uint64_t> requested;
  uint64_t addr = 0;
  for (int i = 0; i < 6000; ++i) {
    const uint64_t dice = next(10);
    if (dice < 5 || live.empty()) {
      const uint64_t kind = next(16);
      const uint64_t size = kind < 4    ? 1 + next(MiB)
                            : kind < 7  ? 1 + next(40 * MiB)
                            : kind == 7 ? 1 + next(150 * MiB)
                                        : 1 + next(4 * MiB);
      live.push_back(++addr);
      trace.alloc(addr, size, static_cast<int64_t>(next(2)) * 5);
    } else {
      const size_t pick = static_cast<size_t>(next(live.size()));
      const uint64_t victim = live[pick];
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(pick));
      if (dice == 9) {
        trace.free_requested(victim);
        requested.push_back(victim);
      } else {
        trace.free(victim);
      }
    }
    if (requested.size() > 3) {
      trace.free_completed(requested.front());
      requested.erase(requested.begin());
    }
  }
  for (uint64_t victim : live) trace.free(victim);
  for (uint64_t victim : requested) trace.free_completed(victim);
  constexpr uint64_t kCapacity = 600 * MiB;
  trace.alloc(++addr, kCapacity + 1);
  for (const auto& [label, config] : sweep(AllocatorConfig{})) {
    SimOptions options;
    options.device_capacity = kCapacity;
    const Result<SimResult> result = simulate(trace.entries(), config, options);
    ASSERT_TRUE(result.ok()) << label;
    EXPECT_LE(result->peak_reserved_bytes, kCapacity) << label;
    EXPECT_LE(result->peak_allocated_bytes, result->peak_reserved_bytes) << label;
    EXPECT_GE(result->ooms, 1u) << label;
    EXPECT_EQ(result->final_allocated_bytes, 0u) << label;
    EXPECT_EQ(result->final_reserved_bytes, 0u) << label;
    EXPECT_TRUE(result->final_segment_sizes.empty()) << label;
    EXPECT_TRUE(result->complete) << label;
  }
}

// ---- AllocatorConfig

TEST(AllocSimConfig, ParsesEveryDocumentedKey) {
  const AllocatorConfig config = conf(
      "backend:native, max_split_size_mb:128,max_non_split_rounding_mb:40,"
      "roundup_power2_divisions:[256:1,512:2,>:4],garbage_collection_threshold:0.6,"
      "expandable_segments:True,release_lock_on_cudamalloc:True,"
      "pinned_use_cuda_host_register:True,pinned_num_register_threads:8,"
      "pinned_use_background_threads:False,");
  EXPECT_TRUE(config.native);
  EXPECT_EQ(config.max_split_size, 128 * MiB);
  EXPECT_EQ(config.max_non_split_rounding, 40 * MiB);
  EXPECT_EQ(config.roundup_power2_divisions[0], 1u);
  EXPECT_EQ(config.roundup_power2_divisions[8], 1u);
  EXPECT_EQ(config.roundup_power2_divisions[9], 2u);
  EXPECT_EQ(config.roundup_power2_divisions[15], 4u);
  EXPECT_DOUBLE_EQ(config.garbage_collection_threshold, 0.6);
  EXPECT_TRUE(config.expandable_segments);
  EXPECT_EQ(config.other_options.size(), 4u);
  EXPECT_FALSE(conf("backend:cudaMallocAsync").native);
}

TEST(AllocSimConfig, RejectsBadInputNamingIt) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"max_split_size_mb:20", "max_split_size_mb"},
      {"max_split_size_mb:abc", "'abc'"},
      {"max_split_size_mb:-5", "'-5'"},
      {"foo:1", "unknown key 'foo'"},
      {"garbage_collection_threshold:1.2", "garbage_collection_threshold"},
      {"garbage_collection_threshold:0", "garbage_collection_threshold"},
      {"garbage_collection_threshold:x", "'x'"},
      {"expandable_segments:yes", "expandable_segments"},
      {"roundup_power2_divisions:3", "roundup_power2_divisions"},
      {"roundup_power2_divisions:[256:3]", "roundup_power2_divisions"},
      {"roundup_power2_divisions:[300:4]", "'300'"},
      {"roundup_power2_divisions:[256:4", "missing ']'"},
      {"max_non_split_rounding_mb:10", "max_non_split_rounding_mb"},
      {"backend:other", "'other'"},
      {"max_split_size_mb", "expected ':'"},
      {"expandable_segments:True;max_split_size_mb:64", "expandable_segments"},
  };
  for (const auto& [text, needle] : cases) {
    const Result<AllocatorConfig> config = AllocatorConfig::parse(text);
    ASSERT_FALSE(config.ok()) << text;
    EXPECT_NE(config.message().find(needle), std::string::npos) << config.message();
    EXPECT_EQ(config.message().find('\n'), std::string::npos);
  }
}

TEST(AllocSimConfig, ToConfRoundTrips) {
  EXPECT_EQ(AllocatorConfig{}.to_conf(), "");
  for (std::string_view text :
       {"expandable_segments:True", "max_split_size_mb:256,garbage_collection_threshold:0.8",
        "roundup_power2_divisions:4", "roundup_power2_divisions:[64:8,128:2,256:4,>:1]",
        "backend:cudaMallocAsync,max_non_split_rounding_mb:64,release_lock_on_cudamalloc:True",
        "roundup_power2_divisions:[256:0,1024:8]", "roundup_power2_divisions:[1:0,2:4,>:8]",
        "roundup_power2_divisions:[1:2,>:2,16384:4]", "roundup_power2_divisions:[16384:4,>:4]"}) {
    const AllocatorConfig config = conf(text);
    const AllocatorConfig again = conf(config.to_conf());
    EXPECT_EQ(again, config) << text << " → " << config.to_conf();
  }
  EXPECT_EQ(conf("roundup_power2_divisions:[1:0,2:4,>:8]").to_conf(),
            "roundup_power2_divisions:[1:0,2:4,4:8,>:8]");  // means the same before 2.8 too
  EXPECT_EQ(conf("roundup_power2_divisions:[64:8,128:2,256:4,>:1]").to_conf(),
            "roundup_power2_divisions:[1:8,2:8,4:8,8:8,16:8,32:8,64:8,128:2,256:4,512:1,>:1]");
  EXPECT_EQ(conf("garbage_collection_threshold:0.8 ,max_split_size_mb:256").to_conf(),
            "max_split_size_mb:256,garbage_collection_threshold:0.8");
}

TEST(AllocSimConfig, FromSettingsUsesTheStructuredFields) {
  torch::AllocatorSettings settings;
  settings.present = true;
  settings.conf = "max_non_split_rounding_mb:30,expandable_segments:False";
  settings.max_split_size = 128 * static_cast<int64_t>(MiB);
  settings.garbage_collection_threshold = 0.7;
  settings.expandable_segments = true;
  settings.roundup_power2_divisions = {{1, 0}, {256, 4}, {32768, 2}};
  const AllocatorConfig config = AllocatorConfig::from_settings(settings);
  EXPECT_EQ(config.max_split_size, 128 * MiB);
  EXPECT_EQ(config.max_non_split_rounding, 30 * MiB);
  EXPECT_DOUBLE_EQ(config.garbage_collection_threshold, 0.7);
  EXPECT_TRUE(config.expandable_segments);
  EXPECT_EQ(config.roundup_power2_divisions[8], 4u);
  EXPECT_EQ(config.roundup_power2_divisions[15], 2u);
  EXPECT_EQ(config.roundup_power2_divisions[7], 0u);
  EXPECT_EQ(AllocatorConfig::from_settings(torch::AllocatorSettings{}), AllocatorConfig{});
}

// ---- sweep and recommendation

TEST(AllocSimSweep, YieldsTheTenDocumentedCandidatesAfterTheBase) {
  const AllocatorConfig base = conf("max_split_size_mb:1024,release_lock_on_cudamalloc:True");
  const auto candidates = sweep(base);
  ASSERT_EQ(candidates.size(), 11u);
  EXPECT_EQ(candidates[0].first, "current");
  EXPECT_EQ(candidates[0].second, base);
  const std::vector<std::string> labels = {"expandable_segments:True",
                                           "expandable_segments:False",
                                           "max_split_size_mb:64",
                                           "max_split_size_mb:128",
                                           "max_split_size_mb:256",
                                           "max_split_size_mb:512",
                                           "roundup_power2_divisions:4",
                                           "roundup_power2_divisions:8",
                                           "garbage_collection_threshold:0.6",
                                           "garbage_collection_threshold:0.8"};
  for (size_t i = 0; i < labels.size(); ++i) {
    EXPECT_EQ(candidates[i + 1].first, labels[i]);
    // Each is the base plus its change.
    EXPECT_EQ(conf(candidates[i + 1].second.to_conf()), candidates[i + 1].second);
    EXPECT_EQ(candidates[i + 1].second.other_options, base.other_options);
  }
  EXPECT_TRUE(candidates[1].second.expandable_segments);
  EXPECT_EQ(candidates[1].second.max_split_size, 1024 * MiB);
  EXPECT_EQ(candidates[3].second.max_split_size, 64 * MiB);
  EXPECT_EQ(candidates[8].second.roundup_power2_divisions[3], 8u);
  EXPECT_DOUBLE_EQ(candidates[9].second.garbage_collection_threshold, 0.6);
}

TEST(AllocSimSweep, RecommendsTheCandidateThatAvoidsTheOom) {
  const auto candidates = sweep(AllocatorConfig{});
  std::vector<std::pair<std::string, SimResult>> results;
  for (size_t i = 0; i < candidates.size(); ++i) {
    SimResult r;
    r.peak_reserved_bytes = 100 * MiB;
    r.ooms = 1;
    results.emplace_back(candidates[i].first, r);
  }
  Recommendation keep = recommend(results, candidates);
  EXPECT_EQ(keep.index, 0u);
  EXPECT_EQ(keep.export_line, "unset PYTORCH_CUDA_ALLOC_CONF");
  results[1].second.ooms = 0;
  results[1].second.peak_reserved_bytes = 99 * MiB;
  results[4].second.peak_reserved_bytes = 50 * MiB;  // smaller, but still OOMs
  const Recommendation pick = recommend(results, candidates);
  EXPECT_EQ(pick.index, 1u);
  EXPECT_EQ(pick.export_line, "export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True");
  EXPECT_NE(pick.reason.find("0 OOMs"), std::string::npos) << pick.reason;
}

TEST(AllocSimSweep, RecommendsOnlyAClearPeakReduction) {
  const auto candidates = sweep(AllocatorConfig{});
  std::vector<std::pair<std::string, SimResult>> results;
  for (const auto& candidate : candidates) {
    SimResult r;
    r.peak_reserved_bytes = 1000 * MiB;
    results.emplace_back(candidate.first, r);
  }
  results[9].second.peak_reserved_bytes = 990 * MiB;  // 1 %: not enough
  EXPECT_EQ(recommend(results, candidates).index, 0u);
  results[9].second.peak_reserved_bytes = 900 * MiB;
  const Recommendation pick = recommend(results, candidates);
  EXPECT_EQ(pick.index, 9u);
  EXPECT_EQ(pick.export_line, "export PYTORCH_CUDA_ALLOC_CONF=garbage_collection_threshold:0.6");
  EXPECT_NE(pick.reason.find("memory fraction"), std::string::npos) << pick.reason;
}

}  // namespace
}  // namespace memscope::alloc_sim
