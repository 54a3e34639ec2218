// 8 threads allocating and freeing at once, with a cross-thread hand-off: worker i mallocs
// blocks into a bounded ring that worker (i+1) % 8 drains and frees. Every allocation is made
// by worker(int) itself through malloc (two call sites) and everything is freed, so under the
// tracker the sites named "worker(int)" add up to allocated_count == the printed total and
// leaked_count 0 (tests/e2e/track_test.cpp). Bounded by iterations, not time; prints one
// deterministic line (each block's first byte is summed once, by whichever thread frees it).
// The rings are fixed arrays so no std:: container allocates.
#include <pthread.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace {

constexpr int kThreads = 8;
constexpr int kIterations = 40000;  // per thread
constexpr int kHandOffEvery = 4;    // one hand-off per this many iterations
constexpr int kRingSize = 256;

struct Ring {
  pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
  void* slots[kRingSize] = {};
  int head = 0;  // next to take
  int count = 0;
  bool producer_done = false;
};

Ring rings[kThreads];  // rings[i]: filled by worker i, drained by worker (i+1) % kThreads
uint64_t allocations[kThreads];
uint64_t checksums[kThreads];

// Takes one block from `ring` if there is one (or, when `wait`, waits for one until its producer
// is done); frees it.
// Returns false when the ring is empty (and, when waiting, its producer is done).
bool drain_one(Ring& ring, bool wait, uint64_t& checksum) {
  pthread_mutex_lock(&ring.mutex);
  while (wait && ring.count == 0 && !ring.producer_done)
    pthread_cond_wait(&ring.changed, &ring.mutex);
  if (ring.count == 0) {
    pthread_mutex_unlock(&ring.mutex);
    return false;
  }
  void* block = ring.slots[ring.head];
  ring.head = (ring.head + 1) % kRingSize;
  --ring.count;
  pthread_cond_broadcast(&ring.changed);
  pthread_mutex_unlock(&ring.mutex);
  checksum += *static_cast<unsigned char*>(block);
  free(block);
  return true;
}

}  // namespace

__attribute__((noinline)) void worker(int index) {
  uint64_t state = 0x9e3779b97f4a7c15ull * (static_cast<uint64_t>(index) + 1u);
  auto next = [&state] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  Ring& mine = rings[index];
  Ring& theirs = rings[(index + kThreads - 1) % kThreads];
  uint64_t count = 0;
  uint64_t checksum = 0;
  void* held[8] = {};
  for (int i = 0; i < kIterations; ++i) {
    const size_t size = 1 + static_cast<size_t>(next() % 2048);
    auto* block = static_cast<unsigned char*>(malloc(size));
    ++count;
    block[0] = static_cast<unsigned char>(size);
    block[size - 1] = static_cast<unsigned char>(i);
    checksum += block[0];
    const size_t slot = static_cast<size_t>(next() % 8);
    free(held[slot]);  // keeps a few blocks alive a while: frees are not always of the last one
    held[slot] = block;
    if (i % kHandOffEvery == 0) {
      auto* gift = static_cast<unsigned char*>(malloc(16 + static_cast<size_t>(i % 200)));
      ++count;
      gift[0] = static_cast<unsigned char>(i);
      // A producer never waits (so no cycle of full rings can deadlock): when its consumer
      // lags a whole ring behind, it frees the block itself.
      pthread_mutex_lock(&mine.mutex);
      const bool full = mine.count == kRingSize;
      if (!full) {
        mine.slots[(mine.head + mine.count) % kRingSize] = gift;
        ++mine.count;
        pthread_cond_broadcast(&mine.changed);
      }
      pthread_mutex_unlock(&mine.mutex);
      if (full) {
        checksum += gift[0];
        free(gift);
      }
    }
    drain_one(theirs, false, checksum);
  }
  for (void* block : held) free(block);
  pthread_mutex_lock(&mine.mutex);
  mine.producer_done = true;
  pthread_cond_broadcast(&mine.changed);
  pthread_mutex_unlock(&mine.mutex);
  while (drain_one(theirs, true, checksum)) {
  }
  allocations[index] = count;
  checksums[index] = checksum;
}

int main() {
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int i = 0; i < kThreads; ++i) threads.emplace_back(worker, i);
  for (auto& thread : threads) thread.join();
  uint64_t total = 0;
  uint64_t checksum = 0;
  for (int i = 0; i < kThreads; ++i) {
    total += allocations[i];
    checksum += checksums[i];
  }
  std::printf("track_threads: threads=%d allocations=%llu checksum=%llu\n", kThreads,
              static_cast<unsigned long long>(total), static_cast<unsigned long long>(checksum));
  return 0;
}
