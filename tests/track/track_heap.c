/* For `memscope fragment --pid`: leaves many free chunks in the main arena and in a second
 * thread's arena, prints "track_heap pid N", then for SECONDS keeps allocating and freeing a
 * few small blocks every 100 ms, so that the tracker looks for heap report requests.
 *   track_heap SECONDS          busy: answers from the allocation path
 *   track_heap SECONDS quiet    sleeps instead: only the tracker's compressor thread can answer
 * Before that, churn fills the tracker's first 1 MiB trace chunk, which starts its compressor
 * thread (unless MEMSCOPE_TRACK_THREAD=0). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { kBlocks = 4000 };

static void* held[2][kBlocks];

/* Blocks of assorted sizes, every other one freed: free chunks with live neighbours, so they
 * can neither merge nor go back to the top. A few are bigger than a page pair. */
static void make_holes(void** blocks) {
  for (size_t i = 0; i < kBlocks; ++i) {
    const size_t size = i % 10 == 0 ? 24000 : 32 + (i % 64) * 48;
    blocks[i] = malloc(size);
    if (blocks[i] == NULL) exit(2);
    memset(blocks[i], 1, size);
  }
  for (size_t i = 0; i < kBlocks; i += 2) {
    free(blocks[i]);
    blocks[i] = NULL;
  }
}

static void* second_arena(void* unused) {
  (void)unused;
  make_holes(held[1]);
  return NULL;
}

static void sleep_ms(long ms) {
  struct timespec pause = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&pause, NULL);
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: track_heap SECONDS [quiet]\n");
    return 2;
  }
  const long seconds = atol(argv[1]);
  const int quiet = argc > 2 && strcmp(argv[2], "quiet") == 0;
  make_holes(held[0]);
  pthread_t thread;
  if (pthread_create(&thread, NULL, second_arena, NULL) != 0) return 2;
  pthread_join(thread, NULL);
  /* About 400,000 records: well over a 1 MiB trace chunk. */
  for (int i = 0; i < 200000; ++i) {
    void* block = malloc((size_t)(16 + i % 200));
    if (block == NULL) return 2;
    free(block);
  }
  printf("track_heap pid %ld\n", (long)getpid());
  fflush(stdout);
  for (long tick = 0; tick < seconds * 10; ++tick) {
    if (quiet) {
      sleep_ms(100);
      continue;
    }
    void* blocks[8];
    for (size_t i = 0; i < 8; ++i) blocks[i] = malloc(64 + i * 16);
    for (size_t i = 0; i < 8; ++i) free(blocks[i]);
    sleep_ms(100);
  }
  for (size_t arena = 0; arena < 2; ++arena) {
    for (size_t i = 0; i < kBlocks; ++i) free(held[arena][i]);
  }
  return 0;
}
