// A plugin track_fork_dlopen loads with dlopen: its leak (10 x 1000 bytes in plugin_leak) must
// be symbolized from the MODULE record the tracker sends after dlopen.
#include <stdlib.h>
#include <string.h>

void* plugin_blocks[10];

int plugin_leak(void);

__attribute__((noinline)) int plugin_leak(void) {
  int sum = 0;
  for (int i = 0; i < 10; ++i) {
    plugin_blocks[i] = malloc(1000);
    memset(plugin_blocks[i], i, 1000);
    sum += ((unsigned char*)plugin_blocks[i])[999];
  }
  return sum;
}
