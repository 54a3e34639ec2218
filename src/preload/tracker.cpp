#include "preload/tracker.hpp"

#define UNW_LOCAL_ONLY
#include <errno.h>
#include <fcntl.h>
#include <libunwind.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "preload/heap_report.hpp"
#include "preload/owner_lock.hpp"
#include "preload/high_fd.hpp"
#include "preload/raw_memory.hpp"
#include "preload/stack_trie.hpp"
#include "preload/trace_writer.hpp"
#include "preload/unwind.hpp"

namespace memscope::track {

RealFunctions g_real;
std::atomic<int> g_state{kUninit};
std::atomic<std::atomic<int>*> g_in_this_process{nullptr};
__thread bool t_busy __attribute__((tls_model("initial-exec")));

namespace {

using alloc::Space;

constexpr size_t kPathBytes = alloc::kMaxStringBytes + 1;

// Everything below the writer lock (owner_lock.hpp: the thread that started tracking takes it
// with plain stores while it is the only program thread that ever did).
OwnerLock g_lock;
TraceWriter g_writer;
StackTrie g_trie;
// Answers `memscope fragment --pid` (heap_report.hpp), outside the writer lock.
HeapReporter g_heap_reporter;

uint64_t g_start_ns = 0;  // CLOCK_MONOTONIC_COARSE at start
// The compressor thread: started once, when the first chunk is full (a program that records
// less than 1 MiB at a time never gets one), unless MEMSCOPE_TRACK_THREAD=0.
bool g_compressor_allowed = true;
std::atomic<bool> g_compressor_tried{false};
pid_t g_pid = 0;
bool g_quiet = false;
char g_exe[kPathBytes];
size_t g_exe_len = 0;
char g_cmdline[kPathBytes];
char g_trace_path[kPathBytes + 64];

// The modules already described (under the writer lock), and the loader's counters seen.
struct KnownModule {
  uint64_t base;
  uint64_t first_start;
  uint64_t name_hash;
};
constexpr size_t kMaxKnownModules = 8192;
KnownModule g_known[kMaxKnownModules];
size_t g_known_count = 0;
std::atomic<unsigned long long> g_seen_adds{0};
std::atomic<unsigned long long> g_seen_subs{0};

// The previous stack of this thread, outermost first, with its node ids: a new stack only looks
// up the frames below the part it shares with the previous one.
__thread uint64_t t_prev_ips[kMaxFrames] __attribute__((tls_model("initial-exec")));
__thread uint32_t t_prev_ids[kMaxFrames] __attribute__((tls_model("initial-exec")));
__thread uint32_t t_prev_depth __attribute__((tls_model("initial-exec")));

// ---- small helpers without malloc or stdio ----

struct Message {
  char text[kPathBytes + 256];
  size_t length = 0;
  Message& add(const char* part) {
    const size_t n = std::strlen(part);
    const size_t room = sizeof text - length;
    const size_t copied = n < room ? n : room;
    std::memcpy(text + length, part, copied);
    length += copied;
    return *this;
  }
  Message& add(uint64_t value) {
    char digits[24];
    *put_decimal(digits, value) = '\0';
    return add(digits);
  }
  void say() const {
    if (g_quiet) return;
    const ssize_t ignored = ::write(STDERR_FILENO, text, length);
    (void)ignored;
  }
};

uint64_t clock_ns(clockid_t clock) {
  timespec now{};
  clock_gettime(clock, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(now.tv_nsec);
}

uint64_t trace_time_ns() {
  const uint64_t now = clock_ns(CLOCK_MONOTONIC_COARSE);
  return now > g_start_ns ? now - g_start_ns : 0;
}

// After the writer lock is released, with t_busy set: when tick() saw a second pass, a heap
// report request is looked for — from the malloc family's hooks only: an allocator of the
// program's own (tcmalloc, jemalloc) calls mmap/munmap holding its own lock, and answering
// allocates (stdio, malloc_info), which would re-enter that lock.
inline void once_a_second(bool second_passed, Space space) {
  if (second_passed && space == Space::heap) g_heap_reporter.poll(trace_time_ns());
}

uint64_t hash_name(const char* name) {
  uint64_t hash = 1469598103934665603ULL;
  for (; *name != '\0'; ++name) hash = (hash ^ static_cast<unsigned char>(*name)) * 1099511628211ULL;
  return hash;
}

size_t read_small_file(const char* path, char* buffer, size_t capacity) {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  size_t used = 0;
  while (used < capacity) {
    const ssize_t n = ::read(fd, buffer + used, capacity - used);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    used += static_cast<size_t>(n);
  }
  ::close(fd);
  return used;
}

// ---- the writer lock ----

// Which way this thread holds g_lock (a hook never takes it twice; before_exec holds it across
// the exec), and whether it is the lock's owner: the thread that started tracking.
__thread OwnerLock::Token t_token __attribute__((tls_model("initial-exec")));
__thread bool t_owner __attribute__((tls_model("initial-exec")));

void lock() { t_token = g_lock.lock(t_owner); }

// Stops tracking when the writer failed (disk full): one line, then pass-through.
void report_failure() {
  if (g_writer.failed() && g_state.load(std::memory_order_relaxed) == kTracking) {
    g_state.store(kOff, std::memory_order_relaxed);
    const int error = g_writer.error();
    Message().add("memscope-track: cannot write ").add(g_trace_path).add(" (").add(
        error == ETIMEDOUT ? "the compressor thread stalled" : (strerrordesc_np(error) != nullptr ?
        strerrordesc_np(error) : "error")).add("); tracking stopped\n").say();
  }
}

void unlock() {
  report_failure();
  g_lock.unlock(t_token);
}

// ---- modules ----

struct Counts {
  unsigned long long adds = 0;
  unsigned long long subs = 0;
  bool known = false;
};

int read_counts(dl_phdr_info* info, size_t size, void* data) {
  auto* counts = static_cast<Counts*>(data);
  if (size >= offsetof(dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs) {
    counts->adds = info->dlpi_adds;
    counts->subs = info->dlpi_subs;
    counts->known = true;
  }
  return 1;  // the counters are the same in every entry
}

bool known_module(const KnownModule& module) {
  for (size_t i = 0; i < g_known_count; ++i) {
    const KnownModule& known = g_known[i];
    if (known.base == module.base && known.first_start == module.first_start &&
        known.name_hash == module.name_hash) {
      return true;
    }
  }
  return false;
}

// Runs under the loader's lock; takes the writer lock inside it (that order only).
int describe_module(dl_phdr_info* info, size_t /*size*/, void* data) {
  auto* index = static_cast<size_t*>(data);
  const bool first = (*index)++ == 0;
  const char* name = info->dlpi_name;
  size_t name_len = 0;
  if (name == nullptr || name[0] == '\0') {
    if (!first) return 0;
    name = g_exe;
    name_len = g_exe_len;
  } else {
    if (std::strncmp(name, "linux-vdso", 10) == 0 || std::strncmp(name, "linux-gate", 10) == 0) {
      return 0;
    }
    name_len = std::strlen(name);
  }
  Segment segments[kMaxModuleSegments];
  size_t count = 0;
  for (size_t i = 0; i < info->dlpi_phnum && count < kMaxModuleSegments; ++i) {
    const ElfW(Phdr)& header = info->dlpi_phdr[i];
    if (header.p_type != PT_LOAD) continue;
    segments[count++] = Segment{info->dlpi_addr + header.p_vaddr, header.p_memsz};
  }
  const KnownModule module{info->dlpi_addr, count > 0 ? segments[0].start : 0, hash_name(name)};
  lock();
  if (g_state.load(std::memory_order_relaxed) == kTracking && !known_module(module)) {
    if (g_known_count < kMaxKnownModules) g_known[g_known_count++] = module;
    g_writer.module(name, name_len, info->dlpi_addr, segments, count);
  }
  unlock();
  return 0;
}

// Outside the writer lock: MODULE records for objects loaded since the last look.
void check_modules() {
  Counts counts;
  dl_iterate_phdr(read_counts, &counts);
  if (counts.known && counts.adds == g_seen_adds.load(std::memory_order_relaxed) &&
      counts.subs == g_seen_subs.load(std::memory_order_relaxed)) {
    return;
  }
  size_t index = 0;
  dl_iterate_phdr(describe_module, &index);
  g_seen_adds.store(counts.adds, std::memory_order_relaxed);
  g_seen_subs.store(counts.subs, std::memory_order_relaxed);
}

// Under the lock: the stack's innermost node, STACK records first for new nodes.
uint32_t intern(const Frames& frames, bool* any_new) {
  const size_t depth = frames.count;
  const size_t limit = depth < t_prev_depth ? depth : t_prev_depth;
  size_t shared = 0;
  while (shared < limit && t_prev_ips[shared] == frames.ips[depth - 1 - shared]) ++shared;
  uint32_t parent = shared > 0 ? t_prev_ids[shared - 1] : 0;
  for (size_t i = shared; i < depth; ++i) {
    const uint64_t ip = frames.ips[depth - 1 - i];
    bool created = false;
    const uint32_t id = g_trie.child(parent, ip, &created);
    if (id == 0) {  // the trie is full: keep the outer part
      t_prev_depth = static_cast<uint32_t>(i);
      return parent;
    }
    if (created) {
      g_writer.stack(parent, ip);
      *any_new = true;
    }
    t_prev_ips[i] = ip;
    t_prev_ids[i] = id;
    parent = id;
  }
  t_prev_depth = static_cast<uint32_t>(depth);
  return parent;
}

// ---- the compressor thread ----

constexpr uint64_t kQuietFlushNs = 1'000'000'000;

// Compresses and writes the chunks the program's threads hand over; once a second, writes what
// a quiet program left pending (taking the writer lock only when it is free: a holder is busy
// recording, and will flush on its own).
void* compressor_main(void* /*unused*/) {
  t_busy = true;  // nothing this thread does is the program's
  prctl(PR_SET_NAME, "memscope-track", 0, 0, 0);
  uint64_t last_try_ns = 0;
  for (;;) {
    const uint32_t seen = g_writer.submitted();
    g_writer.compress_submitted();
    g_writer.wait_for_submission(seen, 1000);
    // A quiet program's heap report comes from here (poll() keeps it to once a second).
    if (g_state.load(std::memory_order_relaxed) == kTracking) {
      g_heap_reporter.poll(trace_time_ns());
    }
    // The lock only when nothing was handed over meanwhile (a recording program flushes on its
    // own, once a second) and at most once a second: each try costs the owner thread a
    // membarrier interrupt while its fast path is open.
    const uint64_t now = trace_time_ns();
    if (g_writer.submitted() != seen || now - last_try_ns < kQuietFlushNs) continue;
    last_try_ns = now;
    if (!g_lock.try_lock_helper()) continue;
    // Only with nothing queued: flush() could otherwise wait for a free buffer, on this thread.
    if (g_state.load(std::memory_order_relaxed) == kTracking && g_writer.queued() == 0 &&
        g_writer.pending_bytes() > 0 && trace_time_ns() - g_writer.last_flush_ns() >= kQuietFlushNs) {
      g_writer.flush();
    }
    report_failure();
    g_lock.unlock_helper();
  }
  return nullptr;
}

// Outside the writer lock (pthread_create takes the C library's own locks), from the
// allocation path only. Every signal is blocked in the thread: none of the program's handlers
// ever runs on it. When it cannot start, the chunks go on being compressed where they fill.
void start_compressor() {
  if (getpid() != g_pid) return;  // a vfork child shares our memory: its thread would die at exec
  bool expected = false;
  if (!g_compressor_tried.compare_exchange_strong(expected, true)) return;
  if (!g_compressor_allowed) return;
  sigset_t all;
  sigset_t previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  pthread_attr_t attributes;
  pthread_attr_init(&attributes);
  pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attributes, 256 * 1024);
  pthread_t thread;
  const int error = pthread_create(&thread, &attributes, compressor_main, nullptr);
  pthread_attr_destroy(&attributes);
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  if (error != 0) return;
  lock();
  if (g_state.load(std::memory_order_relaxed) == kTracking) g_writer.set_async(true);
  unlock();
}

// Not while the dynamic loader is on the stack (a malloc of dlopen or of TLS set-up, its locks
// held): pthread_create takes them too. The next allocation outside it starts the thread.
inline void maybe_start_compressor(const Frames& frames) {
  if (!g_compressor_tried.load(std::memory_order_relaxed) && g_writer.filled() &&
      !called_by_loader(frames)) {
    start_compressor();
  }
}

// ---- fork ----

// The child stops tracking and never touches the writer, so fork takes no lock (taking it
// would order it against an allocator's own prefork locks, and deadlock a signal handler that
// forks while its thread is inside a hook). A child made without the atfork handlers (_Fork,
// a raw clone) finds its guard page wiped by the kernel instead (see g_in_this_process).
void after_fork_child() {
  g_state.store(kOff, std::memory_order_relaxed);
  g_writer.drop_pending();
  g_lock.reset_after_fork();
  t_busy = false;
}

// ---- start ----

// A page the kernel zeroes in any child (MADV_WIPEONFORK): tracking goes on only while it holds
// 1, so a process forked without the atfork handlers never writes into its parent's trace.
void arm_fork_guard() {
  void* page = map_pages(4096);
  if (page == nullptr) return;
  if (madvise(page, 4096, MADV_WIPEONFORK) != 0) return;  // kernels before 4.14: atfork only
  static_cast<std::atomic<int>*>(page)->store(1, std::memory_order_relaxed);
  g_in_this_process.store(static_cast<std::atomic<int>*>(page), std::memory_order_release);
}

int initialize() {
  if (!resolve_real()) return kUninit;
  if (environ == nullptr) return kUninit;  // too early: libc not initialized yet
  const char* quiet = getenv("MEMSCOPE_TRACK_QUIET");
  g_quiet = quiet != nullptr && std::strcmp(quiet, "1") == 0;
  const char* thread = getenv("MEMSCOPE_TRACK_THREAD");
  g_compressor_allowed = thread == nullptr || std::strcmp(thread, "0") != 0;
  const char* prefix = getenv("MEMSCOPE_TRACK_OUTPUT");
  if (prefix == nullptr || prefix[0] == '\0') {
    Message().add("memscope-track: MEMSCOPE_TRACK_OUTPUT is not set; not tracking\n").say();
    return kOff;
  }
  if (std::strlen(prefix) > alloc::kMaxStringBytes) {
    Message().add("memscope-track: MEMSCOPE_TRACK_OUTPUT is too long; not tracking\n").say();
    return kOff;
  }
  find_own_range();
  g_pid = getpid();
  g_heap_reporter.init(prefix, static_cast<uint64_t>(g_pid));  // fits: the prefix is checked
  const int fd = create_trace_file(prefix, static_cast<uint64_t>(g_pid), g_trace_path,
                                   sizeof g_trace_path);
  if (fd < 0) {
    const int error = errno;
    Message().add("memscope-track: cannot create ").add(prefix).add(".").add(
        static_cast<uint64_t>(g_pid)).add(".mst: ").add(strerrordesc_np(error) != nullptr ?
        strerrordesc_np(error) : "error").add("; not tracking\n").say();
    return kOff;
  }
  const int high_fd = move_fd_high(fd, 8);  // the trace's descriptor
  if (!g_writer.open(high_fd) || !g_trie.init()) {
    Message().add("memscope-track: cannot start writing ").add(g_trace_path).add(
        "; not tracking\n").say();
    ::close(high_fd);
    return kOff;
  }
  const ssize_t exe_len = readlink("/proc/self/exe", g_exe, alloc::kMaxStringBytes);
  g_exe_len = exe_len > 0 ? static_cast<size_t>(exe_len) : 0;
  g_exe[g_exe_len] = '\0';
  size_t cmdline_len = read_small_file("/proc/self/cmdline", g_cmdline, alloc::kMaxStringBytes);
  for (size_t i = 0; i < cmdline_len; ++i) {
    if (g_cmdline[i] == '\0') g_cmdline[i] = ' ';
  }
  while (cmdline_len > 0 && g_cmdline[cmdline_len - 1] == ' ') --cmdline_len;
  g_writer.process(static_cast<uint64_t>(g_pid), static_cast<uint64_t>(getppid()),
                   clock_ns(CLOCK_REALTIME), g_exe, g_exe_len, g_cmdline, cmdline_len);
  g_start_ns = clock_ns(CLOCK_MONOTONIC_COARSE);
  unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
  const char* owner_path = getenv("MEMSCOPE_TRACK_OWNER_PATH");
  if (owner_path == nullptr || std::strcmp(owner_path, "0") != 0) g_lock.open_owner_path();
  pthread_atfork(nullptr, nullptr, after_fork_child);
  arm_fork_guard();
  return kTracking;
}

__attribute__((constructor)) void on_load() {
  if (!t_busy && g_state.load(std::memory_order_relaxed) == kUninit) start_tracking();
}

__attribute__((destructor)) void on_unload() { finish(0); }

}  // namespace

bool start_tracking() {
  int expected = kUninit;
  if (!g_state.compare_exchange_strong(expected, kInitializing, std::memory_order_acq_rel)) {
    return false;  // another thread is starting it: its calls are not recorded meanwhile
  }
  const int saved_errno = errno;
  t_busy = true;
  const int state = initialize();
  t_owner = true;  // this thread takes the writer lock's fast path (owner_lock.hpp)
  g_state.store(state, std::memory_order_release);
  t_busy = false;
  errno = saved_errno;
  return state == kTracking;
}

void record_alloc_with(Space space, uint64_t address, uint64_t size, const Frames& frames,
                       int saved_errno) {
  bool any_new = false;
  bool second_passed = false;
  lock();
  if (g_state.load(std::memory_order_relaxed) == kTracking) {
    g_writer.tick(trace_time_ns());
    second_passed = g_writer.take_second_passed();
    const uint32_t stack = intern(frames, &any_new);
    if (space == Space::heap) {
      g_writer.heap_alloc(address, size, stack);
    } else {
      g_writer.alloc(space, address, size, stack);
    }
  }
  unlock();
  if (any_new) check_modules();
  maybe_start_compressor(frames);
  once_a_second(second_passed, space);
  t_busy = false;
  errno = saved_errno;
}

void record_free(Space space, uint64_t address) {
  const int saved_errno = errno;
  t_busy = true;
  bool second_passed = false;
  lock();
  if (g_state.load(std::memory_order_relaxed) == kTracking) {
    g_writer.tick(trace_time_ns());
    second_passed = g_writer.take_second_passed();
    if (space == Space::heap) {
      g_writer.heap_free(address);
    } else {
      g_writer.free(space, address);
    }
  }
  unlock();
  once_a_second(second_passed, space);
  t_busy = false;
  errno = saved_errno;
}

void record_unmap(Space space, uint64_t address, uint64_t length) {
  const int saved_errno = errno;
  t_busy = true;
  bool second_passed = false;
  lock();
  if (g_state.load(std::memory_order_relaxed) == kTracking) {
    g_writer.tick(trace_time_ns());
    second_passed = g_writer.take_second_passed();
    g_writer.unmap(space, address, length);
  }
  unlock();
  once_a_second(second_passed, Space::mmap);
  t_busy = false;
  errno = saved_errno;
}

void* tracked_realloc_with(void* old_address, size_t size, const Frames& frames,
                           int saved_errno) {
  // The real realloc runs outside the writer lock (an allocator under it may mmap under its own
  // lock, whose holder would wait for ours): the old block's id is taken out first, so another
  // thread that gets its address back from malloc cannot be confused with it.
  const auto old_value = reinterpret_cast<uintptr_t>(old_address);
  uint64_t old_id = 0;
  if (old_address != nullptr) {
    lock();
    if (g_state.load(std::memory_order_relaxed) == kTracking) old_id = g_writer.heap_take(old_value);
    unlock();
  }
  errno = saved_errno;
  void* result = g_real.realloc(old_address, size);
  const int result_errno = errno;
  bool any_new = false;
  bool second_passed = false;
  lock();
  if (g_state.load(std::memory_order_relaxed) == kTracking) {
    if (result != nullptr) {
      g_writer.tick(trace_time_ns());
      second_passed = g_writer.take_second_passed();
      const uint32_t stack = intern(frames, &any_new);
      g_writer.heap_realloc_id(old_id, reinterpret_cast<uintptr_t>(result), size, stack);
    } else if (size == 0 && old_address != nullptr) {  // glibc: realloc(p, 0) frees p
      g_writer.tick(trace_time_ns());
      g_writer.heap_free_id(old_id);
    } else {  // failed: the block is still there
      g_writer.heap_restore(old_value, old_id);
    }
  }
  unlock();
  if (any_new) check_modules();
  once_a_second(second_passed, Space::heap);
  t_busy = false;
  errno = result_errno;
  return result;
}

void* tracked_mremap_with(void* old_address, size_t old_size, size_t new_size, int flags,
                          void* new_address, const Frames& frames, int saved_errno) {
  bool any_new = false;
  lock();
  errno = saved_errno;
  void* result = g_real.mremap(old_address, old_size, new_size, flags, new_address);
  const int result_errno = errno;
  if (result != MAP_FAILED && g_state.load(std::memory_order_relaxed) == kTracking) {
    g_writer.tick(trace_time_ns());
    const uint32_t stack = intern(frames, &any_new);
    g_writer.remap(reinterpret_cast<uintptr_t>(old_address), old_size,
                   reinterpret_cast<uintptr_t>(result), new_size, stack);
  }
  unlock();
  if (any_new) check_modules();
  t_busy = false;
  errno = result_errno;
  return result;
}

bool before_exec(const char* path, size_t path_len) {
  if (t_busy || g_state.load(std::memory_order_relaxed) != kTracking) return false;
  if (getpid() != g_pid) return false;  // a vfork child shares our memory: leave it alone
  const int saved_errno = errno;
  t_busy = true;
  lock();
  if (g_state.load(std::memory_order_relaxed) != kTracking) {
    unlock();
    t_busy = false;
    errno = saved_errno;
    return false;
  }
  g_writer.tick(trace_time_ns());
  g_writer.exec(path, path_len);
  g_writer.drain();
  errno = saved_errno;
  return true;  // t_busy stays set and the lock held across the exec
}

void exec_failed(bool held) {
  if (!held) return;
  const int saved_errno = errno;
  unlock();
  t_busy = false;
  errno = saved_errno;
}

void finish(uint64_t reason) {
  if (t_busy) return;
  const int state = g_state.load(std::memory_order_relaxed);
  if (state != kTracking) return;
  if (getpid() != g_pid) return;  // a vfork child
  const int saved_errno = errno;
  t_busy = true;
  lock();
  if (g_state.load(std::memory_order_relaxed) == kTracking) {
    g_writer.tick(trace_time_ns());
    g_writer.end(reason);
    g_writer.drain();
    // Nothing after END; a failed flush is reported (and tracking stopped) by unlock().
    if (!g_writer.failed()) g_state.store(kOff, std::memory_order_relaxed);
  }
  unlock();
  t_busy = false;
  errno = saved_errno;
}

}  // namespace memscope::track
