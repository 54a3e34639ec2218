// Planted C++ leaks for the allocation tracker's end-to-end tests (tests/e2e/track_test.cpp).
// What each site is named after (the innermost frame outside memscope and the allocator:
// operator new and std::allocator plumbing are skipped):
//   Leaky::grow(int)  `new Node` (sizeof(Node) == 64), never freed: called twice from main,
//                     so two sites (two call stacks) named "Leaky::grow(int)": 100 and 150
//                     nodes, 250 x 64 = 16000 bytes in all.
//   leak_vector()     `new std::vector<char>(4096)`: the 24-byte vector object is allocated by
//                     leak_vector's own `new` (site "leak_vector()", 24 bytes, 1 allocation).
//                     Its 4096-byte buffer is allocated inside std::vector's constructor; which
//                     frame names that site depends on how much std:: plumbing counts as
//                     allocator, so the test only checks that a 4096-byte leak has
//                     leak_vector() among its frames.
// Freed before exit: churn() (new/delete, new[]/delete[], std::string and std::vector growth).
// Prints one deterministic checksum line.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace {

struct Node {
  Node* next = nullptr;
  uint64_t payload[7] = {};
};
static_assert(sizeof(Node) == 64);

uint64_t rng_state = 0x2545f4914f6cdd1dull;
uint64_t next_random() {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

}  // namespace

class Leaky {
 public:
  __attribute__((noinline)) void grow(int n);
  uint64_t sum() const {
    uint64_t total = 0;
    for (const Node* node = head_; node != nullptr; node = node->next) total += node->payload[0];
    return total;
  }

 private:
  Node* head_ = nullptr;
};

void Leaky::grow(int n) {
  for (int i = 0; i < n; ++i) {
    Node* node = new Node;
    node->payload[0] = static_cast<uint64_t>(i) * 3 + 1;
    node->next = head_;
    head_ = node;
  }
}

std::vector<char>* leaked_vector = nullptr;

__attribute__((noinline)) void leak_vector() {
  leaked_vector = new std::vector<char>(4096);
  (*leaked_vector)[4095] = 'x';
}

__attribute__((noinline)) uint64_t churn() {
  uint64_t sum = 0;
  for (int i = 0; i < 20000; ++i) {
    auto* one = new uint64_t(next_random());
    const size_t n = 1 + static_cast<size_t>(next_random() % 512);
    auto* many = new uint32_t[n];
    many[n - 1] = static_cast<uint32_t>(*one);
    sum = sum * 31 + many[n - 1];
    delete[] many;
    delete one;
    std::string text(static_cast<size_t>(next_random() % 300), 'a');
    std::vector<int> numbers;
    for (int k = 0; k < i % 40; ++k) numbers.push_back(k);
    sum += text.size() + numbers.size();
  }
  return sum;
}

Leaky leaky;

int main() {
  leaky.grow(100);
  const uint64_t churned = churn();
  leaky.grow(150);
  leak_vector();
  std::printf("track_leak_cpp: checksum=%016llx nodes=%llu vector=%zu\n",
              static_cast<unsigned long long>(churned ^ leaky.sum()),
              static_cast<unsigned long long>(250), leaked_vector->size());
  return 0;
}
