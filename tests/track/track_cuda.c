// GPU allocations through a fake CUDA runtime and driver (libcudart.so.12 and libcuda.so.1 built
// beside it, found through RPATH), for the allocation tracker's end-to-end tests. Planted:
//   gpu_leak      2 x cudaMalloc(1 MiB), never freed            space cuda,          2097152 B
//   managed_leak  cudaMallocManaged(64 KiB), never freed          space cuda,            65536 B
//   driver_leak   cuMemAlloc_v2(256 KiB), never freed             space cuda-driver,    262144 B
//   vmm_leak      cuMemCreate(2 MiB) handle never released        space cuda-physical, 2097152 B
//                 plus cuMemMap/cuMemUnmap of it (mapping released: nothing left mapped)
// and freed: gpu_churn (3 x cudaMalloc + cudaFree, a cudaMallocAsync/cudaFreeAsync pair).
// Every call's status is checked (the fakes refuse frees of addresses they never handed out);
// prints one deterministic line.
#include <stdio.h>
#include <stdlib.h>

int cudaMalloc(void** p, size_t n);
int cudaFree(void* p);
int cudaMallocAsync(void** p, size_t n, void* stream);
int cudaFreeAsync(void* p, void* stream);
int cudaMallocManaged(void** p, size_t n, unsigned flags);
int cuMemAlloc_v2(unsigned long long* p, size_t n);
int cuMemFree_v2(unsigned long long p);
int cuMemCreate(unsigned long long* handle, size_t n, const void* prop, unsigned long long flags);
int cuMemRelease(unsigned long long handle);
int cuMemMap(unsigned long long ptr, size_t n, size_t offset, unsigned long long handle,
             unsigned long long flags);
int cuMemUnmap(unsigned long long ptr, size_t n);

enum { kMiB = 1 << 20 };

static void check(int status, const char* what) {
  if (status != 0) {
    fprintf(stderr, "track_cuda: %s failed with %d\n", what, status);
    exit(1);
  }
}

static void* leaked[4];
static int calls = 0;

__attribute__((noinline)) void gpu_leak(void) {
  for (int i = 0; i < 2; ++i) {
    check(cudaMalloc(&leaked[i], kMiB), "cudaMalloc");
    ++calls;
  }
}

__attribute__((noinline)) void gpu_churn(void) {
  void* freed[3];
  for (int i = 0; i < 3; ++i) {
    check(cudaMalloc(&freed[i], (size_t)(i + 1) * 512 * 1024), "cudaMalloc");
    ++calls;
  }
  for (int i = 0; i < 3; ++i) check(cudaFree(freed[i]), "cudaFree");
  void* async = NULL;
  check(cudaMallocAsync(&async, 3 * kMiB, NULL), "cudaMallocAsync");
  check(cudaFreeAsync(async, NULL), "cudaFreeAsync");
  calls += 2;
}

__attribute__((noinline)) void managed_leak(void) {
  check(cudaMallocManaged(&leaked[2], 64 * 1024, 1u), "cudaMallocManaged");
  ++calls;
}

static unsigned long long driver_leaked = 0;

__attribute__((noinline)) void driver_leak(void) {
  check(cuMemAlloc_v2(&driver_leaked, 256 * 1024), "cuMemAlloc_v2");
  ++calls;
}

static unsigned long long handle_leaked = 0;

__attribute__((noinline)) void vmm_leak(void) {
  const int prop = 0;  // stands in for CUmemAllocationProp
  check(cuMemCreate(&handle_leaked, 2 * kMiB, &prop, 0), "cuMemCreate");
  const unsigned long long va = 0x7c0000000000ull;
  check(cuMemMap(va, 2 * kMiB, 0, handle_leaked, 0), "cuMemMap");
  check(cuMemUnmap(va, 2 * kMiB), "cuMemUnmap");
  calls += 3;
}

int main(void) {
  gpu_leak();
  gpu_churn();
  managed_leak();
  driver_leak();
  vmm_leak();
  printf("track_cuda: calls=%d leaked_runtime=%d leaked_driver=1 leaked_handles=1\n", calls, 3);
  return 0;
}
