// Kernels for tests/test_cuda_emulator.py: each main() mode exercises one feature or one failure the
// emulator must report. Translated like csrc/cuda and built with g++ against include/ (no torch);
// prints one line per check.
#include <cstdio>
#include <cstring>
#include <vector>

#include <cuda_runtime.h>

__global__ void block_sum(const float* x, int n, float* out) {
  __shared__ float warp_sums[8];
  extern __shared__ float staged[];
  float v = 0.f;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) v += x[i];
  staged[threadIdx.x] = v;
  __syncthreads();
  v = staged[(threadIdx.x + 1) % blockDim.x];  // read a neighbour's value: needs the barrier
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = v;
  __syncthreads();
  if (threadIdx.x < 32) {
    v = threadIdx.x < blockDim.x / 32 ? warp_sums[threadIdx.x] : 0.f;
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    if (threadIdx.x == 0) atomicAdd(out, v);
  }
}

__global__ void divergent_barrier(int* out) {
  if (threadIdx.x < 16) __syncthreads();
  out[threadIdx.x] = 1;
}

__global__ void early_exit_barrier(int* out) {
  if (threadIdx.x == 0) return;
  __syncthreads();
  out[threadIdx.x] = 1;
}

__global__ void partial_warp_shuffle(float* out) {
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, float(threadIdx.x), 1);
}

__global__ void fill(int* out) { out[blockIdx.x * blockDim.x + threadIdx.x] = 1; }

static void report(const char* what) {
  const cudaError_t err = cudaGetLastError();
  std::printf("%s %s\n", what, err == cudaSuccess ? "ok" : cudaGetErrorString(err));
}

int main() {
  const int n = 1000;
  std::vector<float> x(n);
  for (int i = 0; i < n; ++i) x[i] = float(i % 7) - 2.5f;
  float sum = 0.f;
  block_sum<<<3, 256, 256 * sizeof(float)>>>(x.data(), n, &sum);
  report("block_sum");
  double expected = 0;
  for (float v : x) expected += v;
  std::printf("sum %.3f expected %.3f\n", sum, expected);

  std::vector<int> flags(2048, 0);
  divergent_barrier<<<1, 64>>>(flags.data());
  report("divergent_barrier");
  early_exit_barrier<<<1, 64>>>(flags.data());
  report("early_exit_barrier");
  partial_warp_shuffle<<<1, 48>>>(reinterpret_cast<float*>(flags.data()));
  report("partial_warp_shuffle");
  fill<<<1, 1025>>>(flags.data());
  report("too_many_threads");
  fill<<<dim3(1, 65536), 1>>>(flags.data());
  report("grid_y_too_large");
  fill<<<1, 32, 48 * 1024 + 4>>>(flags.data());
  report("too_much_shared");
  std::fill(flags.begin(), flags.end(), 0);
  fill<<<4, 512>>>(flags.data());
  report("fill");
  int written = 0;
  for (int v : flags) written += v;
  std::printf("written %d\n", written);
  return 0;
}
