// Prologue (style scaling) and epilogue (demodulation, noise, bias, activation, gain, clamp)
// kernels of the CUDA modulated convolution; one read and one write per element each.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "modulated_conv2d.h"
#include "numeric.cuh"

namespace ganops {
namespace modconv {
namespace {

struct Coord {
  int64_t n, c, h, w;
};

// Logical coordinates of the element at memory offset i of a dense tensor in the given layout.
__device__ __forceinline__ Coord coord_of(int64_t i, const Shape& s) {
  Coord k;
  if (s.channels_last) {
    k.c = i % s.c;
    i /= s.c;
    k.w = i % s.w;
    i /= s.w;
    k.h = i % s.h;
    k.n = i / s.h;
  } else {
    k.w = i % s.w;
    i /= s.w;
    k.h = i % s.h;
    i /= s.h;
    k.c = i % s.c;
    k.n = i / s.c;
  }
  return k;
}

template <typename T>
__global__ void scale_kernel(const T* __restrict__ x, const float* __restrict__ s, T* __restrict__ y, Shape shape,
                             int64_t numel) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < numel; i += int64_t(gridDim.x) * blockDim.x) {
    const Coord k = coord_of(i, shape);
    y[i] = from_acc<T>(to_acc(x[i]) * __ldg(s + k.n * shape.c + k.c));
  }
}

template <typename T>
__global__ void epilogue_kernel(EpilogueParams p, Shape shape, int64_t numel) {
  const T* c = static_cast<const T*>(p.c);
  const T* noise = static_cast<const T*>(p.noise);
  const T* bias = static_cast<const T*>(p.bias);
  T* y = static_cast<T*>(p.y);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < numel; i += int64_t(gridDim.x) * blockDim.x) {
    const Coord k = coord_of(i, shape);
    float v = to_acc(c[i]) * __ldg(p.d + k.n * shape.c + k.c);
    if (noise != nullptr) v += to_acc(noise[k.n * p.noise_sn + k.h * p.noise_sh + k.w * p.noise_sw]);
    if (bias != nullptr) v += to_acc(bias[k.c]);
    if (p.act == kLeakyRelu && v < 0.f) v *= p.alpha;
    v *= p.gain;
    if (p.clamp >= 0.f) v = fminf(fmaxf(v, -p.clamp), p.clamp);
    y[i] = from_acc<T>(v);
  }
}

dim3 grid_for(int64_t numel, int threads) {
  const int64_t blocks = (numel + threads - 1) / threads;
  return dim3(static_cast<unsigned>(std::min<int64_t>(std::max<int64_t>(blocks, 1), 65535 * 8)));
}

}  // namespace

cudaError_t launch_scale(const void* x, const float* s, void* y, DType dtype, Shape shape, cudaStream_t stream) {
  const int64_t numel = shape.n * shape.c * shape.h * shape.w;
  if (numel == 0) return cudaSuccess;
  constexpr int kThreads = 256;
  const dim3 grid = grid_for(numel, kThreads);
  switch (dtype) {
    case DType::kFloat32:
      scale_kernel<float><<<grid, kThreads, 0, stream>>>(static_cast<const float*>(x), s, static_cast<float*>(y),
                                                         shape, numel);
      break;
    case DType::kFloat16:
      scale_kernel<__half><<<grid, kThreads, 0, stream>>>(static_cast<const __half*>(x), s, static_cast<__half*>(y),
                                                          shape, numel);
      break;
    case DType::kBFloat16:
      scale_kernel<__nv_bfloat16><<<grid, kThreads, 0, stream>>>(static_cast<const __nv_bfloat16*>(x), s,
                                                                 static_cast<__nv_bfloat16*>(y), shape, numel);
      break;
  }
  return cudaGetLastError();
}

cudaError_t launch_epilogue(const EpilogueParams& p, DType dtype, Shape shape, cudaStream_t stream) {
  const int64_t numel = shape.n * shape.c * shape.h * shape.w;
  if (numel == 0) return cudaSuccess;
  constexpr int kThreads = 256;
  const dim3 grid = grid_for(numel, kThreads);
  switch (dtype) {
    case DType::kFloat32: epilogue_kernel<float><<<grid, kThreads, 0, stream>>>(p, shape, numel); break;
    case DType::kFloat16: epilogue_kernel<__half><<<grid, kThreads, 0, stream>>>(p, shape, numel); break;
    case DType::kBFloat16: epilogue_kernel<__nv_bfloat16><<<grid, kThreads, 0, stream>>>(p, shape, numel); break;
  }
  return cudaGetLastError();
}

}  // namespace modconv
}  // namespace ganops
