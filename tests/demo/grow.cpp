// A process that grows steadily towards a limit, for the OOM guard's tests: it allocates and
// touches `mib_per_second` MiB every second (in 10 slices) up to `max_mib`, then holds. SIGUSR1
// (or SIGTERM) makes it write "SIGNAL <name> <MiB held>" to `marker` and exit 0, like a training
// script that checkpoints when warned.
//
// usage: memscope_grow MIB_PER_SECOND MAX_MIB MARKER_FILE [HOLD_SECONDS=60]
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace {

volatile sig_atomic_t g_signal = 0;

void on_signal(int signal_number) { g_signal = signal_number; }

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr,
                 "usage: memscope_grow MIB_PER_SECOND MAX_MIB MARKER_FILE [HOLD_SECONDS]\n");
    return 2;
  }
  const double rate = std::atof(argv[1]);
  const double max_mib = std::atof(argv[2]);
  const char* marker = argv[3];
  const double hold_seconds = argc > 4 ? std::atof(argv[4]) : 60;
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigaction(SIGUSR1, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);

  std::vector<char*> blocks;
  const size_t slice = static_cast<size_t>(rate * 1024 * 1024 / 10);
  double held = 0;
  const auto start = std::chrono::steady_clock::now();
  auto next = start;
  while (g_signal == 0) {
    if (held + rate / 10 <= max_mib && slice > 0) {
      auto* block = static_cast<char*>(std::malloc(slice));
      if (!block) break;
      std::memset(block, 1, slice);
      blocks.push_back(block);
      held += rate / 10;
    } else if (std::chrono::steady_clock::now() - start >
               std::chrono::duration<double>(max_mib / rate + hold_seconds)) {
      break;
    }
    next += std::chrono::milliseconds(100);
    std::this_thread::sleep_until(next);
  }
  if (g_signal != 0) {
    char line[128];
    const int n =
        std::snprintf(line, sizeof line, "SIGNAL %s %.0f\n", sigabbrev_np(g_signal), held);
    const int fd = open(marker, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      ssize_t ignored = write(fd, line, static_cast<size_t>(n));
      (void)ignored;
      close(fd);
    }
  }
  for (char* block : blocks) std::free(block);
  return 0;
}
