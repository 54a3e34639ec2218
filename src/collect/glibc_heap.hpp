// The glibc heap of a process running under the allocation tracker (`memscope fragment
// --pid`): the protocol that asks its tracker for a report (docs/tracker-format.md, "Heap
// reports"), and a pure parser of the answer — a `mallinfo2 ...` line, then malloc_info(0)'s
// XML as glibc 2.33+ writes it. The answer is untrusted: bounded, and every malformed input is
// an error naming the byte offset.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace memscope::glibc_heap {

// One <size> or <unsorted> element: free chunks of sizes [from, to], `total` bytes in `count`.
struct SizeBucket {
  bool unsorted = false;
  uint64_t from_bytes = 0;
  uint64_t to_bytes = 0;
  uint64_t total_bytes = 0;
  uint64_t count = 0;
};

// One <heap nr=N>: an arena (nr 0 is the main arena).
struct Arena {
  uint64_t number = 0;
  std::vector<SizeBucket> sizes;  // in glibc's order: fast bins first, unsorted last
  uint64_t fast_count = 0;        // <total type="fast">: chunks in fast bins
  uint64_t fast_bytes = 0;
  uint64_t rest_count = 0;  // <total type="rest">: the other free chunks plus the top chunk
  uint64_t rest_bytes = 0;
  uint64_t system_bytes = 0;      // <system type="current">
  uint64_t system_max_bytes = 0;  // <system type="max">
  uint64_t subheaps = 0;          // <aspace type="subheaps"> (non-main arenas)

  uint64_t free_bytes() const { return fast_bytes + rest_bytes; }  // top chunk included
  uint64_t in_use_bytes() const {
    return system_bytes > free_bytes() ? system_bytes - free_bytes() : 0;
  }
  uint64_t free_chunks() const;     // in bins (fast, unsorted, small, large), not the top
  uint64_t top_chunk_bytes() const;  // free bytes not in any bin
  // What malloc_trim(0) would give back from this arena (an estimate: trim_estimate_bytes).
  uint64_t trim_estimate_bytes() const;
};

// glibc's mallinfo2(): all arenas together.
struct MallInfo2 {
  uint64_t arena = 0;     // bytes from the system (sbrk and arena heaps), not mmapped chunks
  uint64_t ordblks = 0;   // free chunks, not fast bins (the main arena's top counted)
  uint64_t smblks = 0;    // fast-bin chunks
  uint64_t hblks = 0;     // mmapped chunks
  uint64_t hblkhd = 0;    // bytes in mmapped chunks
  uint64_t fsmblks = 0;   // bytes in fast bins
  uint64_t uordblks = 0;  // bytes in use
  uint64_t fordblks = 0;  // bytes free
  uint64_t keepcost = 0;  // the main arena's top chunk: what trimming the top can release
};

// The <malloc> element's own totals (after the heaps).
struct Totals {
  uint64_t fast_count = 0;
  uint64_t fast_bytes = 0;
  uint64_t rest_count = 0;
  uint64_t rest_bytes = 0;
  uint64_t mmap_count = 0;
  uint64_t mmap_bytes = 0;
  uint64_t system_bytes = 0;
  uint64_t system_max_bytes = 0;
};

struct HeapReport {
  MallInfo2 mallinfo;
  std::vector<Arena> arenas;
  Totals totals;
};

// Limits on the answer: glibc writes at most ~140 buckets per arena.
inline constexpr size_t kMaxAnswerBytes = size_t{64} << 20;
inline constexpr size_t kMaxArenas = 65536;
inline constexpr size_t kMaxBucketsPerArena = 4096;
inline constexpr uint64_t kPageBytes = 4096;

// The answer file's text. Errors: "offset N: what is wrong".
Result<HeapReport> parse_heap_report(std::string_view text);
Result<MallInfo2> parse_mallinfo2_line(std::string_view line);

// The estimate of the pages malloc_trim can hand back inside free chunks of one bucket: glibc
// madvises the whole pages of each free chunk, after the chunk's header; counting two pages
// per chunk lost to alignment and headers, max(0, total − count × 2 × 4096). A lower bound.
uint64_t bucket_trim_estimate(const SizeBucket& bucket);
// keepcost (the main arena's top, counted whole) + every arena's bucket estimates.
uint64_t trim_estimate_bytes(const HeapReport& report);

// ---- asking a process ----

// NAME's value in /proc/PID/environ's text (NUL-separated NAME=VALUE entries).
std::optional<std::string> environ_value(std::string_view environ, std::string_view name);

// "PREFIX.<pid>.heap-request" and "PREFIX.<pid>.heap".
std::string request_path(const std::string& prefix, int pid);
std::string answer_path(const std::string& prefix, int pid);

enum class Outcome { answered, no_process, no_permission, not_tracked, no_answer, failed };

struct Answer {
  Outcome outcome = Outcome::failed;
  std::string text;     // answered: the answer file's content
  std::string message;  // otherwise: one line naming the process and what is wrong
};

// Reads PID's MEMSCOPE_TRACK_OUTPUT from `proc_root`/PID/environ, creates the request, and
// polls every 20 ms up to `wait_seconds` for the answer, which it reads and removes (on a
// timeout the request is removed).
Answer ask_tracked_process(const std::string& proc_root, int pid, double wait_seconds);

}  // namespace memscope::glibc_heap
