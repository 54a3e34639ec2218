#include "preload/stack_trie.hpp"

#include "preload/raw_memory.hpp"

namespace memscope::track {

namespace {
// 2^27 slots (2 GiB of address space, touched only as used): 64 million nodes at half load.
constexpr unsigned kMaxSlotsLog2 = 27;
}  // namespace

bool StackTrie::init(unsigned initial_slots_log2) {
  release();
  const size_t slots = size_t{1} << initial_slots_log2;
  slots_ = static_cast<Slot*>(map_pages(slots * sizeof(Slot), true));
  if (slots_ == nullptr) return false;
  mask_ = slots - 1;
  return true;
}

void StackTrie::release() {
  unmap_pages(slots_, (mask_ + 1) * sizeof(Slot));
  slots_ = nullptr;
  mask_ = 0;
  node_count_ = 0;
}

uint32_t StackTrie::child(uint32_t parent, uint64_t ip, bool* created) {
  *created = false;
  if (slots_ == nullptr) return 0;
  for (size_t i = slot_of(parent, ip, mask_);; i = (i + 1) & mask_) {
    Slot& slot = slots_[i];
    if (slot.id == 0) break;
    if (slot.ip == ip && slot.parent == parent) return slot.id;
  }
  if ((static_cast<size_t>(node_count_) + 1) * 2 > mask_ + 1 && !grow()) return 0;
  size_t i = slot_of(parent, ip, mask_);
  while (slots_[i].id != 0) i = (i + 1) & mask_;
  slots_[i] = Slot{ip, parent, ++node_count_};
  *created = true;
  return node_count_;
}

bool StackTrie::grow() {
  const size_t old_slots = mask_ + 1;
  if (old_slots >= (size_t{1} << kMaxSlotsLog2)) return false;
  const size_t new_slots = old_slots * 2;
  auto* table = static_cast<Slot*>(map_pages(new_slots * sizeof(Slot), true));
  if (table == nullptr) return false;
  const size_t new_mask = new_slots - 1;
  for (size_t j = 0; j < old_slots; ++j) {
    const Slot& slot = slots_[j];
    if (slot.id == 0) continue;
    size_t i = slot_of(slot.parent, slot.ip, new_mask);
    while (table[i].id != 0) i = (i + 1) & new_mask;
    table[i] = slot;
  }
  unmap_pages(slots_, old_slots * sizeof(Slot));
  slots_ = table;
  mask_ = new_mask;
  return true;
}

}  // namespace memscope::track
