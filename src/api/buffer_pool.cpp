#include "memscope/buffer_pool.hpp"

#include <errno.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <lz4.h>
#include <lz4hc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <mutex>
#include <set>
#include <unordered_map>

#include "core/log.hpp"

namespace memscope {

namespace {

constexpr std::array<const char*, 3> kCompressionNames = {"none", "lz4", "zstd"};
constexpr int kZstdDefaultLevel = 3;

// Stored bytes and how to get the raw ones back.
struct Packed {
  std::vector<uint8_t> bytes;
  Compression codec = Compression::kNone;
};

struct ZstdContexts {
  ZSTD_CCtx* compress = ZSTD_createCCtx();
  ZSTD_DCtx* decompress = ZSTD_createDCtx();
  ZstdContexts() = default;
  ZstdContexts(const ZstdContexts&) = delete;
  ZstdContexts& operator=(const ZstdContexts&) = delete;
  ~ZstdContexts() {
    ZSTD_freeCCtx(compress);
    ZSTD_freeDCtx(decompress);
  }
};
// One pair per thread: creating a context per call costs more than compressing a small buffer.
ZstdContexts& zstd_contexts() {
  thread_local ZstdContexts contexts;
  return contexts;
}

// Compressed with the codec, or kept raw when that is not smaller.
Result<Packed> pack(std::span<const uint8_t> raw, Compression codec, int level) {
  Packed packed;
  if (codec == Compression::kLz4 && !raw.empty()) {
    if (raw.size() > static_cast<size_t>(LZ4_MAX_INPUT_SIZE)) {
      return make_error(fmt::format("buffer of {} bytes is too large for lz4 (at most {})", raw.size(),
                                    LZ4_MAX_INPUT_SIZE));
    }
    const int raw_size = static_cast<int>(raw.size());
    packed.bytes.resize(static_cast<size_t>(LZ4_compressBound(raw_size)));
    const auto* src = reinterpret_cast<const char*>(raw.data());
    auto* dst = reinterpret_cast<char*>(packed.bytes.data());
    const int capacity = static_cast<int>(packed.bytes.size());
    const int written = level == 0 ? LZ4_compress_default(src, dst, raw_size, capacity)
                                   : LZ4_compress_HC(src, dst, raw_size, capacity, level);
    if (written <= 0) return make_error(fmt::format("lz4 could not compress a buffer of {} bytes", raw.size()));
    packed.bytes.resize(static_cast<size_t>(written));
    packed.codec = Compression::kLz4;
  } else if (codec == Compression::kZstd && !raw.empty()) {
    packed.bytes.resize(ZSTD_compressBound(raw.size()));
    const size_t written = ZSTD_compressCCtx(zstd_contexts().compress, packed.bytes.data(),
                                             packed.bytes.size(), raw.data(), raw.size(),
                                             level == 0 ? kZstdDefaultLevel : level);
    if (ZSTD_isError(written) != 0) {
      return make_error(fmt::format("zstd could not compress a buffer of {} bytes: {}", raw.size(),
                                    ZSTD_getErrorName(written)));
    }
    packed.bytes.resize(written);
    packed.codec = Compression::kZstd;
  }
  if (packed.codec == Compression::kNone || packed.bytes.size() >= raw.size()) {
    packed.bytes.assign(raw.begin(), raw.end());
    packed.codec = Compression::kNone;
  }
  packed.bytes.shrink_to_fit();
  return packed;
}

std::optional<std::vector<uint8_t>> unpack(std::span<const uint8_t> stored, Compression codec,
                                           uint64_t raw_size) {
  std::vector<uint8_t> raw(raw_size);
  switch (codec) {
    case Compression::kNone:
      if (stored.size() != raw_size) return std::nullopt;
      std::copy(stored.begin(), stored.end(), raw.begin());
      return raw;
    case Compression::kLz4: {
      const int n = LZ4_decompress_safe(reinterpret_cast<const char*>(stored.data()),
                                        reinterpret_cast<char*>(raw.data()),
                                        static_cast<int>(stored.size()), static_cast<int>(raw_size));
      if (n < 0 || static_cast<uint64_t>(n) != raw_size) return std::nullopt;
      return raw;
    }
    case Compression::kZstd: {
      const size_t n = ZSTD_decompressDCtx(zstd_contexts().decompress, raw.data(), raw.size(),
                                           stored.data(), stored.size());
      if (ZSTD_isError(n) != 0 || n != raw_size) return std::nullopt;
      return raw;
    }
  }
  return std::nullopt;
}

// Writes all of bytes to a new file at path: 0, or the errno of the failure (what was written
// is removed then).
int write_file(const std::string& path, std::span<const uint8_t> bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return errno;
  size_t done = 0;
  int error = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error = n < 0 ? errno : ENOSPC;
      break;
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0 && error == 0) error = errno;
  if (error != 0) ::unlink(path.c_str());
  return error;
}

// The whole file, which must be `size` bytes, read through a private read-only mapping.
Result<std::vector<uint8_t>> read_file(const std::string& path, uint64_t size) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
  struct stat info {};
  if (::fstat(fd, &info) != 0 || static_cast<uint64_t>(info.st_size) != size) {
    ::close(fd);
    return make_error(fmt::format("{} is {} bytes, expected {}", path, info.st_size, size));
  }
  std::vector<uint8_t> bytes(size);
  if (size > 0) {
    void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
      const int error = errno;
      ::close(fd);
      return make_error(fmt::format("cannot map {}: {}", path, std::strerror(error)));
    }
    std::memcpy(bytes.data(), map, size);
    ::munmap(map, size);
  }
  ::close(fd);
  return bytes;
}

}  // namespace

const char* to_string(Compression compression) {
  return kCompressionNames.at(static_cast<size_t>(compression));
}

std::optional<Compression> parse_compression(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (size_t i = 0; i < kCompressionNames.size(); ++i) {
    if (lower == kCompressionNames[i]) return static_cast<Compression>(i);
  }
  return std::nullopt;
}

struct BufferPool::Impl {
  struct Entry;
  // Coldest first: the LRFU score's log, then the older access.
  struct Order {
    double score = 0;
    uint64_t last_access = 0;
    Entry* entry = nullptr;
    bool operator<(const Order& other) const {
      if (score != other.score) return score < other.score;
      if (last_access != other.last_access) return last_access < other.last_access;
      return entry < other.entry;
    }
  };
  struct Entry {
    std::string_view key;  // the map's own key (node-based map: stable)
    std::vector<uint8_t> stored;  // when in memory
    uint64_t stored_size = 0;
    uint64_t raw_size = 0;
    Compression codec = Compression::kNone;
    bool on_disk = false;
    std::string path;  // when on disk
    double frequency = 0;
    uint64_t last_access = 0;
    double score = 0;
    Order order() { return {score, last_access, this}; }
  };

  BufferPoolOptions options;
  mutable std::mutex mutex;
  std::unordered_map<std::string, Entry> entries;
  std::set<Order> in_memory;
  std::set<Order> on_disk;
  uint64_t clock = 0;  // accesses so far
  uint64_t bytes_in_memory = 0;
  uint64_t bytes_on_disk = 0;
  uint64_t raw_bytes = 0;
  BufferPoolStats counters;  // hits, misses, evictions, spills, spill_errors, promotions, read_errors
  std::string spill_path;    // spill_dir/memscope-pool-XXXXXX once created
  uint64_t file_sequence = 0;
  std::string last_spill_error;

  ~Impl() { drop_all(); }

  void touch(Entry& entry) {
    const double age = static_cast<double>(clock - entry.last_access);
    entry.frequency = entry.frequency * std::exp2(-age / options.frequency_half_life) + 1.0;
    entry.last_access = clock;
    entry.score = std::log2(entry.frequency) + static_cast<double>(clock) / options.frequency_half_life;
  }

  // Re-scores an entry, keeping its tier's order right.
  void access(Entry& entry) {
    std::set<Order>& tier = entry.on_disk ? on_disk : in_memory;
    tier.erase(entry.order());
    touch(entry);
    tier.insert(entry.order());
  }

  // Forgets an entry: its bytes, its file, its place in the order, then the entry itself.
  void remove(Entry& entry) {
    if (entry.on_disk) {
      on_disk.erase(entry.order());
      bytes_on_disk -= entry.stored_size;
      ::unlink(entry.path.c_str());
    } else {
      in_memory.erase(entry.order());
      bytes_in_memory -= entry.stored_size;
    }
    raw_bytes -= entry.raw_size;
    entries.erase(std::string(entry.key));
  }

  void evict(Entry& entry) {
    ++counters.evictions;
    remove(entry);
  }

  void drop_all() {
    for (auto& [key, entry] : entries) {
      if (entry.on_disk) ::unlink(entry.path.c_str());
    }
    entries.clear();
    in_memory.clear();
    on_disk.clear();
    bytes_in_memory = bytes_on_disk = raw_bytes = 0;
    if (!spill_path.empty()) {
      ::rmdir(spill_path.c_str());
      spill_path.clear();
    }
  }

  // Warns at the first failure, when the reason changes, and at every power of ten failures.
  void spill_failed(const std::string& reason, const std::string& detail) {
    const uint64_t failures = ++counters.spill_errors;
    const bool power_of_ten = failures >= 10 && [&] {
      uint64_t n = failures;
      while (n % 10 == 0) n /= 10;
      return n == 1;
    }();
    if (reason != last_spill_error || power_of_ten) {
      log::warn("buffer pool: cannot spill to {} ({}); evicting instead ({} failed spill{} so far)",
                options.spill_dir, detail, failures, failures == 1 ? "" : "s");
      last_spill_error = reason;
    }
  }

  Status ensure_spill_path() {
    if (!spill_path.empty()) return {};
    std::error_code ec;
    std::filesystem::create_directories(options.spill_dir, ec);
    if (ec) return make_error(fmt::format("cannot create {}: {}", options.spill_dir, ec.message()));
    std::string pattern = options.spill_dir + "/memscope-pool-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      return make_error(fmt::format("cannot create a directory in {}: {}", options.spill_dir,
                                    std::strerror(errno)));
    }
    spill_path = pattern;
    return {};
  }

  // Moves an in-memory entry to disk, or drops it (see the header's rules).
  void spill_or_evict(Entry& entry) {
    if (options.spill_dir.empty()) return evict(entry);
    const uint64_t budget = options.disk_budget_bytes;
    if (budget > 0) {
      if (entry.stored_size > budget) return evict(entry);
      // Room on disk: drop the coldest spilled buffers, unless this one is colder than them.
      while (bytes_on_disk + entry.stored_size > budget) {
        Entry& coldest = *on_disk.begin()->entry;
        if (entry.order() < coldest.order()) return evict(entry);
        evict(coldest);
      }
    }
    if (Status made = ensure_spill_path(); !made) {
      spill_failed(made.message(), made.message());
      return evict(entry);
    }
    std::string path = fmt::format("{}/{}.buf", spill_path, ++file_sequence);
    if (const int error = write_file(path, entry.stored); error != 0) {
      spill_failed(std::strerror(error), fmt::format("cannot write {} bytes to {}: {}", entry.stored.size(),
                                                     path, std::strerror(error)));
      return evict(entry);
    }
    in_memory.erase(entry.order());
    bytes_in_memory -= entry.stored_size;
    std::vector<uint8_t>().swap(entry.stored);
    entry.on_disk = true;
    entry.path = std::move(path);
    on_disk.insert(entry.order());
    bytes_on_disk += entry.stored_size;
    ++counters.spills;
  }

  // Spills or evicts the coldest in-memory buffers, never `keep`, until within the budget.
  void make_room(const Entry* keep) {
    while (bytes_in_memory > options.memory_budget_bytes) {
      auto coldest = in_memory.begin();
      if (coldest->entry == keep) ++coldest;
      if (coldest == in_memory.end()) return;  // keep alone fits: put() checked its size
      spill_or_evict(*coldest->entry);
    }
  }

  // Reads a spilled entry back into memory; false (entry dropped, counted) when it cannot.
  bool promote(Entry& entry) {
    Result<std::vector<uint8_t>> bytes = read_file(entry.path, entry.stored_size);
    if (!bytes) {
      ++counters.read_errors;
      log::warn("buffer pool: lost a spilled buffer: {}", bytes.message());
      remove(entry);
      return false;
    }
    on_disk.erase(entry.order());
    bytes_on_disk -= entry.stored_size;
    ::unlink(entry.path.c_str());
    entry.path.clear();
    entry.on_disk = false;
    entry.stored = std::move(bytes).value();
    in_memory.insert(entry.order());
    bytes_in_memory += entry.stored_size;
    ++counters.promotions;
    make_room(&entry);
    return true;
  }
};

BufferPool::BufferPool() : impl_(std::make_unique<Impl>()) {}
BufferPool::~BufferPool() = default;

Result<std::unique_ptr<BufferPool>> BufferPool::create(const BufferPoolOptions& options) {
  if (options.memory_budget_bytes == 0) {
    return make_error("BufferPool: memory_budget_bytes must be > 0, got 0");
  }
  const int level = options.compression_level;
  switch (options.compression) {
    case Compression::kNone:
      if (level != 0) return make_error(fmt::format("BufferPool: compression_level must be 0 without compression, got {}", level));
      break;
    case Compression::kLz4:
      if (level < 0 || level > LZ4HC_CLEVEL_MAX) {
        return make_error(fmt::format("BufferPool: lz4 compression_level must be in [0, {}], got {}",
                                      LZ4HC_CLEVEL_MAX, level));
      }
      break;
    case Compression::kZstd:
      if (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel()) {
        return make_error(fmt::format("BufferPool: zstd compression_level must be in [{}, {}], got {}",
                                      ZSTD_minCLevel(), ZSTD_maxCLevel(), level));
      }
      break;
    default:
      return make_error("BufferPool: unknown compression");
  }
  if (!(options.frequency_half_life > 0) || !std::isfinite(options.frequency_half_life)) {
    return make_error(fmt::format("BufferPool: frequency_half_life must be > 0, got {}",
                                  options.frequency_half_life));
  }
  if (options.disk_budget_bytes > 0 && options.spill_dir.empty()) {
    return make_error(fmt::format("BufferPool: disk_budget_bytes is {} but there is no spill_dir",
                                  options.disk_budget_bytes));
  }
  std::unique_ptr<BufferPool> pool(new BufferPool());
  pool->impl_->options = options;
  return pool;
}

Status BufferPool::put(const std::string& key, std::string_view bytes) {
  return put(key, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

Status BufferPool::put(const std::string& key, std::span<const uint8_t> bytes) {
  Impl& pool = *impl_;
  Result<Packed> packed = pack(bytes, pool.options.compression, pool.options.compression_level);
  if (!packed) return make_error(fmt::format("BufferPool: cannot store '{}': {}", key, packed.message()));
  const uint64_t stored_size = packed->bytes.size();
  if (stored_size > pool.options.memory_budget_bytes) {
    return make_error(fmt::format(
        "BufferPool: buffer '{}' of {} bytes ({} stored) is larger than the memory budget of {} bytes",
        key, bytes.size(), stored_size, pool.options.memory_budget_bytes));
  }
  std::lock_guard lock(pool.mutex);
  ++pool.clock;
  double frequency = 0;
  uint64_t last_access = pool.clock;
  if (auto old = pool.entries.find(key); old != pool.entries.end()) {
    frequency = old->second.frequency;  // a new version of a buffer keeps its history
    last_access = old->second.last_access;
    pool.remove(old->second);
  }
  auto [it, inserted] = pool.entries.try_emplace(key);
  Impl::Entry& entry = it->second;
  entry.key = it->first;
  entry.stored = std::move(packed->bytes);
  entry.stored_size = stored_size;
  entry.raw_size = bytes.size();
  entry.codec = packed->codec;
  entry.frequency = frequency;
  entry.last_access = last_access;
  pool.touch(entry);
  pool.in_memory.insert(entry.order());
  pool.bytes_in_memory += stored_size;
  pool.raw_bytes += entry.raw_size;
  pool.make_room(&entry);
  return {};
}

std::optional<BufferPool::Bytes> BufferPool::get(const std::string& key) {
  Impl& pool = *impl_;
  std::vector<uint8_t> stored;
  Compression codec = Compression::kNone;
  uint64_t raw_size = 0;
  {
    std::lock_guard lock(pool.mutex);
    ++pool.clock;
    auto it = pool.entries.find(key);
    if (it == pool.entries.end()) {
      ++pool.counters.misses;
      return std::nullopt;
    }
    Impl::Entry& entry = it->second;
    if (entry.on_disk && !pool.promote(entry)) {
      ++pool.counters.misses;
      return std::nullopt;
    }
    pool.access(entry);
    ++pool.counters.hits;
    stored = entry.stored;
    codec = entry.codec;
    raw_size = entry.raw_size;
  }
  if (codec == Compression::kNone) return stored;  // already the caller's copy
  std::optional<Bytes> raw = unpack(stored, codec, raw_size);
  if (!raw) {
    std::lock_guard lock(pool.mutex);
    ++pool.counters.read_errors;
    log::warn("buffer pool: buffer '{}' does not decompress ({}, {} bytes)", key, to_string(codec),
              stored.size());
  }
  return raw;
}

bool BufferPool::contains(const std::string& key) const {
  std::lock_guard lock(impl_->mutex);
  return impl_->entries.contains(key);
}

bool BufferPool::erase(const std::string& key) {
  std::lock_guard lock(impl_->mutex);
  auto it = impl_->entries.find(key);
  if (it == impl_->entries.end()) return false;
  impl_->remove(it->second);
  return true;
}

void BufferPool::clear() {
  std::lock_guard lock(impl_->mutex);
  impl_->drop_all();
}

size_t BufferPool::size() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->entries.size();
}

BufferPoolStats BufferPool::stats() const {
  const Impl& pool = *impl_;
  std::lock_guard lock(pool.mutex);
  BufferPoolStats out = pool.counters;
  const uint64_t lookups = out.hits + out.misses;
  out.hit_rate = lookups == 0 ? 0.0 : static_cast<double>(out.hits) / static_cast<double>(lookups);
  const uint64_t stored = pool.bytes_in_memory + pool.bytes_on_disk;
  out.compression_ratio = stored == 0 ? 1.0 : static_cast<double>(pool.raw_bytes) / static_cast<double>(stored);
  out.buffers = pool.entries.size();
  out.buffers_on_disk = pool.on_disk.size();
  out.buffers_in_memory = pool.in_memory.size();
  out.raw_bytes = pool.raw_bytes;
  out.bytes_in_memory = pool.bytes_in_memory;
  out.bytes_on_disk = pool.bytes_on_disk;
  return out;
}

const BufferPoolOptions& BufferPool::options() const { return impl_->options; }

}  // namespace memscope
