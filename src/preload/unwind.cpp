#include "preload/unwind.hpp"

#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <link.h>

namespace memscope::track {

namespace {

uintptr_t g_own_begin = 0;
uintptr_t g_own_end = 0;

void own_range_marker() {}

int find_own_segments(dl_phdr_info* info, size_t /*size*/, void* /*data*/) {
  const auto marker = reinterpret_cast<uintptr_t>(&own_range_marker);
  uintptr_t begin = UINTPTR_MAX;
  uintptr_t end = 0;
  bool mine = false;
  for (size_t i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& header = info->dlpi_phdr[i];
    if (header.p_type != PT_LOAD) continue;
    const uintptr_t start = info->dlpi_addr + header.p_vaddr;
    const uintptr_t stop = start + header.p_memsz;
    if (start < begin) begin = start;
    if (stop > end) end = stop;
    if (marker >= start && marker < stop) mine = true;
  }
  if (!mine) return 0;
  g_own_begin = begin;
  g_own_end = end;
  return 1;
}

bool own_frame(uint64_t ip) { return ip >= g_own_begin && ip < g_own_end; }

}  // namespace

void capture(Frames& frames) {
  void* raw[kMaxFrames + 16];
  const int n = unw_backtrace(raw, static_cast<int>(kMaxFrames + 16));
  size_t count = 0;
  for (int i = 0; i < n && count < kMaxFrames; ++i) {
    const auto ip = reinterpret_cast<uintptr_t>(raw[i]);
    if (own_frame(ip)) continue;
    frames.storage[count++] = ip;
  }
  frames.count = count;
}

void find_own_range() { dl_iterate_phdr(find_own_segments, nullptr); }

}  // namespace memscope::track
