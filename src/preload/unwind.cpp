#include "preload/unwind.hpp"

#include <link.h>

namespace memscope::track {

uintptr_t g_own_begin = 0;
uintptr_t g_own_end = 0;
uintptr_t g_loader_begin = 0;
uintptr_t g_loader_end = 0;

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

// The dynamic loader's range: the module whose file name starts with "ld-" (ld-linux-*.so.2).
int find_loader_segments(dl_phdr_info* info, size_t /*size*/, void* /*data*/) {
  const char* name = info->dlpi_name;
  if (name == nullptr) return 0;
  const char* base = name;
  for (const char* c = name; *c != '\0'; ++c) {
    if (*c == '/') base = c + 1;
  }
  if (base[0] != 'l' || base[1] != 'd' || base[2] != '-') return 0;
  uintptr_t begin = UINTPTR_MAX;
  uintptr_t end = 0;
  for (size_t i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& header = info->dlpi_phdr[i];
    if (header.p_type != PT_LOAD) continue;
    const uintptr_t start = info->dlpi_addr + header.p_vaddr;
    if (start < begin) begin = start;
    if (start + header.p_memsz > end) end = start + header.p_memsz;
  }
  g_loader_begin = begin;
  g_loader_end = end;
  return 1;
}

}  // namespace

void find_own_range() {
  dl_iterate_phdr(find_own_segments, nullptr);
  dl_iterate_phdr(find_loader_segments, nullptr);
}

bool called_by_loader(const Frames& frames) {
  for (size_t i = 0; i < frames.count; ++i) {
    if (frames.ips[i] >= g_loader_begin && frames.ips[i] < g_loader_end) return true;
  }
  return false;
}

}  // namespace memscope::track
