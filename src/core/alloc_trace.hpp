// Value types of the allocation tracker's traces (docs/tracker-format.md): what the reader in
// collect/alloc_trace produces and analyze/alloc_sites consumes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace memscope::alloc {

inline constexpr uint32_t kTraceFormatVersion = 1;
inline constexpr char kTraceMagic[8] = {'M', 'S', 'T', 'R', 'A', 'C', 'E', '\0'};
inline constexpr uint32_t kMaxChunkRawBytes = 4u << 20;
inline constexpr uint32_t kMaxStringBytes = 4096;

// Record tags.
enum class Tag : uint8_t {
  process = 0x01,
  module = 0x02,
  stack = 0x03,
  time = 0x04,
  alloc = 0x10,
  free = 0x11,
  realloc = 0x12,
  unmap = 0x13,
  remap = 0x14,
  heap_alloc = 0x15,
  heap_free = 0x16,
  heap_realloc = 0x17,
  exec = 0x20,
  end = 0x7F,
};

// Heap blocks recorded with HEAP_* records are named by allocation id, not address: the reader
// gives them this bit plus the id as Event::address (user-space addresses never have it).
inline constexpr uint64_t kHeapIdBit = uint64_t{1} << 63;

// Where an allocation lives (docs/tracker-format.md, "Spaces").
enum class Space : uint8_t {
  heap = 0,
  mmap = 1,
  cuda = 2,
  cuda_driver = 3,
  cuda_physical = 4,
  cuda_mapping = 5,
};
inline constexpr uint8_t kSpaceCount = 6;

inline std::string_view space_name(Space space) {
  switch (space) {
    case Space::heap: return "heap";
    case Space::mmap: return "mmap";
    case Space::cuda: return "cuda";
    case Space::cuda_driver: return "cuda-driver";
    case Space::cuda_physical: return "cuda-physical";
    case Space::cuda_mapping: return "cuda-mapping";
  }
  return "unknown";
}
// "host", "gpu", or "gpu-mapping" (mapped ranges: not counted in totals).
inline std::string_view memory_kind(Space space) {
  switch (space) {
    case Space::heap:
    case Space::mmap: return "host";
    case Space::cuda:
    case Space::cuda_driver:
    case Space::cuda_physical: return "gpu";
    case Space::cuda_mapping: return "gpu-mapping";
  }
  return "unknown";
}

// The last component of a path ("/usr/lib/libc.so.6" → "libc.so.6"): how frames, modules and
// programs are shown.
inline std::string_view file_name_of(std::string_view path) {
  const size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

struct ProcessInfo {
  uint64_t pid = 0;
  uint64_t ppid = 0;
  uint64_t start_unix_ns = 0;
  std::string exe;
  std::string cmdline;
};

// A loaded ELF object: load bias and the absolute ranges of its PT_LOAD segments.
struct Module {
  std::string path;
  uint64_t base = 0;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;  // (start, size)
};

// Stack node `id` (1-based, in order of appearance): its frame's ip and the caller-side node.
struct StackNode {
  uint32_t parent = 0;
  uint64_t ip = 0;
};

enum class EventKind : uint8_t { alloc, free, realloc, unmap, remap };

// One allocation event. alloc: address/size/stack. free: address. realloc: old_address freed
// (0: none), address/size allocated. unmap: [address, address+size) released. remap:
// [old_address, +old_size) becomes [address, +size).
struct Event {
  EventKind kind = EventKind::alloc;
  Space space = Space::heap;
  uint64_t time_ns = 0;  // since the trace started
  uint64_t address = 0;
  uint64_t size = 0;
  uint64_t old_address = 0;
  uint64_t old_size = 0;
  uint32_t stack = 0;
};

// How a trace ended.
struct TraceEnd {
  bool complete = false;   // the last record is END or EXEC
  bool truncated = false;  // the file ends inside a chunk (later data lost)
  std::string end_reason;  // "exit", "_exit", "exec PATH", or "" when incomplete
  uint64_t last_time_ns = 0;
  uint64_t events = 0;
  uint64_t chunks = 0;
};

// One symbolized stack frame (collect/symbolize fills it; reports print it).
struct Frame {
  uint64_t ip = 0;            // return address as recorded
  std::string function;       // demangled; "" when unknown
  std::string file;           // source file, "" when no line info
  uint32_t line = 0;
  std::string module;         // path of the ELF object, "" when no module covers ip
  uint64_t module_offset = 0; // ip relative to the module's load bias
  bool python_interpreter = false;  // a frame of the Python interpreter (python3*, libpython3*)
};

// Receives a trace's records in file order (collect/alloc_trace's reader drives it).
class TraceVisitor {
 public:
  virtual ~TraceVisitor() = default;
  virtual void on_process(const ProcessInfo& /*process*/) {}
  virtual void on_module(const Module& /*module*/) {}
  virtual void on_stack(uint32_t /*id*/, const StackNode& /*node*/) {}
  virtual void on_event(const Event& /*event*/) {}
  // After the last record the reader could use (also for a truncated file).
  virtual void on_end(const TraceEnd& /*end*/) {}
};

}  // namespace memscope::alloc
