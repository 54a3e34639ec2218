// BufferPool: a memory-bounded store of byte buffers by key (replay buffers, cached batches).
// Buffers are compressed (none, lz4 or zstd); beyond the memory budget the coldest go to files in
// spill_dir (read back through mmap), and beyond the disk budget the coldest are dropped.
//
// Eviction order (which buffer is coldest): LRFU, a frequency decayed by age. Each access (put
// or get) of a buffer adds 1 to its score; every access to the pool halves all scores once per
// `frequency_half_life` accesses. The buffer with the lowest score goes first: a buffer used
// often survives newer buffers used once until it has not been used for about
// log2(its uses) half-lives; a small half-life makes the pool LRU, a large one LFU. Scores are
// kept as log2(score) + time / half_life, which does not change between a buffer's accesses, so
// finding the coldest costs O(log n).
//
// Sizes: the budgets count the stored bytes (compressed, or raw when compression does not pay),
// not keys and bookkeeping. A buffer whose stored size is larger than the memory budget is
// refused by put() with an error.
//
// What is acknowledged, and what a failing spill dir loses:
// - put() returns OK only once the buffer is held in memory, and the buffer it put is never the
//   one evicted or spilled by that same put(): contains(key) holds right after an OK put().
// - Later, to stay within the memory budget, the coldest buffers move to disk: a file is
//   written completely (every byte, closed without error) before the memory copy is released.
//   A write that fails (ENOSPC, EACCES, ENOTDIR, EFBIG, ...) removes the partial file, logs a
//   warning (the first failure, when the error changes, and at 10, 100, 1000... failures) and
//   evicts the buffer instead: it is dropped, counted in evictions and spill_errors. The memory budget holds either way; a
//   pool whose spill dir never works behaves as one without a spill dir.
// - A buffer is therefore lost only by counted eviction, never partially: get() returns the
//   exact bytes put, or nothing. A spilled file that can no longer be read (removed or truncated
//   by someone else) makes get() a miss, counted in read_errors, and the buffer is dropped.
// - get() of a spilled buffer promotes it back to memory (its file is removed), which may spill
//   others.
//
// Spill files live in a directory of their own, spill_dir/memscope-pool-XXXXXX, created at the
// first spill (retried at each spill while it fails) and removed with the pool.
// Thread-safe: every method may be called from any thread (one mutex; compression and
// decompression run outside it).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "memscope/result.hpp"

namespace memscope {

enum class Compression { kNone, kLz4, kZstd };
const char* to_string(Compression compression);                      // "none", "lz4", "zstd"
std::optional<Compression> parse_compression(std::string_view text);  // those words, any case

struct BufferPoolOptions {
  uint64_t memory_budget_bytes = 0;  // > 0
  Compression compression = Compression::kLz4;
  // 0: the codec's default (lz4: LZ4_compress_default; zstd: 3). lz4 1..12: LZ4HC at that
  // level. zstd: ZSTD_minCLevel()..22, negative levels are zstd's fast modes.
  int compression_level = 0;
  std::string spill_dir;          // empty: no spill, buffers beyond the memory budget are evicted
  uint64_t disk_budget_bytes = 0;  // with spill_dir; 0: no limit but the filesystem's
  double frequency_half_life = 1024;  // in pool accesses (> 0); see "Eviction order" above
};

struct BufferPoolStats {
  uint64_t hits = 0;
  uint64_t misses = 0;
  double hit_rate = 0;           // hits / (hits + misses); 0 before any get()
  double compression_ratio = 1;  // raw bytes / stored bytes of the buffers held; 1 when empty
  uint64_t buffers = 0;            // held, in memory and on disk
  uint64_t buffers_in_memory = 0;
  uint64_t buffers_on_disk = 0;
  uint64_t raw_bytes = 0;          // uncompressed size of the buffers held
  uint64_t bytes_in_memory = 0;    // stored (compressed) bytes in memory, <= memory budget
  uint64_t bytes_on_disk = 0;      // stored bytes in spill files, <= disk budget (if any)
  uint64_t evictions = 0;          // buffers dropped to stay within the budgets
  uint64_t spills = 0;             // buffers written to disk
  uint64_t spill_errors = 0;       // spill writes that failed (the buffer was evicted)
  uint64_t promotions = 0;         // spilled buffers read back into memory by get()
  uint64_t read_errors = 0;        // spilled buffers that could not be read back
};

class BufferPool {
 public:
  using Bytes = std::vector<uint8_t>;

  // Checks the options (an error names the bad one and its value).
  static Result<std::unique_ptr<BufferPool>> create(const BufferPoolOptions& options);
  ~BufferPool();  // removes its spill files
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // Stores a copy of bytes under key, replacing any buffer of that key. Errors: a stored size
  // larger than the memory budget, a compression failure. The pool is unchanged on error.
  Status put(const std::string& key, std::span<const uint8_t> bytes);
  Status put(const std::string& key, std::string_view bytes);

  std::optional<Bytes> get(const std::string& key);  // counts a hit or a miss
  bool contains(const std::string& key) const;       // neither a hit nor an access
  bool erase(const std::string& key);                // false when absent
  void clear();                                      // drops all buffers (not counted as evictions)
  size_t size() const;                               // buffers held, in memory and on disk
  BufferPoolStats stats() const;
  const BufferPoolOptions& options() const;

 private:
  BufferPool();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace memscope
