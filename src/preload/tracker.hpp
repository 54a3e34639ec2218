// The tracker's process-wide state and bookkeeping, shared by the hooks (hooks.cpp): the real
// functions, the thread-local recursion guard, lazy initialization, and the record_* functions
// that unwind, take the writer lock and append records. Internal to libmemscope_track.so.
#pragma once

#include <errno.h>
#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core/alloc_trace.hpp"
#include "preload/unwind.hpp"

namespace memscope::track {

// The functions the hooks stand in front of (dlsym(RTLD_NEXT, ...)).
struct RealFunctions {
  void* (*malloc)(size_t);
  void (*free)(void*);
  void* (*calloc)(size_t, size_t);
  void* (*realloc)(void*, size_t);
  void* (*reallocarray)(void*, size_t, size_t);
  int (*posix_memalign)(void**, size_t, size_t);
  void* (*aligned_alloc)(size_t, size_t);
  void* (*memalign)(size_t, size_t);
  void* (*valloc)(size_t);
  void* (*pvalloc)(size_t);
  void* (*mmap)(void*, size_t, int, int, int, off_t);
  void* (*mmap64)(void*, size_t, int, int, int, off64_t);
  int (*munmap)(void*, size_t);
  void* (*mremap)(void*, size_t, size_t, int, ...);
  int (*execve)(const char*, char* const[], char* const[]);
  int (*execv)(const char*, char* const[]);
  int (*execvp)(const char*, char* const[]);
  int (*execvpe)(const char*, char* const[], char* const[]);
  int (*fexecve)(int, char* const[], char* const[]);
  void (*exit_now)(int);   // _exit
  void (*exit_now2)(int);  // _Exit
};
extern RealFunctions g_real;

// Resolves g_real. False only while this very thread is resolving (dlsym calling malloc): the
// caller then serves the request from the bootstrap arena.
bool resolve_real();

enum State : int { kUninit, kInitializing, kTracking, kOff };
extern std::atomic<int> g_state;
// A word on a MADV_WIPEONFORK page (null until armed): 0 in any forked child.
extern std::atomic<std::atomic<int>*> g_in_this_process;
// Set while this thread is inside the tracker's own code: hooks reached from there only call
// the real function.
extern __thread bool t_busy __attribute__((tls_model("initial-exec")));

// Initializes on first use; false when this call should not be recorded.
bool start_tracking();
inline bool should_track() {
  if (t_busy) return false;
  const int state = g_state.load(std::memory_order_acquire);
  if (state == kTracking) {
    const std::atomic<int>* guard = g_in_this_process.load(std::memory_order_relaxed);
    if (guard == nullptr || guard->load(std::memory_order_relaxed) != 0) return true;
    g_state.store(kOff, std::memory_order_relaxed);  // a child forked without the atfork handlers
    return false;
  }
  return state == kUninit && start_tracking();
}

// Bookkeeping (callers checked should_track()); each keeps errno as it found it. The ones that
// take a call stack unwind in the (always inlined) wrapper, so in the hook itself, and go on in
// the *_with function, which clears t_busy and restores `saved_errno` (or the real call's).
void record_alloc_with(alloc::Space space, uint64_t address, uint64_t size, const Frames& frames,
                       int saved_errno);
void* tracked_realloc_with(void* old_address, size_t size, const Frames& frames, int saved_errno);
void* tracked_mremap_with(void* old_address, size_t old_size, size_t new_size, int flags,
                          void* new_address, const Frames& frames, int saved_errno);

__attribute__((always_inline)) inline void record_alloc(alloc::Space space, uint64_t address,
                                                        uint64_t size) {
  const int saved_errno = errno;
  t_busy = true;
  Frames frames;
  capture(frames);
  record_alloc_with(space, address, size, frames, saved_errno);
}
void record_free(alloc::Space space, uint64_t address);
void record_unmap(alloc::Space space, uint64_t address, uint64_t length);
// realloc: the old block's id is taken out under the lock before the real call, which runs
// outside it. mremap: the real call runs inside the writer lock, so no other thread can reuse
// the freed range before the record says it was freed.
__attribute__((always_inline)) inline void* tracked_realloc(void* old_address, size_t size) {
  const int saved_errno = errno;
  t_busy = true;
  Frames frames;
  capture(frames);
  return tracked_realloc_with(old_address, size, frames, saved_errno);
}
__attribute__((always_inline)) inline void* tracked_mremap(void* old_address, size_t old_size,
                                                           size_t new_size, int flags,
                                                           void* new_address) {
  const int saved_errno = errno;
  t_busy = true;
  Frames frames;
  capture(frames);
  return tracked_mremap_with(old_address, old_size, new_size, flags, new_address, frames,
                             saved_errno);
}

// exec: flushes and writes EXEC, and holds the writer lock until exec_failed() (if the exec
// returns). Returns whether the lock is held.
bool before_exec(const char* path, size_t path_len);
void exec_failed(bool held);
// _exit/_Exit (reason 1) and normal exit (reason 0): END, flush, stop recording.
void finish(uint64_t reason);

}  // namespace memscope::track
