// The allocation tracker's cost: a deterministic, single-threaded allocation storm timed plain,
// under `memscope leak --enable-tracking` and under heaptrack (bench/run_all.sh tracking).
//
//   malloc_bench [PAIRS]   (default 12000000: about 1 s plain here)
//
// PAIRS malloc/free pairs of pseudo-random sizes from several call sites at different stack
// depths (small objects, strings, buffers, calloc'd tables, realloc'd arrays, an occasional big
// block), a bounded pool of blocks that stay live and are replaced at random, and a few leaks
// (one block per million pairs). Prints the counts, a checksum of the bytes written (the same
// for every run with the same PAIRS) and the wall time of the storm itself; then the allocations
// of each call site (realloc counted as one), which a tracker's sites must add up to.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

// xorshift64*: the same sequence on every run.
uint64_t rng_state = 0x9e3779b97f4a7c15ull;
uint64_t next_random() {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545f4914f6cdd1dull;
}
size_t random_size(size_t low, size_t high) {
  return low + static_cast<size_t>(next_random() % (high - low + 1));
}

// Keeps the compiler from proving a block unused and dropping the malloc/free pair.
inline void escape(void* p) { asm volatile("" : : "r"(p) : "memory"); }

uint64_t checksum = 0;
uint64_t allocations = 0;
// Allocations per call site (realloc counted as one): what a tracker's sites must add up to.
enum Site { kSmall, kString, kBuffer, kTable, kGrowing, kBig, kPool, kLeak, kSites };
const char* const kSiteNames[kSites] = {"small_object",  "string_like", "buffer",       "table",
                                        "growing_array", "big_block",   "pool_replace", "leak_one"};
uint64_t site_allocations[kSites];

// Writes the block's first and last bytes and folds them into the checksum.
void touch(void* block, size_t size) {
  auto* bytes = static_cast<unsigned char*>(block);
  bytes[0] = static_cast<unsigned char>(size);
  bytes[size - 1] = static_cast<unsigned char>(size >> 8);
  escape(block);
  checksum = checksum * 1099511628211ull + bytes[0] + bytes[size - 1];
}

void* checked(void* p, Site site) {
  if (p == nullptr) {
    std::fprintf(stderr, "malloc_bench: out of memory\n");
    std::exit(1);
  }
  ++allocations;
  ++site_allocations[site];
  return p;
}

__attribute__((noinline)) void small_object() {
  const size_t size = random_size(8, 128);
  void* p = checked(std::malloc(size), kSmall);
  touch(p, size);
  std::free(p);
}

__attribute__((noinline)) void string_like() {
  const size_t size = random_size(16, 512);
  void* p = checked(std::malloc(size), kString);
  std::memset(p, 'a', size);
  touch(p, size);
  std::free(p);
}

__attribute__((noinline)) void buffer() {
  const size_t size = random_size(1024, 16384);
  void* p = checked(std::malloc(size), kBuffer);
  touch(p, size);
  std::free(p);
}

__attribute__((noinline)) void table() {
  const size_t count = random_size(4, 256);
  void* p = checked(std::calloc(count, sizeof(uint64_t)), kTable);
  touch(p, count * sizeof(uint64_t));
  std::free(p);
}

__attribute__((noinline)) void growing_array() {
  size_t size = random_size(16, 64);
  void* p = checked(std::malloc(size), kGrowing);
  for (int step = 0; step < 3; ++step) {
    size *= 2;
    p = checked(std::realloc(p, size), kGrowing);
  }
  touch(p, size);
  std::free(p);
}

__attribute__((noinline)) void big_block() {
  const size_t size = random_size(64 * 1024, 1024 * 1024);
  void* p = checked(std::malloc(size), kBig);
  touch(p, size);
  std::free(p);
}

// The retained pool: a random slot's block is replaced (freed, a new one allocated).
constexpr size_t kPoolSlots = 4096;
void* pool[kPoolSlots];

__attribute__((noinline)) void pool_replace() {
  const size_t slot = static_cast<size_t>(next_random() % kPoolSlots);
  std::free(pool[slot]);
  const size_t size = random_size(32, 2048);
  pool[slot] = checked(std::malloc(size), kPool);
  touch(pool[slot], size);
}

std::vector<void*> leaked;

__attribute__((noinline)) void leak_one() {
  void* p = checked(std::malloc(1000), kLeak);
  touch(p, 1000);
  leaked.push_back(p);  // never freed
}

// Call sites at a few stack depths: a tracker pays per frame it unwinds.
__attribute__((noinline)) void depth3(uint64_t r) {
  if (r % 4 == 0)
    table();
  else
    growing_array();
}
__attribute__((noinline)) void depth2(uint64_t r) {
  if (r % 3 == 0)
    buffer();
  else
    depth3(r / 3);
}
__attribute__((noinline)) void depth1(uint64_t r) {
  if (r % 2 == 0)
    string_like();
  else
    depth2(r / 2);
}

__attribute__((noinline)) void step(uint64_t i) {
  const uint64_t r = next_random();
  const uint64_t pick = r % 100;
  if (pick < 50)
    small_object();
  else if (pick < 80)
    depth1(r >> 8);
  else
    pool_replace();
  if (r % 4096 == 0) big_block();
  if (i % 1000000 == 999999) leak_one();
}

}  // namespace

int main(int argc, char** argv) {
  const uint64_t pairs = argc > 1 ? std::stoull(argv[1]) : 12000000;
  leaked.reserve(pairs / 1000000 + 1);
  const auto start = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < pairs; ++i) step(i);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  size_t retained = 0;
  for (void* p : pool) retained += p != nullptr;
  std::printf(
      "malloc_bench: pairs=%llu allocations=%llu retained=%zu leaked=%zu "
      "checksum=%016llx seconds=%.3f\n",
      static_cast<unsigned long long>(pairs), static_cast<unsigned long long>(allocations),
      retained, leaked.size(), static_cast<unsigned long long>(checksum), seconds);
  std::printf("malloc_bench sites:");
  for (int site = 0; site < kSites; ++site) {
    std::printf(" %s=%llu", kSiteNames[site],
                static_cast<unsigned long long>(site_allocations[site]));
  }
  std::printf("\n");
  for (void* p : pool) std::free(p);
  return 0;
}
