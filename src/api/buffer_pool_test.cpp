#include "memscope/buffer_pool.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

namespace memscope {
namespace {

namespace fs = std::filesystem;
using Bytes = BufferPool::Bytes;

Bytes random_bytes(size_t size, uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes out(size);
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

// float32 readings of a slowly drifting sensor: compressible, but not trivially.
Bytes sensor_floats(size_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> step(0.0F, 0.01F);
  std::vector<float> values(count);
  float value = 1.0F;
  for (auto& v : values) {
    value += step(rng);
    v = std::round(value * 256.0F) / 256.0F;
  }
  Bytes out(count * sizeof(float));
  std::memcpy(out.data(), values.data(), out.size());
  return out;
}

std::unique_ptr<BufferPool> make_pool(const BufferPoolOptions& options) {
  auto pool = BufferPool::create(options);
  EXPECT_TRUE(pool.ok()) << pool.message();
  return pool.ok() ? std::move(pool).value() : nullptr;
}

BufferPoolOptions raw_options(uint64_t budget) {
  BufferPoolOptions options;
  options.memory_budget_bytes = budget;
  options.compression = Compression::kNone;
  return options;
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "memscope-pool-test-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data()) != nullptr ? pattern : std::string();
    EXPECT_FALSE(path_.empty());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // Files the pools left under it (their memscope-pool-* directories and what is inside).
  size_t files() const {
    size_t count = 0;
    for (const auto& item : fs::recursive_directory_iterator(path_)) {
      if (item.is_regular_file()) ++count;
    }
    return count;
  }
  size_t entries() const {
    return static_cast<size_t>(std::distance(fs::directory_iterator(path_), fs::directory_iterator()));
  }

 private:
  std::string path_;
};

TEST(BufferPool, CompressionNamesRoundTrip) {
  for (Compression c : {Compression::kNone, Compression::kLz4, Compression::kZstd}) {
    EXPECT_EQ(parse_compression(to_string(c)), c);
  }
  EXPECT_EQ(parse_compression("ZSTD"), Compression::kZstd);
  EXPECT_FALSE(parse_compression("gzip").has_value());
}

TEST(BufferPool, RoundTripsWithEveryCompression) {
  struct Case {
    Compression compression;
    int level;
  };
  for (Case c : {Case{Compression::kNone, 0}, Case{Compression::kLz4, 0}, Case{Compression::kLz4, 9},
                 Case{Compression::kZstd, 0}, Case{Compression::kZstd, 19}, Case{Compression::kZstd, -5}}) {
    SCOPED_TRACE(fmt::format("{} level {}", to_string(c.compression), c.level));
    BufferPoolOptions options;
    options.memory_budget_bytes = 1 << 24;
    options.compression = c.compression;
    options.compression_level = c.level;
    auto pool = make_pool(options);
    ASSERT_TRUE(pool);
    const Bytes floats = sensor_floats(20000, 1);
    const Bytes noise = random_bytes(5000, 2);
    ASSERT_TRUE(pool->put("floats", floats).ok());
    ASSERT_TRUE(pool->put("noise", noise).ok());
    ASSERT_TRUE(pool->put("empty", Bytes{}).ok());
    ASSERT_TRUE(pool->put("text", std::string_view("hello hello hello hello hello")).ok());
    EXPECT_EQ(pool->get("floats"), floats);
    EXPECT_EQ(pool->get("noise"), noise);
    EXPECT_EQ(pool->get("empty"), Bytes{});
    const auto text = pool->get("text");
    ASSERT_TRUE(text);
    EXPECT_EQ(std::string(text->begin(), text->end()), "hello hello hello hello hello");
    const BufferPoolStats stats = pool->stats();
    EXPECT_EQ(stats.raw_bytes, floats.size() + noise.size() + 29);
    if (c.compression == Compression::kNone) {
      EXPECT_EQ(stats.bytes_in_memory, stats.raw_bytes);
      EXPECT_DOUBLE_EQ(stats.compression_ratio, 1.0);
    } else {
      EXPECT_LT(stats.bytes_in_memory, stats.raw_bytes);
      EXPECT_GT(stats.compression_ratio, 1.2);
    }
  }
}

TEST(BufferPool, IncompressibleBuffersAreStoredRaw) {
  BufferPoolOptions options;
  options.memory_budget_bytes = 1 << 20;
  options.compression = Compression::kZstd;
  auto pool = make_pool(options);
  ASSERT_TRUE(pool->put("noise", random_bytes(10000, 3)).ok());
  EXPECT_EQ(pool->stats().bytes_in_memory, 10000U);
}

TEST(BufferPool, RejectsBadOptions) {
  const auto message = [](BufferPoolOptions options) {
    auto pool = BufferPool::create(options);
    return pool.ok() ? std::string("ok") : pool.message();
  };
  BufferPoolOptions options;
  EXPECT_EQ(message(options), "BufferPool: memory_budget_bytes must be > 0, got 0");
  options.memory_budget_bytes = 100;
  EXPECT_EQ(message(options), "ok");
  options.compression_level = 13;
  EXPECT_NE(message(options).find("lz4 compression_level must be in [0, 12], got 13"), std::string::npos);
  options.compression = Compression::kZstd;
  options.compression_level = 23;
  EXPECT_NE(message(options).find("zstd compression_level"), std::string::npos);
  options.compression_level = 0;
  options.frequency_half_life = 0;
  EXPECT_NE(message(options).find("frequency_half_life must be > 0"), std::string::npos);
  options.frequency_half_life = 10;
  options.disk_budget_bytes = 1000;
  EXPECT_NE(message(options).find("no spill_dir"), std::string::npos);
}

TEST(BufferPool, RefusesABufferLargerThanTheBudget) {
  auto pool = make_pool(raw_options(1000));
  ASSERT_TRUE(pool->put("small", random_bytes(600, 1)).ok());
  const Status refused = pool->put("big", random_bytes(1001, 2));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.message(),
            "BufferPool: buffer 'big' of 1001 bytes (1001 stored) is larger than the memory budget of 1000 bytes");
  EXPECT_FALSE(pool->contains("big"));
  EXPECT_TRUE(pool->contains("small"));  // unchanged
  EXPECT_TRUE(pool->put("exact", random_bytes(1000, 3)).ok());
  // A compressible buffer counts by its compressed size.
  BufferPoolOptions options;
  options.memory_budget_bytes = 1000;
  options.compression = Compression::kZstd;
  auto zstd_pool = make_pool(options);
  EXPECT_TRUE(zstd_pool->put("zeros", Bytes(100000, 0)).ok());
}

TEST(BufferPool, ReplacingAKeyKeepsOneBuffer) {
  auto pool = make_pool(raw_options(1000));
  ASSERT_TRUE(pool->put("k", random_bytes(300, 1)).ok());
  ASSERT_TRUE(pool->put("k", random_bytes(200, 2)).ok());
  EXPECT_EQ(pool->size(), 1U);
  EXPECT_EQ(pool->get("k"), random_bytes(200, 2));
  EXPECT_EQ(pool->stats().bytes_in_memory, 200U);
  EXPECT_TRUE(pool->erase("k"));
  EXPECT_FALSE(pool->erase("k"));
  EXPECT_EQ(pool->stats().bytes_in_memory, 0U);
}

TEST(BufferPool, StatsCountHitsAndMisses) {
  auto pool = make_pool(raw_options(1000));
  ASSERT_TRUE(pool->put("a", random_bytes(10, 1)).ok());
  EXPECT_TRUE(pool->get("a"));
  EXPECT_TRUE(pool->get("a"));
  EXPECT_TRUE(pool->get("a"));
  EXPECT_FALSE(pool->get("b"));
  EXPECT_TRUE(pool->contains("a"));  // not a lookup
  const BufferPoolStats stats = pool->stats();
  EXPECT_EQ(stats.hits, 3U);
  EXPECT_EQ(stats.misses, 1U);
  EXPECT_DOUBLE_EQ(stats.hit_rate, 0.75);
  EXPECT_EQ(stats.buffers, 1U);
  EXPECT_EQ(stats.evictions, 0U);
  pool->clear();
  EXPECT_EQ(pool->size(), 0U);
  EXPECT_EQ(pool->stats().evictions, 0U);
}

// Budget for three 100-byte buffers; "a" is used ten times, then b, c and d are put once each.
// Returns which of a and b survive.
std::pair<bool, bool> frequent_old_against_new(double half_life) {
  BufferPoolOptions options = raw_options(300);
  options.frequency_half_life = half_life;
  auto pool = make_pool(options);
  EXPECT_TRUE(pool->put("a", random_bytes(100, 1)).ok());
  for (int i = 0; i < 9; ++i) EXPECT_TRUE(pool->get("a"));
  for (const char* key : {"b", "c", "d"}) EXPECT_TRUE(pool->put(key, random_bytes(100, 2)).ok());
  EXPECT_TRUE(pool->contains("c"));
  EXPECT_TRUE(pool->contains("d"));
  EXPECT_EQ(pool->stats().evictions, 1U);
  return {pool->contains("a"), pool->contains("b")};
}

TEST(BufferPool, FrequentlyUsedOldBufferSurvivesNewerOnceUsedOne) {
  EXPECT_EQ(frequent_old_against_new(1024), std::make_pair(true, false));
}

TEST(BufferPool, ShortHalfLifeIsLru) {
  EXPECT_EQ(frequent_old_against_new(0.01), std::make_pair(false, true));
}

TEST(BufferPool, FrequencyDecaysWithAge) {
  BufferPoolOptions options = raw_options(300);
  options.frequency_half_life = 8;  // "a" (10 uses) outlives about 8 * log2(10) = 27 accesses
  auto pool = make_pool(options);
  ASSERT_TRUE(pool->put("a", random_bytes(100, 1)).ok());
  for (int i = 0; i < 9; ++i) ASSERT_TRUE(pool->get("a"));
  int evicted_after = -1;
  for (int i = 0; i < 60 && evicted_after < 0; ++i) {
    ASSERT_TRUE(pool->put(fmt::format("x{}", i), random_bytes(100, 2)).ok());
    if (!pool->contains("a")) evicted_after = i + 1;
  }
  EXPECT_GT(evicted_after, 20);
  EXPECT_LT(evicted_after, 40);
}

TEST(BufferPool, SpillsColdBuffersAndReadsThemBack) {
  TempDir dir;
  BufferPoolOptions options = raw_options(250);
  options.spill_dir = dir.path() + "/spill";  // created on demand
  auto pool = make_pool(options);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(pool->put(fmt::format("k{}", i), random_bytes(100, static_cast<uint32_t>(i))).ok());
  BufferPoolStats stats = pool->stats();
  EXPECT_EQ(stats.spills, 3U);
  EXPECT_EQ(stats.buffers_on_disk, 3U);
  EXPECT_EQ(stats.buffers_in_memory, 2U);
  EXPECT_EQ(stats.bytes_on_disk, 300U);
  EXPECT_EQ(stats.bytes_in_memory, 200U);
  EXPECT_EQ(stats.evictions, 0U);
  EXPECT_EQ(dir.files(), 3U);
  EXPECT_TRUE(pool->contains("k0"));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(pool->get(fmt::format("k{}", i)), random_bytes(100, static_cast<uint32_t>(i)));
  stats = pool->stats();
  EXPECT_EQ(stats.hits, 5U);
  EXPECT_GE(stats.promotions, 3U);
  EXPECT_LE(stats.bytes_in_memory, 250U);
  EXPECT_EQ(stats.buffers, 5U);
  EXPECT_EQ(dir.files(), stats.buffers_on_disk);
  pool.reset();
  EXPECT_EQ(dir.files(), 0U);  // the pool removed its files...
  EXPECT_EQ(fs::is_empty(dir.path() + "/spill"), true);  // ...and its directory
}

TEST(BufferPool, DiskBudgetEvictsTheColdest) {
  TempDir dir;
  BufferPoolOptions options = raw_options(200);
  options.spill_dir = dir.path();
  options.disk_budget_bytes = 200;
  options.frequency_half_life = 0.01;  // LRU: the order is the order of the puts
  auto pool = make_pool(options);
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(pool->put(fmt::format("k{}", i), random_bytes(100, static_cast<uint32_t>(i))).ok());
  const BufferPoolStats stats = pool->stats();
  EXPECT_EQ(stats.evictions, 2U);
  EXPECT_EQ(stats.bytes_on_disk, 200U);
  EXPECT_FALSE(pool->contains("k0"));
  EXPECT_FALSE(pool->contains("k1"));
  for (int i = 2; i < 6; ++i) EXPECT_EQ(pool->get(fmt::format("k{}", i)), random_bytes(100, static_cast<uint32_t>(i)));
}

TEST(BufferPool, UnwritableSpillDirDegradesToEvictionWithAWarning) {
  TempDir dir;
  const std::string file = dir.path() + "/a-file";
  std::ofstream(file) << "not a directory";
  BufferPoolOptions options = raw_options(250);
  options.spill_dir = file + "/spill";  // ENOTDIR, even for root
  auto pool = make_pool(options);
  testing::internal::CaptureStderr();
  for (int i = 0; i < 5; ++i) {
    const std::string key = fmt::format("k{}", i);
    ASSERT_TRUE(pool->put(key, random_bytes(100, static_cast<uint32_t>(i))).ok());
    EXPECT_TRUE(pool->contains(key));  // acknowledged: held right after put()
    EXPECT_LE(pool->stats().bytes_in_memory, 250U);
  }
  const std::string err = testing::internal::GetCapturedStderr();
  const BufferPoolStats stats = pool->stats();
  EXPECT_EQ(stats.spill_errors, 3U);
  EXPECT_EQ(stats.evictions, 3U);
  EXPECT_EQ(stats.spills, 0U);
  EXPECT_NE(err.find("cannot spill to " + options.spill_dir), std::string::npos) << err;
  EXPECT_NE(err.find("evicting instead"), std::string::npos) << err;
  EXPECT_NE(err.find("(1 failed spill so far)"), std::string::npos) << err;
  EXPECT_EQ(err.find("cannot spill"), err.rfind("cannot spill")) << "warned once: " << err;
  EXPECT_EQ(pool->get("k4"), random_bytes(100, 4));
  EXPECT_EQ(pool->get("k3"), random_bytes(100, 3));
  // The same failure again is not logged again until the tenth.
  testing::internal::CaptureStderr();
  for (int i = 5; i < 13; ++i) ASSERT_TRUE(pool->put(fmt::format("k{}", i), random_bytes(100, 9)).ok());
  const std::string more = testing::internal::GetCapturedStderr();
  EXPECT_EQ(pool->stats().spill_errors, 11U);
  EXPECT_NE(more.find("(10 failed spills so far)"), std::string::npos) << more;
  EXPECT_EQ(more.find("cannot spill"), more.rfind("cannot spill")) << more;
}

// A full disk, simulated with RLIMIT_FSIZE (files past the limit fail with EFBIG, like ENOSPC).
TEST(BufferPool, FullSpillDirLeavesNoPartialFile) {
  TempDir dir;
  BufferPoolOptions options = raw_options(1000);
  options.spill_dir = dir.path();
  auto pool = make_pool(options);
  ASSERT_TRUE(pool->put("small", random_bytes(200, 1)).ok());
  ASSERT_TRUE(pool->put("big", random_bytes(700, 2)).ok());
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  const auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
  rlimit small = saved;
  small.rlim_cur = 500;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  testing::internal::CaptureStderr();
  // "small" is the colder one and spills fine; "big" then cannot (500-byte files at most).
  const Status first = pool->put("next1", random_bytes(300, 3));
  const Status second = pool->put("next2", random_bytes(600, 4));
  const std::string err = testing::internal::GetCapturedStderr();
  ::setrlimit(RLIMIT_FSIZE, &saved);
  ::signal(SIGXFSZ, old_handler);
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(second.ok());
  const BufferPoolStats stats = pool->stats();
  EXPECT_EQ(stats.spills, 1U) << err;  // small
  EXPECT_EQ(stats.spill_errors, 1U) << err;
  EXPECT_EQ(stats.evictions, 1U);
  EXPECT_FALSE(pool->contains("big"));
  EXPECT_NE(err.find("File too large"), std::string::npos) << err;
  EXPECT_EQ(dir.files(), 1U);  // small's; the partial file of "big" is gone
  EXPECT_EQ(pool->get("small"), random_bytes(200, 1));
  EXPECT_EQ(pool->get("next2"), random_bytes(600, 4));
}

// A really full disk: a 64 KiB tmpfs (needs root and mount(2); skipped without them).
TEST(BufferPool, FullTmpfsDegradesToEviction) {
  TempDir dir;
  if (::mount("tmpfs", dir.path().c_str(), "tmpfs", 0, "size=64k") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs: " << std::strerror(errno);
  }
  struct Unmount {
    std::string path;
    explicit Unmount(std::string mounted) : path(std::move(mounted)) {}
    Unmount(const Unmount&) = delete;
    Unmount& operator=(const Unmount&) = delete;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{dir.path()};
  BufferPoolOptions options = raw_options(16 * 1024);
  options.spill_dir = dir.path();
  auto pool = make_pool(options);
  testing::internal::CaptureStderr();
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(pool->put(fmt::format("k{}", i), random_bytes(8192, static_cast<uint32_t>(i))).ok());
  }
  const std::string err = testing::internal::GetCapturedStderr();
  const BufferPoolStats stats = pool->stats();
  EXPECT_GT(stats.spills, 3U);
  EXPECT_GT(stats.spill_errors, 0U);
  EXPECT_EQ(stats.evictions, stats.spill_errors);
  EXPECT_EQ(stats.buffers, 20U - stats.evictions);
  EXPECT_LE(stats.bytes_in_memory, options.memory_budget_bytes);
  EXPECT_NE(err.find("No space left on device"), std::string::npos) << err;
  // Only complete files are left, one per spilled buffer, and every buffer held reads back.
  uint64_t file_bytes = 0;
  for (const auto& item : fs::recursive_directory_iterator(dir.path())) {
    if (item.is_regular_file()) file_bytes += item.file_size();
  }
  EXPECT_EQ(file_bytes, stats.bytes_on_disk);
  EXPECT_EQ(dir.files(), stats.buffers_on_disk);
  for (int i = 0; i < 20; ++i) {
    const std::string key = fmt::format("k{}", i);
    if (pool->contains(key)) {
      EXPECT_EQ(pool->get(key), random_bytes(8192, static_cast<uint32_t>(i))) << key;
    }
  }
  pool.reset();
}

TEST(BufferPool, ASpillFileRemovedBehindItsBackIsAMiss) {
  TempDir dir;
  BufferPoolOptions options = raw_options(100);
  options.spill_dir = dir.path();
  auto pool = make_pool(options);
  ASSERT_TRUE(pool->put("old", random_bytes(100, 1)).ok());
  ASSERT_TRUE(pool->put("new", random_bytes(100, 2)).ok());
  ASSERT_EQ(pool->stats().buffers_on_disk, 1U);
  for (const auto& item : fs::recursive_directory_iterator(dir.path())) {
    if (item.is_regular_file()) fs::remove(item.path());
  }
  testing::internal::CaptureStderr();
  EXPECT_FALSE(pool->get("old"));
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("lost a spilled buffer"), std::string::npos) << err;
  EXPECT_EQ(pool->stats().read_errors, 1U);
  EXPECT_FALSE(pool->contains("old"));
  EXPECT_EQ(pool->get("new"), random_bytes(100, 2));
}

TEST(BufferPool, ConcurrentPutAndGet) {
  TempDir dir;
  BufferPoolOptions options;
  options.memory_budget_bytes = 64 * 1024;
  options.compression = Compression::kZstd;
  options.spill_dir = dir.path();
  options.disk_budget_bytes = 128 * 1024;
  auto pool = make_pool(options);
  // A key's bytes depend on the key only, so any version a reader sees must match.
  const auto value_of = [](int key) { return sensor_floats(256 + static_cast<size_t>(key % 7) * 64, static_cast<uint32_t>(key)); };
  constexpr int kThreads = 8;
  constexpr int kKeys = 200;
  std::atomic<int> wrong{0};
  std::atomic<int> found{0};
  std::atomic<int> gets{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<uint32_t>(t));
      for (int i = 0; i < 400; ++i) {
        const int key = static_cast<int>(rng() % kKeys);
        const std::string name = fmt::format("key{}", key);
        if (rng() % 3 == 0) {
          if (!pool->put(name, value_of(key)).ok()) ++wrong;
          continue;
        }
        ++gets;
        if (auto got = pool->get(name)) {
          ++found;
          if (*got != value_of(key)) ++wrong;
        }
        if (rng() % 50 == 0) pool->erase(name);
        if (rng() % 20 == 0) (void)pool->stats();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(found.load(), 0);
  EXPECT_GT(pool->stats().spills, 0U);  // the spill path ran concurrently too
  const BufferPoolStats stats = pool->stats();
  EXPECT_LE(stats.bytes_in_memory, options.memory_budget_bytes);
  EXPECT_LE(stats.bytes_on_disk, options.disk_budget_bytes);
  EXPECT_EQ(stats.buffers, stats.buffers_in_memory + stats.buffers_on_disk);
  EXPECT_EQ(stats.hits + stats.misses, static_cast<uint64_t>(gets.load()));
  EXPECT_EQ(dir.files(), stats.buffers_on_disk);
}

}  // namespace
}  // namespace memscope
