// The demo workload for README's first command: a tiny stand-in for a training job. Each
// "step" allocates activations, touches them, frees them (the sawtooth), and keeps a small
// slice alive (a slow leak, like a list of loss tensors nobody clears). Two "DataLoader
// workers" are forked at start so the process tree has children with their own memory.
//
// usage: memscope_demo [steps=40] [step_ms=100] [leak_kib_per_step=512]
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace {

void touch(std::vector<char>& buffer) {
  for (size_t i = 0; i < buffer.size(); i += 4096) buffer[i] = static_cast<char>(i);
}

void run_worker(int steps, int step_ms) {
  // A worker holds a prefetch buffer that it fills once, then only reads.
  std::vector<char> prefetch(16u << 20);
  touch(prefetch);
  for (int step = 0; step < steps; ++step) std::this_thread::sleep_for(std::chrono::milliseconds(step_ms));
}

}  // namespace

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 40;
  const int step_ms = argc > 2 ? std::atoi(argv[2]) : 100;
  const size_t leak_bytes = (argc > 3 ? static_cast<size_t>(std::atol(argv[3])) : 512u) * 1024u;
  if (steps <= 0 || step_ms <= 0) {
    std::fprintf(stderr, "usage: memscope_demo [steps>0] [step_ms>0] [leak_kib_per_step]\n");
    return 2;
  }

  std::vector<pid_t> workers;
  for (int w = 0; w < 2; ++w) {
    const pid_t pid = fork();
    if (pid == 0) {
      run_worker(steps, step_ms);
      _exit(0);
    }
    if (pid > 0) workers.push_back(pid);
  }

  std::vector<char> weights(32u << 20);  // "model parameters": allocated once
  touch(weights);
  std::vector<std::vector<char>> kept;   // the leak
  for (int step = 0; step < steps; ++step) {
    std::vector<char> activations(48u << 20);  // rises during the "forward pass"...
    touch(activations);
    std::this_thread::sleep_for(std::chrono::milliseconds(step_ms / 2));
    kept.emplace_back(leak_bytes);
    touch(kept.back());
    activations.clear();
    activations.shrink_to_fit();                 // ...and falls after "backward"
    std::this_thread::sleep_for(std::chrono::milliseconds(step_ms - step_ms / 2));
    if ((step + 1) % 10 == 0) std::printf("demo: step %d/%d\n", step + 1, steps);
    std::fflush(stdout);
  }
  for (pid_t pid : workers) waitpid(pid, nullptr, 0);
  return 0;
}
