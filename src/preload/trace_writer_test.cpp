#include "preload/trace_writer.hpp"

#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <cstdint>
#include <cstring>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace memscope::track {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes varint(uint64_t value) {
  uint8_t buffer[16];
  const uint8_t* end = put_varint(buffer, value);
  return Bytes(static_cast<const uint8_t*>(buffer), end);
}

TEST(Varint, EncodesLeb128) {
  EXPECT_EQ(varint(0), (Bytes{0x00}));
  EXPECT_EQ(varint(1), (Bytes{0x01}));
  EXPECT_EQ(varint(127), (Bytes{0x7F}));
  EXPECT_EQ(varint(128), (Bytes{0x80, 0x01}));
  EXPECT_EQ(varint(300), (Bytes{0xAC, 0x02}));
  EXPECT_EQ(varint(UINT64_MAX),
            (Bytes{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}));
}

TEST(Decimal, WritesDigits) {
  char buffer[32];
  *put_decimal(buffer, 0) = '\0';
  EXPECT_STREQ(buffer, "0");
  *put_decimal(buffer, 18446744073709551615ULL) = '\0';
  EXPECT_STREQ(buffer, "18446744073709551615");
}

// A temporary directory removed with its files.
class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/memscope_preload_test.XXXXXX";
    path_ = mkdtemp(pattern);
  }
  ~TempDir() {
    for (const std::string& file : files_) ::unlink(file.c_str());
    ::rmdir(path_.c_str());
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  void remember(const std::string& file) { files_.push_back(file); }

 private:
  std::string path_;
  std::vector<std::string> files_;
};

struct Chunk {
  uint32_t compressed = 0;
  uint32_t raw = 0;
  Bytes records;
};

struct ParsedFile {
  Bytes header;
  std::vector<Chunk> chunks;
  bool well_formed = true;
};

uint32_t read_u32(const uint8_t* bytes) {
  return static_cast<uint32_t>(bytes[0]) | static_cast<uint32_t>(bytes[1]) << 8 |
         static_cast<uint32_t>(bytes[2]) << 16 | static_cast<uint32_t>(bytes[3]) << 24;
}

ParsedFile parse(const Bytes& file) {
  ParsedFile parsed;
  if (file.size() < 16) {
    parsed.well_formed = false;
    return parsed;
  }
  parsed.header.assign(file.begin(), file.begin() + 16);
  size_t offset = 16;
  while (offset < file.size()) {
    if (file.size() - offset < 8) {
      parsed.well_formed = false;
      break;
    }
    Chunk chunk;
    chunk.compressed = read_u32(&file[offset]);
    chunk.raw = read_u32(&file[offset + 4]);
    offset += 8;
    if (file.size() - offset < chunk.compressed) {
      parsed.well_formed = false;
      break;
    }
    chunk.records.resize(chunk.raw);
    const size_t size = ZSTD_decompress(chunk.records.data(), chunk.records.size(),
                                        &file[offset], chunk.compressed);
    if (ZSTD_isError(size) != 0u || size != chunk.raw) parsed.well_formed = false;
    offset += chunk.compressed;
    parsed.chunks.push_back(std::move(chunk));
  }
  return parsed;
}

class TraceWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.path() + "/trace.mst";
    dir_.remember(path_);
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(fd_, 0);
    ASSERT_TRUE(writer_.open(fd_));
  }
  void TearDown() override {
    writer_.release();
    ::close(fd_);
  }

  Bytes file_bytes() const {
    Bytes bytes;
    const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    uint8_t buffer[65536];
    ssize_t n = 0;
    while ((n = ::read(fd, buffer, sizeof buffer)) > 0) bytes.insert(bytes.end(), buffer, buffer + n);
    ::close(fd);
    return bytes;
  }

  TempDir dir_;
  std::string path_;
  int fd_ = -1;
  TraceWriter writer_;
};

TEST_F(TraceWriterTest, HeaderOnlyBeforeTheFirstFlush) {
  const Bytes header{'M', 'S', 'T', 'R', 'A', 'C', 'E', 0, 1, 0, 0, 0, 0, 0, 0, 0};
  writer_.alloc(alloc::Space::heap, 0x10, 8, 0);
  EXPECT_EQ(file_bytes(), header);
  EXPECT_TRUE(writer_.flush());
  const ParsedFile parsed = parse(file_bytes());
  EXPECT_EQ(parsed.header, header);
  EXPECT_EQ(parsed.chunks.size(), 1u);
}

TEST_F(TraceWriterTest, EncodesEveryRecord) {
  const Segment segments[] = {{0x400000, 0x1000}, {0x401000, 0x80}};
  writer_.process(7, 1, 300, "/bin/x", 6, "x -a", 4);
  writer_.module("/lib/y.so", 9, 0x7f00, segments, 2);
  writer_.stack(0, 0x401234);
  writer_.tick(5);
  writer_.alloc(alloc::Space::heap, 0x1000, 200, 1);
  writer_.free(alloc::Space::mmap, 0x2000);
  writer_.realloc(0, 0x3000, 16, 1);
  writer_.unmap(alloc::Space::cuda_mapping, 0x4000, 0x100);
  writer_.remap(0x5000, 4096, 0x6000, 8192, 1);
  writer_.exec("/bin/sh", 7);
  writer_.end(1);
  ASSERT_TRUE(writer_.flush());
  EXPECT_EQ(writer_.pending_bytes(), 0u);

  const Bytes expected{
      0x01, 7, 1, 0xAC, 0x02, 6, '/', 'b', 'i', 'n', '/', 'x', 4, 'x', ' ', '-', 'a',  // PROCESS
      0x02, 9, '/', 'l', 'i', 'b', '/', 'y', '.', 's', 'o', 0x80, 0xFE, 0x01, 2,       // MODULE
      0x80, 0x80, 0x80, 0x02, 0x80, 0x20, 0x80, 0xA0, 0x80, 0x02, 0x80, 0x01,
      0x03, 0, 0xB4, 0xA4, 0x80, 0x02,                                                // STACK
      0x04, 5,                                                                        // TIME
      0x10, 0, 0x80, 0x20, 0xC8, 0x01, 1,                                             // ALLOC
      0x11, 1, 0x80, 0x40,                                                            // FREE
      0x12, 0, 0x80, 0x60, 16, 1,                                                     // REALLOC
      0x13, 5, 0x80, 0x80, 0x01, 0x80, 0x02,                                          // UNMAP
      0x14, 0x80, 0xA0, 0x01, 0x80, 0x20, 0x80, 0xC0, 0x01, 0x80, 0x40, 1,            // REMAP
      0x20, 7, '/', 'b', 'i', 'n', '/', 's', 'h',                                     // EXEC
      0x7F, 1};                                                                       // END
  const ParsedFile parsed = parse(file_bytes());
  ASSERT_TRUE(parsed.well_formed);
  ASSERT_EQ(parsed.chunks.size(), 1u);
  EXPECT_EQ(parsed.chunks[0].raw, expected.size());
  EXPECT_EQ(parsed.chunks[0].records, expected);
}

// The heap's compact records: no addresses, frees by age; a free of an address never seen
// allocated writes nothing; ids go on across chunks.
TEST_F(TraceWriterTest, HeapRecordsNameBlocksByAge) {
  ASSERT_TRUE(writer_.heap_alloc(0xA000, 48, 1));   // id 1
  ASSERT_TRUE(writer_.heap_alloc(0xB000, 16, 2));   // id 2
  writer_.heap_free(0xA000);                        // id 1: age 1
  writer_.heap_free(0xC000);                        // never allocated: nothing
  ASSERT_TRUE(writer_.flush());
  ASSERT_TRUE(writer_.heap_realloc(0, 0xD000, 32, 1));       // id 3, nothing freed
  ASSERT_TRUE(writer_.heap_realloc(0xB000, 0xB000, 64, 1));  // frees id 2 (age 1), id 4
  writer_.heap_free(0xB000);                                 // id 4: age 0
  writer_.heap_free(0xB000);                                 // already freed: nothing
  ASSERT_TRUE(writer_.flush());
  const ParsedFile parsed = parse(file_bytes());
  ASSERT_TRUE(parsed.well_formed);
  ASSERT_EQ(parsed.chunks.size(), 2u);
  EXPECT_EQ(parsed.chunks[0].records, (Bytes{0x15, 48, 1, 0x15, 16, 2, 0x16, 1}));
  EXPECT_EQ(parsed.chunks[1].records, (Bytes{0x17, 0, 32, 1, 0x17, 2, 64, 1, 0x16, 0}));
}

// An address allocated again before its free was seen: the old block is certainly gone, so its
// free is written first (else it would look leaked for ever).
TEST_F(TraceWriterTest, AMissedFreeIsWrittenWhenItsAddressComesBack) {
  ASSERT_TRUE(writer_.heap_alloc(0xA000, 48, 1));  // id 1
  ASSERT_TRUE(writer_.heap_alloc(0xB000, 16, 1));  // id 2
  ASSERT_TRUE(writer_.heap_alloc(0xA000, 32, 1));  // frees id 1 (age 1), id 3
  const uint64_t id = writer_.heap_take(0xB000);   // realloc of id 2 in steps...
  EXPECT_EQ(id, 2u);
  writer_.heap_restore(0xB000, id);                // ...that failed: the block stays
  writer_.heap_free(0xB000);                       // id 2: age 1
  ASSERT_TRUE(writer_.flush());
  const ParsedFile parsed = parse(file_bytes());
  ASSERT_EQ(parsed.chunks.size(), 1u);
  EXPECT_EQ(parsed.chunks[0].records,
            (Bytes{0x15, 48, 1, 0x15, 16, 1, 0x16, 1, 0x15, 32, 1, 0x16, 1}));
}

TEST(HeapIds, RemembersTakesAndGrowsWithoutLosingBlocks) {
  HeapIds ids;
  ASSERT_TRUE(ids.init(4));  // 16 slots: grows many times below
  constexpr uint64_t kBlocks = 100000;
  for (uint64_t i = 1; i <= kBlocks; ++i) ASSERT_TRUE(ids.put(i * 16, i));
  EXPECT_EQ(ids.size(), kBlocks);
  for (uint64_t i = 1; i <= kBlocks; i += 2) EXPECT_EQ(ids.take(i * 16), i);  // every other
  EXPECT_EQ(ids.size(), kBlocks / 2);
  for (uint64_t i = 1; i <= kBlocks; ++i) {
    EXPECT_EQ(ids.take(i * 16), i % 2 == 0 ? i : 0u) << i;  // the rest survived the deletions
  }
  EXPECT_EQ(ids.size(), 0u);
  EXPECT_TRUE(ids.put(0x40, 7));
  EXPECT_TRUE(ids.put(0x40, 9));  // its free was missed: the new id wins
  EXPECT_EQ(ids.size(), 1u);
  EXPECT_EQ(ids.take(0x40), 9u);
  EXPECT_EQ(ids.take(0), 0u);
  ids.release();
}

TEST_F(TraceWriterTest, LongStringsAreCutAt4096) {
  const std::string path(5000, 'p');
  writer_.exec(path.data(), path.size());
  ASSERT_TRUE(writer_.flush());
  const ParsedFile parsed = parse(file_bytes());
  ASSERT_EQ(parsed.chunks.size(), 1u);
  const Bytes& records = parsed.chunks[0].records;
  ASSERT_EQ(records.size(), 1u + 2u + 4096u);
  EXPECT_EQ(records[0], 0x20);
  EXPECT_EQ(records[1], 0x80);  // 4096 = 0x80 0x20
  EXPECT_EQ(records[2], 0x20);
}

TEST_F(TraceWriterTest, TimeOnlyWhenItChangesAndNeverBackwards) {
  writer_.tick(0);   // the trace starts at 0: nothing to say
  writer_.tick(10);
  writer_.tick(10);
  writer_.tick(3);   // a late clock reading is ignored
  writer_.tick(11);
  ASSERT_TRUE(writer_.flush());
  const ParsedFile parsed = parse(file_bytes());
  ASSERT_EQ(parsed.chunks.size(), 1u);
  EXPECT_EQ(parsed.chunks[0].records, (Bytes{0x04, 10, 0x04, 11}));
}

TEST_F(TraceWriterTest, FlushesOnceASecondOfTraceTime) {
  writer_.tick(1'000);
  writer_.free(alloc::Space::heap, 1);
  writer_.tick(999'999'999);
  writer_.free(alloc::Space::heap, 2);
  EXPECT_EQ(parse(file_bytes()).chunks.size(), 0u);
  writer_.tick(1'000'000'000);  // a second since the last flush (at 0): the pending records go
  EXPECT_EQ(parse(file_bytes()).chunks.size(), 1u);
  writer_.free(alloc::Space::heap, 3);
  writer_.tick(1'500'000'000);
  EXPECT_EQ(parse(file_bytes()).chunks.size(), 1u);
  writer_.tick(2'000'000'000);
  const ParsedFile parsed = parse(file_bytes());
  ASSERT_EQ(parsed.chunks.size(), 2u);
  EXPECT_EQ(parsed.chunks[1].records.front(), 0x04);  // the TIME that followed the first flush
}

TEST_F(TraceWriterTest, FullBufferSplitsIntoChunksWithoutSplittingRecords) {
  // 200000 ALLOCs of 1 + 1 + 5 + 2 + 3 = 12 bytes: 2.4 MB, three chunks of at most 1 MiB.
  for (uint64_t i = 0; i < 200000; ++i) {
    writer_.alloc(alloc::Space::heap, 0x100000000 + i * 16, 1000, 100000);
  }
  ASSERT_TRUE(writer_.flush());
  const ParsedFile parsed = parse(file_bytes());
  ASSERT_TRUE(parsed.well_formed);
  ASSERT_EQ(parsed.chunks.size(), 3u);
  uint64_t records = 0;
  uint64_t next_address = 0x100000000;
  for (const Chunk& chunk : parsed.chunks) {
    EXPECT_LE(chunk.raw, kChunkRawBytes);
    EXPECT_EQ(chunk.raw % 12, 0u);
    for (size_t offset = 0; offset < chunk.records.size(); offset += 12) {
      uint8_t expected[12] = {0x10, 0};
      uint8_t* out = put_varint(expected + 2, next_address);
      out = put_varint(out, 1000);
      put_varint(out, 100000);
      ASSERT_EQ(std::memcmp(&chunk.records[offset], expected, 12), 0) << "record " << records;
      next_address += 16;
      ++records;
    }
  }
  EXPECT_EQ(records, 200000u);
}

// A compressor thread as the tracker runs one: compresses what is handed over, then sleeps.
class Compressor {
 public:
  explicit Compressor(TraceWriter& writer) : writer_(writer), thread_([this] { run(); }) {}
  ~Compressor() {
    stop_ = true;
    thread_.join();
  }
  Compressor(const Compressor&) = delete;
  Compressor& operator=(const Compressor&) = delete;

 private:
  void run() {
    while (!stop_) {
      const uint32_t seen = writer_.submitted();
      writer_.compress_submitted();
      writer_.wait_for_submission(seen, 20);
    }
  }
  TraceWriter& writer_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST_F(TraceWriterTest, AsyncChunksAreWrittenInOrderAcrossTheWholeRing) {
  writer_.set_async(true);
  Compressor compressor(writer_);
  // 12-byte ALLOCs, 12 MB: three times round the ring of kBuffers 1 MiB buffers, so flush()
  // waits for buffers the compressor has not written yet.
  constexpr uint64_t kRecords = 1'000'000;
  for (uint64_t i = 0; i < kRecords; ++i) {
    writer_.alloc(alloc::Space::heap, 0x100000000 + i * 16, 1000, 100000);
  }
  ASSERT_TRUE(writer_.drain());
  EXPECT_EQ(writer_.queued(), 0u);
  const ParsedFile parsed = parse(file_bytes());
  ASSERT_TRUE(parsed.well_formed);
  ASSERT_GE(parsed.chunks.size(), 12u);
  uint64_t records = 0;
  uint64_t next_address = 0x100000000;
  for (const Chunk& chunk : parsed.chunks) {
    for (size_t offset = 0; offset < chunk.records.size(); offset += 12) {
      uint8_t expected[12] = {0x10, 0};
      uint8_t* out = put_varint(expected + 2, next_address);
      out = put_varint(out, 1000);
      put_varint(out, 100000);
      ASSERT_EQ(std::memcmp(&chunk.records[offset], expected, 12), 0) << "record " << records;
      next_address += 16;
      ++records;
    }
  }
  EXPECT_EQ(records, kRecords);
}

TEST_F(TraceWriterTest, AsyncFlushOnlyHandsOverAndDrainGivesUpWithoutACompressor) {
  writer_.set_async(true);
  writer_.free(alloc::Space::heap, 1);
  EXPECT_TRUE(writer_.flush());
  EXPECT_EQ(writer_.queued(), 1u);
  EXPECT_EQ(parse(file_bytes()).chunks.size(), 0u) << "nothing written by flush itself";
  writer_.free(alloc::Space::heap, 2);
  EXPECT_FALSE(writer_.drain(50)) << "no compressor: drain waits 50 ms, then says so";
  EXPECT_EQ(writer_.queued(), 2u);
  writer_.compress_submitted();
  EXPECT_EQ(writer_.queued(), 0u);
  const ParsedFile parsed = parse(file_bytes());
  ASSERT_EQ(parsed.chunks.size(), 2u);
  EXPECT_EQ(parsed.chunks[0].records, (Bytes{0x11, 0, 1}));
  EXPECT_EQ(parsed.chunks[1].records, (Bytes{0x11, 0, 2}));
}

TEST_F(TraceWriterTest, AStalledCompressorStopsTheTrackingNotTheProgram) {
  writer_.set_async(true);
  writer_.set_stall_seconds(1);
  // No compressor: the ring fills, and the fifth buffer is never freed.
  for (uint64_t i = 0; i < 500'000 && !writer_.failed(); ++i) {
    writer_.alloc(alloc::Space::heap, 0x100000000 + i * 16, 1000, 100000);
  }
  EXPECT_TRUE(writer_.failed());
  EXPECT_EQ(writer_.error(), ETIMEDOUT);
  EXPECT_FALSE(writer_.flush());
}

TEST_F(TraceWriterTest, DropPendingForgetsUnflushedRecords) {
  writer_.free(alloc::Space::heap, 1);
  writer_.drop_pending();
  EXPECT_TRUE(writer_.flush());
  EXPECT_EQ(parse(file_bytes()).chunks.size(), 0u);
}

TEST(TraceWriterErrors, WriteErrorMarksTheWriterFailed) {
  const int fd = ::open("/dev/full", O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  TraceWriter writer;
  EXPECT_FALSE(writer.open(fd));  // the header already fails
  EXPECT_TRUE(writer.failed());
  ::close(fd);

  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ASSERT_TRUE(writer.open(fds[1]));
  ::close(fds[0]);  // nobody reads: EPIPE (SIGPIPE ignored below)
  signal(SIGPIPE, SIG_IGN);
  writer.free(alloc::Space::heap, 1);
  EXPECT_FALSE(writer.flush());
  EXPECT_TRUE(writer.failed());
  writer.free(alloc::Space::heap, 2);
  EXPECT_FALSE(writer.flush());
  writer.release();
  ::close(fds[1]);
  signal(SIGPIPE, SIG_DFL);
}

TEST(TraceWriterErrors, AsyncWriteErrorReachesTheRecordingSide) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  TraceWriter writer;
  ASSERT_TRUE(writer.open(fds[1]));
  writer.set_async(true);
  ::close(fds[0]);
  signal(SIGPIPE, SIG_IGN);
  writer.free(alloc::Space::heap, 1);
  EXPECT_TRUE(writer.flush()) << "handed over: not written yet";
  writer.compress_submitted();  // the compressor's write fails
  EXPECT_TRUE(writer.failed());
  EXPECT_FALSE(writer.heap_alloc(0x1000, 8, 1));
  EXPECT_FALSE(writer.drain(50));
  writer.release();
  ::close(fds[1]);
  signal(SIGPIPE, SIG_DFL);
}

TEST(CreateTraceFile, NamesByPidAndCountsPastExistingFiles) {
  TempDir dir;
  const std::string prefix = dir.path() + "/run";
  char path[512];
  const mode_t old_mask = umask(022);
  for (const char* expected : {"/run.4242.mst", "/run.4242.1.mst", "/run.4242.2.mst"}) {
    const int fd = create_trace_file(prefix.c_str(), 4242, path, sizeof path);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(std::string(path), dir.path() + expected);
    dir.remember(path);
    struct stat info {};
    ASSERT_EQ(::fstat(fd, &info), 0);
    EXPECT_EQ(info.st_mode & 0777, 0644u);
    EXPECT_EQ(::fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    ::close(fd);
  }
  umask(old_mask);
  const int other = create_trace_file(prefix.c_str(), 7, path, sizeof path);
  ASSERT_GE(other, 0);
  EXPECT_EQ(std::string(path), dir.path() + "/run.7.mst");
  dir.remember(path);
  ::close(other);
}

TEST(CreateTraceFile, FailsInAMissingDirectory) {
  char path[512];
  errno = 0;
  EXPECT_EQ(create_trace_file("/nonexistent/memscope/run", 1, path, sizeof path), -1);
  EXPECT_EQ(errno, ENOENT);
}

TEST(CreateTraceFile, RefusesAPathThatDoesNotFit) {
  char path[16];
  EXPECT_EQ(create_trace_file("/tmp/a-long-prefix", 1, path, sizeof path), -1);
  EXPECT_EQ(errno, ENAMETOOLONG);
}

}  // namespace
}  // namespace memscope::track
