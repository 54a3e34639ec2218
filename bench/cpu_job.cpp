// A deterministic, single-threaded, CPU-bound job with no memory growth, to time with and
// without `memscope run` (bench/run_all.sh). It runs a serial xorshift chain (one dependent
// step after another, so it neither vectorizes nor depends on memory) and prints one line on
// stderr:
//   cpu_job: iterations=N wall_seconds=W cpu_seconds=C involuntary_switches=K checksum=X
// involuntary_switches (ru_nivcsw) counts the times the job was taken off its core for
// something else: sampling that shares the job's core shows up there.
// usage: cpu_job [iterations=7000000000]
#include <sys/resource.h>
#include <time.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace {

double now(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

}  // namespace

int main(int argc, char** argv) {
  const uint64_t iterations = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 7000000000ULL;
  const double wall_start = now(CLOCK_MONOTONIC);
  const double cpu_start = now(CLOCK_PROCESS_CPUTIME_ID);
  uint64_t state = 0x9E3779B97F4A7C15ULL;
  uint64_t checksum = 0;
  for (uint64_t i = 0; i < iterations; ++i) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    checksum += state >> 60;
  }
  const double cpu = now(CLOCK_PROCESS_CPUTIME_ID) - cpu_start;
  const double wall = now(CLOCK_MONOTONIC) - wall_start;
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::fprintf(stderr,
               "cpu_job: iterations=%llu wall_seconds=%.4f cpu_seconds=%.4f "
               "involuntary_switches=%ld checksum=%llu\n",
               static_cast<unsigned long long>(iterations), wall, cpu, usage.ru_nivcsw,
               static_cast<unsigned long long>(checksum));
  return 0;
}
