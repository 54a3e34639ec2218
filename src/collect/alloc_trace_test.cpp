#include "collect/alloc_trace.hpp"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zstd.h>

#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "test_support.hpp"

namespace memscope::alloc {
namespace {

using ::testing::ElementsAre;

// A small writer of the format (docs/tracker-format.md), independent of the tracker's own.
class Records {
 public:
  Records& u(uint64_t value) {
    do {
      auto byte = static_cast<uint8_t>(value & 0x7f);
      value >>= 7;
      if (value != 0) byte |= 0x80;
      bytes_ += static_cast<char>(byte);
    } while (value != 0);
    return *this;
  }
  Records& s(std::string_view text) {
    u(text.size());
    bytes_ += text;
    return *this;
  }
  Records& raw(std::string_view bytes) {
    bytes_ += bytes;
    return *this;
  }
  Records& tag(Tag record) {
    bytes_ += static_cast<char>(record);
    return *this;
  }

  Records& process(uint64_t pid, uint64_t ppid, uint64_t start_ns, std::string_view exe,
                   std::string_view cmdline) {
    return tag(Tag::process).u(pid).u(ppid).u(start_ns).s(exe).s(cmdline);
  }
  Records& module(std::string_view path, uint64_t base,
                  const std::vector<std::pair<uint64_t, uint64_t>>& ranges) {
    tag(Tag::module).s(path).u(base).u(ranges.size());
    for (const auto& [start, size] : ranges) u(start).u(size);
    return *this;
  }
  Records& stack(uint64_t parent, uint64_t ip) { return tag(Tag::stack).u(parent).u(ip); }
  Records& time(uint64_t ns) { return tag(Tag::time).u(ns); }
  Records& alloc(uint64_t space, uint64_t address, uint64_t size, uint64_t stack_id) {
    return tag(Tag::alloc).u(space).u(address).u(size).u(stack_id);
  }
  Records& free(uint64_t space, uint64_t address) { return tag(Tag::free).u(space).u(address); }
  Records& realloc(uint64_t old_address, uint64_t new_address, uint64_t size, uint64_t stack_id) {
    return tag(Tag::realloc).u(old_address).u(new_address).u(size).u(stack_id);
  }
  Records& unmap(uint64_t space, uint64_t address, uint64_t length) {
    return tag(Tag::unmap).u(space).u(address).u(length);
  }
  Records& remap(uint64_t old_address, uint64_t old_size, uint64_t new_address, uint64_t new_size,
                 uint64_t stack_id) {
    return tag(Tag::remap).u(old_address).u(old_size).u(new_address).u(new_size).u(stack_id);
  }
  Records& heap_alloc(uint64_t size, uint64_t stack_id) {
    return tag(Tag::heap_alloc).u(size).u(stack_id);
  }
  Records& heap_free(uint64_t age) { return tag(Tag::heap_free).u(age); }
  Records& heap_realloc(uint64_t old, uint64_t size, uint64_t stack_id) {
    return tag(Tag::heap_realloc).u(old).u(size).u(stack_id);
  }
  Records& exec(std::string_view path) { return tag(Tag::exec).s(path); }
  Records& end(uint64_t reason) { return tag(Tag::end).u(reason); }

  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

std::string u32_le(uint32_t value) {
  std::string out;
  for (int i = 0; i < 4; ++i) out += static_cast<char>((value >> (8 * i)) & 0xff);
  return out;
}

std::string file_header(uint32_t version = kTraceFormatVersion) {
  return std::string(kTraceMagic, sizeof kTraceMagic) + u32_le(version) + u32_le(0);
}

std::string compressed(std::string_view raw) {
  std::string frame(ZSTD_compressBound(raw.size()), '\0');
  const size_t size = ZSTD_compress(frame.data(), frame.size(), raw.data(), raw.size(), 1);
  EXPECT_EQ(ZSTD_isError(size), 0u);
  frame.resize(size);
  return frame;
}

// One chunk; the sizes in its header can be overridden to make it wrong.
std::string chunk(std::string_view raw, int64_t raw_size = -1) {
  const std::string frame = compressed(raw);
  return u32_le(static_cast<uint32_t>(frame.size())) +
         u32_le(raw_size < 0 ? static_cast<uint32_t>(raw.size())
                             : static_cast<uint32_t>(raw_size)) +
         frame;
}
std::string chunk(const Records& records) { return chunk(records.bytes()); }

// What the visitor saw, one line per callback.
class Recorder : public TraceVisitor {
 public:
  void on_process(const ProcessInfo& process) override {
    lines.push_back(fmt::format("process pid={} ppid={} start={} exe={} cmdline={}", process.pid,
                                process.ppid, process.start_unix_ns, process.exe, process.cmdline));
  }
  void on_module(const Module& module) override {
    std::string line = fmt::format("module {} base={:#x}", module.path, module.base);
    for (const auto& [start, size] : module.ranges)
      line += fmt::format(" {:#x}+{:#x}", start, size);
    lines.push_back(line);
  }
  void on_stack(uint32_t id, const StackNode& node) override {
    lines.push_back(fmt::format("stack {} parent={} ip={:#x}", id, node.parent, node.ip));
  }
  void on_event(const Event& event) override {
    static constexpr const char* kKinds[] = {"alloc", "free", "realloc", "unmap", "remap"};
    lines.push_back(fmt::format("{} {} t={} address={:#x} size={} old={:#x} old_size={} stack={}",
                                kKinds[static_cast<int>(event.kind)], space_name(event.space),
                                event.time_ns, event.address, event.size, event.old_address,
                                event.old_size, event.stack));
  }
  std::vector<std::string> lines;
};

struct Read {
  Result<TraceEnd> end = make_error("not read");
  std::vector<std::string> lines;
};

Read read(const std::string& bytes) {
  Recorder recorder;
  Read result;
  result.end = read_trace_bytes(bytes, recorder, "x.mst");
  result.lines = recorder.lines;
  return result;
}

TEST(AllocTrace, EveryRecordKindRoundTrips) {
  Records records;
  records.process(4242, 1, 1700000000123456789ull, "/usr/bin/python3", "python3 train.py --lr 1")
      .module("/usr/bin/python3", 0x5500000000, {{0x5500000000, 0x1000}, {0x5500001000, 0x8000}})
      .module("/lib/libc.so.6", 0x7f0000000000, {})
      .stack(0, 0x5500001234)
      .stack(1, 0x7f0000002345)
      .stack(1, 0x5500005678)
      .time(1000)
      .alloc(0, 0x1000, 48, 2);
  for (uint64_t space = 0; space < kSpaceCount; ++space) {
    records.alloc(space, 0x10000 * (space + 1), 100 + space, 3);
  }
  records.time(2000000).free(0, 0x1000);
  for (uint64_t space = 0; space < kSpaceCount; ++space) records.free(space, 0x10000 * (space + 1));
  records.realloc(0, 0x2000, 64, 1)
      .realloc(0x2000, 0x3000, 128, 3)
      .unmap(1, 0x7000, 8192)
      .unmap(5, 0x8000, 4096)
      .remap(0x9000, 4096, 0xa000, 16384, 2)
      .alloc(0, std::numeric_limits<uint64_t>::max(), 1, 0)
      .end(0);
  const Read result = read(file_header() + chunk(records));
  ASSERT_TRUE(result.end.ok()) << result.end.message();
  EXPECT_THAT(
      result.lines,
      ElementsAre(
          "process pid=4242 ppid=1 start=1700000000123456789 exe=/usr/bin/python3 "
          "cmdline=python3 train.py --lr 1",
          "module /usr/bin/python3 base=0x5500000000 0x5500000000+0x1000 0x5500001000+0x8000",
          "module /lib/libc.so.6 base=0x7f0000000000", "stack 1 parent=0 ip=0x5500001234",
          "stack 2 parent=1 ip=0x7f0000002345", "stack 3 parent=1 ip=0x5500005678",
          "alloc heap t=1000 address=0x1000 size=48 old=0x0 old_size=0 stack=2",
          "alloc heap t=1000 address=0x10000 size=100 old=0x0 old_size=0 stack=3",
          "alloc mmap t=1000 address=0x20000 size=101 old=0x0 old_size=0 stack=3",
          "alloc cuda t=1000 address=0x30000 size=102 old=0x0 old_size=0 stack=3",
          "alloc cuda-driver t=1000 address=0x40000 size=103 old=0x0 old_size=0 stack=3",
          "alloc cuda-physical t=1000 address=0x50000 size=104 old=0x0 old_size=0 stack=3",
          "alloc cuda-mapping t=1000 address=0x60000 size=105 old=0x0 old_size=0 stack=3",
          "free heap t=2000000 address=0x1000 size=0 old=0x0 old_size=0 stack=0",
          "free heap t=2000000 address=0x10000 size=0 old=0x0 old_size=0 stack=0",
          "free mmap t=2000000 address=0x20000 size=0 old=0x0 old_size=0 stack=0",
          "free cuda t=2000000 address=0x30000 size=0 old=0x0 old_size=0 stack=0",
          "free cuda-driver t=2000000 address=0x40000 size=0 old=0x0 old_size=0 stack=0",
          "free cuda-physical t=2000000 address=0x50000 size=0 old=0x0 old_size=0 stack=0",
          "free cuda-mapping t=2000000 address=0x60000 size=0 old=0x0 old_size=0 stack=0",
          "realloc heap t=2000000 address=0x2000 size=64 old=0x0 old_size=0 stack=1",
          "realloc heap t=2000000 address=0x3000 size=128 old=0x2000 old_size=0 stack=3",
          "unmap mmap t=2000000 address=0x7000 size=8192 old=0x0 old_size=0 stack=0",
          "unmap cuda-mapping t=2000000 address=0x8000 size=4096 old=0x0 old_size=0 stack=0",
          "remap mmap t=2000000 address=0xa000 size=16384 old=0x9000 old_size=4096 stack=2",
          "alloc heap t=2000000 address=0xffffffffffffffff size=1 old=0x0 old_size=0 stack=0"));
  const TraceEnd& end = *result.end;
  EXPECT_TRUE(end.complete);
  EXPECT_FALSE(end.truncated);
  EXPECT_EQ(end.end_reason, "exit");
  EXPECT_EQ(end.last_time_ns, 2000000u);
  EXPECT_EQ(end.events, 20u);
  EXPECT_EQ(end.chunks, 1u);
}

// Heap records carry no address: blocks are named 2^63 + id, ids counting heap allocations over
// the whole file (docs/tracker-format.md).
TEST(AllocTrace, HeapRecordsNameBlocksByTheirId) {
  const std::string bytes =
      file_header() +
      chunk(Records().stack(0, 0x10).heap_alloc(48, 1).heap_alloc(16, 1).heap_free(1)) +
      chunk(Records().heap_realloc(0, 32, 1).heap_realloc(1, 64, 0).heap_free(0).heap_free(2));
  const Read result = read(bytes);
  ASSERT_TRUE(result.end.ok()) << result.end.message();
  EXPECT_THAT(
      result.lines,
      ElementsAre("stack 1 parent=0 ip=0x10",
                  "alloc heap t=0 address=0x8000000000000001 size=48 old=0x0 old_size=0 stack=1",
                  "alloc heap t=0 address=0x8000000000000002 size=16 old=0x0 old_size=0 stack=1",
                  "free heap t=0 address=0x8000000000000001 size=0 old=0x0 old_size=0 stack=0",
                  "realloc heap t=0 address=0x8000000000000003 size=32 old=0x0 old_size=0 stack=1",
                  "realloc heap t=0 address=0x8000000000000004 size=64 old=0x8000000000000003 "
                  "old_size=0 stack=0",
                  "free heap t=0 address=0x8000000000000004 size=0 old=0x0 old_size=0 stack=0",
                  "free heap t=0 address=0x8000000000000002 size=0 old=0x0 old_size=0 stack=0"));
}

TEST(AllocTrace, ChunksContinueOneAnother) {
  Records first;
  first.process(7, 1, 0, "/bin/a", "a").stack(0, 0x10).time(5).alloc(0, 0x100, 1, 1);
  Records second;
  second.stack(1, 0x20).time(6).alloc(0, 0x200, 2, 2).free(0, 0x100);
  Records third;
  third.time(9).free(0, 0x200).end(1);
  const Read result = read(file_header() + chunk(first) + chunk(second) + chunk(third));
  ASSERT_TRUE(result.end.ok()) << result.end.message();
  EXPECT_THAT(
      result.lines,
      ElementsAre("process pid=7 ppid=1 start=0 exe=/bin/a cmdline=a", "stack 1 parent=0 ip=0x10",
                  "alloc heap t=5 address=0x100 size=1 old=0x0 old_size=0 stack=1",
                  "stack 2 parent=1 ip=0x20",
                  "alloc heap t=6 address=0x200 size=2 old=0x0 old_size=0 stack=2",
                  "free heap t=6 address=0x100 size=0 old=0x0 old_size=0 stack=0",
                  "free heap t=9 address=0x200 size=0 old=0x0 old_size=0 stack=0"));
  EXPECT_TRUE(result.end->complete);
  EXPECT_EQ(result.end->end_reason, "_exit");
  EXPECT_EQ(result.end->chunks, 3u);
  EXPECT_EQ(result.end->events, 4u);
  EXPECT_EQ(result.end->last_time_ns, 9u);
}

TEST(AllocTrace, ChunkOfTheLargestRawSizeIsRead) {
  Records records;
  for (uint32_t i = 0; i < kMaxChunkRawBytes / 2; ++i) records.time(i % 128);  // 2 bytes each
  ASSERT_EQ(records.bytes().size(), kMaxChunkRawBytes);
  Recorder recorder;
  const auto end = read_trace_bytes(file_header() + chunk(records), recorder, "x.mst");
  ASSERT_TRUE(end.ok()) << end.message();
  EXPECT_EQ(end->chunks, 1u);
  EXPECT_EQ(end->last_time_ns, 127u);
}

Records two_events() {
  Records records;
  records.process(1, 0, 0, "/bin/a", "a").stack(0, 0x10).alloc(0, 0x100, 8, 1);
  return records;
}

TEST(AllocTrace, FileEndingInsideAChunkHeaderIsTruncated) {
  Records second;
  second.free(0, 0x100).end(0);
  const std::string whole = file_header() + chunk(two_events()) + chunk(second);
  const std::string first_chunk = file_header() + chunk(two_events());
  for (size_t extra : {size_t{1}, size_t{4}, size_t{7}}) {
    const Read result = read(whole.substr(0, first_chunk.size() + extra));
    ASSERT_TRUE(result.end.ok()) << result.end.message();
    EXPECT_EQ(result.lines.size(), 3u);
    EXPECT_TRUE(result.end->truncated) << extra;
    EXPECT_FALSE(result.end->complete);
    EXPECT_EQ(result.end->end_reason, "");
    EXPECT_EQ(result.end->chunks, 1u);
    EXPECT_EQ(result.end->events, 1u);
  }
}

TEST(AllocTrace, FileEndingInsideAChunkBodyIsTruncated) {
  Records second;
  second.free(0, 0x100).end(0);
  const std::string first_chunk = file_header() + chunk(two_events());
  const std::string whole = first_chunk + chunk(second);
  for (size_t cut : {first_chunk.size() + 8, first_chunk.size() + 9, whole.size() - 1}) {
    const Read result = read(whole.substr(0, cut));
    ASSERT_TRUE(result.end.ok()) << result.end.message();
    EXPECT_EQ(result.lines.size(), 3u);
    EXPECT_TRUE(result.end->truncated);
    EXPECT_FALSE(result.end->complete);
    EXPECT_EQ(result.end->chunks, 1u);
  }
}

TEST(AllocTrace, TraceWithoutEndIsIncomplete) {
  const Read result = read(file_header() + chunk(two_events()));
  ASSERT_TRUE(result.end.ok()) << result.end.message();
  EXPECT_FALSE(result.end->complete);
  EXPECT_FALSE(result.end->truncated);
  EXPECT_EQ(result.end->end_reason, "");
  EXPECT_EQ(result.end->events, 1u);
}

TEST(AllocTrace, HeaderAloneIsAnEmptyIncompleteTrace) {
  const Read result = read(file_header());
  ASSERT_TRUE(result.end.ok()) << result.end.message();
  EXPECT_TRUE(result.lines.empty());
  EXPECT_FALSE(result.end->complete);
  EXPECT_FALSE(result.end->truncated);
  EXPECT_EQ(result.end->chunks, 0u);
}

TEST(AllocTrace, ExecEndsTheTraceUnlessRecordsFollow) {
  Records exec = two_events();
  exec.exec("/usr/bin/env");
  const Read execed = read(file_header() + chunk(exec));
  ASSERT_TRUE(execed.end.ok()) << execed.end.message();
  EXPECT_TRUE(execed.end->complete);
  EXPECT_EQ(execed.end->end_reason, "exec /usr/bin/env");

  Records failed = two_events();
  failed.exec("/nonexistent").free(0, 0x100);  // the exec failed: the program went on
  const Read went_on = read(file_header() + chunk(failed));
  ASSERT_TRUE(went_on.end.ok()) << went_on.end.message();
  EXPECT_FALSE(went_on.end->complete);
  EXPECT_EQ(went_on.end->end_reason, "");

  Records exited = failed;
  exited.end(0);
  const Read after = read(file_header() + chunk(exited));
  ASSERT_TRUE(after.end.ok()) << after.end.message();
  EXPECT_TRUE(after.end->complete);
  EXPECT_EQ(after.end->end_reason, "exit");
}

TEST(AllocTrace, HeaderErrorsSayWhatTheFileIs) {
  auto error_of = [](const std::string& bytes) {
    const Read result = read(bytes);
    EXPECT_FALSE(result.end.ok());
    return result.end.ok() ? std::string() : result.end.message();
  };
  std::string wrong_magic = file_header();
  wrong_magic[0] = 'X';
  EXPECT_EQ(error_of(wrong_magic), "x.mst: not a memscope allocation trace");
  EXPECT_EQ(error_of("t,pid,ppid\n1,2,3\n"), "x.mst: not a memscope allocation trace");
  EXPECT_EQ(error_of(""), "x.mst: not a memscope allocation trace");
  EXPECT_EQ(error_of(file_header().substr(0, 15)), "x.mst: not a memscope allocation trace");
  EXPECT_EQ(error_of(file_header(2) + chunk(two_events())),
            "x.mst: trace format version 2; this memscope reads version 1");
  EXPECT_EQ(error_of(file_header(0x01000000)),
            "x.mst: trace format version 16777216; this memscope reads version 1");
}

// A bad second chunk: the first chunk's records are delivered, then the error names the
// second chunk's offset.
struct Corruption {
  const char* what;
  std::string second_chunk;
  std::string message;  // after "x.mst: corrupt chunk at byte N: "
};

std::string chunk_header(uint32_t compressed_size, uint32_t raw_size) {
  return u32_le(compressed_size) + u32_le(raw_size);
}

std::vector<Corruption> corruptions() {
  const uint32_t bound = static_cast<uint32_t>(ZSTD_compressBound(kMaxChunkRawBytes));
  std::string garbage = chunk(Records().time(1));
  for (size_t i = 8; i < garbage.size(); ++i) garbage[i] = static_cast<char>(0xA5);
  return {
      {"unknown tag", chunk(Records().raw("\x05")),
       "unknown record tag 0x05 (record at uncompressed byte 0)"},
      {"unknown tag after a good record", chunk(Records().time(3).raw("\x7e")),
       "unknown record tag 0x7e (record at uncompressed byte 2)"},
      {"varint over 10 bytes",
       chunk(Records().tag(Tag::time).raw(std::string(10, '\xff')).raw("\x01")),
       "varint longer than 10 bytes (record at uncompressed byte 0)"},
      {"varint over 64 bits",
       chunk(Records().tag(Tag::time).raw(std::string(9, '\xff')).raw("\x02")),
       "varint value over 64 bits (record at uncompressed byte 0)"},
      {"string over 4096 bytes", chunk(Records().exec(std::string(4097, 'a'))),
       "string of 4097 bytes (at most 4096) (record at uncompressed byte 0)"},
      {"string past the chunk", chunk(Records().tag(Tag::exec).u(10).raw("abc")),
       "record runs past the end of the chunk (record at uncompressed byte 0)"},
      {"parent equal to id", chunk(Records().stack(2, 0x30)),
       "stack 2 has parent 2 (must be below its id) (record at uncompressed byte 0)"},
      {"parent above id", chunk(Records().stack(9, 0x30)),
       "stack 2 has parent 9 (must be below its id) (record at uncompressed byte 0)"},
      {"undefined stack in alloc", chunk(Records().alloc(0, 0x200, 8, 2)),
       "stack 2 is not defined (1 are) (record at uncompressed byte 0)"},
      {"undefined stack in realloc", chunk(Records().realloc(0, 0x200, 8, 5)),
       "stack 5 is not defined (1 are) (record at uncompressed byte 0)"},
      {"undefined stack in remap", chunk(Records().remap(1, 2, 3, 4, 1000000)),
       "stack 1000000 is not defined (1 are) (record at uncompressed byte 0)"},
      {"bad space in alloc", chunk(Records().alloc(6, 0x200, 8, 1)),
       "unknown space 6 (record at uncompressed byte 0)"},
      {"bad space in free", chunk(Records().free(200, 0x200)),
       "unknown space 200 (record at uncompressed byte 0)"},
      {"bad space in unmap", chunk(Records().unmap(7, 0x200, 1)),
       "unknown space 7 (record at uncompressed byte 0)"},
      {"event cut short", chunk(Records().tag(Tag::alloc).u(0).u(0x100)),
       "record runs past the end of the chunk (record at uncompressed byte 0)"},
      {"module ranges cut short", chunk(Records().tag(Tag::module).s("/a").u(0).u(1000).u(1)),
       "record runs past the end of the chunk (record at uncompressed byte 0)"},
      {"heap free older than every allocation", chunk(Records().heap_free(0)),
       "heap free of age 0 (0 heap allocations so far) (record at uncompressed byte 0)"},
      {"heap realloc older than every allocation", chunk(Records().heap_realloc(1, 8, 1)),
       "heap realloc of age 0 (0 heap allocations so far) (record at uncompressed byte 0)"},
      {"undefined stack in heap alloc", chunk(Records().heap_alloc(8, 3)),
       "stack 3 is not defined (1 are) (record at uncompressed byte 0)"},
      {"unknown end reason", chunk(Records().end(2)),
       "unknown end reason 2 (record at uncompressed byte 0)"},
      {"raw size larger than the frame", chunk(Records().time(1).bytes(), 3),
       "decompresses to 2 bytes, its header says 3"},
      {"raw size smaller than the frame", chunk(Records().time(1).time(2).bytes(), 2),
       "decompresses to more than the 2 bytes its header says"},
      {"raw size over 4 MiB", chunk(Records().time(1).bytes(), kMaxChunkRawBytes + 1),
       "uncompressed size 4194305 (must be 1..4194304)"},
      {"raw size 0", chunk(Records().time(1).bytes(), 0),
       "uncompressed size 0 (must be 1..4194304)"},
      {"compressed size 0", chunk_header(0, 10),
       fmt::format("compressed size 0 (must be 1..{})", bound)},
      {"compressed size over the bound", chunk_header(bound + 1, 10),
       fmt::format("compressed size {} (must be 1..{})", bound + 1, bound)},
      {"zstd garbage", garbage, "bad zstd frame (Unknown frame descriptor)"},
  };
}

TEST(AllocTrace, CorruptChunkIsAnErrorAfterTheRecordsBefore) {
  const std::string good = file_header() + chunk(two_events());
  for (const Corruption& corruption : corruptions()) {
    SCOPED_TRACE(corruption.what);
    const Read result = read(good + corruption.second_chunk);
    ASSERT_FALSE(result.end.ok());
    EXPECT_EQ(result.lines.size(), 3u);  // the first chunk's process, stack, alloc
    const std::string prefix = fmt::format("x.mst: corrupt chunk at byte {}: ", good.size());
    EXPECT_EQ(result.end.message(), prefix + corruption.message);
  }
}

TEST(AllocTrace, ConcatenatedFramesAreNotOneChunk) {
  const std::string raw = Records().time(1).bytes();
  const std::string frame = compressed(raw);
  const std::string two = chunk_header(static_cast<uint32_t>(2 * frame.size()), 4) + frame + frame;
  const Read result = read(file_header() + two);
  ASSERT_FALSE(result.end.ok());
  EXPECT_EQ(
      result.end.message(),
      fmt::format("x.mst: corrupt chunk at byte 16: {} bytes follow the zstd frame", frame.size()));
}

TEST(AllocTrace, ReadsAFile) {
  testing::TempDir dir;
  Records second;
  second.time(77).free(0, 0x100).end(0);
  const std::string bytes = file_header() + chunk(two_events()) + chunk(second);
  testing::write_file(dir.file("t.mst"), bytes);
  Recorder from_file;
  const auto end = read_trace_file(dir.file("t.mst"), from_file);
  ASSERT_TRUE(end.ok()) << end.message();
  EXPECT_EQ(from_file.lines, read(bytes).lines);
  EXPECT_EQ(from_file.lines.size(), 4u);
  EXPECT_TRUE(end->complete);
  EXPECT_EQ(end->chunks, 2u);
  EXPECT_EQ(end->last_time_ns, 77u);

  testing::write_file(dir.file("cut.mst"), bytes.substr(0, bytes.size() - 3));
  Recorder cut;
  const auto cut_end = read_trace_file(dir.file("cut.mst"), cut);
  ASSERT_TRUE(cut_end.ok()) << cut_end.message();
  EXPECT_TRUE(cut_end->truncated);
  EXPECT_EQ(cut.lines.size(), 3u);

  testing::write_file(dir.file("v2.mst"), file_header(2));
  Recorder v2;
  const auto v2_end = read_trace_file(dir.file("v2.mst"), v2);
  ASSERT_FALSE(v2_end.ok());
  EXPECT_EQ(v2_end.message(),
            dir.file("v2.mst") + ": trace format version 2; this memscope reads version 1");
}

TEST(AllocTrace, FileErrorsNameTheFile) {
  testing::TempDir dir;
  Recorder recorder;
  const auto missing = read_trace_file(dir.file("none.mst"), recorder);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.message(), dir.file("none.mst") + ": cannot open: No such file or directory");
  const auto directory = read_trace_file(dir.path(), recorder);
  ASSERT_FALSE(directory.ok());
  EXPECT_EQ(directory.message(), dir.path() + ": cannot read: Is a directory");
}

TEST(AllocTrace, FindsTraceFilesInPidOrder) {
  testing::TempDir dir;
  for (const char* name :
       {"run.10.mst", "run.9.mst", "run.9.10.mst", "run.9.2.mst", "run.9.1.mst", "run.100.mst",
        "run.x.mst", "run.9.mst.tmp", "other.9.mst", "run.9.1.2.mst", "run..mst", "run.9..mst",
        "runs.9.mst", "run.mst", "run.-1.mst", "run.99999999999999999999999.mst"}) {
    testing::write_file(dir.file(name), "");
  }
  std::filesystem::create_directory(dir.file("run.8.mst"));  // not a file
  EXPECT_THAT(
      find_trace_files(dir.file("run")),
      ElementsAre(dir.file("run.9.mst"), dir.file("run.9.1.mst"), dir.file("run.9.2.mst"),
                  dir.file("run.9.10.mst"), dir.file("run.10.mst"), dir.file("run.100.mst")));
  EXPECT_THAT(find_trace_files(dir.file("other")), ElementsAre(dir.file("other.9.mst")));
  EXPECT_TRUE(find_trace_files(dir.file("nothing")).empty());
  EXPECT_TRUE(find_trace_files(dir.file("missing/run")).empty());
}

}  // namespace
}  // namespace memscope::alloc
