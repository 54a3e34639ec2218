// Call stacks for the tracker's events: libunwind's unw_backtrace, outside the writer lock, with
// the frames of libmemscope_track.so itself dropped.
#pragma once

#include <cstddef>
#include <cstdint>

namespace memscope::track {

inline constexpr size_t kMaxFrames = 128;  // the innermost ones are kept

struct Frames {
  const uint64_t* ips = storage;  // innermost first
  size_t count = 0;
  uint64_t storage[kMaxFrames];
};

// Learns this library's address range (once, at start).
void find_own_range();
void capture(Frames& frames);

}  // namespace memscope::track
