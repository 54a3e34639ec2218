// A table of live fake device allocations shared by the fake CUDA runtime and driver
// (tests/track/fake_cudart.c, fake_cuda_driver.c): addresses come from a counter, nothing is
// behind them. A free of an address the table does not hold fails, so a tracker that passes
// garbled arguments on makes the program under test fail. Single-threaded use only.
#pragma once

#include <stddef.h>
#include <stdint.h>

enum { kFakeMaxLive = 1024, kFakeOk = 0, kFakeInvalidValue = 1, kFakeOutOfMemory = 2 };

typedef struct {
  uint64_t next;  // next address handed out
  uint64_t addresses[kFakeMaxLive];
  size_t sizes[kFakeMaxLive];
} FakeTable;

static inline int fake_take(FakeTable* table, size_t size, uint64_t* out) {
  if (out == NULL || size == 0) return kFakeInvalidValue;
  for (int i = 0; i < kFakeMaxLive; ++i) {
    if (table->addresses[i] == 0) {
      *out = table->next;
      table->addresses[i] = table->next;
      table->sizes[i] = size;
      table->next += (size + 0xFFFFu) & ~(uint64_t)0xFFFF;  // 64 KiB granularity, as real ones
      return kFakeOk;
    }
  }
  return kFakeOutOfMemory;
}

static inline int fake_give_back(FakeTable* table, uint64_t address) {
  for (int i = 0; i < kFakeMaxLive; ++i) {
    if (table->addresses[i] == address && address != 0) {
      table->addresses[i] = 0;
      return kFakeOk;
    }
  }
  return kFakeInvalidValue;
}
