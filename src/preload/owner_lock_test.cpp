#include "preload/owner_lock.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace memscope::track {
namespace {

// What the lock guards in these tests: a read-modify-write with a window in the middle, so two
// threads inside at once lose increments (and break first == second).
struct Guarded {
  uint64_t first = 0;
  uint64_t second = 0;
  uint64_t broken = 0;
  // `window`: how long the guarded state stays inconsistent (a longer one makes an overlap
  // likelier to be seen).
  void update(int window = 8) {
    if (first != second) ++broken;
    const uint64_t value = first;
    first = value + 1;
    for (int i = 0; i < window; ++i) {
      std::atomic_signal_fence(std::memory_order_seq_cst);
      if (first != value + 1) ++broken;
    }
    second = value + 1;
  }
};

TEST(OwnerLock, TheOwnerTakesTheFastPathOnceItIsOpen) {
  OwnerLock lock;
  EXPECT_EQ(lock.lock(true), OwnerLock::Token::futex);  // not open yet
  lock.unlock(OwnerLock::Token::futex);
  ASSERT_TRUE(lock.open_owner_path()) << "this kernel has no expedited membarrier";
  const OwnerLock::Token token = lock.lock(true);
  EXPECT_EQ(token, OwnerLock::Token::fast);
  lock.unlock(token);
  EXPECT_TRUE(lock.owner_path_open());
}

TEST(OwnerLock, AHelperNeverEntersWhileTheOwnerIsInside) {
  OwnerLock lock;
  ASSERT_TRUE(lock.open_owner_path());
  const OwnerLock::Token token = lock.lock(true);
  ASSERT_EQ(token, OwnerLock::Token::fast);
  EXPECT_FALSE(lock.try_lock_helper());
  lock.unlock(token);
  ASSERT_TRUE(lock.try_lock_helper());
  // While the helper holds it the owner waits on the futex lock, so the helper's section ends
  // first; here, a second helper cannot enter either.
  EXPECT_FALSE(lock.try_lock_helper());
  lock.unlock_helper();
  EXPECT_EQ(lock.lock(true), OwnerLock::Token::fast);
  lock.unlock(OwnerLock::Token::fast);
}

TEST(OwnerLock, OwnerAndHelperExcludeEachOther) {
  OwnerLock lock;
  ASSERT_TRUE(lock.open_owner_path());
  Guarded guarded;
  std::atomic<bool> done{false};
  std::atomic<uint64_t> helper_entries{0};
  std::thread helper([&] {
    while (!done.load(std::memory_order_relaxed)) {
      if (!lock.try_lock_helper()) continue;
      guarded.update(20000);  // long: the owner tries to enter meanwhile
      helper_entries.fetch_add(1, std::memory_order_relaxed);
      lock.unlock_helper();
    }
  });
  // Until the helper got in 200 times and the owner took its fast path 1,000 times (bounded: on
  // a loaded machine the helper may be scheduled so that it gets in 200 times before the owner
  // ever finds it out).
  uint64_t owner_entries = 0;
  uint64_t fast = 0;
  for (; owner_entries < 50'000'000 &&
         (helper_entries.load(std::memory_order_relaxed) < 200 || fast < 1000);
       ++owner_entries) {
    const OwnerLock::Token token = lock.lock(true);
    fast += token == OwnerLock::Token::fast ? 1 : 0;
    guarded.update();
    lock.unlock(token);
    for (int i = 0; i < 64; ++i) std::atomic_signal_fence(std::memory_order_seq_cst);
  }
  done = true;
  helper.join();
  EXPECT_EQ(guarded.broken, 0u);
  EXPECT_EQ(guarded.first, owner_entries + helper_entries.load());
  EXPECT_GT(helper_entries.load(), 0u);
  EXPECT_GT(fast, 0u);
  EXPECT_TRUE(lock.owner_path_open());  // a helper never closes it
}

TEST(OwnerLock, AnotherThreadClosesThePathForGoodAndStillExcludesTheOwner) {
  OwnerLock lock;
  ASSERT_TRUE(lock.open_owner_path());
  Guarded guarded;
  std::atomic<bool> owner_started{false};
  std::atomic<uint64_t> futex_after_close{0};
  constexpr uint64_t kEntries = 1'000'000;
  std::thread owner([&] {
    for (uint64_t i = 0; i < kEntries; ++i) {
      const OwnerLock::Token token = lock.lock(true);
      guarded.update(i < 50000 ? 2000 : 8);  // inside most of the time when it closes
      lock.unlock(token);
      owner_started = true;
      if (!lock.owner_path_open() && token == OwnerLock::Token::futex) ++futex_after_close;
    }
  });
  while (!owner_started.load()) std::this_thread::yield();
  std::vector<std::thread> others;
  for (int t = 0; t < 3; ++t) {
    others.emplace_back([&] {
      for (uint64_t i = 0; i < kEntries / 4; ++i) {
        const OwnerLock::Token token = lock.lock(false);
        EXPECT_EQ(token, OwnerLock::Token::futex);
        guarded.update();
        lock.unlock(token);
      }
    });
  }
  for (auto& other : others) other.join();
  owner.join();
  EXPECT_FALSE(lock.owner_path_open());
  EXPECT_EQ(guarded.broken, 0u);
  EXPECT_EQ(guarded.first, kEntries + 3 * (kEntries / 4));
  EXPECT_EQ(lock.lock(true), OwnerLock::Token::futex);
  lock.unlock(OwnerLock::Token::futex);
}

TEST(OwnerLock, ResetAfterForkReleasesEverythingAndClosesThePath) {
  OwnerLock lock;
  ASSERT_TRUE(lock.open_owner_path());
  ASSERT_TRUE(lock.try_lock_helper());  // held, as a fork from inside might find it
  lock.reset_after_fork();
  EXPECT_FALSE(lock.owner_path_open());
  EXPECT_TRUE(lock.try_lock_helper());
  lock.unlock_helper();
  EXPECT_EQ(lock.lock(true), OwnerLock::Token::futex);
  lock.unlock(OwnerLock::Token::futex);
}

}  // namespace
}  // namespace memscope::track
