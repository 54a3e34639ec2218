// The tracker's answer to `memscope fragment --pid` (docs/tracker-format.md, "Heap reports"):
// memscope creates PREFIX.<pid>.heap-request; at most once a second the tracker unlinks it and
// writes glibc's view of the heap (mallinfo2 and malloc_info) to PREFIX.<pid>.heap.tmp, then
// renames that to PREFIX.<pid>.heap. No exceptions; callers hold no writer lock and have set
// t_busy, so the C library's own allocations while answering pass straight through.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>

namespace memscope::track {

inline constexpr uint64_t kHeapCheckIntervalNs = 1'000'000'000;

class HeapReporter {
 public:
  // Names the three files; false (and the reporter stays off) when they do not fit.
  bool init(const char* prefix, uint64_t pid);
  // Answers a pending request, checking at most once per kHeapCheckIntervalNs of `now_ns` (the
  // trace's time: the first check comes a second after the start) over all threads. True when
  // it answered.
  bool poll(uint64_t now_ns);
  // Answers a pending request now: true when there was one and the answer was written.
  bool answer();

  const char* request_path() const { return request_; }
  const char* answer_path() const { return answer_; }

 private:
  static constexpr size_t kPathBytes = 4096 + 64;
  bool ready_ = false;
  std::atomic<uint64_t> last_check_ns_{0};
  char request_[kPathBytes] = {};
  char temporary_[kPathBytes] = {};
  char answer_[kPathBytes] = {};
};

// The answer's text: the line "mallinfo2 arena=N ordblks=N ...", then malloc_info(0)'s XML.
bool write_heap_report(FILE* file);

}  // namespace memscope::track
