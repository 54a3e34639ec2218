// The tracker's writer core (docs/tracker-format.md): record encoding into 1 MiB raw chunk
// buffers, zstd compression with a static context, whole-chunk write(2)s to a file descriptor.
// Buffers are mmap'd once at open; nothing here calls malloc, so the hooks can use it. The
// record functions and flush/drain are not thread-safe: the hooks serialize them with their
// writer lock. Chunks are compressed and written either at once by flush() (the default), or,
// after set_async(true), by one compressor thread calling compress_submitted(): flush() then
// only hands the full buffer over (a ring of kBuffers), so the program's own threads do not
// spend their time in zstd.
#pragma once

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>

#include "core/alloc_trace.hpp"
#include "preload/heap_ids.hpp"

struct ZSTD_CCtx_s;

namespace memscope::track {

inline constexpr size_t kChunkRawBytes = size_t{1} << 20;
inline constexpr uint32_t kBuffers = 4;  // raw chunk buffers: one filling, the others queued
inline constexpr size_t kMaxModuleSegments = 64;

// Unsigned LEB128; returns the byte after the last one written (at most 10 bytes).
inline uint8_t* put_varint(uint8_t* out, uint64_t value) {
  while (value >= 0x80) {
    *out++ = static_cast<uint8_t>(value | 0x80);
    value >>= 7;
  }
  *out++ = static_cast<uint8_t>(value);
  return out;
}

struct Segment {
  uint64_t start;
  uint64_t size;
};

class TraceWriter {
 public:
  // Maps the buffers and writes the 16-byte file header to `fd` (not closed by the writer).
  bool open(int fd);
  // Unmaps the buffers (tests; the tracker keeps them for the process's lifetime).
  void release();

  void process(uint64_t pid, uint64_t ppid, uint64_t start_unix_ns, const char* exe,
               size_t exe_len, const char* cmdline, size_t cmdline_len);
  // At most kMaxModuleSegments segments are written.
  void module(const char* path, size_t path_len, uint64_t base, const Segment* segments,
              size_t count);
  void stack(uint32_t parent, uint64_t ip);
  void alloc(alloc::Space space, uint64_t address, uint64_t size, uint32_t stack);
  // The heap's compact records: the writer keeps each live block's allocation id and names a
  // freed block by its age (HEAP_ALLOC / HEAP_FREE / HEAP_REALLOC). A free of an address it
  // never saw allocated (made before tracking started) writes nothing. False (and failed())
  // when the id table cannot grow.
  bool heap_alloc(uint64_t address, uint64_t size, uint32_t stack);
  void heap_free(uint64_t address) { heap_free_id(heap_ids_.take(address)); }
  bool heap_realloc(uint64_t old_address, uint64_t new_address, uint64_t size, uint32_t stack) {
    return heap_realloc_id(old_address != 0 ? heap_ids_.take(old_address) : 0, new_address, size,
                           stack);
  }
  // realloc in steps, so the real call can run outside the writer lock: the old block's id is
  // taken first, then either the reallocation (or the free, realloc(p, 0)) is written with it,
  // or — the call failed, the block is still there — it is put back.
  uint64_t heap_take(uint64_t address) { return heap_ids_.take(address); }
  void heap_free_id(uint64_t id);
  bool heap_realloc_id(uint64_t old_id, uint64_t new_address, uint64_t size, uint32_t stack);
  void heap_restore(uint64_t address, uint64_t id) {
    if (id != 0) heap_ids_.put(address, id);
  }
  void free(alloc::Space space, uint64_t address);
  void realloc(uint64_t old_address, uint64_t new_address, uint64_t size, uint32_t stack);
  void unmap(alloc::Space space, uint64_t address, uint64_t length);
  void remap(uint64_t old_address, uint64_t old_size, uint64_t new_address, uint64_t new_size,
             uint32_t stack);
  void exec(const char* path, size_t path_len);
  void end(uint64_t reason);

  // `now_ns` since the trace started: a TIME record when it changed since the last one, and a
  // flush when a second passed since the last flush.
  void tick(uint64_t now_ns);
  // Whether tick() saw a second pass since the last call (under the writer lock; the tracker
  // does its once-a-second chores after releasing it).
  bool take_second_passed() {
    const bool passed = second_passed_;
    second_passed_ = false;
    return passed;
  }

  // Ends the pending records' chunk: compresses and writes it (or, async, hands it to the
  // compressor, waiting only when every buffer is queued). False once a write or the
  // compression failed: the writer then drops everything (failed() stays true).
  bool flush();
  // flush(), then (async) waits until the compressor has written every chunk handed over — at
  // most `timeout_ms`. Before exec and exit, where the compressor thread ends with the process.
  bool drain(int timeout_ms = 5000);
  // Forgets the pending records without writing them (a forked child).
  void drop_pending() { used_ = 0; }

  // How long flush() waits for the compressor to free a buffer before the writer fails with
  // ETIMEDOUT (default 10 s): a stalled compressor stops the tracking, never the program.
  void set_stall_seconds(long seconds) { stall_seconds_ = seconds; }
  // From now on flush() hands chunks over (under the writer lock, so no flush is half done).
  void set_async(bool async) { async_.store(async, std::memory_order_release); }
  bool async() const { return async_.load(std::memory_order_relaxed); }
  // Whether a chunk was ever ended because its buffer was full (not by time, exec or exit).
  bool filled() const { return filled_.load(std::memory_order_relaxed); }
  // The compressor's side, without the writer lock: compresses and writes every chunk handed
  // over so far, in order. Nothing before set_async(true): until then flush() writes chunks
  // itself, and the counters move in two steps the compressor must not see half-way.
  void compress_submitted();
  // How many chunks were handed over so far; the compressor sleeps until it changes
  // (wait_for_submission: at most timeout_ms, or a spurious wake-up).
  uint32_t submitted() const { return submitted_.load(std::memory_order_acquire); }
  // Chunks handed over and not yet written.
  uint32_t queued() const {
    return submitted_.load(std::memory_order_acquire) - completed_.load(std::memory_order_acquire);
  }
  void wait_for_submission(uint32_t seen, int timeout_ms);
  // When the last flush was (trace time): the compressor's periodic flush of a quiet program.
  uint64_t last_flush_ns() const { return last_flush_ns_; }
  uint64_t last_time_ns() const { return last_time_ns_; }

  bool failed() const { return failed_.load(std::memory_order_relaxed); }
  // The errno of the first failure (ETIMEDOUT: the compressor thread stalled).
  int error() const { return error_.load(std::memory_order_relaxed); }
  size_t pending_bytes() const { return used_; }
  int fd() const { return fd_; }

 private:
  uint8_t* reserve(size_t max_bytes) {
    if (used_ + max_bytes > kChunkRawBytes) {
      filled_.store(true, std::memory_order_relaxed);
      flush();
    }
    return raw_ + used_;
  }
  void commit(const uint8_t* end) { used_ = static_cast<size_t>(end - raw_); }

  // Compresses raw[0, length) into one chunk and writes it; false (and failed_) when it cannot.
  bool write_chunk(const uint8_t* raw, size_t length);

  int fd_ = -1;
  void fail(int error) {
    int none = 0;
    error_.compare_exchange_strong(none, error != 0 ? error : EIO, std::memory_order_relaxed);
    failed_.store(true, std::memory_order_relaxed);
  }

  std::atomic<bool> failed_{false};
  std::atomic<int> error_{0};
  long stall_seconds_ = 10;
  std::atomic<bool> async_{false};
  std::atomic<bool> filled_{false};  // read outside the writer lock
  uint8_t* buffers_[kBuffers] = {};
  size_t lengths_[kBuffers] = {};
  // Futex words: chunks handed over (by flush) and written (by whoever compresses); the buffer
  // being filled is buffers_[submitted_ % kBuffers].
  std::atomic<uint32_t> submitted_{0};
  std::atomic<uint32_t> completed_{0};
  uint8_t* raw_ = nullptr;  // the buffer being filled
  size_t used_ = 0;
  uint8_t* out_ = nullptr;
  size_t out_capacity_ = 0;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  ZSTD_CCtx_s* cctx_ = nullptr;
  uint64_t last_time_ns_ = 0;
  uint64_t last_flush_ns_ = 0;
  uint64_t last_second_ns_ = 0;
  bool second_passed_ = false;
  HeapIds heap_ids_;
  uint64_t device_ = 0;  // the trace file's identity, checked before each chunk is written
  uint64_t inode_ = 0;
  uint64_t heap_count_ = 0;  // heap allocations recorded so far (the last id)
};

// Creates "prefix.<pid>.mst" with O_CREAT|O_EXCL|O_CLOEXEC (mode 0644), or when it exists
// "prefix.<pid>.<n>.mst" for n = 1, 2, ...; the name goes to `path` (NUL-terminated, cut to
// `path_capacity`). Returns the descriptor, or -1 (errno set) when none can be created.
int create_trace_file(const char* prefix, uint64_t pid, char* path, size_t path_capacity);

// Decimal digits of `value` at `out`; returns the byte after the last.
char* put_decimal(char* out, uint64_t value);

}  // namespace memscope::track
