// The functions libmemscope_track.so exports: they stand in front of the C library's allocator,
// mmap, exec and _exit, and the CUDA runtime's and driver's allocation calls, record what they
// did (tracker.hpp) and return exactly what the real function returned, errno included.
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "preload/trace_writer.hpp"
#include "preload/tracker.hpp"

#define MEMSCOPE_EXPORT extern "C" __attribute__((visibility("default")))

namespace memscope::track {

namespace {

using alloc::Space;

// ---- bootstrap: dlsym may allocate before the real allocator is known ----

alignas(64) char g_arena[256 * 1024];
std::atomic<size_t> g_arena_used{0};
constexpr size_t kArenaHeader = 16;  // the block's size sits just before it

bool in_arena(const void* address) {
  const auto value = reinterpret_cast<uintptr_t>(address);
  const auto begin = reinterpret_cast<uintptr_t>(g_arena);
  return value >= begin && value < begin + sizeof g_arena;
}

void* arena_alloc(size_t size, size_t alignment) {
  if (alignment < kArenaHeader) alignment = kArenaHeader;
  if (size > sizeof g_arena) return nullptr;
  const size_t need = size + alignment + kArenaHeader;
  const size_t start = g_arena_used.fetch_add(need, std::memory_order_relaxed);
  if (start + need > sizeof g_arena) {
    errno = ENOMEM;
    return nullptr;
  }
  uintptr_t block = reinterpret_cast<uintptr_t>(g_arena) + start + kArenaHeader;
  block = (block + alignment - 1) & ~(uintptr_t{alignment} - 1);
  std::memcpy(reinterpret_cast<void*>(block - sizeof(size_t)), &size, sizeof size);
  return reinterpret_cast<void*>(block);  // zeroed: the arena is never reused
}

size_t arena_size(const void* address) {
  size_t size = 0;
  std::memcpy(&size, static_cast<const char*>(address) - sizeof(size_t), sizeof size);
  return size;
}

std::atomic<int> g_resolve_phase{0};  // 0: not yet, 1: resolving, 2: done
__thread bool t_resolving __attribute__((tls_model("initial-exec")));

template <typename Function>
void load(Function& function, const char* name) {
  function = reinterpret_cast<Function>(dlsym(RTLD_NEXT, name));
}

// ---- CUDA: looked up on first use, only when the program calls them ----

enum CudaFunction {
  kCudaMalloc, kCudaFree, kCudaMallocAsync, kCudaFreeAsync, kCudaMallocManaged,
  kCuMemAlloc, kCuMemFree, kCuMemCreate, kCuMemRelease, kCuMemMap, kCuMemUnmap, kCudaCount
};
const char* const kCudaNames[kCudaCount] = {
    "cudaMalloc", "cudaFree", "cudaMallocAsync", "cudaFreeAsync", "cudaMallocManaged",
    "cuMemAlloc_v2", "cuMemFree_v2", "cuMemCreate", "cuMemRelease", "cuMemMap", "cuMemUnmap"};
std::atomic<void*> g_cuda[kCudaCount];
constexpr int kCudaErrorInsufficientDriver = 35;
constexpr int kCudaErrorNotInitialized = 3;  // CUDA_ERROR_NOT_INITIALIZED

// A CUDA library loaded with RTLD_LOCAL (a Python extension's dependency) is not in the scope
// dlsym(RTLD_NEXT) searches: look for the function in the loaded library itself, opened by its
// full path with RTLD_NOLOAD (no search, no loading: it only finds what is already there).
struct CudaLibrary {
  const char* prefix;  // of the file name: "libcudart" or "libcuda.so"
  char path[alloc::kMaxStringBytes + 1];
};

int find_cuda_library(dl_phdr_info* info, size_t /*size*/, void* data) {
  auto* library = static_cast<CudaLibrary*>(data);
  const char* name = info->dlpi_name;
  if (name == nullptr || name[0] == '\0') return 0;
  const char* base = std::strrchr(name, '/');
  base = base != nullptr ? base + 1 : name;
  if (std::strncmp(base, library->prefix, std::strlen(library->prefix)) != 0) return 0;
  const size_t length = std::strlen(name);
  if (length >= sizeof library->path) return 0;
  std::memcpy(library->path, name, length + 1);
  return 1;
}

void* find_in_loaded_cuda(CudaFunction which, const char* name) {
  CudaLibrary library{which <= kCudaMallocManaged ? "libcudart" : "libcuda.so", ""};
  dl_iterate_phdr(find_cuda_library, &library);
  if (library.path[0] == '\0') return nullptr;
  // Outside dl_iterate_phdr: dlopen takes the loader's locks itself.
  void* handle = dlopen(library.path, RTLD_LAZY | RTLD_NOLOAD);
  if (handle == nullptr) return nullptr;
  void* function = dlsym(handle, name);
  dlclose(handle);
  return function;
}

template <typename Function>
Function cuda_real(CudaFunction which) {
  void* function = g_cuda[which].load(std::memory_order_acquire);
  if (function == nullptr) {
    resolve_real();
    const int saved_errno = errno;
    const bool was_busy = t_busy;
    t_busy = true;
    function = dlsym(RTLD_NEXT, kCudaNames[which]);
    if (function == nullptr) function = find_in_loaded_cuda(which, kCudaNames[which]);
    t_busy = was_busy;
    errno = saved_errno;
    if (function != nullptr) g_cuda[which].store(function, std::memory_order_release);
  }
  return reinterpret_cast<Function>(function);
}

uint64_t address_of(const void* pointer) { return reinterpret_cast<uintptr_t>(pointer); }

// ---- exec ----

enum class ExecKind { execve, execv, execvp, execvpe };

int exec_with(ExecKind kind, const char* path, char* const argv[], char* const envp[]) {
  if (g_real.execve == nullptr) resolve_real();
  const bool held = before_exec(path, path != nullptr ? std::strlen(path) : 0);
  int result = -1;
  switch (kind) {
    case ExecKind::execve: result = g_real.execve(path, argv, envp); break;
    case ExecKind::execv: result = g_real.execv(path, argv); break;
    case ExecKind::execvp: result = g_real.execvp(path, argv); break;
    case ExecKind::execvpe: result = g_real.execvpe(path, argv, envp); break;
  }
  exec_failed(held);
  return result;
}

// The argument list of execl/execlp/execle on the stack; `envp` gets execle's environment.
// (`arg` is declared nonnull, but a program may still pass NULL: the asm hides it from GCC.)
#define MEMSCOPE_COLLECT_ARGS(argv, arg, args, envp_out)                          \
  const char* first_arg = (arg);                                                  \
  __asm__("" : "+r"(first_arg));                                                  \
  size_t count = 0;                                                               \
  if (first_arg != nullptr) {                                                     \
    va_list copy;                                                                 \
    va_copy(copy, args);                                                          \
    count = 1;                                                                    \
    while (va_arg(copy, const char*) != nullptr) ++count;                         \
    va_end(copy);                                                                 \
  }                                                                               \
  auto** argv = static_cast<char**>(__builtin_alloca((count + 1) * sizeof(char*))); \
  if (count > 0) argv[0] = const_cast<char*>(first_arg);                          \
  for (size_t i = 1; i < count; ++i) argv[i] = va_arg(args, char*);               \
  argv[count] = nullptr;                                                          \
  if ((envp_out) != nullptr) {                                                    \
    if (count > 0) (void)va_arg(args, char*);                                     \
    *(envp_out) = va_arg(args, char**);                                           \
  }

}  // namespace

bool resolve_real() {
  if (g_resolve_phase.load(std::memory_order_acquire) == 2) return true;
  if (t_resolving) return false;
  int expected = 0;
  if (!g_resolve_phase.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
    while (g_resolve_phase.load(std::memory_order_acquire) != 2) sched_yield();
    return true;
  }
  const int saved_errno = errno;
  t_resolving = true;
  const bool was_busy = t_busy;
  t_busy = true;
  load(g_real.free, "free");
  load(g_real.malloc, "malloc");
  load(g_real.calloc, "calloc");
  load(g_real.realloc, "realloc");
  load(g_real.reallocarray, "reallocarray");
  load(g_real.posix_memalign, "posix_memalign");
  load(g_real.aligned_alloc, "aligned_alloc");
  load(g_real.memalign, "memalign");
  load(g_real.valloc, "valloc");
  load(g_real.pvalloc, "pvalloc");
  load(g_real.mmap, "mmap");
  load(g_real.mmap64, "mmap64");
  load(g_real.munmap, "munmap");
  load(g_real.mremap, "mremap");
  load(g_real.execve, "execve");
  load(g_real.execv, "execv");
  load(g_real.execvp, "execvp");
  load(g_real.execvpe, "execvpe");
  load(g_real.fexecve, "fexecve");
  load(g_real.exit_now, "_exit");
  load(g_real.exit_now2, "_Exit");
  t_busy = was_busy;
  t_resolving = false;
  g_resolve_phase.store(2, std::memory_order_release);
  errno = saved_errno;
  return true;
}

}  // namespace memscope::track

using memscope::track::g_real;
using memscope::track::resolve_real;
using memscope::track::should_track;
using memscope::alloc::Space;
namespace track = memscope::track;

// ---- heap ----

MEMSCOPE_EXPORT void* malloc(size_t size) noexcept {
  if (__builtin_expect(g_real.malloc == nullptr, 0) && !resolve_real()) {
    return track::arena_alloc(size, 16);
  }
  void* result = g_real.malloc(size);
  if (result != nullptr && should_track()) {
    track::record_alloc(Space::heap, track::address_of(result), size);
  }
  return result;
}

MEMSCOPE_EXPORT void free(void* address) noexcept {
  if (address == nullptr || track::in_arena(address)) return;
  if (__builtin_expect(g_real.free == nullptr, 0) && !resolve_real()) return;
  if (should_track()) track::record_free(Space::heap, track::address_of(address));
  g_real.free(address);
}

MEMSCOPE_EXPORT void* calloc(size_t count, size_t size) noexcept {
  if (__builtin_expect(g_real.calloc == nullptr, 0) && !resolve_real()) {
    size_t bytes = 0;
    if (__builtin_mul_overflow(count, size, &bytes)) return nullptr;
    return track::arena_alloc(bytes, 16);
  }
  void* result = g_real.calloc(count, size);
  if (result != nullptr && should_track()) {
    track::record_alloc(Space::heap, track::address_of(result), count * size);
  }
  return result;
}

MEMSCOPE_EXPORT void* realloc(void* address, size_t size) noexcept {
  if (__builtin_expect(g_real.realloc == nullptr, 0) && !resolve_real()) {
    void* moved = track::arena_alloc(size, 16);
    if (moved != nullptr && address != nullptr && track::in_arena(address)) {
      const size_t old_size = track::arena_size(address);
      std::memcpy(moved, address, old_size < size ? old_size : size);
    }
    return moved;
  }
  if (address != nullptr && track::in_arena(address)) {  // out of the bootstrap arena
    void* moved = malloc(size);
    if (moved != nullptr) {
      const size_t old_size = track::arena_size(address);
      std::memcpy(moved, address, old_size < size ? old_size : size);
    }
    return moved;
  }
  if (!should_track()) return g_real.realloc(address, size);
  return track::tracked_realloc(address, size);
}

MEMSCOPE_EXPORT void* reallocarray(void* address, size_t count, size_t size) noexcept {
  size_t bytes = 0;
  if (__builtin_mul_overflow(count, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  return realloc(address, bytes);
}

MEMSCOPE_EXPORT int posix_memalign(void** out, size_t alignment, size_t size) noexcept {
  if (__builtin_expect(g_real.posix_memalign == nullptr, 0) && !resolve_real()) {
    if (alignment < sizeof(void*) || (alignment & (alignment - 1)) != 0) return EINVAL;
    *out = track::arena_alloc(size, alignment);
    return *out != nullptr ? 0 : ENOMEM;
  }
  const int result = g_real.posix_memalign(out, alignment, size);
  if (result == 0 && should_track()) {
    track::record_alloc(Space::heap, track::address_of(*out), size);
  }
  return result;
}

#define MEMSCOPE_ALIGNED_HOOK(name, params, args, size, alignment)               \
  MEMSCOPE_EXPORT void* name params noexcept {                                   \
    if (__builtin_expect(g_real.name == nullptr, 0) && !resolve_real()) {        \
      return track::arena_alloc(size, alignment);                                \
    }                                                                            \
    void* result = g_real.name args;                                             \
    if (result != nullptr && should_track()) {                                   \
      track::record_alloc(Space::heap, track::address_of(result), size);         \
    }                                                                            \
    return result;                                                               \
  }

MEMSCOPE_ALIGNED_HOOK(aligned_alloc, (size_t alignment, size_t size), (alignment, size), size,
                      alignment)
MEMSCOPE_ALIGNED_HOOK(memalign, (size_t alignment, size_t size), (alignment, size), size,
                      alignment)
MEMSCOPE_ALIGNED_HOOK(valloc, (size_t size), (size), size, 4096)
MEMSCOPE_ALIGNED_HOOK(pvalloc, (size_t size), (size), size, 4096)

// ---- mmap ----

namespace {
void* raw_mmap(void* address, size_t length, int protection, int flags, int fd, off_t offset) {
  const long result = syscall(SYS_mmap, address, length, protection, flags, fd, offset);
  return result == -1 ? MAP_FAILED : reinterpret_cast<void*>(result);
}
}  // namespace

MEMSCOPE_EXPORT void* mmap(void* address, size_t length, int protection, int flags, int fd,
                           off_t offset) noexcept {
  if (__builtin_expect(g_real.mmap == nullptr, 0) && !resolve_real()) {
    return raw_mmap(address, length, protection, flags, fd, offset);
  }
  void* result = g_real.mmap(address, length, protection, flags, fd, offset);
  if (result != MAP_FAILED && (flags & MAP_ANONYMOUS) != 0 && should_track()) {
    track::record_alloc(Space::mmap, track::address_of(result), length);
  }
  return result;
}

MEMSCOPE_EXPORT void* mmap64(void* address, size_t length, int protection, int flags, int fd,
                             off64_t offset) noexcept {
  if (__builtin_expect(g_real.mmap64 == nullptr, 0) && !resolve_real()) {
    return raw_mmap(address, length, protection, flags, fd, offset);
  }
  void* result = g_real.mmap64(address, length, protection, flags, fd, offset);
  if (result != MAP_FAILED && (flags & MAP_ANONYMOUS) != 0 && should_track()) {
    track::record_alloc(Space::mmap, track::address_of(result), length);
  }
  return result;
}

MEMSCOPE_EXPORT int munmap(void* address, size_t length) noexcept {
  if (__builtin_expect(g_real.munmap == nullptr, 0) && !resolve_real()) {
    return static_cast<int>(syscall(SYS_munmap, address, length));
  }
  // A call the kernel refuses (unaligned address, length 0) unmaps nothing: not recorded.
  if (length != 0 && (track::address_of(address) & 4095) == 0 && should_track()) {
    track::record_unmap(Space::mmap, track::address_of(address), length);
  }
  return g_real.munmap(address, length);
}

MEMSCOPE_EXPORT void* mremap(void* old_address, size_t old_size, size_t new_size, int flags,
                             ...) noexcept {
  void* new_address = nullptr;
  if ((flags & MREMAP_FIXED) != 0) {
    va_list args;
    va_start(args, flags);
    new_address = va_arg(args, void*);
    va_end(args);
  }
  if (__builtin_expect(g_real.mremap == nullptr, 0) && !resolve_real()) {
    const long result = syscall(SYS_mremap, old_address, old_size, new_size, flags, new_address);
    return result == -1 ? MAP_FAILED : reinterpret_cast<void*>(result);
  }
  if (!should_track()) return g_real.mremap(old_address, old_size, new_size, flags, new_address);
  return track::tracked_mremap(old_address, old_size, new_size, flags, new_address);
}

// ---- exec and _exit ----

MEMSCOPE_EXPORT int execve(const char* path, char* const argv[], char* const envp[]) noexcept {
  return track::exec_with(track::ExecKind::execve, path, argv, envp);
}

MEMSCOPE_EXPORT int execv(const char* path, char* const argv[]) noexcept {
  return track::exec_with(track::ExecKind::execv, path, argv, nullptr);
}

MEMSCOPE_EXPORT int execvp(const char* file, char* const argv[]) noexcept {
  return track::exec_with(track::ExecKind::execvp, file, argv, nullptr);
}

MEMSCOPE_EXPORT int execvpe(const char* file, char* const argv[], char* const envp[]) noexcept {
  return track::exec_with(track::ExecKind::execvpe, file, argv, envp);
}

MEMSCOPE_EXPORT int fexecve(int fd, char* const argv[], char* const envp[]) noexcept {
  if (g_real.fexecve == nullptr) resolve_real();
  char path[32] = "/proc/self/fd/";
  char* digits = path + 14;
  if (fd < 0) *digits++ = '-';
  *memscope::track::put_decimal(digits, fd < 0 ? 0 - static_cast<uint64_t>(fd) : static_cast<uint64_t>(fd)) = '\0';
  const bool held = track::before_exec(path, std::strlen(path));
  const int result = g_real.fexecve(fd, argv, envp);
  track::exec_failed(held);
  return result;
}

MEMSCOPE_EXPORT int execl(const char* path, const char* arg, ...) noexcept {
  va_list args;
  va_start(args, arg);
  MEMSCOPE_COLLECT_ARGS(argv, arg, args, static_cast<char***>(nullptr))
  va_end(args);
  return track::exec_with(track::ExecKind::execv, path, argv, nullptr);
}

MEMSCOPE_EXPORT int execlp(const char* file, const char* arg, ...) noexcept {
  va_list args;
  va_start(args, arg);
  MEMSCOPE_COLLECT_ARGS(argv, arg, args, static_cast<char***>(nullptr))
  va_end(args);
  return track::exec_with(track::ExecKind::execvp, file, argv, nullptr);
}

MEMSCOPE_EXPORT int execle(const char* path, const char* arg, ...) noexcept {
  va_list args;
  va_start(args, arg);
  char** envp = nullptr;
  MEMSCOPE_COLLECT_ARGS(argv, arg, args, &envp)
  va_end(args);
  return track::exec_with(track::ExecKind::execve, path, argv, envp);
}

MEMSCOPE_EXPORT void _exit(int status) {
  track::finish(1);
  if (g_real.exit_now == nullptr) resolve_real();
  if (g_real.exit_now != nullptr) g_real.exit_now(status);
  syscall(SYS_exit_group, status);
  __builtin_unreachable();
}

MEMSCOPE_EXPORT void _Exit(int status) noexcept {
  track::finish(1);
  if (g_real.exit_now2 == nullptr) resolve_real();
  if (g_real.exit_now2 != nullptr) g_real.exit_now2(status);
  syscall(SYS_exit_group, status);
  __builtin_unreachable();
}

// ---- CUDA runtime (space cuda), driver (cuda-driver), virtual memory (physical, mapping) ----

namespace {
using CudaMallocFn = int (*)(void**, size_t);
using CudaFreeFn = int (*)(void*);
using CudaMallocAsyncFn = int (*)(void**, size_t, void*);
using CudaFreeAsyncFn = int (*)(void*, void*);
using CudaMallocManagedFn = int (*)(void**, size_t, unsigned);
using CuMemAllocFn = int (*)(unsigned long long*, size_t);
using CuMemFreeFn = int (*)(unsigned long long);
using CuMemCreateFn = int (*)(unsigned long long*, size_t, const void*, unsigned long long);
using CuMemReleaseFn = int (*)(unsigned long long);
using CuMemMapFn = int (*)(unsigned long long, size_t, size_t, unsigned long long,
                           unsigned long long);
using CuMemUnmapFn = int (*)(unsigned long long, size_t);
}  // namespace

MEMSCOPE_EXPORT int cudaMalloc(void** out, size_t size) {
  const auto real = track::cuda_real<CudaMallocFn>(track::kCudaMalloc);
  if (real == nullptr) return track::kCudaErrorInsufficientDriver;
  const int result = real(out, size);
  if (result == 0 && out != nullptr && should_track()) {
    track::record_alloc(Space::cuda, track::address_of(*out), size);
  }
  return result;
}

MEMSCOPE_EXPORT int cudaFree(void* address) {
  const auto real = track::cuda_real<CudaFreeFn>(track::kCudaFree);
  if (real == nullptr) return track::kCudaErrorInsufficientDriver;
  // Recorded before the real call, as free() is: once it returns, another thread may get the
  // same address back and record its allocation first.
  if (address != nullptr && should_track()) {
    track::record_free(Space::cuda, track::address_of(address));
  }
  return real(address);
}

MEMSCOPE_EXPORT int cudaMallocAsync(void** out, size_t size, void* stream) {
  const auto real = track::cuda_real<CudaMallocAsyncFn>(track::kCudaMallocAsync);
  if (real == nullptr) return track::kCudaErrorInsufficientDriver;
  const int result = real(out, size, stream);
  if (result == 0 && out != nullptr && should_track()) {
    track::record_alloc(Space::cuda, track::address_of(*out), size);
  }
  return result;
}

MEMSCOPE_EXPORT int cudaFreeAsync(void* address, void* stream) {
  const auto real = track::cuda_real<CudaFreeAsyncFn>(track::kCudaFreeAsync);
  if (real == nullptr) return track::kCudaErrorInsufficientDriver;
  // Recorded before the real call, as free() is: once it returns, another thread may get the
  // same address back and record its allocation first.
  if (address != nullptr && should_track()) {
    track::record_free(Space::cuda, track::address_of(address));
  }
  return real(address, stream);
}

MEMSCOPE_EXPORT int cudaMallocManaged(void** out, size_t size, unsigned flags) {
  const auto real = track::cuda_real<CudaMallocManagedFn>(track::kCudaMallocManaged);
  if (real == nullptr) return track::kCudaErrorInsufficientDriver;
  const int result = real(out, size, flags);
  if (result == 0 && out != nullptr && should_track()) {
    track::record_alloc(Space::cuda, track::address_of(*out), size);
  }
  return result;
}

MEMSCOPE_EXPORT int cuMemAlloc_v2(unsigned long long* out, size_t size) {
  const auto real = track::cuda_real<CuMemAllocFn>(track::kCuMemAlloc);
  if (real == nullptr) return track::kCudaErrorNotInitialized;
  const int result = real(out, size);
  if (result == 0 && out != nullptr && should_track()) {
    track::record_alloc(Space::cuda_driver, *out, size);
  }
  return result;
}

MEMSCOPE_EXPORT int cuMemFree_v2(unsigned long long address) {
  const auto real = track::cuda_real<CuMemFreeFn>(track::kCuMemFree);
  if (real == nullptr) return track::kCudaErrorNotInitialized;
  // Recorded before the real call, as free() is: once it returns, another thread may get the
  // same address back and record its allocation first.
  if (address != 0 && should_track()) {
    track::record_free(Space::cuda_driver, address);
  }
  return real(address);
}

MEMSCOPE_EXPORT int cuMemCreate(unsigned long long* handle, size_t size, const void* properties,
                                unsigned long long flags) {
  const auto real = track::cuda_real<CuMemCreateFn>(track::kCuMemCreate);
  if (real == nullptr) return track::kCudaErrorNotInitialized;
  const int result = real(handle, size, properties, flags);
  if (result == 0 && handle != nullptr && should_track()) {
    track::record_alloc(Space::cuda_physical, *handle, size);
  }
  return result;
}

MEMSCOPE_EXPORT int cuMemRelease(unsigned long long handle) {
  const auto real = track::cuda_real<CuMemReleaseFn>(track::kCuMemRelease);
  if (real == nullptr) return track::kCudaErrorNotInitialized;
  // Recorded before the real call, as free() is: once it returns, another thread may get the
  // same address back and record its allocation first.
  if (handle != 0 && should_track()) {
    track::record_free(Space::cuda_physical, handle);
  }
  return real(handle);
}

MEMSCOPE_EXPORT int cuMemMap(unsigned long long address, size_t size, size_t offset,
                             unsigned long long handle, unsigned long long flags) {
  const auto real = track::cuda_real<CuMemMapFn>(track::kCuMemMap);
  if (real == nullptr) return track::kCudaErrorNotInitialized;
  const int result = real(address, size, offset, handle, flags);
  if (result == 0 && should_track()) track::record_alloc(Space::cuda_mapping, address, size);
  return result;
}

MEMSCOPE_EXPORT int cuMemUnmap(unsigned long long address, size_t size) {
  const auto real = track::cuda_real<CuMemUnmapFn>(track::kCuMemUnmap);
  if (real == nullptr) return track::kCudaErrorNotInitialized;
  if (address != 0 && size != 0 && should_track()) {
    track::record_unmap(Space::cuda_mapping, address, size);  // before: see cudaFree
  }
  return real(address, size);
}
