// Fake CUDA driver (built as libcuda.so.1, SONAME libcuda.so.1): cuMemAlloc_v2/cuMemFree_v2 and
// the virtual memory management calls the allocation tracker hooks, with the real ABI (int
// return, 0 = CUDA_SUCCESS). See fake_cuda_common.h.
#include "fake_cuda_common.h"

static FakeTable device = {.next = 0x7d0000000000ull};
static FakeTable handles = {.next = 0x1000};  // cuMemCreate handles
static FakeTable mappings = {.next = 0};      // mapped ranges, by address

int cuMemAlloc_v2(unsigned long long* p, size_t n);
int cuMemFree_v2(unsigned long long p);
int cuMemCreate(unsigned long long* handle, size_t n, const void* prop, unsigned long long flags);
int cuMemRelease(unsigned long long handle);
int cuMemMap(unsigned long long ptr, size_t n, size_t offset, unsigned long long handle,
             unsigned long long flags);
int cuMemUnmap(unsigned long long ptr, size_t n);

int cuMemAlloc_v2(unsigned long long* p, size_t n) {
  uint64_t address = 0;
  const int status = fake_take(&device, n, &address);
  if (status == kFakeOk) *p = address;
  return status;
}

int cuMemFree_v2(unsigned long long p) { return fake_give_back(&device, p); }

int cuMemCreate(unsigned long long* handle, size_t n, const void* prop, unsigned long long flags) {
  if (prop == NULL || flags != 0) return kFakeInvalidValue;
  uint64_t value = 0;
  const int status = fake_take(&handles, n, &value);
  if (status == kFakeOk) *handle = value;
  return status;
}

int cuMemRelease(unsigned long long handle) { return fake_give_back(&handles, handle); }

int cuMemMap(unsigned long long ptr, size_t n, size_t offset, unsigned long long handle,
             unsigned long long flags) {
  if (ptr == 0 || n == 0 || offset != 0 || flags != 0) return kFakeInvalidValue;
  for (int i = 0; i < kFakeMaxLive; ++i) {
    if (handles.addresses[i] == handle && handle != 0) {
      if (handles.sizes[i] < n) return kFakeInvalidValue;
      mappings.next = ptr;
      uint64_t mapped = 0;
      return fake_take(&mappings, n, &mapped);
    }
  }
  return kFakeInvalidValue;
}

int cuMemUnmap(unsigned long long ptr, size_t n) {
  for (int i = 0; i < kFakeMaxLive; ++i) {
    if (mappings.addresses[i] == ptr && ptr != 0) {
      if (mappings.sizes[i] != n) return kFakeInvalidValue;
      mappings.addresses[i] = 0;
      return kFakeOk;
    }
  }
  return kFakeInvalidValue;
}
