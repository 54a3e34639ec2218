// libFuzzer target: an allocation trace (.mst) is untrusted input. Whatever the bytes, reading
// it must end in records plus a TraceEnd or a one-line error naming the file, never a crash, an
// exception or a record that breaks the format's promises (stack parents and event stacks
// defined before use, known spaces).
//
// Input that does not start with the trace magic is taken as the records of one chunk and
// wrapped into a valid file first: mutations of compressed bytes rarely get past zstd, so the
// record decoder is fuzzed directly this way (seeds: *.records in the corpus).
#include <zstd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "collect/alloc_trace.hpp"

namespace {

using memscope::alloc::Event;
using memscope::alloc::Module;
using memscope::alloc::ProcessInfo;
using memscope::alloc::StackNode;

class CheckingVisitor : public memscope::alloc::TraceVisitor {
 public:
  void on_process(const ProcessInfo& process) override {
    checksum += process.pid + process.ppid + process.start_unix_ns + process.exe.size() +
                process.cmdline.size();
  }
  void on_module(const Module& module) override {
    checksum += module.path.size() + module.base;
    for (const auto& [start, size] : module.ranges) checksum += start ^ size;
  }
  void on_stack(uint32_t id, const StackNode& node) override {
    if (id != stacks + 1 || node.parent >= id) __builtin_trap();
    stacks = id;
    checksum += node.ip;
  }
  void on_event(const Event& event) override {
    if (event.stack > stacks) __builtin_trap();
    if (static_cast<uint8_t>(event.space) >= memscope::alloc::kSpaceCount) __builtin_trap();
    checksum += event.address + event.size + event.old_address + event.old_size;
    ++events;
  }

  uint64_t checksum = 0;
  uint64_t events = 0;
  uint32_t stacks = 0;
};

void append_u32_le(std::string& out, uint32_t value) {
  for (int i = 0; i < 4; ++i) out += static_cast<char>((value >> (8 * i)) & 0xff);
}

// A version-1 file holding `records` as its one chunk.
std::string wrapped(std::string_view records) {
  std::string file(memscope::alloc::kTraceMagic, sizeof memscope::alloc::kTraceMagic);
  append_u32_le(file, memscope::alloc::kTraceFormatVersion);
  append_u32_le(file, 0);
  if (records.empty() || records.size() > memscope::alloc::kMaxChunkRawBytes) return file;
  std::string frame(ZSTD_compressBound(records.size()), '\0');
  const size_t frame_size =
      ZSTD_compress(frame.data(), frame.size(), records.data(), records.size(), 1);
  if (ZSTD_isError(frame_size) != 0) __builtin_trap();
  append_u32_le(file, static_cast<uint32_t>(frame_size));
  append_u32_le(file, static_cast<uint32_t>(records.size()));
  file.append(frame.data(), frame_size);
  return file;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  CheckingVisitor visitor;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::string file;
  if (size < sizeof memscope::alloc::kTraceMagic ||
      std::memcmp(data, memscope::alloc::kTraceMagic, sizeof memscope::alloc::kTraceMagic) != 0) {
    file = wrapped(bytes);
    bytes = file;
  }
  const auto end = memscope::alloc::read_trace_bytes(bytes, visitor, "fuzz.mst");
  if (end.ok()) {
    if (end->events != visitor.events) __builtin_trap();
    if (end->complete != !end->end_reason.empty()) __builtin_trap();
  } else {
    const std::string_view message = end.message();
    // One line, naming the file.
    if (!message.starts_with("fuzz.mst: ") || message.find('\n') != std::string_view::npos) {
      __builtin_trap();
    }
  }
  return 0;
}
