// The allocation ids of live heap blocks: address → id (ids count 1, 2, 3, ... in allocation
// order). With it the trace names a freed block by how many allocations ago it was made
// instead of by its address, which compresses several times better (docs/tracker-format.md,
// HEAP_* records). Open addressing with linear probing over mmap'd memory, grown by doubling,
// deletion by backward shift (no tombstones): no malloc, so it can live inside the hooks.
// Not thread-safe (the writer lock guards it).
#pragma once

#include <cstddef>
#include <cstdint>

namespace memscope::track {

class HeapIds {
 public:
  bool init(unsigned initial_slots_log2 = 16);
  void release();

  // Remembers `address` as allocation `id`. An id it had (its free was not seen: made while
  // the thread was inside a hook, or before tracking started) goes to *replaced (else 0).
  // False when the table cannot grow.
  bool put(uint64_t address, uint64_t id, uint64_t* replaced = nullptr);
  // The id of `address`, forgotten; 0 when it is not live.
  uint64_t take(uint64_t address);

  size_t size() const { return count_; }

 private:
  struct Slot {
    uint64_t address;  // 0: empty
    uint64_t id;
  };
  static size_t slot_of(uint64_t address, size_t mask) {
    uint64_t hash = (address >> 4) * 0x9E3779B97F4A7C15ULL;
    hash ^= hash >> 29;
    return static_cast<size_t>(hash) & mask;
  }
  bool grow();

  Slot* slots_ = nullptr;
  size_t mask_ = 0;
  size_t count_ = 0;
};

}  // namespace memscope::track
