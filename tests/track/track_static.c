// Statically linked: LD_PRELOAD cannot attach to it, so `memscope leak --enable-tracking` must
// say "tracking could not attach" and still print its trend verdicts.
#include <stdio.h>

int main(void) {
  printf("track_static: ran\n");
  return 0;
}
