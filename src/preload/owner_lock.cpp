#include "preload/owner_lock.hpp"

#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace memscope::track {

namespace {

long membarrier(int command) { return syscall(SYS_membarrier, command, 0, 0); }

void futex(std::atomic<int>& word, int operation, int value) {
  syscall(SYS_futex, reinterpret_cast<int*>(&word), operation, value, nullptr, nullptr, 0);
}

}  // namespace

bool OwnerLock::open_owner_path() {
  const long commands = membarrier(MEMBARRIER_CMD_QUERY);
  if (commands < 0 || (commands & MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0) return false;
  if (membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) != 0) return false;
  owner_path_.store(1, std::memory_order_release);
  return true;
}

void OwnerLock::unlock_futex() {
  if (word_.exchange(0, std::memory_order_release) == 2) futex(word_, FUTEX_WAKE_PRIVATE, 1);
}

__attribute__((noinline)) void OwnerLock::lock_contended(int seen) {
  for (int spin = 0; spin < 100 && seen != 0; ++spin) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
    seen = word_.load(std::memory_order_relaxed);
    if (seen == 0 && word_.compare_exchange_weak(seen, 1, std::memory_order_acquire)) return;
  }
  while (word_.exchange(2, std::memory_order_acquire) != 0) futex(word_, FUTEX_WAIT_PRIVATE, 2);
}

// Holding the futex lock: from now on the owner takes it too. Waits for the owner to leave
// (its section never waits for this thread: at most for the compressor, which never blocks
// on the lock).
void OwnerLock::close_owner_path() {
  owner_path_.store(0, std::memory_order_relaxed);
  membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
  while (owner_inside_.load(std::memory_order_acquire) != 0) sched_yield();
}

bool OwnerLock::try_lock_helper() {
  int expected = 0;
  if (!word_.compare_exchange_strong(expected, 1, std::memory_order_acquire)) return false;
  if (owner_path_.load(std::memory_order_relaxed) == 0) return true;
  helper_wants_.store(1, std::memory_order_relaxed);
  // Registered, so it cannot fail; were it to, the owner may be inside: back off.
  if (membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0 &&
      owner_inside_.load(std::memory_order_acquire) == 0) {
    return true;
  }
  helper_wants_.store(0, std::memory_order_release);
  unlock_futex();
  return false;
}

void OwnerLock::unlock_helper() {
  helper_wants_.store(0, std::memory_order_release);
  unlock_futex();
}

void OwnerLock::reset_after_fork() {
  word_.store(0, std::memory_order_relaxed);
  owner_path_.store(0, std::memory_order_relaxed);
  owner_inside_.store(0, std::memory_order_relaxed);
  helper_wants_.store(0, std::memory_order_relaxed);
}

}  // namespace memscope::track
