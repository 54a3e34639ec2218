// Allocates through every host entry point the tracker hooks and frees everything: the
// allocation tracker must report no site with leaked bytes in this program's own functions
// (tests/e2e/track_test.cpp). Prints one deterministic checksum line.
#define _GNU_SOURCE
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static uint64_t rng_state = 0x853c49e6748fea9bull;

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

__attribute__((noinline)) uint64_t malloc_calloc(void) {
  uint64_t sum = 0;
  void* kept[64];
  for (int i = 0; i < 64; ++i) {
    const size_t size = 1 + (size_t)(next_random() % 1000);
    kept[i] = (i % 2) ? malloc(size) : calloc(size, 3);
    memset(kept[i], i, size);
    sum = mix(sum, kept[i], 1);
  }
  for (int i = 63; i >= 0; --i) free(kept[i]);
  return sum;
}

__attribute__((noinline)) uint64_t reallocs(void) {
  uint64_t sum = 0;
  unsigned char* p = malloc(10);
  memset(p, 7, 10);
  for (int i = 0; i < 100; ++i) {
    p = realloc(p, 10 + (size_t)(next_random() % 100000));
    if (p == NULL) abort();
    sum = mix(sum, p, 10);
  }
  free(p);
  void* fresh = realloc(NULL, 100);  // realloc as malloc
  free(fresh);
  return sum;
}

// glibc's realloc(p, 0) frees p and returns NULL: the tracker must count it as a free.
__attribute__((noinline)) void realloc_to_zero(void) {
  void* p = realloc(NULL, 100);
  if (realloc(p, 0) != NULL) abort();
}

__attribute__((noinline)) uint64_t aligned(void) {
  uint64_t sum = 0;
  for (int i = 0; i < 20; ++i) {
    void* a = NULL;
    if (posix_memalign(&a, 64, 1000 + (size_t)i) != 0) abort();
    void* b = aligned_alloc(4096, 8192);
    void* c = memalign(256, 300);
    void* d = valloc(5000);
    sum += (((uintptr_t)a % 64) + ((uintptr_t)b % 4096) + ((uintptr_t)c % 256) +
            ((uintptr_t)d % 4096));
    free(d);
    free(c);
    free(b);
    free(a);
  }
  return sum;
}

__attribute__((noinline)) uint64_t mappings(void) {
  uint64_t sum = 0;
  for (int i = 0; i < 10; ++i) {
    const size_t length = (size_t)(i + 1) * 65536;
    unsigned char* p =
        mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) abort();
    p[length - 1] = (unsigned char)i;
    sum = mix(sum, p + length - 1, 1);
    // Released in two halves: an UNMAP may cover part of a mapping.
    munmap(p, length / 2);
    munmap(p + length / 2, length - length / 2);
  }
  unsigned char* grown =
      mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (grown == MAP_FAILED) abort();
  grown[0] = 42;
  grown = mremap(grown, 4096, 1 << 20, MREMAP_MAYMOVE);
  if (grown == MAP_FAILED) abort();
  sum = mix(sum, grown, 1);
  munmap(grown, 1 << 20);
  return sum;
}

int main(void) {
  uint64_t sum = malloc_calloc();
  sum ^= reallocs();
  realloc_to_zero();
  sum ^= aligned();
  sum ^= mappings();
  printf("track_noleak: checksum=%016llx\n", (unsigned long long)sum);
  return 0;
}
