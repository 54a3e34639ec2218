// Allocator replay speed (issue 5: "a 1-million-event trace under the 10-setting sweep: goal
// under 10 s on one core"). Generates a deterministic training-like device trace in memory —
// weights and optimizer state kept, per step activations allocated layer by layer with a batch
// that varies from step to step, odd sizes, small tensors, temporaries, gradients, and a second
// stream for input batches whose frees complete late (record_stream) — then replays it with
// alloc_sim::simulate under every candidate of alloc_sim::sweep (the defaults + the 10 changes)
// on a device just large enough for the defaults, and prints each result and the total time.
//
// usage: alloc_sim_bench [--events N] [--capacity-gib G]   (defaults 1000000, 1.03 × peak)
#include <fmt/core.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "analyze/alloc_sim.hpp"
#include "core/torch_snapshot.hpp"
#include "core/units.hpp"

namespace {

using memscope::alloc_sim::AllocatorConfig;
using memscope::alloc_sim::SimOptions;
using memscope::alloc_sim::SimResult;
using memscope::torch::TraceAction;
using memscope::torch::TraceEntry;

constexpr uint64_t MiB = memscope::alloc_sim::kMiB;

// splitmix64: the same numbers on every platform (std distributions are not).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
    z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
    return z ^ (z >> 31);
  }
  uint64_t below(uint64_t n) { return next() % n; }

 private:
  uint64_t state_;
};

class TraceWriter {
 public:
  uint64_t alloc(uint64_t size, int64_t stream = 0) {
    const uint64_t addr = (++next_id_) << 9;
    add(TraceAction::alloc, addr, size, stream);
    ++allocs_;
    return addr;
  }
  void free(uint64_t addr, int64_t stream = 0) {
    add(TraceAction::free_requested, addr, 0, stream);
    add(TraceAction::free_completed, addr, 0, stream);
  }
  void free_requested(uint64_t addr, int64_t stream) {
    add(TraceAction::free_requested, addr, 0, stream);
  }
  void free_completed(uint64_t addr, int64_t stream) {
    add(TraceAction::free_completed, addr, 0, stream);
  }
  size_t size() const { return entries_.size(); }
  uint64_t allocs() const { return allocs_; }
  std::vector<TraceEntry>& entries() { return entries_; }

 private:
  void add(TraceAction action, uint64_t addr, uint64_t size, int64_t stream) {
    TraceEntry entry;
    entry.action = action;
    entry.addr = addr;
    entry.size = size;
    entry.stream = stream;
    entries_.push_back(entry);
  }
  std::vector<TraceEntry> entries_;
  uint64_t next_id_ = 0;
  uint64_t allocs_ = 0;
};

std::vector<TraceEntry> training_trace(size_t target_entries) {
  Rng rng(20240611);
  TraceWriter trace;
  trace.entries().reserve(target_entries + 4096);
  constexpr int kLayers = 24;
  constexpr uint64_t kHidden = 4096;
  // Weights (bf16) and Adam state (fp32 master + 2 moments), kept for the whole run.
  std::vector<uint64_t> layer_weight_bytes;
  for (int layer = 0; layer < kLayers; ++layer) {
    const uint64_t qkv = kHidden * 3 * kHidden * 2;
    const uint64_t mlp = kHidden * 4 * kHidden * 2;
    const uint64_t norm = kHidden * 2 + 2 * (rng.below(7));
    for (uint64_t bytes : {qkv, kHidden * kHidden * 2, mlp, mlp, norm, norm}) {
      trace.alloc(bytes);
      for (int state = 0; state < 3; ++state) trace.alloc(bytes * 2);
    }
    layer_weight_bytes.push_back(qkv + kHidden * kHidden * 2 + 2 * mlp);
  }
  trace.alloc(50257 * kHidden * 2 + 123);  // embedding, an odd size
  struct Pending {
    uint64_t addr;
    size_t complete_at;  // entry count after which its free completes (record_stream)
  };
  std::vector<Pending> late_frees;
  while (trace.size() < target_entries) {
    // Micro-batch tokens vary step to step (packing): activation sizes follow.
    const uint64_t tokens = 2048 + 64 * rng.below(33);
    std::vector<uint64_t> inputs;
    for (int i = 0; i < 2; ++i) inputs.push_back(trace.alloc(tokens * 8 + 16, 1));
    std::vector<std::vector<uint64_t>> saved(kLayers);
    for (int layer = 0; layer < kLayers; ++layer) {
      const uint64_t act = tokens * kHidden * 2;
      saved[static_cast<size_t>(layer)] = {trace.alloc(act), trace.alloc(act * 3),
                                           trace.alloc(act * 4), trace.alloc(tokens * 4 * 2),
                                           trace.alloc(tokens * 16 + 1 + rng.below(4096))};
      for (int t = 0; t < 6; ++t) {  // temporaries of the layer's ops
        const uint64_t temp = t % 2 == 0 ? act * (1 + rng.below(4)) : 256 + rng.below(64 * 1024);
        trace.free(trace.alloc(temp));
      }
    }
    const uint64_t loss = trace.alloc(tokens * 50257 * 2);
    trace.free(trace.alloc(tokens * 4));
    trace.free(loss);
    for (int layer = kLayers - 1; layer >= 0; --layer) {
      const uint64_t act = tokens * kHidden * 2;
      const uint64_t grad_in = trace.alloc(act);
      const uint64_t grad_w = trace.alloc(layer_weight_bytes[static_cast<size_t>(layer)] / 4);
      for (uint64_t addr : saved[static_cast<size_t>(layer)]) trace.free(addr);
      trace.free(trace.alloc(act * 2 + rng.below(512)));
      trace.free(grad_w);
      trace.free(grad_in);
    }
    for (int i = 0; i < 64; ++i) trace.free(trace.alloc(1024 + rng.below(900 * 1024)));
    for (uint64_t addr : inputs) {
      trace.free_requested(addr, 1);
      late_frees.push_back({addr, trace.size() + 200 + rng.below(2000)});
    }
    std::erase_if(late_frees, [&](const Pending& pending) {
      if (pending.complete_at > trace.size()) return false;
      trace.free_completed(pending.addr, 1);
      return true;
    });
  }
  return std::move(trace.entries());
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string gib(uint64_t bytes) {
  return fmt::format("{:.2f}", static_cast<double>(bytes) / static_cast<double>(1024 * MiB));
}

}  // namespace

int main(int argc, char** argv) {
  size_t target = 1'000'000;
  double capacity_gib = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view arg = argv[i];
    if (arg == "--events") {
      target = std::strtoull(argv[i + 1], nullptr, 10);
    } else if (arg == "--capacity-gib") {
      capacity_gib = std::strtod(argv[i + 1], nullptr);
    } else {
      fmt::print(stderr, "usage: alloc_sim_bench [--events N] [--capacity-gib G]\n");
      return 2;
    }
  }
  const std::vector<TraceEntry> trace = training_trace(target);
  uint64_t allocs = 0;
  for (const TraceEntry& entry : trace) allocs += entry.action == TraceAction::alloc ? 1 : 0;

  SimOptions options;
  if (capacity_gib > 0) {
    options.device_capacity = static_cast<uint64_t>(capacity_gib * 1024.0 * 1024.0 * 1024.0);
  } else {
    // Just large enough for the defaults: the candidates then differ in retries and OOMs.
    const auto unlimited = memscope::alloc_sim::simulate(trace, AllocatorConfig{});
    if (!unlimited) {
      fmt::print(stderr, "{}\n", unlimited.message());
      return 1;
    }
    options.device_capacity = unlimited->peak_reserved_bytes / 100 * 103;
  }
  fmt::print("trace: {} entries ({} allocs, 2 streams), device capacity {} GiB\n", trace.size(),
             allocs, gib(options.device_capacity));
  fmt::print("{:<36} {:>9} {:>9} {:>9} {:>9} {:>5} {:>7} {:>8} {:>8}\n", "config", "peak GiB",
             "alloc GiB", "frag@pk", "peak frag", "ooms", "retries", "mallocs", "seconds");

  const auto candidates = memscope::alloc_sim::sweep(AllocatorConfig{});
  std::vector<std::pair<std::string, SimResult>> results;
  const auto start = std::chrono::steady_clock::now();
  for (const auto& [label, config] : candidates) {
    const auto one = std::chrono::steady_clock::now();
    auto result = memscope::alloc_sim::simulate(trace, config, options);
    const double took = seconds_since(one);
    if (!result) {
      fmt::print(stderr, "{}: {}\n", label, result.message());
      return 1;
    }
    fmt::print("{:<36} {:>9} {:>9} {:>9.3f} {:>9.3f} {:>5} {:>7} {:>8} {:>8.3f}\n", label,
               gib(result->peak_reserved_bytes), gib(result->peak_allocated_bytes),
               result->fragmentation_at_peak, result->peak_fragmentation, result->ooms,
               result->retries, result->device_allocs, took);
    results.emplace_back(label, std::move(*result));
  }
  const double total = seconds_since(start);
  fmt::print(
      "total: {} configs x {} entries in {:.2f} s ({:.0f} ns per entry; goal < 10 s for "
      "1,000,000 x 10)\n",
      candidates.size(), trace.size(), total,
      total * 1e9 / static_cast<double>(trace.size() * candidates.size()));
  const auto pick = memscope::alloc_sim::recommend(results, candidates);
  fmt::print("recommendation: {}\n  {}\n", pick.reason, pick.export_line);
  return 0;
}
