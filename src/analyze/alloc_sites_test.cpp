#include "analyze/alloc_sites.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <vector>

namespace memscope::alloc {
namespace {

constexpr uint64_t kMs = 1'000'000;  // ns

// A synthetic trace, replayed from memory as the reader would deliver it.
struct Trace {
  ProcessInfo process{
      .pid = 42, .ppid = 1, .start_unix_ns = 0, .exe = "/bin/prog", .cmdline = "prog"};
  std::vector<Module> modules;
  uint32_t stack_count = 8;  // stacks 1..8, each its own root frame at ip 0x1000 * id
  std::vector<Event> events;
  int replays = 0;

  void replay(TraceVisitor& visitor) {
    ++replays;
    visitor.on_process(process);
    for (const Module& module : modules) visitor.on_module(module);
    for (uint32_t id = 1; id <= stack_count; ++id) visitor.on_stack(id, {0, 0x1000ull * id});
    for (const Event& event : events) visitor.on_event(event);
  }

  SiteReport analyze(size_t growth_points = 20) {
    return analyze_sites([this](TraceVisitor& visitor) { replay(visitor); },
                         SiteParams{.growth_points = growth_points});
  }

  void alloc(uint64_t ms, Space space, uint64_t address, uint64_t size, uint32_t stack) {
    events.push_back({.kind = EventKind::alloc,
                      .space = space,
                      .time_ns = ms * kMs,
                      .address = address,
                      .size = size,
                      .stack = stack});
  }
  void free(uint64_t ms, Space space, uint64_t address) {
    events.push_back(
        {.kind = EventKind::free, .space = space, .time_ns = ms * kMs, .address = address});
  }
  void realloc(uint64_t ms, uint64_t old_address, uint64_t address, uint64_t size, uint32_t stack) {
    events.push_back({.kind = EventKind::realloc,
                      .space = Space::heap,
                      .time_ns = ms * kMs,
                      .address = address,
                      .size = size,
                      .old_address = old_address,
                      .stack = stack});
  }
  void unmap(uint64_t ms, Space space, uint64_t address, uint64_t length) {
    events.push_back({.kind = EventKind::unmap,
                      .space = space,
                      .time_ns = ms * kMs,
                      .address = address,
                      .size = length});
  }
  void remap(uint64_t ms, uint64_t old_address, uint64_t old_size, uint64_t address, uint64_t size,
             uint32_t stack) {
    events.push_back({.kind = EventKind::remap,
                      .space = Space::mmap,
                      .time_ns = ms * kMs,
                      .address = address,
                      .size = size,
                      .old_address = old_address,
                      .old_size = old_size,
                      .stack = stack});
  }
};

const Site* find_site(const SiteReport& report, uint32_t stack, Space space = Space::heap) {
  for (const Site& site : report.sites) {
    if (site.stack == stack && site.space == space) return &site;
  }
  return nullptr;
}

// The site, failing the test when it is missing.
const Site& site_of(const SiteReport& report, uint32_t stack, Space space = Space::heap) {
  static const Site kMissing;
  const Site* site = find_site(report, stack, space);
  EXPECT_NE(site, nullptr) << "no site for stack " << stack << " in " << space_name(space);
  return site ? *site : kMissing;
}

TEST(StackTable, ExpandsInnermostFirst) {
  StackTable table;
  table.add(1, {0, 0xa});
  table.add(2, {1, 0xb});
  table.add(3, {2, 0xc});
  table.add(4, {1, 0xd});
  EXPECT_EQ(table.size(), 4u);
  EXPECT_EQ(table.frames(3), (std::vector<uint64_t>{0xc, 0xb, 0xa}));
  EXPECT_EQ(table.frames(4), (std::vector<uint64_t>{0xd, 0xa}));
  EXPECT_EQ(table.frames(1), (std::vector<uint64_t>{0xa}));
  EXPECT_TRUE(table.frames(0).empty());
  EXPECT_TRUE(table.frames(99).empty());
  // An id out of order would grow the table by a number from the file: ignored.
  table.add(1000, {0, 0xe});
  EXPECT_EQ(table.size(), 4u);
}

TEST(AnalyzeSites, KeepsProcessModulesAndStacksAndReplaysTwice) {
  Trace trace;
  trace.modules.push_back({.path = "/bin/prog", .base = 0x400000, .ranges = {{0x400000, 0x1000}}});
  trace.alloc(0, Space::heap, 0x10, 8, 1);
  trace.alloc(2500, Space::heap, 0x20, 8, 1);
  const SiteReport report = trace.analyze();
  EXPECT_EQ(trace.replays, 2);
  EXPECT_EQ(report.process.pid, 42u);
  EXPECT_EQ(report.process.exe, "/bin/prog");
  ASSERT_EQ(report.modules.size(), 1u);
  EXPECT_EQ(report.modules[0].base, 0x400000u);
  EXPECT_EQ(report.stacks.size(), 8u);
  EXPECT_EQ(report.stacks.frames(3), (std::vector<uint64_t>{0x3000}));
  EXPECT_EQ(report.events, 2u);
  EXPECT_EQ(report.end.events, 2u);
  EXPECT_EQ(report.end.last_time_ns, 2500 * kMs);
  EXPECT_DOUBLE_EQ(report.duration_seconds, 2.5);
}

TEST(AnalyzeSites, HeapAllocFreeAndRealloc) {
  Trace trace;
  trace.alloc(0, Space::heap, 0x1000, 100, 1);
  trace.alloc(1000, Space::heap, 0x2000, 200, 1);
  trace.free(2000, Space::heap, 0x1000);
  trace.realloc(3000, 0x2000, 0x3000, 300, 2);  // moves stack 1's block to stack 2
  trace.realloc(4000, 0, 0x4000, 50, 2);        // realloc(NULL, n): a malloc
  trace.realloc(5000, 0x4000, 0x4000, 70, 2);   // grows in place
  trace.alloc(5500, Space::heap, 0x7000, 10, 4);
  trace.realloc(5600, 0x7000, 0, 0, 4);          // realloc(p, 0) that freed p: nothing allocated
  trace.alloc(6000, Space::heap, 0x5000, 0, 3);  // malloc(0): a live block of no bytes
  trace.alloc(6000, Space::heap, 0x6000, 4 * 256, 3);  // calloc(4, 256)
  const SiteReport report = trace.analyze();

  const Site& first = site_of(report, 1);
  EXPECT_EQ(first.leaked_bytes, 0u);
  EXPECT_EQ(first.leaked_count, 0u);
  EXPECT_EQ(first.allocated_bytes, 300u);
  EXPECT_EQ(first.allocated_count, 2u);
  EXPECT_EQ(first.max_live_bytes, 300u);
  EXPECT_DOUBLE_EQ(first.first_seen_seconds, 0.0);
  EXPECT_DOUBLE_EQ(first.last_seen_seconds, 1.0);

  const Site& second = site_of(report, 2);
  EXPECT_EQ(second.leaked_bytes, 370u);
  EXPECT_EQ(second.leaked_count, 2u);
  EXPECT_EQ(second.allocated_bytes, 420u);
  EXPECT_EQ(second.allocated_count, 3u);
  EXPECT_EQ(second.max_live_bytes, 370u);
  EXPECT_DOUBLE_EQ(second.first_seen_seconds, 3.0);
  EXPECT_DOUBLE_EQ(second.last_seen_seconds, 5.0);

  const Site& third = site_of(report, 3);
  EXPECT_EQ(third.leaked_bytes, 1024u);
  EXPECT_EQ(third.leaked_count, 2u);
  EXPECT_EQ(third.allocated_count, 2u);

  const Site& fourth = site_of(report, 4);
  EXPECT_EQ(fourth.leaked_bytes, 0u);
  EXPECT_EQ(fourth.allocated_count, 1u);

  EXPECT_EQ(report.unknown_frees, 0u);
  EXPECT_EQ(report.end_host_bytes, 1394u);
  EXPECT_EQ(report.end_gpu_bytes, 0u);
}

TEST(AnalyzeSites, InterleavedSitesKeepTheirOwnBytes) {
  Trace trace;
  for (uint64_t i = 0; i < 30; ++i) {
    const auto stack = static_cast<uint32_t>(1 + i % 3);
    trace.alloc(i, Space::heap, 0x1000 + i * 0x100, 10 * stack, stack);
    // Stack 2's blocks are freed one step later; stack 3's every other one.
    if (i >= 1 && (i - 1) % 3 == 1) trace.free(i, Space::heap, 0x1000 + (i - 1) * 0x100);
    if (stack == 3 && (i / 3) % 2 == 0) trace.free(i, Space::heap, 0x1000 + i * 0x100);
  }
  const SiteReport report = trace.analyze();
  EXPECT_EQ(site_of(report, 1).leaked_bytes, 100u);
  EXPECT_EQ(site_of(report, 1).leaked_count, 10u);
  EXPECT_EQ(site_of(report, 2).leaked_bytes, 0u);
  EXPECT_EQ(site_of(report, 2).max_live_bytes, 20u);
  EXPECT_EQ(site_of(report, 3).leaked_bytes, 150u);
  EXPECT_EQ(site_of(report, 3).leaked_count, 5u);
  EXPECT_EQ(site_of(report, 3).allocated_count, 10u);
  EXPECT_EQ(report.end_host_bytes, 250u);
  EXPECT_EQ(report.unknown_frees, 0u);
}

TEST(AnalyzeSites, CountsUnknownFreesWithoutDisturbingLiveBytes) {
  Trace trace;
  trace.alloc(0, Space::heap, 0x1000, 64, 1);
  trace.free(1, Space::heap, 0xdead);
  trace.realloc(2, 0xbeef, 0x2000, 32, 2);  // old block never seen: still allocates
  trace.free(3, Space::cuda, 0x1000);       // the same address in another space
  trace.free(4, Space::heap, 0x1000);
  trace.free(5, Space::heap, 0x1000);  // twice
  const SiteReport report = trace.analyze();
  EXPECT_EQ(report.unknown_frees, 4u);
  EXPECT_EQ(site_of(report, 1).leaked_bytes, 0u);
  EXPECT_EQ(site_of(report, 2).leaked_bytes, 32u);
  EXPECT_EQ(report.end_host_bytes, 32u);
}

TEST(AnalyzeSites, MunmapInTheMiddleLeavesTwoPieces) {
  Trace trace;
  trace.alloc(0, Space::mmap, 0x10000, 0x10000, 1);
  trace.unmap(1, Space::mmap, 0x14000, 0x4000);
  SiteReport report = trace.analyze();
  EXPECT_EQ(site_of(report, 1, Space::mmap).leaked_bytes, 0xC000u);
  EXPECT_EQ(site_of(report, 1, Space::mmap).leaked_count, 2u);
  EXPECT_EQ(site_of(report, 1, Space::mmap).max_live_bytes, 0x10000u);

  // Trim the front of the first piece, and the back of the second past its end.
  trace.unmap(2, Space::mmap, 0x10000, 0x1000);
  trace.unmap(3, Space::mmap, 0x1F000, 0x2000);
  report = trace.analyze();
  EXPECT_EQ(site_of(report, 1, Space::mmap).leaked_bytes, 0xA000u);
  EXPECT_EQ(site_of(report, 1, Space::mmap).leaked_count, 2u);
  // Then both pieces whole: nothing left.
  trace.unmap(4, Space::mmap, 0x11000, 0x3000);
  trace.unmap(5, Space::mmap, 0x18000, 0x7000);
  report = trace.analyze();
  EXPECT_EQ(site_of(report, 1, Space::mmap).leaked_bytes, 0u);
  EXPECT_EQ(site_of(report, 1, Space::mmap).leaked_count, 0u);
  EXPECT_EQ(report.end_host_bytes, 0u);
  EXPECT_EQ(report.unknown_frees, 0u);
}

TEST(AnalyzeSites, UnmapAcrossSeveralRanges) {
  Trace trace;
  trace.alloc(0, Space::mmap, 0x10000, 0x2000, 1);
  trace.alloc(0, Space::mmap, 0x12000, 0x2000, 2);
  trace.alloc(0, Space::mmap, 0x20000, 0x4000, 3);
  trace.alloc(0, Space::mmap, 0x30000, 0x1000, 4);
  trace.unmap(1, Space::mmap, 0x11000, 0x10000);  // [0x11000, 0x21000)
  trace.unmap(2, Space::mmap, 0x40000, 0x1000);   // nothing there
  const SiteReport report = trace.analyze();
  EXPECT_EQ(site_of(report, 1, Space::mmap).leaked_bytes, 0x1000u);
  EXPECT_EQ(site_of(report, 1, Space::mmap).leaked_count, 1u);
  EXPECT_EQ(site_of(report, 2, Space::mmap).leaked_bytes, 0u);
  EXPECT_EQ(site_of(report, 2, Space::mmap).leaked_count, 0u);
  EXPECT_EQ(site_of(report, 3, Space::mmap).leaked_bytes, 0x3000u);
  EXPECT_EQ(site_of(report, 3, Space::mmap).leaked_count, 1u);
  EXPECT_EQ(site_of(report, 4, Space::mmap).leaked_bytes, 0x1000u);
  EXPECT_EQ(report.end_host_bytes, 0x5000u);
}

TEST(AnalyzeSites, RemapGrowsShrinksAndMoves) {
  Trace trace;
  trace.alloc(0, Space::mmap, 0x10000, 0x1000, 1);
  trace.remap(1, 0x10000, 0x1000, 0x10000, 0x3000, 2);  // grows in place: now stack 2's
  SiteReport report = trace.analyze();
  EXPECT_EQ(site_of(report, 1, Space::mmap).leaked_bytes, 0u);
  EXPECT_EQ(site_of(report, 2, Space::mmap).leaked_bytes, 0x3000u);

  trace.remap(2, 0x10000, 0x3000, 0x50000, 0x2000, 2);  // moves and shrinks
  report = trace.analyze();
  EXPECT_EQ(site_of(report, 2, Space::mmap).leaked_bytes, 0x2000u);
  EXPECT_EQ(site_of(report, 2, Space::mmap).leaked_count, 1u);
  EXPECT_EQ(site_of(report, 2, Space::mmap).allocated_bytes, 0x5000u);
  EXPECT_EQ(site_of(report, 2, Space::mmap).allocated_count, 2u);
  EXPECT_EQ(site_of(report, 2, Space::mmap).max_live_bytes, 0x3000u);

  trace.remap(3, 0x50000, 0x2000, 0x50000, 0x1000, 3);  // shrinks in place
  // A new mapping over the old one (MAP_FIXED) takes the overlap.
  trace.alloc(4, Space::mmap, 0x50800, 0x1000, 4);
  report = trace.analyze();
  EXPECT_EQ(site_of(report, 3, Space::mmap).leaked_bytes, 0x800u);
  EXPECT_EQ(site_of(report, 4, Space::mmap).leaked_bytes, 0x1000u);
  EXPECT_EQ(report.end_host_bytes, 0x1800u);
}

// How the trace ended is the reader's to say (on_end); events and run time are counted here.
TEST(AnalyzeSites, TheReadersEndComesThroughTheReport) {
  const SiteReport report = analyze_sites([](TraceVisitor& visitor) {
    visitor.on_stack(1, StackNode{0, 0x10});
    Event event;
    event.time_ns = 2'000'000'000;
    event.address = 0x1000;
    event.size = 64;
    event.stack = 1;
    visitor.on_event(event);
    TraceEnd end;
    end.complete = true;
    end.end_reason = "exit";
    end.chunks = 3;
    end.events = 1;
    end.last_time_ns = 2'500'000'000;  // a TIME record after the last event
    visitor.on_end(end);
  });
  EXPECT_TRUE(report.end.complete);
  EXPECT_FALSE(report.end.truncated);
  EXPECT_EQ(report.end.end_reason, "exit");
  EXPECT_EQ(report.end.chunks, 3u);
  EXPECT_EQ(report.end.events, 1u);
  EXPECT_DOUBLE_EQ(report.duration_seconds, 2.5);
}

TEST(AnalyzeSites, RemapOfARangeThatIsNoAllocationIsNone) {
  // A file mapping (not recorded) grown with mremap: not a host allocation.
  Trace trace;
  trace.remap(1, 0x70000, 0x1000, 0x90000, 0x4000000, 2);
  const SiteReport report = trace.analyze();
  EXPECT_EQ(report.end_host_bytes, 0u);
  for (const Site& site : report.sites) EXPECT_EQ(site.leaked_bytes, 0u);
}

TEST(AnalyzeSites, CudaSpacesCountAsGpuAndMappingsAsNeither) {
  Trace trace;
  trace.alloc(0, Space::heap, 0x1000, 10, 1);
  trace.alloc(0, Space::mmap, 0x100000, 4096, 2);
  trace.alloc(0, Space::cuda, 0x1000, 100, 3);  // same address as the heap block
  trace.alloc(0, Space::cuda_driver, 0x7000, 200, 4);
  trace.alloc(0, Space::cuda_physical, 1, 400, 5);
  trace.alloc(0, Space::cuda_mapping, 0x7f0000, 1000, 6);
  trace.free(1, Space::cuda, 0x1000);
  trace.alloc(2, Space::cuda, 0x9000, 1000, 3);
  const SiteReport report = trace.analyze();
  EXPECT_EQ(report.end_host_bytes, 4106u);
  EXPECT_EQ(report.end_gpu_bytes, 1600u);
  EXPECT_EQ(report.peak_host_bytes, 4106u);
  EXPECT_EQ(report.peak_gpu_bytes, 1600u);
  EXPECT_DOUBLE_EQ(report.peak_seconds, 0.002);
  EXPECT_EQ(site_of(report, 1, Space::heap).leaked_bytes, 10u);
  EXPECT_EQ(site_of(report, 3, Space::cuda).leaked_bytes, 1000u);
  EXPECT_EQ(site_of(report, 5, Space::cuda_physical).leaked_bytes, 400u);
  const Site& mapping = site_of(report, 6, Space::cuda_mapping);
  EXPECT_EQ(mapping.leaked_bytes, 1000u);

  Trace unmapped = trace;
  unmapped.unmap(3, Space::cuda_mapping, 0x7f0000, 500);
  const SiteReport after = unmapped.analyze();
  EXPECT_EQ(site_of(after, 6, Space::cuda_mapping).leaked_bytes, 500u);
  EXPECT_EQ(after.end_gpu_bytes, 1600u);
}

TEST(AnalyzeSites, PeakSnapshotKeepsSitesFreedBeforeTheEnd) {
  Trace trace;
  trace.alloc(0, Space::heap, 0x1000, 100, 1);
  trace.alloc(1000, Space::cuda, 0x2000, 300, 2);
  trace.free(2000, Space::cuda, 0x2000);
  trace.alloc(3000, Space::heap, 0x3000, 50, 3);
  trace.alloc(4000, Space::heap, 0x4000, 250, 4);  // back to 400: the peak was first reached at 1 s
  const SiteReport report = trace.analyze();
  EXPECT_DOUBLE_EQ(report.peak_seconds, 1.0);
  EXPECT_EQ(report.peak_host_bytes, 100u);
  EXPECT_EQ(report.peak_gpu_bytes, 300u);
  EXPECT_EQ(site_of(report, 1).peak_bytes, 100u);
  EXPECT_EQ(site_of(report, 2, Space::cuda).peak_bytes, 300u);
  EXPECT_EQ(site_of(report, 2, Space::cuda).leaked_bytes, 0u);
  EXPECT_EQ(site_of(report, 3).peak_bytes, 0u);
  EXPECT_EQ(site_of(report, 4).peak_bytes, 0u);
  EXPECT_EQ(site_of(report, 4).leaked_bytes, 250u);
  EXPECT_EQ(report.end_host_bytes, 400u);
}

TEST(AnalyzeSites, SortsByLeakedThenMaxLiveThenStack) {
  Trace trace;
  trace.alloc(0, Space::heap, 0x100, 10, 5);  // leaks 10, max 10
  trace.alloc(0, Space::heap, 0x200, 10, 4);  // leaks 10, max 30
  trace.alloc(0, Space::heap, 0x300, 20, 4);
  trace.free(0, Space::heap, 0x300);
  trace.alloc(0, Space::heap, 0x400, 10, 3);  // leaks 10, max 10
  trace.alloc(0, Space::heap, 0x500, 99, 2);  // leaks 0, max 99
  trace.free(0, Space::heap, 0x500);
  trace.alloc(0, Space::heap, 0x600, 50, 1);  // leaks 50
  const SiteReport report = trace.analyze();
  std::vector<uint32_t> order;
  for (const Site& site : report.sites) order.push_back(site.stack);
  EXPECT_EQ(order, (std::vector<uint32_t>{1, 4, 3, 5, 2}));
}

// Stack 1 grows according to `live(t)` (bytes at whole seconds 1..100); stack 8 marks the
// run's end at 100 s.
SiteReport growth_of(const std::function<uint64_t(uint64_t)>& live) {
  Trace trace;
  uint64_t next_address = 0x1000;
  std::vector<std::pair<uint64_t, uint64_t>> blocks;  // (address, size), newest last
  uint64_t current = 0;
  for (uint64_t second = 1; second <= 100; ++second) {
    const uint64_t target = live(second);
    while (current > target && !blocks.empty()) {
      trace.free(second * 1000, Space::heap, blocks.back().first);
      current -= blocks.back().second;
      blocks.pop_back();
    }
    if (target > current) {
      trace.alloc(second * 1000, Space::heap, next_address, target - current, 1);
      blocks.emplace_back(next_address, target - current);
      next_address += 0x1000;
      current = target;
    }
  }
  trace.alloc(100'000, Space::heap, 0xF0000000, 1, 8);
  return trace.analyze();
}

TEST(GrowthRule, SamplesEvenlyAcrossTheRun) {
  const SiteReport report = growth_of([](uint64_t t) { return 1000 * t; });
  ASSERT_EQ(report.growth_times_seconds.size(), 20u);
  EXPECT_DOUBLE_EQ(report.growth_times_seconds[0], 5.0);
  EXPECT_DOUBLE_EQ(report.growth_times_seconds[4], 25.0);
  EXPECT_DOUBLE_EQ(report.growth_times_seconds[19], 100.0);
  const Site& site = site_of(report, 1);
  ASSERT_EQ(site.live_bytes_over_time.size(), 20u);
  EXPECT_EQ(site.live_bytes_over_time[0], 5000u);  // the allocation at exactly 5 s counts
  EXPECT_EQ(site.live_bytes_over_time[9], 50000u);
  EXPECT_EQ(site.live_bytes_over_time[19], 100000u);
}

TEST(GrowthRule, SteadyGrowthIsGrowing) {
  EXPECT_TRUE(site_of(growth_of([](uint64_t t) { return 1000 * t; }), 1).growing);
  // Growth that starts half-way through and goes on to the end.
  EXPECT_TRUE(
      site_of(growth_of([](uint64_t t) { return t > 50 ? 1000 * (t - 50) : 0; }), 1).growing);
  // A leak on top of a large steady base.
  EXPECT_TRUE(site_of(growth_of([](uint64_t t) { return 100000 + 1000 * t; }), 1).growing);
}

TEST(GrowthRule, GrowthFreedAsTheProgramExitsIsStillGrowing) {
  // Steady growth for 95 s, everything freed in the last seconds (interpreter shutdown).
  const SiteReport freed = growth_of([](uint64_t t) { return t <= 95 ? 1000 * t : 0; });
  EXPECT_EQ(site_of(freed, 1).leaked_bytes, 0u);
  EXPECT_TRUE(site_of(freed, 1).growing);
  // Freed half-way through: the peak is not in the last quarter, the run is judged whole.
  EXPECT_FALSE(site_of(growth_of([](uint64_t t) { return t <= 50 ? 1000 * t : 0; }), 1).growing);
}

TEST(GrowthRule, ASiteThatStartsLateIsJudgedOverItsOwnLifetime) {
  // Nothing for 70 s (a long import), then steady growth to the end.
  EXPECT_TRUE(
      site_of(growth_of([](uint64_t t) { return t > 70 ? 1000 * (t - 70) : 0; }), 1).growing);
  // ... or a late site that fills up once and stays flat.
  EXPECT_FALSE(site_of(growth_of([](uint64_t t) { return t > 70 ? 30000 : 0; }), 1).growing);
}

TEST(GrowthRule, AllocatingEverythingAtTheEndIsNotGrowing) {
  const SiteReport report = growth_of([](uint64_t t) { return t >= 95 ? 1000 * (t - 94) : 0; });
  EXPECT_EQ(site_of(report, 1).leaked_bytes, 6000u);
  EXPECT_FALSE(site_of(report, 1).growing);
}

TEST(GrowthRule, SawtoothBackToItsBaseIsNotGrowing) {
  // 10 KiB held throughout; 10 s cycles allocate up to 44800 bytes more, then free it.
  const SiteReport report =
      growth_of([](uint64_t t) { return 10240 + (t % 10 < 8 ? 6400 * (t % 10) : 0); });
  EXPECT_FALSE(site_of(report, 1).growing);
  // A sawtooth on a base that keeps rising is a leak, though every other sample is lower than
  // the one before (the samples catch the teeth at alternating phases).
  const SiteReport rising =
      growth_of([](uint64_t t) { return 1000 * t + (t % 10 < 8 ? 2000 * (t % 10) : 0); });
  EXPECT_EQ(site_of(rising, 1).live_bytes_over_time[14], 85000u);
  EXPECT_EQ(site_of(rising, 1).live_bytes_over_time[15], 80000u);
  EXPECT_TRUE(site_of(rising, 1).growing);
}

TEST(GrowthRule, PlateauAfterARampIsNotGrowing) {
  // Ramps over the first 40 s, flat for the rest: a warm-up.
  EXPECT_FALSE(
      site_of(growth_of([](uint64_t t) { return 1000 * std::min<uint64_t>(t, 40); }), 1).growing);
  // Ramps until 55 s: the second half adds too little of the rise.
  EXPECT_FALSE(
      site_of(growth_of([](uint64_t t) { return 1000 * std::min<uint64_t>(t, 55); }), 1).growing);
  // Ramps until 80 s: still rising in the second half.
  EXPECT_TRUE(
      site_of(growth_of([](uint64_t t) { return 1000 * std::min<uint64_t>(t, 80); }), 1).growing);
}

TEST(GrowthRule, TooFewPointsOrAFlatSiteIsNotGrowing) {
  EXPECT_FALSE(site_of(growth_of([](uint64_t) { return 5000; }), 1).growing);
  Trace trace;
  for (uint64_t i = 0; i < 10; ++i) trace.alloc(i * 1000, Space::heap, 0x1000 + i, 100, 1);
  EXPECT_TRUE(site_of(trace.analyze(20), 1).growing);
  EXPECT_FALSE(site_of(trace.analyze(3), 1).growing);
  EXPECT_EQ(site_of(trace.analyze(3), 1).live_bytes_over_time,
            (std::vector<uint64_t>{400, 700, 1000}));
}

TEST(AllocatorFunctions, RecognisesTheAllocatorAndItsPlumbing) {
  for (const char* name : {"operator new(unsigned long)",
                           "operator new[](unsigned long)",
                           "operator new(unsigned long, std::nothrow_t const&)",
                           "operator new(unsigned long, std::align_val_t)",
                           "operator new",
                           "malloc",
                           "calloc",
                           "realloc",
                           "free",
                           "reallocarray",
                           "posix_memalign",
                           "aligned_alloc",
                           "memalign",
                           "valloc",
                           "pvalloc",
                           "__gnu_cxx::new_allocator<char>::allocate(unsigned long, void const*)",
                           "std::__new_allocator<int>::allocate(unsigned long, void const*)",
                           "std::allocator_traits<std::allocator<int> "
                           ">::allocate(std::allocator<int>&, unsigned long)",
                           "std::allocator<float>::allocate(unsigned long)",
                           "PyMem_Malloc",
                           "PyMem_RawCalloc",
                           "_PyObject_Realloc",
                           "pymalloc_alloc",
                           "_PyObject_ArenaMmap",
                           "new_arena",
                           "allocate_from_new_pool"}) {
    EXPECT_TRUE(is_allocator_function(name)) << name;
  }
  for (const char* name :
       {"", "main", "operator delete(void*)", "operator newer()", "mallocate", "make_buffer",
        "std::allocator<float>::deallocate(float*, unsigned long)",
        "std::vector<int, std::allocator<int> >::push_back(int const&)", "PyMem_Free",
        "_PyEval_EvalFrameDefault"}) {
    EXPECT_FALSE(is_allocator_function(name)) << name;
  }
}

Frame frame(const char* function, const char* module = "/usr/bin/prog") {
  Frame f;
  f.function = function;
  f.module = module;
  return f;
}

TEST(NamingFrame, SkipsAllocatorAndTrackerFrames) {
  EXPECT_EQ(naming_frame({}), -1);
  EXPECT_EQ(naming_frame({frame("operator new(unsigned long)", "/usr/lib/libstdc++.so.6"),
                          frame("std::__new_allocator<int>::allocate(unsigned long, void const*)"),
                          frame("std::allocator_traits<std::allocator<int> "
                                ">::allocate(std::allocator<int>&, unsigned long)"),
                          frame("load_model()"), frame("main")}),
            3);
  EXPECT_EQ(naming_frame({frame("", "/opt/memscope/lib/libmemscope_track.so"),
                          frame("PyMem_Malloc", "/usr/lib/libpython3.11.so"),
                          frame("_PyObject_Malloc", "/usr/lib/libpython3.11.so"),
                          frame("list_resize", "/usr/lib/libpython3.11.so")}),
            3);
  // An unknown frame outside the tracker names the site (it is the caller we know least of).
  EXPECT_EQ(naming_frame({frame("malloc"), frame("", "/usr/bin/prog")}), 1);
  // Allocator frames all the way: the innermost.
  EXPECT_EQ(naming_frame({frame("malloc"), frame("operator new(unsigned long)")}), 0);
}

}  // namespace
}  // namespace memscope::alloc
