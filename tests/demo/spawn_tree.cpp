// Test helper: forks N children that each touch a little memory and sleep, then exits after
// the given seconds (children die with it). Used to measure memscope on big process trees.
// usage: memscope_spawn_tree N seconds [kib_per_child=256]
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: memscope_spawn_tree N seconds [kib_per_child]\n");
    return 2;
  }
  const int count = std::atoi(argv[1]);
  const unsigned seconds = static_cast<unsigned>(std::atoi(argv[2]));
  const size_t bytes = (argc > 3 ? static_cast<size_t>(std::atol(argv[3])) : 256u) * 1024u;
  std::vector<pid_t> children;
  for (int i = 0; i < count; ++i) {
    const pid_t pid = fork();
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      std::vector<char> memory(bytes);
      std::memset(memory.data(), 1, memory.size());
      pause();
      _exit(0);
    }
    if (pid > 0) children.push_back(pid);
  }
  std::printf("spawned %zu children\n", children.size());
  std::fflush(stdout);
  sleep(seconds);
  for (pid_t pid : children) kill(pid, SIGKILL);
  for (pid_t pid : children) waitpid(pid, nullptr, 0);
  return 0;
}
