#include "preload/trace_writer.hpp"

#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ZSTD_STATIC_LINKING_ONLY
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include <cstring>

#include "preload/raw_memory.hpp"

namespace memscope::track {

namespace {

using alloc::Tag;

constexpr uint64_t kFlushIntervalNs = 1'000'000'000;
constexpr size_t kChunkHeaderBytes = 8;
// A varint's worst case, and the largest record (PROCESS: two strings of 4096 bytes).
constexpr size_t kVarint = 10;
// zstd level of the chunks: 3 (zstd's default) makes a malloc-heavy program's trace about 5 %
// smaller than level 1 for a few per cent more time.
constexpr int kCompressionLevel = 3;
constexpr size_t kMaxRecordBytes = 1 + 3 * kVarint + 2 * (kVarint + alloc::kMaxStringBytes);

uint8_t* put_tag(uint8_t* out, Tag tag) {
  *out++ = static_cast<uint8_t>(tag);
  return out;
}

uint8_t* put_string(uint8_t* out, const char* text, size_t length) {
  if (length > alloc::kMaxStringBytes) length = alloc::kMaxStringBytes;
  out = put_varint(out, length);
  if (length != 0) std::memcpy(out, text, length);
  return out + length;
}

void put_u32(uint8_t* out, uint32_t value) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<uint8_t>(value >> (8 * i));
}

// The raw system call: write(2) from libc is a cancellation point, and a thread cancelled there
// would die holding the writer lock.
bool write_all(int fd, const uint8_t* data, size_t length) {
  while (length > 0) {
    const ssize_t written = syscall(SYS_write, fd, data, length);
    if (written < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (written == 0) return false;
    data += written;
    length -= static_cast<size_t>(written);
  }
  return true;
}

// FUTEX_WAIT on `word` while it holds `expected`, at most timeout_ms (negative: no limit).
void futex_wait(std::atomic<uint32_t>& word, uint32_t expected, int timeout_ms) {
  timespec timeout{timeout_ms / 1000, static_cast<long>(timeout_ms % 1000) * 1'000'000L};
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected,
          timeout_ms >= 0 ? &timeout : nullptr, nullptr, 0);
}

void futex_wake(std::atomic<uint32_t>& word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE_PRIVATE, 1 << 30, nullptr,
          nullptr, 0);
}

// Milliseconds on the monotonic clock since `start`.
long elapsed_ms(const timespec& start) {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (now.tv_sec - start.tv_sec) * 1000L + (now.tv_nsec - start.tv_nsec) / 1'000'000L;
}

}  // namespace

bool TraceWriter::open(int fd) {
  release();
  fd_ = fd;
  struct stat identity {};
  if (fstat(fd, &identity) != 0) return false;
  device_ = identity.st_dev;
  inode_ = identity.st_ino;
  failed_ = false;
  error_ = 0;
  async_ = false;
  filled_ = false;
  submitted_.store(0, std::memory_order_relaxed);
  completed_.store(0, std::memory_order_relaxed);
  used_ = 0;
  last_time_ns_ = 0;
  last_flush_ns_ = 0;
  last_second_ns_ = 0;
  second_passed_ = false;
  heap_count_ = 0;
  if (!heap_ids_.init(12)) {
    release();
    return false;
  }
  bool mapped = true;
  for (uint8_t*& buffer : buffers_) {
    buffer = static_cast<uint8_t*>(map_pages(kChunkRawBytes));
    mapped = mapped && buffer != nullptr;
  }
  raw_ = buffers_[0];
  out_capacity_ = kChunkHeaderBytes + ZSTD_compressBound(kChunkRawBytes);
  out_ = static_cast<uint8_t*>(map_pages(out_capacity_));
  workspace_bytes_ = ZSTD_estimateCCtxSize(kCompressionLevel);
  workspace_ = map_pages(workspace_bytes_);
  if (!mapped || out_ == nullptr || workspace_ == nullptr) {
    release();
    return false;
  }
  cctx_ = ZSTD_initStaticCCtx(workspace_, workspace_bytes_);
  if (cctx_ == nullptr) {
    release();
    return false;
  }
  uint8_t header[16];
  std::memcpy(header, alloc::kTraceMagic, sizeof alloc::kTraceMagic);
  put_u32(header + 8, alloc::kTraceFormatVersion);
  put_u32(header + 12, 0);
  if (!write_all(fd_, header, sizeof header)) {
    release();
    return false;
  }
  return true;
}

void TraceWriter::release() {
  heap_ids_.release();
  for (uint8_t*& buffer : buffers_) {
    unmap_pages(buffer, kChunkRawBytes);
    buffer = nullptr;
  }
  unmap_pages(out_, out_capacity_);
  unmap_pages(workspace_, workspace_bytes_);
  raw_ = nullptr;
  out_ = nullptr;
  workspace_ = nullptr;
  cctx_ = nullptr;
  used_ = 0;
  failed_ = true;  // nothing can be written until open() again
}

bool TraceWriter::flush() {
  if (failed()) {
    used_ = 0;
    return false;
  }
  last_flush_ns_ = last_time_ns_;
  if (used_ == 0) return true;
  const uint32_t sequence = submitted_.load(std::memory_order_relaxed);
  const uint32_t index = sequence % kBuffers;
  lengths_[index] = used_;
  used_ = 0;
  const uint32_t next = sequence + 1;
  if (!async_.load(std::memory_order_relaxed)) {
    write_chunk(raw_, lengths_[index]);
    submitted_.store(next, std::memory_order_relaxed);
    completed_.store(next, std::memory_order_relaxed);
  } else {
    submitted_.store(next, std::memory_order_release);
    futex_wake(submitted_);
    // The next buffer to fill is free once the chunk that used it last is written. A compressor
    // that stalls that long (stopped, killed by a seccomp filter) stops the tracking rather
    // than the program, which holds the writer lock here.
    timespec start{};
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (uint32_t done = completed_.load(std::memory_order_acquire); next - done >= kBuffers;
         done = completed_.load(std::memory_order_acquire)) {
      if (elapsed_ms(start) >= stall_seconds_ * 1000L) {
        fail(ETIMEDOUT);
        used_ = 0;
        return false;
      }
      futex_wait(completed_, done, 1000);
    }
  }
  raw_ = buffers_[next % kBuffers];
  return !failed();
}

bool TraceWriter::drain(int timeout_ms) {
  flush();
  if (async_.load(std::memory_order_relaxed)) {
    timespec start{};
    clock_gettime(CLOCK_MONOTONIC, &start);
    const uint32_t target = submitted_.load(std::memory_order_relaxed);
    for (uint32_t done = completed_.load(std::memory_order_acquire); done != target;
         done = completed_.load(std::memory_order_acquire)) {
      const long waited_ms = elapsed_ms(start);
      if (waited_ms >= timeout_ms) return false;
      futex_wait(completed_, done, static_cast<int>(timeout_ms - waited_ms));
    }
  }
  return !failed();
}

void TraceWriter::compress_submitted() {
  if (!async_.load(std::memory_order_acquire)) return;
  for (;;) {
    const uint32_t done = completed_.load(std::memory_order_relaxed);
    if (done == submitted_.load(std::memory_order_acquire)) return;
    const uint32_t index = done % kBuffers;
    if (!failed()) write_chunk(buffers_[index], lengths_[index]);
    completed_.store(done + 1, std::memory_order_release);
    futex_wake(completed_);
  }
}

void TraceWriter::wait_for_submission(uint32_t seen, int timeout_ms) {
  futex_wait(submitted_, seen, timeout_ms);
}

bool TraceWriter::write_chunk(const uint8_t* raw, size_t length) {
  const size_t compressed = ZSTD_compressCCtx(cctx_, out_ + kChunkHeaderBytes,
                                              out_capacity_ - kChunkHeaderBytes, raw, length,
                                              kCompressionLevel);
  if (ZSTD_isError(compressed) != 0u) {
    fail(EIO);
    return false;
  }
  put_u32(out_, static_cast<uint32_t>(compressed));
  put_u32(out_ + 4, static_cast<uint32_t>(length));
  // The program may have closed the descriptor (a daemon closing every fd) or dup2'd something
  // else over it: never write a chunk into a file that is not the trace.
  struct stat identity {};
  if (fstat(fd_, &identity) != 0 || identity.st_dev != device_ || identity.st_ino != inode_) {
    fail(EBADF);  // closed, or another file now: not ours any more
    return false;
  }
  if (!write_all(fd_, out_, kChunkHeaderBytes + compressed)) {
    fail(errno);
    return false;
  }
  return true;
}

void TraceWriter::tick(uint64_t now_ns) {
  if (now_ns == last_time_ns_) return;
  if (now_ns < last_time_ns_) return;  // never decreases
  last_time_ns_ = now_ns;
  if (now_ns - last_flush_ns_ >= kFlushIntervalNs) flush();
  if (now_ns - last_second_ns_ >= kFlushIntervalNs) {  // apart from flushes: full chunks flush too
    last_second_ns_ = now_ns;
    second_passed_ = true;
  }
  uint8_t* out = reserve(1 + kVarint);
  out = put_tag(out, Tag::time);
  commit(put_varint(out, now_ns));
}

void TraceWriter::process(uint64_t pid, uint64_t ppid, uint64_t start_unix_ns, const char* exe,
                          size_t exe_len, const char* cmdline, size_t cmdline_len) {
  uint8_t* out = reserve(kMaxRecordBytes);
  out = put_tag(out, Tag::process);
  out = put_varint(out, pid);
  out = put_varint(out, ppid);
  out = put_varint(out, start_unix_ns);
  out = put_string(out, exe, exe_len);
  commit(put_string(out, cmdline, cmdline_len));
}

void TraceWriter::module(const char* path, size_t path_len, uint64_t base,
                         const Segment* segments, size_t count) {
  if (count > kMaxModuleSegments) count = kMaxModuleSegments;
  uint8_t* out = reserve(1 + kVarint + alloc::kMaxStringBytes + 2 * kVarint +
                         2 * kVarint * kMaxModuleSegments);
  out = put_tag(out, Tag::module);
  out = put_string(out, path, path_len);
  out = put_varint(out, base);
  out = put_varint(out, count);
  for (size_t i = 0; i < count; ++i) {
    out = put_varint(out, segments[i].start);
    out = put_varint(out, segments[i].size);
  }
  commit(out);
}

void TraceWriter::stack(uint32_t parent, uint64_t ip) {
  uint8_t* out = reserve(1 + 2 * kVarint);
  out = put_tag(out, Tag::stack);
  out = put_varint(out, parent);
  commit(put_varint(out, ip));
}

void TraceWriter::alloc(alloc::Space space, uint64_t address, uint64_t size, uint32_t stack) {
  uint8_t* out = reserve(1 + 4 * kVarint);
  out = put_tag(out, Tag::alloc);
  *out++ = static_cast<uint8_t>(space);
  out = put_varint(out, address);
  out = put_varint(out, size);
  commit(put_varint(out, stack));
}

bool TraceWriter::heap_alloc(uint64_t address, uint64_t size, uint32_t stack) {
  if (failed()) return false;
  uint64_t replaced = 0;
  if (!heap_ids_.put(address, heap_count_ + 1, &replaced)) {
    fail(ENOMEM);
    return false;
  }
  heap_free_id(replaced);  // its free was missed; the block is certainly gone now
  ++heap_count_;
  uint8_t* out = reserve(1 + 2 * kVarint);
  out = put_tag(out, Tag::heap_alloc);
  out = put_varint(out, size);
  commit(put_varint(out, stack));
  return true;
}

void TraceWriter::heap_free_id(uint64_t id) {
  if (failed() || id == 0) return;
  uint8_t* out = reserve(1 + kVarint);
  out = put_tag(out, Tag::heap_free);
  commit(put_varint(out, heap_count_ - id));
}

bool TraceWriter::heap_realloc_id(uint64_t old_id, uint64_t new_address, uint64_t size,
                                  uint32_t stack) {
  if (failed()) return false;
  uint64_t replaced = 0;
  if (!heap_ids_.put(new_address, heap_count_ + 1, &replaced)) {
    fail(ENOMEM);
    return false;
  }
  heap_free_id(replaced);
  const uint64_t old_field = old_id != 0 ? heap_count_ - old_id + 1 : 0;
  ++heap_count_;
  uint8_t* out = reserve(1 + 3 * kVarint);
  out = put_tag(out, Tag::heap_realloc);
  out = put_varint(out, old_field);
  out = put_varint(out, size);
  commit(put_varint(out, stack));
  return true;
}

void TraceWriter::free(alloc::Space space, uint64_t address) {
  uint8_t* out = reserve(1 + 2 * kVarint);
  out = put_tag(out, Tag::free);
  *out++ = static_cast<uint8_t>(space);
  commit(put_varint(out, address));
}

void TraceWriter::realloc(uint64_t old_address, uint64_t new_address, uint64_t size,
                          uint32_t stack) {
  uint8_t* out = reserve(1 + 4 * kVarint);
  out = put_tag(out, Tag::realloc);
  out = put_varint(out, old_address);
  out = put_varint(out, new_address);
  out = put_varint(out, size);
  commit(put_varint(out, stack));
}

void TraceWriter::unmap(alloc::Space space, uint64_t address, uint64_t length) {
  uint8_t* out = reserve(1 + 3 * kVarint);
  out = put_tag(out, Tag::unmap);
  *out++ = static_cast<uint8_t>(space);
  out = put_varint(out, address);
  commit(put_varint(out, length));
}

void TraceWriter::remap(uint64_t old_address, uint64_t old_size, uint64_t new_address,
                        uint64_t new_size, uint32_t stack) {
  uint8_t* out = reserve(1 + 5 * kVarint);
  out = put_tag(out, Tag::remap);
  out = put_varint(out, old_address);
  out = put_varint(out, old_size);
  out = put_varint(out, new_address);
  out = put_varint(out, new_size);
  commit(put_varint(out, stack));
}

void TraceWriter::exec(const char* path, size_t path_len) {
  uint8_t* out = reserve(1 + kVarint + alloc::kMaxStringBytes);
  out = put_tag(out, Tag::exec);
  commit(put_string(out, path, path_len));
}

void TraceWriter::end(uint64_t reason) {
  uint8_t* out = reserve(1 + kVarint);
  out = put_tag(out, Tag::end);
  commit(put_varint(out, reason));
}

char* put_decimal(char* out, uint64_t value) {
  char digits[20];
  size_t count = 0;
  do {
    digits[count++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  while (count > 0) *out++ = digits[--count];
  return out;
}

int create_trace_file(const char* prefix, uint64_t pid, char* path, size_t path_capacity) {
  const size_t prefix_len = std::strlen(prefix);
  // prefix + "." + pid (20) + "." + n (20) + ".mst" + NUL
  if (path_capacity < prefix_len + 48) {
    errno = ENAMETOOLONG;
    return -1;
  }
  for (uint64_t n = 0; n < 100000; ++n) {
    char* out = path;
    std::memcpy(out, prefix, prefix_len);
    out += prefix_len;
    *out++ = '.';
    out = put_decimal(out, pid);
    if (n != 0) {
      *out++ = '.';
      out = put_decimal(out, n);
    }
    std::memcpy(out, ".mst", 5);
    const int fd = ::open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) return fd;
    if (errno != EEXIST) return -1;
  }
  errno = EEXIST;
  return -1;
}

}  // namespace memscope::track
