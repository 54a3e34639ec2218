#include "preload/heap_ids.hpp"

#include "preload/raw_memory.hpp"

namespace memscope::track {

namespace {
// 2^30 slots (16 GiB of address space, touched only as used): 500 million live blocks.
constexpr unsigned kMaxSlotsLog2 = 30;
}  // namespace

bool HeapIds::init(unsigned initial_slots_log2) {
  release();
  const size_t slots = size_t{1} << initial_slots_log2;
  slots_ = static_cast<Slot*>(map_pages(slots * sizeof(Slot), true));
  if (slots_ == nullptr) return false;
  mask_ = slots - 1;
  return true;
}

void HeapIds::release() {
  if (slots_ != nullptr) unmap_pages(slots_, (mask_ + 1) * sizeof(Slot));
  slots_ = nullptr;
  mask_ = 0;
  count_ = 0;
}

bool HeapIds::put(uint64_t address, uint64_t id, uint64_t* replaced) {
  if (replaced != nullptr) *replaced = 0;
  if (slots_ == nullptr || address == 0) return false;
  size_t i = slot_of(address, mask_);
  for (; slots_[i].address != 0; i = (i + 1) & mask_) {
    if (slots_[i].address == address) {
      if (replaced != nullptr) *replaced = slots_[i].id;
      slots_[i].id = id;
      return true;
    }
  }
  if ((count_ + 1) * 2 > mask_ + 1) {
    if (!grow()) return false;
    i = slot_of(address, mask_);
    while (slots_[i].address != 0) i = (i + 1) & mask_;
  }
  slots_[i] = Slot{address, id};
  ++count_;
  return true;
}

uint64_t HeapIds::take(uint64_t address) {
  if (slots_ == nullptr || address == 0) return 0;
  size_t i = slot_of(address, mask_);
  for (; slots_[i].address != address; i = (i + 1) & mask_) {
    if (slots_[i].address == 0) return 0;
  }
  const uint64_t id = slots_[i].id;
  --count_;
  // Backward-shift deletion: move later members of the probe run into the hole when their
  // home slot does not lie (cyclically) between the hole and them.
  size_t hole = i;
  for (size_t j = (i + 1) & mask_; slots_[j].address != 0; j = (j + 1) & mask_) {
    const size_t home = slot_of(slots_[j].address, mask_);
    const bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (stays) continue;
    slots_[hole] = slots_[j];
    hole = j;
  }
  slots_[hole] = Slot{0, 0};
  return id;
}

bool HeapIds::grow() {
  const size_t old_slots = mask_ + 1;
  if (old_slots >= (size_t{1} << kMaxSlotsLog2)) return false;
  const size_t new_slots = old_slots * 2;
  auto* grown = static_cast<Slot*>(map_pages(new_slots * sizeof(Slot), true));
  if (grown == nullptr) return false;
  const size_t new_mask = new_slots - 1;
  for (size_t k = 0; k < old_slots; ++k) {
    if (slots_[k].address == 0) continue;
    size_t i = slot_of(slots_[k].address, new_mask);
    while (grown[i].address != 0) i = (i + 1) & new_mask;
    grown[i] = slots_[k];
  }
  unmap_pages(slots_, old_slots * sizeof(Slot));
  slots_ = grown;
  mask_ = new_mask;
  return true;
}

}  // namespace memscope::track
