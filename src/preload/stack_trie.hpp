// Deduplicates call stacks into a trie of (caller node, return address) pairs: node ids count
// 1, 2, 3, ... in order of creation, 0 is the empty stack, a parent is always created before
// its children. Open addressing over mmap'd memory, grown by doubling: no malloc, so it can
// live inside the allocation hooks. Not thread-safe (the tracker's writer lock guards it).
#pragma once

#include <cstddef>
#include <cstdint>

namespace memscope::track {

class StackTrie {
 public:
  // `initial_slots_log2`: the table starts with 2^n slots and doubles at half load.
  bool init(unsigned initial_slots_log2 = 16);
  void release();

  // The id of `parent`'s child for return address `ip`, created (and `*created` set) when new.
  // 0 when the table cannot grow any more (the caller keeps the stack it has so far).
  uint32_t child(uint32_t parent, uint64_t ip, bool* created);

  uint32_t node_count() const { return node_count_; }

 private:
  struct Slot {
    uint64_t ip;
    uint32_t parent;
    uint32_t id;  // 0: empty
  };
  static size_t slot_of(uint32_t parent, uint64_t ip, size_t mask) {
    uint64_t hash = (ip ^ (static_cast<uint64_t>(parent) * 0x9E3779B97F4A7C15ULL)) *
                    0xFF51AFD7ED558CCDULL;
    hash ^= hash >> 31;
    return static_cast<size_t>(hash) & mask;
  }
  bool grow();

  Slot* slots_ = nullptr;
  size_t mask_ = 0;  // slot count - 1
  uint32_t node_count_ = 0;
};

}  // namespace memscope::track
