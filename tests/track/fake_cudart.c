// Fake CUDA runtime (built as libcudart.so.12, SONAME libcudart.so.12): the allocation entry
// points the allocation tracker hooks, with the real ABI (int return, 0 = cudaSuccess). See
// fake_cuda_common.h.
#include "fake_cuda_common.h"

static FakeTable runtime = {.next = 0x7e0000000000ull};

int cudaMalloc(void** p, size_t n);
int cudaFree(void* p);
int cudaMallocAsync(void** p, size_t n, void* stream);
int cudaFreeAsync(void* p, void* stream);
int cudaMallocManaged(void** p, size_t n, unsigned flags);

static int take(void** p, size_t n) {
  uint64_t address = 0;
  const int status = fake_take(&runtime, n, &address);
  if (status == kFakeOk) *p = (void*)(uintptr_t)address;
  return status;
}

int cudaMalloc(void** p, size_t n) { return take(p, n); }
int cudaFree(void* p) { return p == NULL ? kFakeOk : fake_give_back(&runtime, (uintptr_t)p); }
int cudaMallocAsync(void** p, size_t n, void* stream) {
  (void)stream;
  return take(p, n);
}
int cudaFreeAsync(void* p, void* stream) {
  (void)stream;
  return p == NULL ? kFakeOk : fake_give_back(&runtime, (uintptr_t)p);
}
int cudaMallocManaged(void** p, size_t n, unsigned flags) {
  if (flags != 1u) return kFakeInvalidValue;  // cudaMemAttachGlobal, what track_cuda passes
  return take(p, n);
}
