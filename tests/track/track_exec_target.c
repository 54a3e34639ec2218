// What track_fork_dlopen's child execs: a dynamically linked program that, under the tracker,
// writes a trace of its own with 7 x 77 bytes leaked in exec_leak.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void* blocks[7];

__attribute__((noinline)) void exec_leak(void) {
  for (int i = 0; i < 7; ++i) {
    blocks[i] = malloc(77);
    memset(blocks[i], i, 77);
  }
}

int main(void) {
  exec_leak();
  printf("track_exec_target: leaked=7 x 77\n");
  return 0;
}
