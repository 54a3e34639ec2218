#include "collect/alloc_trace.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>
#include <zstd.h>
#include <zstd_errors.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <system_error>
#include <tuple>
#include <utility>

namespace memscope::alloc {
namespace {

constexpr size_t kHeaderBytes = 16;
constexpr size_t kChunkHeaderBytes = 8;
constexpr unsigned kMaxVarintBytes = 10;

uint32_t load_u32_le(std::string_view bytes, size_t at) {
  uint32_t value = 0;
  for (size_t i = 4; i-- > 0;) {
    value = (value << 8) | static_cast<unsigned char>(bytes[at + i]);
  }
  return value;
}

std::string errno_text(int error) { return std::generic_category().message(error); }

// Where a trace's bytes come from. take() hands out up to `count` bytes, fewer only at the end
// of the input; the view stays valid until the next call.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // False on a read error (message in `error`).
  virtual bool take(size_t count, std::string_view& bytes, std::string& error) = 0;
};

class MemorySource final : public ByteSource {
 public:
  explicit MemorySource(std::string_view bytes) : rest_(bytes) {}
  bool take(size_t count, std::string_view& bytes, std::string& /*error*/) override {
    bytes = rest_.substr(0, count);
    rest_.remove_prefix(bytes.size());
    return true;
  }

 private:
  std::string_view rest_;
};

// Reads the file piece by piece into one reused buffer: at most one chunk is held at a time.
class FileSource final : public ByteSource {
 public:
  explicit FileSource(int fd) : fd_(fd) {}
  ~FileSource() override { ::close(fd_); }
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;

  bool take(size_t count, std::string_view& bytes, std::string& error) override {
    if (buffer_.size() < count) buffer_.resize(count);
    size_t got = 0;
    while (got < count) {
      const ssize_t n = ::read(fd_, buffer_.data() + got, count - got);
      if (n == 0) break;
      if (n < 0) {
        if (errno == EINTR) continue;
        error = errno_text(errno);
        return false;
      }
      got += static_cast<size_t>(n);
    }
    bytes = std::string_view(buffer_.data(), got);
    return true;
  }

 private:
  int fd_;
  std::vector<char> buffer_;
};

// A bounds-checked cursor over one chunk's records. Every read fails (with problem() set)
// instead of running past the end.
class Cursor {
 public:
  explicit Cursor(std::string_view bytes) : bytes_(bytes) {}

  bool at_end() const { return at_ == bytes_.size(); }
  size_t offset() const { return at_; }
  const std::string& problem() const { return problem_; }

  bool fail(std::string problem) {
    problem_ = std::move(problem);
    return false;
  }

  bool byte(uint8_t& value) {
    if (at_ == bytes_.size()) return past_end();
    value = static_cast<uint8_t>(bytes_[at_++]);
    return true;
  }

  // Unsigned LEB128, at most 10 bytes, value < 2^64.
  bool varint(uint64_t& value) {
    uint64_t result = 0;
    for (unsigned i = 0; i < kMaxVarintBytes; ++i) {
      if (at_ == bytes_.size()) return past_end();
      const auto byte = static_cast<uint8_t>(bytes_[at_++]);
      if (i == kMaxVarintBytes - 1 && byte > 1) {
        return fail((byte & 0x80) != 0 ? "varint longer than 10 bytes"
                                       : "varint value over 64 bits");
      }
      result |= static_cast<uint64_t>(byte & 0x7f) << (7 * i);
      if ((byte & 0x80) == 0) {
        value = result;
        return true;
      }
    }
    return fail("varint longer than 10 bytes");  // not reached: the 10th byte ends it
  }

  bool string(std::string& value) {
    uint64_t length = 0;
    if (!varint(length)) return false;
    if (length > kMaxStringBytes) {
      return fail(fmt::format("string of {} bytes (at most {})", length, kMaxStringBytes));
    }
    if (length > bytes_.size() - at_) return past_end();
    value.assign(bytes_.substr(at_, static_cast<size_t>(length)));
    at_ += static_cast<size_t>(length);
    return true;
  }

 private:
  bool past_end() { return fail("record runs past the end of the chunk"); }

  std::string_view bytes_;
  size_t at_ = 0;
  std::string problem_;
};

struct DctxFree {
  void operator()(ZSTD_DCtx* context) const { ZSTD_freeDCtx(context); }
};

class TraceReader {
 public:
  TraceReader(ByteSource& source, TraceVisitor& visitor, std::string_view name)
      : source_(source), visitor_(visitor), name_(name) {}

  Result<TraceEnd> run();

 private:
  Error read_error(const std::string& what) const {
    return make_error(fmt::format("{}: cannot read: {}", name_, what));
  }
  Error corrupt(uint64_t chunk_offset, std::string_view what) const {
    return make_error(fmt::format("{}: corrupt chunk at byte {}: {}", name_, chunk_offset, what));
  }

  Status check_header();
  // Decompresses the chunk body into raw_; an error message (without the name) on failure.
  bool decompress(std::string_view compressed, uint32_t raw_size, std::string& problem);
  bool read_record(Cursor& cursor);
  bool read_event(Cursor& cursor, Tag tag);
  bool read_stack_id(Cursor& cursor, uint32_t& stack);
  bool read_space(Cursor& cursor, Space& space);

  ByteSource& source_;
  TraceVisitor& visitor_;
  std::string_view name_;
  std::unique_ptr<ZSTD_DCtx, DctxFree> dctx_;
  std::vector<char> raw_;
  uint64_t stacks_defined_ = 0;
  uint64_t heap_count_ = 0;  // HEAP_ALLOC/HEAP_REALLOC records so far: the last heap id
  uint64_t time_ns_ = 0;
  bool last_was_end_ = false;  // the last record was END or EXEC
  std::string end_reason_;
  TraceEnd end_;
  ProcessInfo process_;  // reused between records to spare allocations
  Module module_;
};

Status TraceReader::check_header() {
  std::string_view header;
  std::string error;
  if (!source_.take(kHeaderBytes, header, error)) return read_error(error);
  if (header.size() < kHeaderBytes ||
      std::memcmp(header.data(), kTraceMagic, sizeof kTraceMagic) != 0) {
    return make_error(fmt::format("{}: not a memscope allocation trace", name_));
  }
  const uint32_t version = load_u32_le(header, 8);
  if (version != kTraceFormatVersion) {
    return make_error(fmt::format("{}: trace format version {}; this memscope reads version {}",
                                  name_, version, kTraceFormatVersion));
  }
  // Bytes 12..15 are reserved flags: a change that matters would change the version.
  return Status::success();
}

bool TraceReader::decompress(std::string_view compressed, uint32_t raw_size, std::string& problem) {
  const size_t frame_size = ZSTD_findFrameCompressedSize(compressed.data(), compressed.size());
  if (ZSTD_isError(frame_size) != 0) {
    problem = fmt::format("bad zstd frame ({})", ZSTD_getErrorName(frame_size));
    return false;
  }
  if (frame_size != compressed.size()) {
    problem = fmt::format("{} bytes follow the zstd frame", compressed.size() - frame_size);
    return false;
  }
  if (!dctx_) {
    dctx_.reset(ZSTD_createDCtx());
    if (!dctx_) {
      problem = "out of memory for the zstd decoder";
      return false;
    }
  }
  if (raw_.size() < raw_size) raw_.resize(raw_size);
  const size_t got =
      ZSTD_decompressDCtx(dctx_.get(), raw_.data(), raw_size, compressed.data(), compressed.size());
  if (ZSTD_isError(got) != 0) {
    problem = ZSTD_getErrorCode(got) == ZSTD_error_dstSize_tooSmall
                  ? fmt::format("decompresses to more than the {} bytes its header says", raw_size)
                  : fmt::format("bad zstd frame ({})", ZSTD_getErrorName(got));
    return false;
  }
  if (got != raw_size) {
    problem = fmt::format("decompresses to {} bytes, its header says {}", got, raw_size);
    return false;
  }
  return true;
}

Result<TraceEnd> TraceReader::run() {
  if (Status header = check_header(); !header) return header.error();
  const uint64_t max_compressed = ZSTD_compressBound(kMaxChunkRawBytes);
  uint64_t offset = kHeaderBytes;
  std::string error;
  for (;;) {
    std::string_view chunk_header;
    if (!source_.take(kChunkHeaderBytes, chunk_header, error)) return read_error(error);
    if (chunk_header.empty()) break;
    if (chunk_header.size() < kChunkHeaderBytes) {
      end_.truncated = true;
      break;
    }
    const uint32_t compressed_size = load_u32_le(chunk_header, 0);
    const uint32_t raw_size = load_u32_le(chunk_header, 4);
    if (compressed_size == 0 || compressed_size > max_compressed) {
      return corrupt(offset, fmt::format("compressed size {} (must be 1..{})", compressed_size,
                                         max_compressed));
    }
    if (raw_size == 0 || raw_size > kMaxChunkRawBytes) {
      return corrupt(
          offset, fmt::format("uncompressed size {} (must be 1..{})", raw_size, kMaxChunkRawBytes));
    }
    std::string_view compressed;
    if (!source_.take(compressed_size, compressed, error)) return read_error(error);
    if (compressed.size() < compressed_size) {
      end_.truncated = true;
      break;
    }
    std::string problem;
    if (!decompress(compressed, raw_size, problem)) return corrupt(offset, problem);

    Cursor cursor(std::string_view(raw_.data(), raw_size));
    while (!cursor.at_end()) {
      const size_t record_offset = cursor.offset();
      if (!read_record(cursor)) {
        return corrupt(offset, fmt::format("{} (record at uncompressed byte {})", cursor.problem(),
                                           record_offset));
      }
    }
    ++end_.chunks;
    offset += kChunkHeaderBytes + compressed_size;
  }
  end_.complete = last_was_end_;
  if (end_.complete) end_.end_reason = end_reason_;
  visitor_.on_end(end_);
  return end_;
}

bool TraceReader::read_space(Cursor& cursor, Space& space) {
  uint64_t value = 0;
  if (!cursor.varint(value)) return false;
  if (value >= kSpaceCount) return cursor.fail(fmt::format("unknown space {}", value));
  space = static_cast<Space>(value);
  return true;
}

bool TraceReader::read_stack_id(Cursor& cursor, uint32_t& stack) {
  uint64_t value = 0;
  if (!cursor.varint(value)) return false;
  if (value > stacks_defined_) {
    return cursor.fail(fmt::format("stack {} is not defined ({} are)", value, stacks_defined_));
  }
  stack = static_cast<uint32_t>(value);  // stacks_defined_ never exceeds UINT32_MAX
  return true;
}

bool TraceReader::read_event(Cursor& cursor, Tag tag) {
  Event event;
  event.time_ns = time_ns_;
  switch (tag) {
    case Tag::alloc:
      event.kind = EventKind::alloc;
      if (!read_space(cursor, event.space) || !cursor.varint(event.address) ||
          !cursor.varint(event.size) || !read_stack_id(cursor, event.stack)) {
        return false;
      }
      break;
    case Tag::free:
      event.kind = EventKind::free;
      if (!read_space(cursor, event.space) || !cursor.varint(event.address)) return false;
      break;
    case Tag::realloc:
      event.kind = EventKind::realloc;
      event.space = Space::heap;
      if (!cursor.varint(event.old_address) || !cursor.varint(event.address) ||
          !cursor.varint(event.size) || !read_stack_id(cursor, event.stack)) {
        return false;
      }
      break;
    case Tag::unmap:
      event.kind = EventKind::unmap;
      if (!read_space(cursor, event.space) || !cursor.varint(event.address) ||
          !cursor.varint(event.size)) {
        return false;
      }
      break;
    case Tag::remap:
      event.kind = EventKind::remap;
      event.space = Space::mmap;
      if (!cursor.varint(event.old_address) || !cursor.varint(event.old_size) ||
          !cursor.varint(event.address) || !cursor.varint(event.size) ||
          !read_stack_id(cursor, event.stack)) {
        return false;
      }
      break;
    case Tag::heap_alloc:
      event.kind = EventKind::alloc;
      if (!cursor.varint(event.size) || !read_stack_id(cursor, event.stack)) return false;
      event.address = kHeapIdBit | ++heap_count_;
      break;
    case Tag::heap_free: {
      event.kind = EventKind::free;
      uint64_t age = 0;
      if (!cursor.varint(age)) return false;
      if (age >= heap_count_) {
        return cursor.fail(
            fmt::format("heap free of age {} ({} heap allocations so far)", age, heap_count_));
      }
      event.address = kHeapIdBit | (heap_count_ - age);
      break;
    }
    case Tag::heap_realloc: {
      event.kind = EventKind::realloc;
      uint64_t old_field = 0;
      if (!cursor.varint(old_field) || !cursor.varint(event.size) ||
          !read_stack_id(cursor, event.stack)) {
        return false;
      }
      if (old_field > heap_count_) {
        return cursor.fail(fmt::format("heap realloc of age {} ({} heap allocations so far)",
                                       old_field - 1, heap_count_));
      }
      event.old_address = old_field == 0 ? 0 : kHeapIdBit | (heap_count_ - (old_field - 1));
      event.address = kHeapIdBit | ++heap_count_;
      break;
    }
    default:
      return cursor.fail("not an event");  // not reached: read_record dispatches events only
  }
  ++end_.events;
  visitor_.on_event(event);
  return true;
}

bool TraceReader::read_record(Cursor& cursor) {
  uint8_t tag_byte = 0;
  if (!cursor.byte(tag_byte)) return false;
  const auto tag = static_cast<Tag>(tag_byte);
  bool ends = false;
  switch (tag) {
    case Tag::process:
      if (!cursor.varint(process_.pid) || !cursor.varint(process_.ppid) ||
          !cursor.varint(process_.start_unix_ns) || !cursor.string(process_.exe) ||
          !cursor.string(process_.cmdline)) {
        return false;
      }
      visitor_.on_process(process_);
      break;
    case Tag::module: {
      uint64_t count = 0;
      if (!cursor.string(module_.path) || !cursor.varint(module_.base) || !cursor.varint(count)) {
        return false;
      }
      module_.ranges.clear();
      for (uint64_t i = 0; i < count; ++i) {  // each pair takes 2 bytes or more: no huge loop
        uint64_t start = 0;
        uint64_t size = 0;
        if (!cursor.varint(start) || !cursor.varint(size)) return false;
        module_.ranges.emplace_back(start, size);
      }
      visitor_.on_module(module_);
      break;
    }
    case Tag::stack: {
      StackNode node;
      uint64_t parent = 0;
      if (!cursor.varint(parent) || !cursor.varint(node.ip)) return false;
      if (stacks_defined_ == UINT32_MAX) return cursor.fail("more than 2^32-1 stack nodes");
      const uint64_t id = stacks_defined_ + 1;
      if (parent >= id) {
        return cursor.fail(
            fmt::format("stack {} has parent {} (must be below its id)", id, parent));
      }
      node.parent = static_cast<uint32_t>(parent);
      stacks_defined_ = id;
      visitor_.on_stack(static_cast<uint32_t>(id), node);
      break;
    }
    case Tag::time:
      if (!cursor.varint(time_ns_)) return false;
      end_.last_time_ns = time_ns_;
      break;
    case Tag::alloc:
    case Tag::free:
    case Tag::realloc:
    case Tag::unmap:
    case Tag::remap:
    case Tag::heap_alloc:
    case Tag::heap_free:
    case Tag::heap_realloc:
      if (!read_event(cursor, tag)) return false;
      break;
    case Tag::exec: {
      std::string path;
      if (!cursor.string(path)) return false;
      end_reason_ = fmt::format("exec {}", path);
      ends = true;
      break;
    }
    case Tag::end: {
      uint64_t reason = 0;
      if (!cursor.varint(reason)) return false;
      if (reason > 1) return cursor.fail(fmt::format("unknown end reason {}", reason));
      end_reason_ = reason == 0 ? "exit" : "_exit";
      ends = true;
      break;
    }
    default:
      return cursor.fail(fmt::format("unknown record tag 0x{:02x}", tag_byte));
  }
  last_was_end_ = ends;
  return true;
}

// "<digits>" as a number; false when empty, not all digits, or too big.
bool parse_number(std::string_view text, uint64_t& value) {
  if (text.empty()) return false;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc() && end == text.data() + text.size();
}

}  // namespace

Result<TraceEnd> read_trace_bytes(std::string_view bytes, TraceVisitor& visitor,
                                  std::string_view name) {
  MemorySource source(bytes);
  return TraceReader(source, visitor, name).run();
}

Result<TraceEnd> read_trace_file(const std::string& path, TraceVisitor& visitor) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error(fmt::format("{}: cannot open: {}", path, errno_text(errno)));
  FileSource source(fd);
  return TraceReader(source, visitor, path).run();
}

std::vector<std::string> find_trace_files(const std::string& prefix) {
  namespace fs = std::filesystem;
  const fs::path prefix_path(prefix);
  const std::string base = prefix_path.filename().string();
  const fs::path directory = prefix_path.parent_path();
  std::vector<std::tuple<uint64_t, uint64_t, std::string>> found;  // pid, n, path
  if (base.empty()) return {};
  std::error_code error;
  fs::directory_iterator it(directory.empty() ? fs::path(".") : directory, error);
  for (; !error && it != fs::directory_iterator(); it.increment(error)) {
    std::error_code type_error;
    if (!it->is_regular_file(type_error)) continue;  // follows symlinks
    const std::string name = it->path().filename().string();
    constexpr std::string_view kSuffix = ".mst";
    if (name.size() <= base.size() + 1 + kSuffix.size() ||
        name.compare(0, base.size(), base) != 0 || name[base.size()] != '.' ||
        !name.ends_with(kSuffix)) {
      continue;
    }
    // What lies between "<base>." and ".mst": "<pid>" or "<pid>.<n>".
    std::string_view numbers(name);
    numbers.remove_prefix(base.size() + 1);
    numbers.remove_suffix(kSuffix.size());
    const size_t dot = numbers.find('.');
    uint64_t pid = 0;
    uint64_t n = 0;
    if (dot == std::string_view::npos) {
      if (!parse_number(numbers, pid)) continue;
    } else if (!parse_number(numbers.substr(0, dot), pid) ||
               !parse_number(numbers.substr(dot + 1), n)) {
      continue;
    }
    found.emplace_back(pid, n, (directory / name).string());
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> paths;
  paths.reserve(found.size());
  for (auto& entry : found) paths.push_back(std::move(std::get<2>(entry)));
  return paths;
}

}  // namespace memscope::alloc
