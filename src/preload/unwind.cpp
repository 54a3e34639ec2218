#include "preload/unwind.hpp"

#include <link.h>

namespace memscope::track {

uintptr_t g_own_begin = 0;
uintptr_t g_own_end = 0;

namespace {

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

}  // namespace

void find_own_range() { dl_iterate_phdr(find_own_segments, nullptr); }

}  // namespace memscope::track
