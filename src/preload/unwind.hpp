// Call stacks for the tracker's events: libunwind's unw_backtrace, outside the writer lock, with
// the frames of libmemscope_track.so itself dropped.
#pragma once

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include <cstddef>
#include <cstdint>

namespace memscope::track {

inline constexpr size_t kMaxFrames = 128;  // the innermost ones are kept

struct Frames {
  const uint64_t* ips = storage;  // innermost first
  size_t count = 0;
  uint64_t storage[kMaxFrames];
};

// This library's address range, learnt once at start (find_own_range).
extern uintptr_t g_own_begin;
extern uintptr_t g_own_end;
void find_own_range();
// Whether the dynamic loader is on the stack (dlopen, TLS set-up: its locks may be held).
bool called_by_loader(const Frames& frames);

// Always inlined, so the unwinding starts in the hook itself: each frame of the tracker's own
// between the hook and unw_backtrace would be one more frame to unwind per allocation.
__attribute__((always_inline)) inline void capture(Frames& frames) {
  void* raw[kMaxFrames + 16];
  const int n = unw_backtrace(raw, static_cast<int>(kMaxFrames + 16));
  size_t count = 0;
  for (int i = 0; i < n && count < kMaxFrames; ++i) {
    const auto ip = reinterpret_cast<uintptr_t>(raw[i]);
    if (ip >= g_own_begin && ip < g_own_end) continue;
    frames.storage[count++] = ip;
  }
  frames.count = count;
}

}  // namespace memscope::track
