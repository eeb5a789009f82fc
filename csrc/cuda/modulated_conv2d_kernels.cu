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

// n / d and n % d for 0 <= n < 2^31, 1 <= d < 2^31 with one 32x32->64-bit multiply and a shift
// (Granlund-Montgomery round-up method, as PyTorch's IntDivider): replaces a 64-bit division, which
// is a ~70-instruction software routine on the GPU.
struct FastDivmod {
  uint32_t d, m, s;
  explicit FastDivmod(uint32_t divisor) : d(divisor), m(0), s(0) {
    while (s < 32 && (uint64_t(1) << s) < divisor) ++s;
    m = uint32_t(((uint64_t(1) << 32) * ((uint64_t(1) << s) - divisor)) / divisor + 1);
  }
  __device__ __forceinline__ uint32_t div(uint32_t n) const {
    const uint32_t t = uint32_t((uint64_t(n) * m) >> 32);
    return (t + n) >> s;
  }
};

// Dividers of the three inner sizes in memory order (NHWC: C, W, H; NCHW: W, H, C), built once per
// launch on the host for a shape of fewer than 2^31 elements.
struct Dividers {
  FastDivmod inner0, inner1, inner2;
  explicit Dividers(const Shape& s)
      : inner0(uint32_t(s.channels_last ? s.c : s.w)), inner1(uint32_t(s.channels_last ? s.w : s.h)),
        inner2(uint32_t(s.channels_last ? s.h : s.c)) {}
  // For the 64-bit path, which divides directly.
  static Dividers unused() { return Dividers(Shape{1, 1, 1, 1, false}); }
};

template <typename Index>
struct Coord {
  Index n, c, h, w;
};

// Logical coordinates of the element at memory offset i of a dense tensor in the given layout:
// 32-bit with precomputed dividers (every tensor below 2^31 elements) ...
__device__ __forceinline__ Coord<uint32_t> coord_of(uint32_t i, const Shape& s, const Dividers& dv) {
  const uint32_t q0 = dv.inner0.div(i), q1 = dv.inner1.div(q0), q2 = dv.inner2.div(q1);
  const uint32_t r0 = i - q0 * dv.inner0.d, r1 = q0 - q1 * dv.inner1.d, r2 = q1 - q2 * dv.inner2.d;
  if (s.channels_last) return {q2, r0, r2, r1};
  return {q2, r2, r1, r0};
}

// ... and 64-bit for larger ones.
__device__ __forceinline__ Coord<int64_t> coord_of(int64_t i, const Shape& s, const Dividers&) {
  Coord<int64_t> k;
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

template <typename T, typename Index>
__global__ void scale_kernel(const T* __restrict__ x, const float* __restrict__ s, T* __restrict__ y, Shape shape,
                             Dividers dv, Index numel) {
  const Index step = Index(gridDim.x) * blockDim.x;
  for (Index i = Index(blockIdx.x) * blockDim.x + threadIdx.x; i < numel; i += step) {
    const auto k = coord_of(i, shape, dv);
    y[i] = from_acc<T>(to_acc(x[i]) * __ldg(s + k.n * Index(shape.c) + k.c));
  }
}

template <typename T, typename Index>
__global__ void epilogue_kernel(EpilogueParams p, Shape shape, Dividers dv, Index numel) {
  const T* c = static_cast<const T*>(p.c);
  const T* noise = static_cast<const T*>(p.noise);
  const T* bias = static_cast<const T*>(p.bias);
  T* y = static_cast<T*>(p.y);
  const Index step = Index(gridDim.x) * blockDim.x;
  for (Index i = Index(blockIdx.x) * blockDim.x + threadIdx.x; i < numel; i += step) {
    const auto k = coord_of(i, shape, dv);
    float v = to_acc(c[i]) * __ldg(p.d + k.n * Index(shape.c) + k.c);
    if (noise != nullptr) {
      v += to_acc(noise[int64_t(k.n) * p.noise_sn + int64_t(k.h) * p.noise_sh + int64_t(k.w) * p.noise_sw]);
    }
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

// Whether the 32-bit index path holds: every offset and every loop index (< numel + grid stride) fits.
bool fits_32bit(int64_t numel) { return numel + int64_t(65535) * 8 * 256 < (int64_t(1) << 31); }

constexpr int kThreads = 256;

template <typename T>
void launch_scale_typed(const T* x, const float* s, T* y, const Shape& shape, int64_t numel, cudaStream_t stream) {
  if (fits_32bit(numel)) {
    scale_kernel<T, uint32_t><<<grid_for(numel, kThreads), kThreads, 0, stream>>>(x, s, y, shape, Dividers(shape),
                                                                                   uint32_t(numel));
  } else {
    scale_kernel<T, int64_t><<<grid_for(numel, kThreads), kThreads, 0, stream>>>(x, s, y, shape, Dividers::unused(),
                                                                                  numel);
  }
}

template <typename T>
void launch_epilogue_typed(const EpilogueParams& p, const Shape& shape, int64_t numel, cudaStream_t stream) {
  if (fits_32bit(numel)) {
    epilogue_kernel<T, uint32_t><<<grid_for(numel, kThreads), kThreads, 0, stream>>>(p, shape, Dividers(shape),
                                                                                      uint32_t(numel));
  } else {
    epilogue_kernel<T, int64_t><<<grid_for(numel, kThreads), kThreads, 0, stream>>>(p, shape, Dividers::unused(),
                                                                                     numel);
  }
}

}  // namespace

cudaError_t launch_scale(const void* x, const float* s, void* y, DType dtype, Shape shape, cudaStream_t stream) {
  const int64_t numel = shape.n * shape.c * shape.h * shape.w;
  if (numel == 0) return cudaSuccess;
  switch (dtype) {
    case DType::kFloat32: launch_scale_typed(static_cast<const float*>(x), s, static_cast<float*>(y), shape, numel, stream); break;
    case DType::kFloat16: launch_scale_typed(static_cast<const __half*>(x), s, static_cast<__half*>(y), shape, numel, stream); break;
    case DType::kBFloat16:
      launch_scale_typed(static_cast<const __nv_bfloat16*>(x), s, static_cast<__nv_bfloat16*>(y), shape, numel, stream);
      break;
    default: return cudaErrorInvalidValue;  // no float64 kernels
  }
  return cudaGetLastError();
}

cudaError_t launch_epilogue(const EpilogueParams& p, DType dtype, Shape shape, cudaStream_t stream) {
  const int64_t numel = shape.n * shape.c * shape.h * shape.w;
  if (numel == 0) return cudaSuccess;
  switch (dtype) {
    case DType::kFloat32: launch_epilogue_typed<float>(p, shape, numel, stream); break;
    case DType::kFloat16: launch_epilogue_typed<__half>(p, shape, numel, stream); break;
    case DType::kBFloat16: launch_epilogue_typed<__nv_bfloat16>(p, shape, numel, stream); break;
    default: return cudaErrorInvalidValue;  // no float64 kernels
  }
  return cudaGetLastError();
}

}  // namespace modconv
}  // namespace ganops
