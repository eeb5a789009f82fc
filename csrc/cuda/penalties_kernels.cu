// Per-sample sum of squares and its backward; see penalties.h (named *_kernels.cu because setup.py
// compiles penalties.cpp and a penalties.cu to the same object file).
#include "penalties.h"

#include "numeric.cuh"

namespace ganops {
namespace {

constexpr int kThreads = 256;
constexpr int kItems = 32;  // elements per thread in the first pass
constexpr int64_t kChunk = static_cast<int64_t>(kThreads) * kItems;
constexpr int kBackwardItems = 4;

// Sum of v over the block; the result is valid in thread 0.
template <typename A>
__device__ __forceinline__ A block_sum(A v) {
  __shared__ A warp_sums[kThreads / 32];
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < kThreads / 32 ? warp_sums[lane] : A(0);
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  }
  return v;
}

template <typename T>
__global__ void partial_kernel(const T* __restrict__ x, int64_t m, int64_t stride_n,
                               typename Acc<T>::type* __restrict__ partial, int64_t num_chunks) {
  using A = typename Acc<T>::type;
  const int64_t n = blockIdx.y;
  const int64_t chunk = blockIdx.x;
  const T* sample = x + n * stride_n;
  const int64_t end = m < (chunk + 1) * kChunk ? m : (chunk + 1) * kChunk;
  A acc = 0;
  for (int64_t i = chunk * kChunk + threadIdx.x; i < end; i += kThreads) {
    const A v = to_acc(sample[i]);
    acc += v * v;
  }
  acc = block_sum(acc);
  if (threadIdx.x == 0) partial[n * num_chunks + chunk] = acc;
}

template <typename A>
__global__ void final_kernel(const A* __restrict__ partial, int64_t num_chunks, A* __restrict__ out, A scale) {
  const int64_t n = blockIdx.x;
  A acc = 0;
  for (int64_t i = threadIdx.x; i < num_chunks; i += kThreads) acc += partial[n * num_chunks + i];
  acc = block_sum(acc);
  if (threadIdx.x == 0) out[n] = acc * scale;
}

template <typename T>
__device__ __forceinline__ T store_value(typename Acc<T>::type v) { return from_acc<T>(v); }
template <>
__device__ __forceinline__ double store_value<double>(double v) { return v; }

template <typename T>
__global__ void backward_kernel(const T* __restrict__ x, const typename Acc<T>::type* __restrict__ grad_out,
                                T* __restrict__ grad_x, int64_t m, int64_t stride_n,
                                typename Acc<T>::type two_scale) {
  using A = typename Acc<T>::type;
  const int64_t n = blockIdx.y;
  const A coef = grad_out[n] * two_scale;
  const int64_t base = n * stride_n;
  const int64_t start = static_cast<int64_t>(blockIdx.x) * kThreads * kBackwardItems + threadIdx.x;
#pragma unroll
  for (int k = 0; k < kBackwardItems; ++k) {
    const int64_t i = start + static_cast<int64_t>(k) * kThreads;
    if (i < m) grad_x[base + i] = store_value<T>(coef * to_acc(x[base + i]));
  }
}

template <typename T>
cudaError_t sum_squares_impl(const void* x, int64_t n, int64_t m, int64_t stride_n, void* partial, void* out,
                             double scale, cudaStream_t stream) {
  using A = typename Acc<T>::type;
  const int64_t chunks = penalties_num_chunks(m);
  if (chunks > 2147483647LL || n > 65535) return cudaErrorInvalidConfiguration;
  partial_kernel<T><<<dim3(static_cast<unsigned>(chunks), static_cast<unsigned>(n)), kThreads, 0, stream>>>(
      static_cast<const T*>(x), m, stride_n, static_cast<A*>(partial), chunks);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  final_kernel<A><<<static_cast<unsigned>(n), kThreads, 0, stream>>>(
      static_cast<const A*>(partial), chunks, static_cast<A*>(out), static_cast<A>(scale));
  return cudaGetLastError();
}

template <typename T>
cudaError_t backward_impl(const void* x, const void* grad_out, void* grad_x, int64_t n, int64_t m,
                          int64_t stride_n, double scale, cudaStream_t stream) {
  using A = typename Acc<T>::type;
  const int64_t per_block = static_cast<int64_t>(kThreads) * kBackwardItems;
  const int64_t blocks = (m + per_block - 1) / per_block;
  if (blocks > 2147483647LL || n > 65535) return cudaErrorInvalidConfiguration;
  backward_kernel<T><<<dim3(static_cast<unsigned>(blocks), static_cast<unsigned>(n)), kThreads, 0, stream>>>(
      static_cast<const T*>(x), static_cast<const A*>(grad_out), static_cast<T*>(grad_x), m, stride_n,
      static_cast<A>(2.0 * scale));
  return cudaGetLastError();
}

}  // namespace

int64_t penalties_num_chunks(int64_t m) { return m > 0 ? (m + kChunk - 1) / kChunk : 1; }

cudaError_t launch_sum_squares(const void* x, DType dtype, int64_t n, int64_t m, int64_t stride_n,
                               void* partial, void* out, double scale, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  switch (dtype) {
    case DType::kFloat16: return sum_squares_impl<__half>(x, n, m, stride_n, partial, out, scale, stream);
    case DType::kBFloat16:
      return sum_squares_impl<__nv_bfloat16>(x, n, m, stride_n, partial, out, scale, stream);
    case DType::kFloat32: return sum_squares_impl<float>(x, n, m, stride_n, partial, out, scale, stream);
    case DType::kFloat64: return sum_squares_impl<double>(x, n, m, stride_n, partial, out, scale, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t launch_sum_squares_backward(const void* x, const void* grad_out, void* grad_x, DType dtype,
                                        int64_t n, int64_t m, int64_t stride_n, double scale,
                                        cudaStream_t stream) {
  if (n == 0 || m == 0) return cudaSuccess;
  switch (dtype) {
    case DType::kFloat16: return backward_impl<__half>(x, grad_out, grad_x, n, m, stride_n, scale, stream);
    case DType::kBFloat16:
      return backward_impl<__nv_bfloat16>(x, grad_out, grad_x, n, m, stride_n, scale, stream);
    case DType::kFloat32: return backward_impl<float>(x, grad_out, grad_x, n, m, stride_n, scale, stream);
    case DType::kFloat64: return backward_impl<double>(x, grad_out, grad_x, n, m, stride_n, scale, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace ganops
