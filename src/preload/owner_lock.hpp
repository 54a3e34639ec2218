// The tracker's writer lock, with a fast path for one thread: the "owner" (the thread that
// started tracking) enters and leaves with plain stores while no other program thread has
// ever wanted the lock, instead of two locked instructions per allocation and per free.
//
// The asymmetric Dekker protocol of membarrier(2): the owner stores `owner_inside_` and then
// reads `helper_wants_` / `owner_path_` with only a compiler barrier between; the other side
// stores its flag, runs membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) -- a full memory barrier
// on every running thread of the process -- and then reads `owner_inside_`. Either the owner
// sees the flag or the other side sees the owner inside; never neither.
//
// - Another program thread that locks closes the owner's path for good (every thread then
//   takes the futex lock, as glibc's malloc stops skipping its locks once a second thread
//   exists), after waiting for the owner to leave.
// - A helper thread (the compressor's once-a-second flush) only tries: it backs off when the
//   owner is inside, and while it holds the lock the owner waits on the futex lock.
// Where the kernel has no expedited membarrier (before 4.14, or seccomp), the path is never
// opened and every thread takes the futex lock. No malloc: it lives inside the hooks.
#pragma once

#include <atomic>

namespace memscope::track {

class OwnerLock {
 public:
  // Opens the owner's path when the kernel can (registers the process for expedited
  // membarrier); false when it cannot.
  bool open_owner_path();
  bool owner_path_open() const { return owner_path_.load(std::memory_order_relaxed) != 0; }

  enum class Token : int { fast, futex };
  // `owner`: whether the calling thread is the owner. No thread takes it twice.
  Token lock(bool owner) {
    if (owner) {
      owner_inside_.store(1, std::memory_order_relaxed);
      std::atomic_signal_fence(std::memory_order_seq_cst);  // membarrier is the CPU's fence
      if (owner_path_.load(std::memory_order_relaxed) != 0 &&
          helper_wants_.load(std::memory_order_acquire) == 0) {
        return Token::fast;
      }
      owner_inside_.store(0, std::memory_order_release);
    }
    lock_futex();
    if (!owner && owner_path_.load(std::memory_order_relaxed) != 0) close_owner_path();
    return Token::futex;
  }
  void unlock(Token token) {
    if (token == Token::fast) {
      owner_inside_.store(0, std::memory_order_release);
    } else {
      unlock_futex();
    }
  }

  // A helper thread's attempt: true when it now holds the lock (release with unlock_helper).
  bool try_lock_helper();
  void unlock_helper();

  // In a child after fork: nothing held, the path closed (the child's only thread may not be
  // the owner, and the child does not record).
  void reset_after_fork();

 private:
  void lock_futex() {
    int expected = 0;
    if (!word_.compare_exchange_strong(expected, 1, std::memory_order_acquire)) {
      lock_contended(expected);
    }
  }
  void unlock_futex();
  void lock_contended(int seen);
  void close_owner_path();

  std::atomic<int> word_{0};  // the futex word: 0 free, 1 held, 2 held with waiters
  std::atomic<int> owner_path_{0};
  std::atomic<int> owner_inside_{0};
  std::atomic<int> helper_wants_{0};
};

}  // namespace memscope::track
