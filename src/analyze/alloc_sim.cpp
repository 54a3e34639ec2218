// Rule decisions where ../shared/specs/pytorch-memory.md section 3 is silent (each follows
// c10/cuda/CUDACachingAllocator.cpp unless it says otherwise). The independent Python model is
// compared against these.
//  1. Only alloc, free_requested, free_completed and oom entries drive the replay. segment_alloc,
//     segment_free, segment_map and segment_unmap are the recorded allocator's decisions: they
//     are used only to know the recorded reserved bytes at an OOM (for the device capacity) and
//     to note torch.cuda.empty_cache() calls (segments released with no segment_alloc,
//     segment_map or oom right after), which the replay does not repeat; never to place
//     blocks. snapshot, user_defined, annotate and unknown actions are skipped.
//  2. An alloc's size is the caller's unrounded request; the model rounds and places it itself.
//     Its recorded address only names the block for the later frees (recorded addr → model
//     block); the model's own addresses differ.
//  3. free_requested: the block stops counting as allocated (PyTorch's allocated_bytes drops at
//     free()), but stays active and unusable. free_completed: the block goes back to its pool
//     and merges with free neighbours. A free_completed with no free_requested before it does
//     both. Blocks still pending at a release-and-retry are completed there
//     (synchronize_and_free_events); their later free_completed is then a no-op.
//  4. A free of an address the trace never allocated (the ring buffer overwrote its alloc) is
//     skipped and counted once per block in unknown_frees (free_requested + free_completed of
//     one block count 1); complete = false. An alloc of an address still live in the replay
//     (a free lost from the trace) frees the old block first; complete = false.
//  5. An alloc the model cannot satisfy is an OOM: counted, the replay goes on as if the
//     request was not satisfied; the later frees of that address are ignored (not unknown).
//  6. An oom entry (size = the recorded allocator's rounded request) is replayed as a request of
//     that size on its stream: when the model satisfies it, the block is freed at once (the
//     program went on without the tensor) and the OOM is not reproduced.
//  7. Device capacity (SimOptions::device_capacity = 0): the smallest, over the trace's oom
//     entries, of the recorded reserved bytes at the entry + its device_free; no oom entry →
//     unlimited. cudaMalloc fails when reserved + the segment size exceeds it; with expandable
//     segments a mapping fails when reserved + the mapped pages exceed it (cuMemCreate running
//     out), not PyTorch's memory-fraction check on the segment size.
//  8. Streams: blocks are never shared between streams; ordered sets keyed (stream, size,
//     address) per pool, the stream compared as an unsigned value (cudaStream_t pointers).
//     Private pools (CUDA graphs, MemPool) are not modelled: every block goes to the default
//     small/large pools. Model addresses: segments are placed at increasing 2 MiB-aligned
//     addresses, so ties in best fit go to the older segment.
//  9. Release before an OOM, in order: (a) GC, when no cached block fits, if
//     garbage_collection_threshold is set and a capacity is known (PyTorch runs it only with a
//     memory fraction set; the model takes the capacity as that fraction); (b) cudaMalloc;
//     (c) with max_split_size set, release the smallest oversize (>= max_split) cached block of
//     the stream's pool that is >= max(request, max_split), else the stream's oversize blocks
//     from the largest down until that many bytes are released (partial releases stay
//     released); then cudaMalloc; (d) release every unsplit cached block of every stream and
//     pool (expandable: unmap every whole free page, drop segments left fully unmapped), count
//     a retry, cudaMalloc; (e) OOM. (c) and GC never release expandable or split blocks
//     (PyTorch asserts on expandable ones there).
// 10. GC "older than average": each pool counts get_free_block calls; a block's age is that
//     count minus the count when it last entered the free set (free, split remainder, map,
//     unmap pieces). GC frees unsplit large-pool blocks (all streams) whose age >= the mean
//     age of those blocks, repeating with a new mean until reserved − threshold × capacity
//     bytes are released or nothing more goes. Only the large pool is collected.
// 11. Expandable segments: a virtual range per (stream, pool) of 9/8 × capacity (1 TiB when
//     unlimited; another one when no range has room), pages of 2 MiB (small) / 20 MiB (large); best
//     fit treats a free block before unmapped space as the size it can grow to; new pages are
//     mapped at the lowest address with enough free + unmapped room; a block is split when the
//     remainder is >= 512 B in both pools. Reserved = mapped bytes. final_segment_sizes =
//     contiguous mapped ranges.
// 12. roundup_power2_divisions list: "[a:n,...]" sets bucket log2(a MiB) (the first entry also
//     every bucket below it); ">:n" sets the buckets after the last one named (current PyTorch;
//     older releases also overwrote that last one). max_split_size_mb must be > 20 (as the spec
//     says; current PyTorch also accepts 20); max_non_split_rounding_mb >= 20.
// 13. Fragmentation = 1 − largest free block / total free over the free (inactive, mapped)
//     blocks of all pools and streams; measured after every replayed entry.
#include "analyze/alloc_sim.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <functional>
#include <map>
#include <set>
#include <unordered_map>
#include <utility>

#include "core/units.hpp"

namespace memscope::alloc_sim {
namespace {

constexpr uint64_t kMinBlockSize = 512;
constexpr uint64_t kSmallSize = kMiB;
constexpr uint64_t kSmallBuffer = 2 * kMiB;
constexpr uint64_t kMinLargeAlloc = 10 * kMiB;
constexpr uint64_t kLargeBuffer = 20 * kMiB;
constexpr uint64_t kRoundLarge = 2 * kMiB;
constexpr size_t kBuckets = 16;

uint64_t round_up(uint64_t value, uint64_t step) { return (value + step - 1) / step * step; }

// ---- PYTORCH_CUDA_ALLOC_CONF ---------------------------------------------------------------

// As PyTorch's lexer: ',' ':' '[' ']' are tokens of their own, spaces vanish.
std::vector<std::string> tokenize(std::string_view conf) {
  std::vector<std::string> tokens;
  std::string word;
  for (char c : conf) {
    if (c == ',' || c == ':' || c == '[' || c == ']') {
      if (!word.empty()) tokens.push_back(std::exchange(word, {}));
      tokens.emplace_back(1, c);
    } else if (c != ' ') {
      word.push_back(c);
    }
  }
  if (!word.empty()) tokens.push_back(word);
  return tokens;
}

class ConfParser {
 public:
  ConfParser(std::string_view conf, AllocatorConfig& config)
      : conf_(conf), tokens_(tokenize(conf)), config_(config) {}

  Status run() {
    for (i_ = 0; i_ < tokens_.size(); ++i_) {
      const std::string key = tokens_[i_];
      if (Status status = expect(":", key); !status) return status;
      ++i_;
      if (Status status = value_of(key); !status) return status;
      if (i_ + 1 < tokens_.size()) {
        ++i_;
        if (tokens_[i_] != ",") return error(fmt::format("expected ',' after {}", key));
      }
    }
    return {};
  }

 private:
  Status value_of(const std::string& key) {
    if (key == "max_split_size_mb" || key == "max_non_split_rounding_mb") {
      Result<uint64_t> mib = number(key);
      if (!mib) return mib.error();
      const bool split = key == "max_split_size_mb";
      if (split ? *mib <= 20 : *mib < 20) {
        return error(
            fmt::format("{} must be {} 20, not {}", key, split ? "more than" : "at least", *mib));
      }
      const uint64_t bytes = *mib >= kUnlimited / kMiB ? kUnlimited : *mib * kMiB;
      (split ? config_.max_split_size : config_.max_non_split_rounding) = bytes;
    } else if (key == "garbage_collection_threshold") {
      const std::string& text = current();
      double value = 0;
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
      if (ec != std::errc() || end != text.data() + text.size()) {
        return error(fmt::format("{}: '{}' is not a number", key, text));
      }
      if (!(value > 0 && value < 1)) {
        return error(fmt::format("{} must be between 0 and 1 (exclusive), not {}", key, text));
      }
      config_.garbage_collection_threshold = value;
    } else if (key == "roundup_power2_divisions") {
      return divisions(key);
    } else if (key == "expandable_segments") {
      Result<bool> on = boolean(key);
      if (!on) return on.error();
      config_.expandable_segments = *on;
    } else if (key == "backend") {
      if (current() != "native" && current() != "cudaMallocAsync") {
        return error(fmt::format("backend must be native or cudaMallocAsync, not '{}'", current()));
      }
      config_.native = current() == "native";
    } else if (key == "release_lock_on_cudamalloc" || key == "release_lock_on_hipmalloc" ||
               key == "pinned_use_cuda_host_register" || key == "pinned_use_hip_host_register" ||
               key == "pinned_use_background_threads" ||
               key == "graph_capture_record_stream_reuse") {
      Result<bool> on = boolean(key);
      if (!on) return on.error();
      keep(key, *on ? "True" : "False");
    } else if (key == "pinned_num_register_threads" || key == "pinned_reserve_segment_size_mb") {
      Result<uint64_t> value = number(key);
      if (!value) return value.error();
      if (key == "pinned_num_register_threads" && (!std::has_single_bit(*value) || *value > 128)) {
        return error(fmt::format("{} must be a power of 2 up to 128, not {}", key, *value));
      }
      if (*value == 0) return error(fmt::format("{} must be more than 0", key));
      keep(key, std::to_string(*value));
    } else {
      return error(fmt::format("unknown key '{}'", key));
    }
    return {};
  }

  Status divisions(const std::string& key) {
    auto& buckets = config_.roundup_power2_divisions;
    if (current() != "[") {
      Result<uint64_t> value = number(key);
      if (!value) return value.error();
      if (!std::has_single_bit(*value)) {
        return error(fmt::format("{} must be a power of 2, not {}", key, *value));
      }
      std::fill(buckets.begin(), buckets.end(), *value);
      return {};
    }
    bool first = true;
    size_t last_index = 0;
    while (++i_ < tokens_.size() && tokens_[i_] != "]") {
      const std::string boundary = tokens_[i_];
      if (Status status = expect(":", key); !status) return status;
      ++i_;
      Result<uint64_t> value = number(key);
      if (!value) return value.error();
      if (*value != 0 && !std::has_single_bit(*value)) {
        return error(fmt::format("{} must be a power of 2 or 0, not {}", key, *value));
      }
      if (boundary == ">") {
        std::fill(buckets.begin() + static_cast<std::ptrdiff_t>(std::min(last_index + 1, kBuckets)),
                  buckets.end(), *value);
      } else {
        uint64_t mib = 0;
        const auto [end, ec] =
            std::from_chars(boundary.data(), boundary.data() + boundary.size(), mib);
        if (ec != std::errc() || end != boundary.data() + boundary.size() ||
            !std::has_single_bit(mib)) {
          return error(fmt::format("{}: interval '{}' is not a power of 2", key, boundary));
        }
        const size_t index =
            std::min<size_t>(static_cast<size_t>(std::bit_width(mib)) - 1, kBuckets - 1);
        if (first)
          std::fill(buckets.begin(), buckets.begin() + static_cast<std::ptrdiff_t>(index), *value);
        first = false;
        buckets[index] = *value;
        last_index = index;
      }
      if (i_ + 1 < tokens_.size() && tokens_[i_ + 1] != "]") {
        if (Status status = expect(",", key); !status) return status;
      }
    }
    if (i_ >= tokens_.size()) return error(fmt::format("{}: missing ']'", key));
    return {};
  }

  const std::string& current() const {
    static const std::string none;
    return i_ < tokens_.size() ? tokens_[i_] : none;
  }

  Status expect(std::string_view token, const std::string& key) {
    if (i_ + 1 >= tokens_.size() || tokens_[i_ + 1] != token) {
      return error(fmt::format("expected '{}' after {}", token, key));
    }
    ++i_;
    return {};
  }

  Result<uint64_t> number(const std::string& key) const {
    const std::string& text = current();
    uint64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
      return make_error(message(fmt::format("{}: '{}' is not a whole number", key, text)));
    }
    return value;
  }

  Result<bool> boolean(const std::string& key) const {
    if (current() == "True") return true;
    if (current() == "False") return false;
    return make_error(message(fmt::format("{} must be True or False, not '{}'", key, current())));
  }

  void keep(const std::string& key, const std::string& value) {
    auto& others = config_.other_options;
    std::erase_if(others, [&](const std::string& option) {
      return option.size() > key.size() && option.compare(0, key.size(), key) == 0 &&
             option[key.size()] == ':';
    });
    others.push_back(fmt::format("{}:{}", key, value));
  }

  std::string message(const std::string& what) const {
    return fmt::format("allocator config '{}': {}", conf_, what);
  }
  Error error(const std::string& what) const { return make_error(message(what)); }

  std::string_view conf_;
  std::vector<std::string> tokens_;
  AllocatorConfig& config_;
  size_t i_ = 0;
};

}  // namespace

Result<AllocatorConfig> AllocatorConfig::parse(std::string_view conf) {
  AllocatorConfig config;
  ConfParser parser(conf, config);
  if (Status status = parser.run(); !status) return status.error();
  return config;
}

AllocatorConfig AllocatorConfig::from_settings(const torch::AllocatorSettings& settings) {
  AllocatorConfig config;
  if (!settings.present) return config;
  // The raw string gives what the structured fields lack; a string PyTorch would have refused
  // cannot be the process's, so a failed parse leaves the defaults.
  if (Result<AllocatorConfig> raw = parse(settings.conf)) config = std::move(*raw);
  config.max_split_size =
      settings.max_split_size < 0 ? kUnlimited : static_cast<uint64_t>(settings.max_split_size);
  config.garbage_collection_threshold = settings.garbage_collection_threshold;
  config.expandable_segments = settings.expandable_segments;
  std::fill(config.roundup_power2_divisions.begin(), config.roundup_power2_divisions.end(), 0);
  for (const auto& [bucket_mib, divisions] : settings.roundup_power2_divisions) {
    if (bucket_mib == 0 || divisions < 0) continue;
    const size_t index =
        std::min<size_t>(static_cast<size_t>(std::bit_width(bucket_mib)) - 1, kBuckets - 1);
    config.roundup_power2_divisions[index] = static_cast<uint64_t>(divisions);
  }
  return config;
}

std::string AllocatorConfig::to_conf() const {
  std::vector<std::string> parts;
  if (!native) parts.emplace_back("backend:cudaMallocAsync");
  if (expandable_segments) parts.emplace_back("expandable_segments:True");
  if (max_split_size != kUnlimited) {
    parts.push_back(fmt::format("max_split_size_mb:{}", max_split_size / kMiB));
  }
  if (max_non_split_rounding != 20 * kMiB) {
    parts.push_back(fmt::format("max_non_split_rounding_mb:{}", max_non_split_rounding / kMiB));
  }
  const auto& buckets = roundup_power2_divisions;
  if (std::adjacent_find(buckets.begin(), buckets.end(), std::not_equal_to<>()) == buckets.end()) {
    if (!buckets.empty() && buckets[0] != 0) {
      parts.push_back(fmt::format("roundup_power2_divisions:{}", buckets[0]));
    }
  } else {
    // Every non-zero bucket named (unnamed ones stay 0). A constant non-zero tail becomes
    // "first:n,>:n": the same in every release, whether '>' starts at the last named bucket
    // (older releases) or after it.
    size_t tail = buckets.size() - 1;
    while (tail > 0 && buckets[tail - 1] == buckets.back()) --tail;
    const size_t named =
        buckets.back() != 0 && tail + 2 < buckets.size() ? tail + 1 : buckets.size();
    std::string list = fmt::format("1:{}", buckets[0]);
    for (size_t i = 1; i < named; ++i) {
      if (buckets[i] != 0) list += fmt::format(",{}:{}", uint64_t{1} << i, buckets[i]);
    }
    if (named < buckets.size()) list += fmt::format(",>:{}", buckets.back());
    parts.push_back(fmt::format("roundup_power2_divisions:[{}]", list));
  }
  if (garbage_collection_threshold > 0) {
    parts.push_back(fmt::format("garbage_collection_threshold:{}", garbage_collection_threshold));
  }
  parts.insert(parts.end(), other_options.begin(), other_options.end());
  return fmt::format("{}", fmt::join(parts, ","));
}

uint64_t AllocatorConfig::round_size(uint64_t size) const {
  if (size < kMinBlockSize) return kMinBlockSize;
  // Buckets start at 1 MiB: index = floor(log2(size)) − 20, clamped to [0, 15].
  const int log_size = static_cast<int>(std::bit_width(size)) - 1;
  const size_t index = static_cast<size_t>(std::clamp(log_size - 20, 0, int{kBuckets} - 1));
  const uint64_t divisions =
      index < roundup_power2_divisions.size() ? roundup_power2_divisions[index] : 0;
  if (divisions > 1 && size > kMinBlockSize * divisions) {
    if (std::has_single_bit(size)) return size;
    const uint64_t floor = std::bit_floor(size);
    const uint64_t step = floor >> (static_cast<unsigned>(std::bit_width(divisions)) - 1);
    if (step == 0) return floor << 1;
    return round_up(size, step);
  }
  return round_up(size, kMinBlockSize);
}

std::vector<std::pair<std::string, AllocatorConfig>> sweep(const AllocatorConfig& base) {
  std::vector<std::pair<std::string, AllocatorConfig>> out;
  out.emplace_back("current", base);
  auto with = [&](std::string label, auto change) {
    AllocatorConfig config = base;
    config.native = true;  // every candidate option is the native allocator's
    change(config);
    out.emplace_back(std::move(label), std::move(config));
  };
  for (bool on : {true, false}) {
    with(fmt::format("expandable_segments:{}", on ? "True" : "False"),
         [on](AllocatorConfig& c) { c.expandable_segments = on; });
  }
  for (uint64_t mib : {uint64_t{64}, uint64_t{128}, uint64_t{256}, uint64_t{512}}) {
    with(fmt::format("max_split_size_mb:{}", mib),
         [mib](AllocatorConfig& c) { c.max_split_size = mib * kMiB; });
  }
  for (uint64_t divisions : {uint64_t{4}, uint64_t{8}}) {
    with(fmt::format("roundup_power2_divisions:{}", divisions), [divisions](AllocatorConfig& c) {
      std::fill(c.roundup_power2_divisions.begin(), c.roundup_power2_divisions.end(), divisions);
    });
  }
  for (double threshold : {0.6, 0.8}) {
    with(fmt::format("garbage_collection_threshold:{}", threshold),
         [threshold](AllocatorConfig& c) { c.garbage_collection_threshold = threshold; });
  }
  return out;
}

// ---- the replay ------------------------------------------------------------------------------

namespace {

constexpr uint32_t kNone = UINT32_MAX;

struct Block {
  uint64_t addr = 0;
  uint64_t size = 0;
  uint64_t stream = 0;  // cudaStream_t compared as an unsigned value
  int64_t gc_base = 0;  // the pool's get_free_block count when the block entered the free set
  uint32_t prev = kNone;
  uint32_t next = kNone;
  uint32_t segment = kNone;  // expandable segment; kNone: a cudaMalloc'd segment
  bool small = false;
  bool allocated = false;
  bool pending = false;  // free requested, not completed: not allocated, not reusable
  bool mapped = true;
  bool live = true;  // arena slot in use
};

struct SizeKey {
  uint64_t stream;
  uint64_t size;
  uint64_t addr;
  uint32_t block;
  bool operator<(const SizeKey& o) const {
    if (stream != o.stream) return stream < o.stream;
    if (size != o.size) return size < o.size;
    return addr < o.addr;
  }
};

struct AddrKey {
  uint64_t stream;
  uint64_t addr;
  uint32_t block;
  bool operator<(const AddrKey& o) const {
    return stream != o.stream ? stream < o.stream : addr < o.addr;
  }
};

struct Pool {
  std::set<SizeKey> blocks;    // free, mapped
  std::set<AddrKey> unmapped;  // expandable segments' unmapped ranges
  int64_t free_block_calls = 0;
};

struct ExpandableSegment {
  uint64_t base = 0;
  uint64_t page = 0;
};

enum class Tracked : uint8_t { live, pending, failed, unknown_pending, released };
struct TrackedBlock {
  uint32_t block = kNone;
  Tracked state = Tracked::live;
};

class Simulator {
 public:
  Simulator(const AllocatorConfig& config, uint64_t capacity, SimResult& result)
      : config_(config), capacity_(capacity == 0 ? kUnlimited : capacity), result_(result) {
    gc_enabled_ = config.garbage_collection_threshold > 0 && capacity_ != kUnlimited;
  }

  void replay(const std::vector<torch::TraceEntry>& trace) {
    tracked_.reserve(1024);
    for (const torch::TraceEntry& entry : trace) {
      step(entry);
      measure();
    }
    finish();
  }

 private:
  // ---- trace entries
  void step(const torch::TraceEntry& entry) {
    using torch::TraceAction;
    switch (entry.action) {
      case TraceAction::alloc:
        return on_alloc(entry);
      case TraceAction::free_requested:
        return on_free_requested(entry.addr);
      case TraceAction::free_completed:
        return on_free_completed(entry.addr);
      case TraceAction::oom:
        return on_oom(entry);
      default:
        return;
    }
  }

  void on_alloc(const torch::TraceEntry& entry) {
    auto [it, inserted] = tracked_.try_emplace(entry.addr);
    if (!inserted) {
      if (it->second.state == Tracked::live || it->second.state == Tracked::pending) {
        ++reused_live_addresses_;
        if (it->second.state == Tracked::live)
          allocated_ -= blocks_[it->second.block].size;
        else
          --pending_count_;
        free_block(it->second.block);
      }
    }
    const uint32_t block = malloc(entry.size, static_cast<uint64_t>(entry.stream));
    if (block == kNone) {
      ++result_.ooms;
      it->second = {kNone, Tracked::failed};
    } else {
      it->second = {block, Tracked::live};
    }
  }

  void on_free_requested(uint64_t addr) {
    auto it = tracked_.find(addr);
    if (it == tracked_.end()) {
      ++result_.unknown_frees;
      tracked_.emplace(addr, TrackedBlock{kNone, Tracked::unknown_pending});
      return;
    }
    if (it->second.state != Tracked::live) return;
    Block& block = blocks_[it->second.block];
    allocated_ -= block.size;
    block.allocated = false;
    block.pending = true;
    it->second.state = Tracked::pending;
    ++pending_count_;
    pending_addrs_.push_back(addr);
    if (pending_addrs_.size() > 4096 && pending_addrs_.size() > 4 * pending_count_) {
      compact_pending();
    }
  }

  void on_free_completed(uint64_t addr) {
    auto it = tracked_.find(addr);
    if (it == tracked_.end()) {
      ++result_.unknown_frees;
      return;
    }
    const TrackedBlock tracked = it->second;
    tracked_.erase(it);
    if (tracked.state == Tracked::live) {
      allocated_ -= blocks_[tracked.block].size;
      free_block(tracked.block);
    } else if (tracked.state == Tracked::pending) {
      --pending_count_;
      free_block(tracked.block);
    }
  }

  void on_oom(const torch::TraceEntry& entry) {
    ++result_.recorded_ooms;
    const uint32_t block = malloc(entry.size, static_cast<uint64_t>(entry.stream));
    if (block == kNone) {
      ++result_.ooms;
      ++result_.recorded_ooms_reproduced;
      return;
    }
    allocated_ -= blocks_[block].size;
    free_block(block);
  }

  // ---- the allocator
  uint32_t malloc(uint64_t request, uint64_t stream) {
    const uint64_t size = config_.round_size(request);
    const bool small = size <= kSmallSize;
    Pool& pool = small ? small_ : large_;
    const uint64_t alloc_size = small                   ? kSmallBuffer
                                : size < kMinLargeAlloc ? kLargeBuffer
                                                        : round_up(size, kRoundLarge);
    uint32_t found = get_free_block(pool, stream, size);
    if (found == kNone) {
      if (gc_enabled_) garbage_collect();
      found = alloc_block(pool, small, stream, size, alloc_size);
      if (found == kNone && release_available_cached_blocks(pool, stream, size)) {
        found = alloc_block(pool, small, stream, size, alloc_size);
      }
      if (found == kNone) {
        release_cached_blocks();
        ++result_.retries;
        found = alloc_block(pool, small, stream, size, alloc_size);
      }
      if (found == kNone) return kNone;
    }
    const uint64_t remaining = blocks_[found].size - size;
    const bool split = small || config_.expandable_segments
                           ? remaining >= kMinBlockSize
                           : size < config_.max_split_size && remaining > kSmallSize;
    if (split) {
      const uint32_t head = new_block(blocks_[found]);
      Block& rest = blocks_[found];
      Block& taken = blocks_[head];
      taken.size = size;
      taken.prev = rest.prev;
      taken.next = found;
      if (taken.prev != kNone) blocks_[taken.prev].next = head;
      rest.prev = head;
      rest.addr += size;
      rest.size -= size;
      pool_insert(found);
      found = head;
    }
    blocks_[found].allocated = true;
    allocated_ += blocks_[found].size;
    return found;
  }

  uint32_t get_free_block(Pool& pool, uint64_t stream, uint64_t size) {
    ++pool.free_block_calls;
    auto it = pool.blocks.lower_bound(SizeKey{stream, size, 0, 0});
    if (it == pool.blocks.end() || it->stream != stream) return kNone;
    if (blocks_[it->block].segment != kNone) {
      // Best fit by the size a block can grow to (itself + the unmapped space after it).
      auto next = std::next(it);
      while (blocks_[it->block].segment != kNone && next != pool.blocks.end() &&
             next->stream == stream && growable_size(next->block) < growable_size(it->block)) {
        it = next++;
      }
    }
    const uint64_t max_split = config_.max_split_size;
    if (size < max_split && it->size >= max_split) return kNone;
    if (size >= max_split && it->size >= size + config_.max_non_split_rounding) return kNone;
    const uint32_t block = it->block;
    erase_free(pool, it);
    return block;
  }

  uint64_t growable_size(uint32_t index) const {
    const Block& block = blocks_[index];
    const bool unmapped_next = block.next != kNone && !blocks_[block.next].mapped;
    return block.size + (unmapped_next ? blocks_[block.next].size : 0);
  }

  uint32_t alloc_block(Pool& pool, bool small, uint64_t stream, uint64_t size,
                       uint64_t alloc_size) {
    if (config_.expandable_segments) return allocate_expandable(pool, small, stream, size);
    if (alloc_size > capacity_ - reserved_) return kNone;
    Block block;
    block.addr = next_address_;
    block.size = alloc_size;
    block.stream = stream;
    block.small = small;
    next_address_ += round_up(alloc_size, kRoundLarge);
    reserved_ += alloc_size;
    ++result_.device_allocs;
    return new_block(block);
  }

  bool releasable(uint32_t index) const {
    const Block& block = blocks_[index];
    return block.segment == kNone && block.prev == kNone && block.next == kNone;
  }

  bool release_available_cached_blocks(Pool& pool, uint64_t stream, uint64_t size) {
    const uint64_t max_split = config_.max_split_size;
    if (max_split == kUnlimited) return false;
    const uint64_t wanted = std::max(size, max_split);
    auto it = pool.blocks.lower_bound(SizeKey{stream, wanted, 0, 0});
    if (it != pool.blocks.end() && it->stream == stream) {
      if (!releasable(it->block)) return false;
      release_block(it->block);
      return true;
    }
    if (it == pool.blocks.begin()) return false;
    --it;
    uint64_t released = 0;
    while (released < wanted && it->size >= max_split && it->stream == stream) {
      const auto current = it;
      const bool first = it == pool.blocks.begin();
      if (!first) --it;
      if (releasable(current->block)) {
        released += current->size;
        release_block(current->block);
      }
      if (first) break;
    }
    return released >= wanted;
  }

  void release_cached_blocks() {
    complete_pending_frees();
    release_blocks(large_);
    release_blocks(small_);
  }

  void release_blocks(Pool& pool) {
    std::vector<uint32_t> to_unmap;
    for (auto it = pool.blocks.begin(); it != pool.blocks.end();) {
      const uint32_t block = it->block;
      ++it;
      if (blocks_[block].segment != kNone) {
        to_unmap.push_back(block);
      } else if (releasable(block)) {
        release_block(block);
      }
    }
    for (uint32_t block : to_unmap) {
      unmap_block(block);
      const Block& b = blocks_[block];
      if (!b.mapped && b.prev == kNone && b.next == kNone) {
        pool.unmapped.erase(AddrKey{b.stream, b.addr, block});
        delete_block(block);
      }
    }
  }

  void release_block(uint32_t index) {
    const Block& block = blocks_[index];
    Pool& pool = block.small ? small_ : large_;
    erase_free(pool, pool.blocks.find(key_of(block, index)));
    reserved_ -= block.size;
    ++result_.device_frees;
    delete_block(index);
  }

  void garbage_collect() {
    const auto threshold = static_cast<uint64_t>(config_.garbage_collection_threshold *
                                                 static_cast<double>(capacity_));
    if (reserved_ <= threshold) return;
    const uint64_t target = reserved_ - threshold;
    auto age = [&](uint32_t block) {
      return static_cast<uint64_t>(large_.free_block_calls - blocks_[block].gc_base);
    };
    uint64_t total_age = 0;
    uint64_t freeable = 0;
    for (const SizeKey& key : large_.blocks) {
      if (releasable(key.block)) {
        total_age += age(key.block);
        ++freeable;
      }
    }
    uint64_t reclaimed = 0;
    bool freed = true;
    while (reclaimed < target && freed && freeable > 0) {
      const double mean_age = static_cast<double>(total_age) / static_cast<double>(freeable);
      freed = false;
      for (auto it = large_.blocks.begin(); it != large_.blocks.end();) {
        const uint32_t block = it->block;
        ++it;
        if (releasable(block) && static_cast<double>(age(block)) >= mean_age) {
          freed = true;
          reclaimed += blocks_[block].size;
          result_.gc_freed_bytes += blocks_[block].size;
          ++result_.gc_released_segments;
          total_age -= age(block);
          --freeable;
          release_block(block);
        }
      }
    }
  }

  // ---- expandable segments
  uint32_t allocate_expandable(Pool& pool, bool small, uint64_t stream, uint64_t size) {
    uint32_t candidate = find_expandable_block(pool, small, stream, size);
    if (!blocks_[candidate].mapped &&
        !map_block(candidate, std::min(blocks_[candidate].size, size))) {
      return kNone;
    }
    while (blocks_[candidate].size < size) {
      const uint32_t next = blocks_[candidate].next;  // unmapped, by find_expandable_block
      const uint64_t missing = size - blocks_[candidate].size;
      if (!map_block(next, std::min(missing, blocks_[next].size))) return kNone;
      candidate = next;  // it took the free block before it in
    }
    erase_free(pool, pool.blocks.find(key_of(blocks_[candidate], candidate)));
    return candidate;
  }

  bool allocatable(uint32_t index) const {
    return index != kNone && !blocks_[index].allocated && !blocks_[index].pending;
  }

  uint32_t find_expandable_block(Pool& pool, bool small, uint64_t stream, uint64_t size) {
    for (auto it = pool.unmapped.lower_bound(AddrKey{stream, 0, 0});
         it != pool.unmapped.end() && it->stream == stream; ++it) {
      uint32_t start = it->block;
      if (allocatable(blocks_[start].prev)) start = blocks_[start].prev;
      uint64_t room = 0;
      for (uint32_t b = start; room < size && allocatable(b); b = blocks_[b].next) {
        room += blocks_[b].size;
      }
      if (room >= size) return start;
    }
    const uint64_t page = small ? kSmallBuffer : kLargeBuffer;
    const uint64_t span =
        capacity_ == kUnlimited ? uint64_t{1} << 40 : round_up(capacity_ + capacity_ / 8, page);
    segments_.push_back(ExpandableSegment{next_address_, page});
    Block block;
    block.addr = next_address_;
    block.size = span;
    block.stream = stream;
    block.small = small;
    block.mapped = false;
    block.segment = static_cast<uint32_t>(segments_.size() - 1);
    next_address_ += span;
    const uint32_t index = new_block(block);
    pool.unmapped.insert(AddrKey{stream, block.addr, index});
    return index;
  }

  bool map_block(uint32_t index, uint64_t size) {
    const uint64_t bytes = round_up(size, segments_[blocks_[index].segment].page);
    if (bytes > capacity_ - reserved_) return false;
    Pool& pool = blocks_[index].small ? small_ : large_;
    pool.unmapped.erase(AddrKey{blocks_[index].stream, blocks_[index].addr, index});
    blocks_[index].mapped = true;
    if (bytes < blocks_[index].size) {
      Block rest = blocks_[index];
      rest.addr += bytes;
      rest.size -= bytes;
      rest.mapped = false;
      rest.prev = index;
      const uint32_t rest_index = new_block(rest);
      if (rest.next != kNone) blocks_[rest.next].prev = rest_index;
      blocks_[index].next = rest_index;
      blocks_[index].size = bytes;
      pool.unmapped.insert(AddrKey{rest.stream, rest.addr, rest_index});
    }
    try_merge(index, blocks_[index].prev);
    try_merge(index, blocks_[index].next);
    pool_insert(index);
    reserved_ += bytes;
    ++result_.device_allocs;
    return true;
  }

  void unmap_block(uint32_t index) {
    const Block block = blocks_[index];
    const ExpandableSegment& segment = segments_[block.segment];
    const uint64_t begin = segment.base + round_up(block.addr - segment.base, segment.page);
    const uint64_t end =
        segment.base + (block.addr + block.size - segment.base) / segment.page * segment.page;
    if (begin >= end) return;
    Pool& pool = block.small ? small_ : large_;
    erase_free(pool, pool.blocks.find(key_of(block, index)));
    if (begin > block.addr) {
      Block before = block;
      before.size = begin - block.addr;
      before.next = index;
      const uint32_t before_index = new_block(before);
      if (block.prev != kNone) blocks_[block.prev].next = before_index;
      blocks_[index].prev = before_index;
      pool_insert(before_index);
    }
    if (block.addr + block.size > end) {
      Block after = block;
      after.addr = end;
      after.size = block.addr + block.size - end;
      after.prev = index;
      const uint32_t after_index = new_block(after);
      if (block.next != kNone) blocks_[block.next].prev = after_index;
      blocks_[index].next = after_index;
      pool_insert(after_index);
    }
    blocks_[index].addr = begin;
    blocks_[index].size = end - begin;
    blocks_[index].mapped = false;
    try_merge(index, blocks_[index].prev);
    try_merge(index, blocks_[index].next);
    pool.unmapped.insert(AddrKey{block.stream, blocks_[index].addr, index});
    reserved_ -= end - begin;
    ++result_.device_frees;
  }

  // ---- blocks
  void free_block(uint32_t index) {
    blocks_[index].allocated = false;
    blocks_[index].pending = false;
    try_merge(index, blocks_[index].prev);
    try_merge(index, blocks_[index].next);
    pool_insert(index);
  }

  // Takes src (a free neighbour in the same mapped state) into dst; dst is in no set.
  void try_merge(uint32_t dst, uint32_t src) {
    if (src == kNone) return;
    const Block from = blocks_[src];
    if (from.allocated || from.pending || from.mapped != blocks_[dst].mapped) return;
    Pool& pool = from.small ? small_ : large_;
    if (from.mapped) {
      erase_free(pool, pool.blocks.find(key_of(from, src)));
    } else {
      pool.unmapped.erase(AddrKey{from.stream, from.addr, src});
    }
    Block& to = blocks_[dst];
    if (to.prev == src) {
      to.addr = from.addr;
      to.prev = from.prev;
      if (to.prev != kNone) blocks_[to.prev].next = dst;
    } else {
      to.next = from.next;
      if (to.next != kNone) blocks_[to.next].prev = dst;
    }
    to.size += from.size;
    delete_block(src);
  }

  static SizeKey key_of(const Block& block, uint32_t index) {
    return SizeKey{block.stream, block.size, block.addr, index};
  }

  void pool_insert(uint32_t index) {
    Block& block = blocks_[index];
    Pool& pool = block.small ? small_ : large_;
    block.gc_base = pool.free_block_calls;
    pool.blocks.insert(key_of(block, index));
    ++free_sizes_[block.size];
    total_free_ += block.size;
  }

  void erase_free(Pool& pool, std::set<SizeKey>::iterator it) {
    auto count = free_sizes_.find(it->size);
    if (--count->second == 0) free_sizes_.erase(count);
    total_free_ -= it->size;
    pool.blocks.erase(it);
  }

  uint32_t new_block(const Block& block) {
    if (!free_slots_.empty()) {
      const uint32_t index = free_slots_.back();
      free_slots_.pop_back();
      blocks_[index] = block;
      blocks_[index].live = true;
      return index;
    }
    blocks_.push_back(block);
    blocks_.back().live = true;
    return static_cast<uint32_t>(blocks_.size() - 1);
  }

  void delete_block(uint32_t index) {
    blocks_[index].live = false;
    free_slots_.push_back(index);
  }

  // ---- pending frees
  void complete_pending_frees() {
    if (pending_count_ == 0) return;
    for (uint64_t addr : pending_addrs_) {
      auto it = tracked_.find(addr);
      if (it == tracked_.end() || it->second.state != Tracked::pending) continue;
      free_block(it->second.block);
      it->second.state = Tracked::released;
    }
    pending_addrs_.clear();
    pending_count_ = 0;
  }

  void compact_pending() {
    std::erase_if(pending_addrs_, [&](uint64_t addr) {
      auto it = tracked_.find(addr);
      return it == tracked_.end() || it->second.state != Tracked::pending;
    });
    std::sort(pending_addrs_.begin(), pending_addrs_.end());
    pending_addrs_.erase(std::unique(pending_addrs_.begin(), pending_addrs_.end()),
                         pending_addrs_.end());
  }

  // ---- measures
  double fragmentation() const {
    if (total_free_ == 0) return 0;
    const uint64_t largest = free_sizes_.rbegin()->first;
    return 1.0 - static_cast<double>(largest) / static_cast<double>(total_free_);
  }

  void measure() {
    if (reserved_ > result_.peak_reserved_bytes) {
      result_.peak_reserved_bytes = reserved_;
      result_.fragmentation_at_peak = fragmentation();
    }
    result_.peak_allocated_bytes = std::max(result_.peak_allocated_bytes, allocated_);
    if (reserved_ > 0 && total_free_ > 0) {
      result_.peak_fragmentation = std::max(result_.peak_fragmentation, fragmentation());
    }
  }

  void finish() {
    result_.final_reserved_bytes = reserved_;
    result_.final_allocated_bytes = allocated_;
    std::vector<std::pair<uint64_t, uint64_t>> segments;
    for (const Block& block : blocks_) {
      if (!block.live || !block.mapped) continue;
      if (block.prev != kNone && blocks_[block.prev].mapped) continue;
      uint64_t size = block.size;
      for (uint32_t b = block.next; b != kNone && blocks_[b].mapped; b = blocks_[b].next) {
        size += blocks_[b].size;
      }
      segments.emplace_back(block.addr, size);
    }
    std::sort(segments.begin(), segments.end());
    for (const auto& [addr, size] : segments) result_.final_segment_sizes.push_back(size);
    if (reused_live_addresses_ > 0) {
      result_.complete = false;
      result_.notes.push_back(fmt::format(
          "{} allocs reused an address still live in the replay (a free missing from the trace): "
          "the old block was freed there",
          reused_live_addresses_));
    }
  }

  const AllocatorConfig& config_;
  const uint64_t capacity_;
  SimResult& result_;
  bool gc_enabled_ = false;
  std::vector<Block> blocks_;
  std::vector<uint32_t> free_slots_;
  std::vector<ExpandableSegment> segments_;
  Pool small_;
  Pool large_;
  std::map<uint64_t, uint32_t> free_sizes_;  // size → how many free blocks have it
  uint64_t total_free_ = 0;
  uint64_t reserved_ = 0;
  uint64_t allocated_ = 0;
  uint64_t next_address_ = uint64_t{0x7f00} << 32;
  std::unordered_map<uint64_t, TrackedBlock> tracked_;  // recorded address → model block
  std::vector<uint64_t> pending_addrs_;
  uint64_t pending_count_ = 0;
  uint64_t reused_live_addresses_ = 0;
};

// What the recorded allocator did (rule 1: never replayed): the device capacity of rule 7 (the
// recorded reserved bytes at each OOM + the driver's free bytes there), and a note when segments
// were released with no allocation after them — torch.cuda.empty_cache(), which the replay
// cannot see (its own releases come only before a failing cudaMalloc).
uint64_t scan_recorded(const std::vector<torch::TraceEntry>& trace, uint64_t snapshot_reserved,
                       bool derive, std::vector<std::string>& notes) {
  using torch::TraceAction;
  int64_t running = 0;
  int64_t lowest = 0;
  std::vector<std::pair<int64_t, uint64_t>> ooms;  // running reserved, device_free
  bool releasing = false;
  uint64_t empty_caches = 0;
  for (const torch::TraceEntry& entry : trace) {
    const auto size = static_cast<int64_t>(entry.size);
    const bool release =
        entry.action == TraceAction::segment_free || entry.action == TraceAction::segment_unmap;
    if (releasing && !release && entry.action != TraceAction::segment_alloc &&
        entry.action != TraceAction::segment_map && entry.action != TraceAction::oom) {
      ++empty_caches;
    }
    releasing = release;
    switch (entry.action) {
      case TraceAction::segment_alloc:
      case TraceAction::segment_map:
        running += size;
        break;
      case TraceAction::segment_free:
      case TraceAction::segment_unmap:
        running -= size;
        break;
      case TraceAction::oom:
        ooms.emplace_back(running, entry.device_free);
        break;
      default:
        break;
    }
    lowest = std::min(lowest, running);
  }
  if (releasing) ++empty_caches;
  if (empty_caches > 0) {
    notes.push_back(
        fmt::format("the recorded allocator released segments {} time{} with no allocation after "
                    "(torch.cuda.empty_cache()): the replay keeps them cached",
                    empty_caches, empty_caches == 1 ? "" : "s"));
  }
  if (!derive || ooms.empty()) return 0;
  // Reserved bytes before the trace's first entry: known from the snapshot's segments, else at
  // least what the trace freed beyond what it allocated.
  const int64_t before =
      snapshot_reserved > 0 ? static_cast<int64_t>(snapshot_reserved) - running : -lowest;
  uint64_t capacity = kUnlimited;
  for (const auto& [reserved, device_free] : ooms) {
    const uint64_t at_oom = static_cast<uint64_t>(std::max<int64_t>(0, reserved + before));
    capacity = std::min(capacity, at_oom + device_free);
  }
  notes.push_back(fmt::format("device capacity {} derived from {} oom entr{} (reserved + free)",
                              format_bytes(capacity), ooms.size(), ooms.size() == 1 ? "y" : "ies"));
  return capacity;
}

}  // namespace

Result<SimResult> simulate(const std::vector<torch::TraceEntry>& trace,
                           const AllocatorConfig& config, const SimOptions& options) {
  if (trace.empty()) return make_error("allocator replay: the trace has no entries");
  if (!config.native) {
    return make_error(
        "allocator replay: backend:cudaMallocAsync is not modelled (the CUDA driver's pool "
        "places blocks)");
  }
  SimResult result;
  result.config = config.to_conf();
  result.events = trace.size();
  const uint64_t derived = scan_recorded(trace, options.snapshot_reserved_bytes,
                                         options.device_capacity == 0, result.notes);
  result.device_capacity = options.device_capacity != 0 ? options.device_capacity : derived;
  if (config.garbage_collection_threshold > 0) {
    result.notes.push_back(
        result.device_capacity == 0
            ? std::string("garbage_collection_threshold is off in the replay: no device capacity")
            : std::string("garbage_collection_threshold acts only with "
                          "torch.cuda.set_per_process_memory_fraction set"));
  }
  Simulator(config, result.device_capacity, result).replay(trace);
  if (result.unknown_frees > 0) {
    result.complete = false;
    result.notes.push_back(fmt::format(
        "{} frees of blocks allocated before the trace began (the ring buffer dropped them): "
        "skipped; the figures are not the run's",
        result.unknown_frees));
  }
  return result;
}

Recommendation recommend(const std::vector<std::pair<std::string, SimResult>>& results,
                         const std::vector<std::pair<std::string, AllocatorConfig>>& configs) {
  Recommendation out;
  if (results.empty() || configs.size() < results.size()) return out;
  size_t best = 0;
  for (size_t i = 1; i < results.size(); ++i) {
    const SimResult& r = results[i].second;
    const SimResult& b = results[best].second;
    if (r.ooms < b.ooms || (r.ooms == b.ooms && r.peak_reserved_bytes < b.peak_reserved_bytes)) {
      best = i;
    }
  }
  const SimResult& current = results[0].second;
  const SimResult& chosen = results[best].second;
  const bool fewer_ooms = chosen.ooms < current.ooms;
  const bool smaller = chosen.peak_reserved_bytes * 100 <= current.peak_reserved_bytes * 98;
  if (best != 0 && (fewer_ooms || smaller)) {
    out.index = best;
    out.reason = fewer_ooms ? fmt::format(
                                  "{}: {} OOMs in the replay instead of {}; peak reserved {} "
                                  "instead of {}",
                                  results[best].first, chosen.ooms, current.ooms,
                                  format_bytes(chosen.peak_reserved_bytes),
                                  format_bytes(current.peak_reserved_bytes))
                            : fmt::format(
                                  "{}: peak reserved {} instead of {} ({:.0f} % less), "
                                  "fragmentation at the peak {:.2f} instead of {:.2f}",
                                  results[best].first, format_bytes(chosen.peak_reserved_bytes),
                                  format_bytes(current.peak_reserved_bytes),
                                  100.0 - 100.0 * static_cast<double>(chosen.peak_reserved_bytes) /
                                              static_cast<double>(current.peak_reserved_bytes),
                                  chosen.fragmentation_at_peak, current.fragmentation_at_peak);
    if (configs[best].second.garbage_collection_threshold > 0 &&
        configs[0].second.garbage_collection_threshold == 0) {
      out.reason += " (garbage_collection_threshold needs a memory fraction set)";
    }
  } else {
    out.reason =
        "no candidate avoids an OOM or lowers peak reserved by 2 % or more: keep the current "
        "settings";
  }
  const std::string conf = configs[out.index].second.to_conf();
  out.export_line =
      conf.empty() ? "unset PYTORCH_CUDA_ALLOC_CONF" : "export PYTORCH_CUDA_ALLOC_CONF=" + conf;
  return out;
}

}  // namespace memscope::alloc_sim
