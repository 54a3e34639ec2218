// Memory for the tracker's own tables, straight from the kernel: the library's mmap hook and
// malloc hooks must never see it.
#pragma once

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstddef>

namespace memscope::track {

// Anonymous private read-write pages; nullptr on failure. `noreserve` for big sparse tables.
inline void* map_pages(size_t bytes, bool noreserve = false) {
  const int flags = MAP_PRIVATE | MAP_ANONYMOUS | (noreserve ? MAP_NORESERVE : 0);
  const long result = syscall(SYS_mmap, nullptr, bytes, PROT_READ | PROT_WRITE, flags, -1, 0L);
  if (result == -1) return nullptr;
  return reinterpret_cast<void*>(result);
}

inline void unmap_pages(void* address, size_t bytes) {
  if (address != nullptr) syscall(SYS_munmap, address, bytes);
}

}  // namespace memscope::track
