// dlopen, fork and fork+exec under the allocation tracker (tests/e2e/track_test.cpp):
//   plugin_leak     (in libtrack_plugin.so, loaded with dlopen) 10 x 1000 B, never freed
//   child_leak      in a forked child that then exits through exit(): the child stops
//                   tracking, so this must appear in no trace
//   exec child      a forked child execs track_exec_target, which writes a trace of its own
//                   (exec_leak: 7 x 77 B)
//   after_fork_leak 4 x 44 B in the parent after both forks: the parent's trace goes on
// Usage: track_fork_dlopen [PLUGIN.so [EXEC_TARGET]] (defaults: the built ones).
// Prints one deterministic line (after the exec'd child's own line).
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void* kept[8];

__attribute__((noinline)) void child_leak(void) {
  for (int i = 0; i < 5; ++i) {
    kept[i] = malloc(555);
    memset(kept[i], i, 555);
  }
}

__attribute__((noinline)) void after_fork_leak(void) {
  for (int i = 0; i < 4; ++i) {
    kept[i] = malloc(44);
    memset(kept[i], i, 44);
  }
}

static int wait_for(pid_t pid, const char* what) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "track_fork_dlopen: %s child failed (status %d)\n", what, status);
    return 1;
  }
  return 0;
}

int main(int argc, char** argv) {
  const char* plugin_path = argc > 1 ? argv[1] : TRACK_PLUGIN_DEFAULT;
  const char* exec_target = argc > 2 ? argv[2] : TRACK_EXEC_TARGET_DEFAULT;

  void* plugin = dlopen(plugin_path, RTLD_NOW | RTLD_LOCAL);
  if (plugin == NULL) {
    fprintf(stderr, "track_fork_dlopen: %s\n", dlerror());
    return 1;
  }
  int (*plugin_leak)(void) = NULL;
  *(void**)&plugin_leak = dlsym(plugin, "plugin_leak");
  if (plugin_leak == NULL) {
    fprintf(stderr, "track_fork_dlopen: no plugin_leak in %s\n", plugin_path);
    return 1;
  }
  const int plugin_sum = plugin_leak();

  fflush(stdout);
  const pid_t leaker = fork();
  if (leaker < 0) return 1;
  if (leaker == 0) {
    child_leak();
    exit(0);  // atexit handlers and destructors run in the child too
  }
  int failed = wait_for(leaker, "leaking");

  fflush(stdout);
  const pid_t execer = fork();
  if (execer < 0) return 1;
  if (execer == 0) {
    char* const args[] = {(char*)exec_target, NULL};
    execv(exec_target, args);
    _exit(127);
  }
  failed |= wait_for(execer, "exec");

  after_fork_leak();
  printf("track_fork_dlopen: plugin_sum=%d children=2 failed=%d\n", plugin_sum, failed);
  return failed;
}
