// Planted host leaks for the allocation tracker's end-to-end tests (tests/e2e/track_test.cpp):
//   leak_small  100 x malloc(48), never freed        -> 4800 bytes, 100 allocations
//   leak_big    3 x calloc(1, 1 MiB), never freed    -> 3145728 bytes, 3 allocations
// and, freed before exit: churn() (100000 malloc/free pairs of pseudo-random sizes) and
// realloc_chains() (realloc chains growing and shrinking, then freed).
// Prints one deterministic checksum line: the output must be the same under the tracker.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { kSmallCount = 100, kSmallSize = 48, kBigCount = 3, kBigSize = 1 << 20 };

static void* small_leaks[kSmallCount];
static void* big_leaks[kBigCount];
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t next_random(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static uint64_t mix(uint64_t sum, const unsigned char* bytes, size_t n) {
  for (size_t i = 0; i < n; ++i) sum = sum * 1099511628211ull + bytes[i];
  return sum;
}

__attribute__((noinline)) void leak_small(void) {
  for (int i = 0; i < kSmallCount; ++i) {
    small_leaks[i] = malloc(kSmallSize);
    memset(small_leaks[i], i, kSmallSize);
  }
}

__attribute__((noinline)) void leak_big(void) {
  for (int i = 0; i < kBigCount; ++i) big_leaks[i] = calloc(1, kBigSize);
}

__attribute__((noinline)) uint64_t churn(void) {
  uint64_t sum = 0;
  for (int i = 0; i < 100000; ++i) {
    const size_t size = 1 + (size_t)(next_random() % 4096);
    unsigned char* p = malloc(size);
    p[0] = (unsigned char)i;
    p[size - 1] = (unsigned char)size;
    sum = mix(sum, p, 1);
    sum = mix(sum, p + size - 1, 1);
    free(p);
  }
  return sum;
}

__attribute__((noinline)) uint64_t realloc_chains(void) {
  uint64_t sum = 0;
  for (int chain = 0; chain < 50; ++chain) {
    unsigned char* p = NULL;
    size_t size = 0;
    for (int step = 0; step < 20; ++step) {
      const size_t new_size = 16 + (size_t)(next_random() % 20000);
      unsigned char* q = realloc(p, new_size);
      if (q == NULL) abort();
      for (size_t j = size; j < new_size; ++j) q[j] = (unsigned char)(j + (size_t)step);
      p = q;
      size = new_size;
    }
    sum = mix(sum, p, size);
    free(p);
  }
  return sum;
}

int main(void) {
  leak_small();
  const uint64_t churned = churn();
  leak_big();
  const uint64_t chained = realloc_chains();
  uint64_t sum = mix(churned ^ chained, small_leaks[kSmallCount - 1], kSmallSize);
  sum = mix(sum, big_leaks[kBigCount - 1], 64);
  printf("track_leak_c: checksum=%016llx small=%d x %d big=%d x %d\n", (unsigned long long)sum,
         kSmallCount, kSmallSize, kBigCount, kBigSize);
  return 0;
}
