// Kernels for tests/test_cuda_emulator.py: each main() mode exercises one feature or one failure the
// emulator must report. Translated like csrc/cuda and built with g++ against include/ (no torch);
// prints one line per check. `selftest races` runs the seeded races (each one bug, and its correct
// version) under the schedule of GANOPS_EMU_SCHEDULE and prints each one's output bytes in hex: the
// test runs it under several schedules and requires the bugs to differ and the correct ones not to.
#include <cstdio>
#include <cstring>
#include <string>
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

// --- seeded races: `synced` false is the bug, true its correct version -------------------------------

// Each thread reads its neighbour's staged value: needs a barrier between the write and the read.
__global__ void neighbour_read(const float* x, float* out, bool synced) {
  extern __shared__ float staged[];
  staged[threadIdx.x] = x[threadIdx.x];
  if (synced) __syncthreads();
  out[threadIdx.x] = staged[(threadIdx.x + 1) % blockDim.x];
}

// Tree sum of 64 values by the first warp, assuming lockstep lanes: needs __syncwarp between the
// reads of a step and its writes, and between steps.
__global__ void warp_tree_sum(const float* x, float* out, bool synced) {
  __shared__ float s[64];
  s[threadIdx.x] = x[threadIdx.x];
  __syncthreads();
  if (threadIdx.x < 32) {
    for (int offset = 32; offset > 0; offset >>= 1) {
      const float v = s[threadIdx.x] + s[threadIdx.x + offset];
      if (synced) __syncwarp();
      s[threadIdx.x] = v;
      if (synced) __syncwarp();
    }
    if (threadIdx.x == 0) out[0] = s[0];
  }
}

// Each block sums its 32 values; the bug stores every block's sum to out[0] (the last block wins),
// the correct version adds them atomically.
__global__ void blocks_to_one(const float* x, float* out, bool atomic) {
  float v = x[blockIdx.x * blockDim.x + threadIdx.x];
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  if (threadIdx.x == 0) {
    if (atomic)
      atomicAdd(out, v);
    else
      out[0] = v;
  }
}

// Half the threads stage values in a static shared array; the bug reads all 64 slots.
__global__ void half_staged(const float* x, float* out, bool synced) {
  __shared__ float s[64];
  if (threadIdx.x < 32) s[threadIdx.x] = x[blockIdx.x * 32 + threadIdx.x];
  __syncthreads();
  out[blockIdx.x * blockDim.x + threadIdx.x] = s[synced ? threadIdx.x % 32 : threadIdx.x];
}

static void print_bytes(const char* name, const std::vector<float>& out) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    std::printf("%s %s\n", name, cudaGetErrorString(err));
    return;
  }
  std::printf("%s ", name);
  const unsigned char* bytes = reinterpret_cast<const unsigned char*>(out.data());
  for (size_t i = 0; i < out.size() * sizeof(float); ++i) std::printf("%02x", bytes[i]);
  std::printf("\n");
}

static void races() {
  std::vector<float> x(128);
  for (int i = 0; i < 128; ++i) x[i] = float(i + 1);
  for (int correct = 0; correct < 2; ++correct) {
    const std::string suffix = correct ? "_ok" : "_bug";
    std::vector<float> out(128, 0.f);
    neighbour_read<<<1, 64, 64 * sizeof(float)>>>(x.data(), out.data(), correct);
    print_bytes(("missing_syncthreads" + suffix).c_str(), out);
    std::fill(out.begin(), out.end(), 0.f);
    warp_tree_sum<<<1, 64>>>(x.data(), out.data(), correct);
    print_bytes(("warp_synchronous" + suffix).c_str(), out);
    std::fill(out.begin(), out.end(), 0.f);
    blocks_to_one<<<4, 32>>>(x.data(), out.data(), correct);
    print_bytes(("cross_block_write" + suffix).c_str(), out);
    std::fill(out.begin(), out.end(), 0.f);
    half_staged<<<2, 64>>>(x.data(), out.data(), correct);
    print_bytes(("unwritten_static_shared" + suffix).c_str(), out);
  }
}

static void report(const char* what) {
  const cudaError_t err = cudaGetLastError();
  std::printf("%s %s\n", what, err == cudaSuccess ? "ok" : cudaGetErrorString(err));
}

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "races") == 0) {
    races();
    return 0;
  }
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
