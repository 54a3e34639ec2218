// Leak sites from an allocation trace: allocations still live at the end, and sites whose live
// bytes grow through the run, grouped by call stack. Pure: the trace reaches it through a
// replay function (collect/alloc_trace reads the file), stacks stay ids until a report
// symbolizes them.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "core/alloc_trace.hpp"

namespace memscope::alloc {

// Stack nodes as the trace defines them; expands an id into its frames.
class StackTable {
 public:
  void add(uint32_t id, const StackNode& node);
  // Return addresses, innermost first; empty for id 0 or an unknown id.
  std::vector<uint64_t> frames(uint32_t id) const;
  size_t size() const { return nodes_.size(); }

 private:
  std::vector<StackNode> nodes_;  // nodes_[id - 1]
};

struct SiteParams {
  size_t growth_points = 20;  // samples of each site's live bytes across the run
};

// One call stack (and space) that allocated.
struct Site {
  uint32_t stack = 0;
  Space space = Space::heap;
  uint64_t leaked_bytes = 0;   // still live when the trace ends
  uint64_t leaked_count = 0;
  uint64_t peak_bytes = 0;     // live at the moment the trace's total (host + gpu) peaked
  uint64_t max_live_bytes = 0; // this site's own maximum
  uint64_t allocated_bytes = 0;  // over the whole run
  uint64_t allocated_count = 0;
  double first_seen_seconds = 0;  // first and last allocation from this stack
  double last_seen_seconds = 0;
  std::vector<uint64_t> live_bytes_over_time;  // at SiteReport::growth_times_seconds
  bool growing = false;  // live bytes rise through the run (not only at the end)
};

struct SiteReport {
  std::vector<Site> sites;  // leaked bytes descending, then max live bytes, then stack id
  ProcessInfo process;
  std::vector<Module> modules;
  StackTable stacks;
  TraceEnd end;
  double duration_seconds = 0;
  double peak_seconds = 0;            // when host + gpu live bytes peaked
  uint64_t peak_host_bytes = 0;       // live at that moment
  uint64_t peak_gpu_bytes = 0;
  uint64_t end_host_bytes = 0;        // live at the end
  uint64_t end_gpu_bytes = 0;
  uint64_t events = 0;
  uint64_t unknown_frees = 0;         // frees of addresses never seen allocated
  std::vector<double> growth_times_seconds;
};

// Replays the trace through `replay` (called twice: once for the run, once up to the peak).
SiteReport analyze_sites(const std::function<void(TraceVisitor&)>& replay,
                         const SiteParams& params = {});

// Whether a symbolized function is part of an allocator rather than its caller: operator
// new/new[], std allocator plumbing, the malloc family, Python's PyMem_/PyObject_ allocators.
bool is_allocator_function(std::string_view function);

// A frame of memscope's tracker, of an allocator (is_allocator_function), or of the Python
// interpreter without a symbol (pymalloc's static functions in a stripped python3).
bool is_allocator_frame(const Frame& frame);

// The frame a site is named after: the innermost frame outside memscope and the allocator
// (the innermost frame when all are allocator frames; -1 when there are none).
int naming_frame(const std::vector<Frame>& frames);

}  // namespace memscope::alloc
