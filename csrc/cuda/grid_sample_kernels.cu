// Bilinear grid_sample gather / scatter kernels; see grid_sample.h (named *_kernels.cu because setup.py
// compiles grid_sample.cpp and a grid_sample.cu to the same object file).
#include "grid_sample.h"

#include <limits>

#include "numeric.cuh"

namespace ganops {
namespace {

constexpr int kThreads = 256;

// The 4 taps of one grid point: pixel coordinates, whether each is inside the image, and weights.
// A NaN or infinite coordinate has both its taps outside the image and NaN order-0 weights (its
// order-1 weights are +-1): torch's grid_sample multiplies them by the 0 that outside taps read, so
// the sample is NaN exactly where such a weight is used (`nan`), and adds nothing to a scatter.
template <typename A>
struct Taps {
  int64_t y[2], x[2];
  bool y_ok[2], x_ok[2];
  bool nan;
  A wy[2], wx[2];
};

template <typename A>
__device__ __forceinline__ A weight(A frac, int right, int order) {
  if (order == 0) return right ? frac : A(1) - frac;
  return right ? A(1) : A(-1);
}

template <typename T>
__device__ __forceinline__ Taps<typename Acc<T>::type> make_taps(const T* grid, const GridSampleShape& s,
                                                                  int64_t n, int64_t p, int dx, int dy) {
  using A = typename Acc<T>::type;
  const int64_t ho = p / s.wo, wo = p % s.wo;
  const T* g = grid + n * s.grid_stride[0] + ho * s.grid_stride[1] + wo * s.grid_stride[2];
  A ix = ((to_acc(g[0]) + A(1)) * A(s.w) - A(1)) * A(0.5);
  A iy = ((to_acc(g[s.grid_stride[3]]) + A(1)) * A(s.h) - A(1)) * A(0.5);
  Taps<A> t;
  t.nan = (dx == 0 && !isfinite(ix)) || (dy == 0 && !isfinite(iy));
  // Clamp before the integer conversion (NaN to -2): far-away and non-finite coordinates sample zeros.
  ix = ix > A(-2) ? (ix < A(s.w + 1) ? ix : A(s.w + 1)) : A(-2);
  iy = iy > A(-2) ? (iy < A(s.h + 1) ? iy : A(s.h + 1)) : A(-2);
  const A x0 = floor(ix), y0 = floor(iy);
  const A fx = ix - x0, fy = iy - y0;
  for (int k = 0; k < 2; ++k) {
    t.x[k] = static_cast<int64_t>(x0) + k;
    t.y[k] = static_cast<int64_t>(y0) + k;
    t.x_ok[k] = t.x[k] >= 0 && t.x[k] < s.w;
    t.y_ok[k] = t.y[k] >= 0 && t.y[k] < s.h;
    t.wx[k] = weight(fx, k, dx);
    t.wy[k] = weight(fy, k, dy);
  }
  return t;
}

template <typename T>
__global__ void gather_kernel(const T* __restrict__ input, const T* __restrict__ grid, T* __restrict__ out,
                              GridSampleShape s, int dx, int dy) {
  using A = typename Acc<T>::type;
  const int64_t points = s.ho * s.wo;
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (idx >= s.n * points) return;
  const int64_t n = idx / points, p = idx % points;
  const Taps<A> t = make_taps(grid, s, n, p, dx, dy);
  const T* img = input + n * s.img_stride[0];
  T* dst = out + n * s.c * points + p;
  for (int64_t c = 0; c < s.c; ++c) {
    const T* plane = img + c * s.img_stride[1];
    A acc = 0;
#pragma unroll
    for (int ky = 0; ky < 2; ++ky) {
#pragma unroll
      for (int kx = 0; kx < 2; ++kx) {
        if (t.y_ok[ky] && t.x_ok[kx]) {
          acc += t.wy[ky] * t.wx[kx] * to_acc(plane[t.y[ky] * s.img_stride[2] + t.x[kx] * s.img_stride[3]]);
        }
      }
    }
    dst[c * points] = from_acc<T>(t.nan ? std::numeric_limits<A>::quiet_NaN() : acc);
  }
}

template <typename T>
__global__ void scatter_kernel(const T* __restrict__ grad, const T* __restrict__ grid,
                               typename Acc<T>::type* __restrict__ acc, GridSampleShape s, int dx, int dy) {
  using A = typename Acc<T>::type;
  const int64_t points = s.ho * s.wo;
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (idx >= s.n * points) return;
  const int64_t n = idx / points, p = idx % points;
  const Taps<A> t = make_taps(grid, s, n, p, dx, dy);
  const int64_t ho = p / s.wo, wo = p % s.wo;
  const T* src = grad + n * s.img_stride[0] + ho * s.img_stride[2] + wo * s.img_stride[3];
  A* dst = acc + n * s.c * s.h * s.w;
  for (int64_t c = 0; c < s.c; ++c) {
    const A g = to_acc(src[c * s.img_stride[1]]);
    A* plane = dst + c * s.h * s.w;
#pragma unroll
    for (int ky = 0; ky < 2; ++ky) {
#pragma unroll
      for (int kx = 0; kx < 2; ++kx) {
        if (t.y_ok[ky] && t.x_ok[kx]) atomicAdd(plane + t.y[ky] * s.w + t.x[kx], t.wy[ky] * t.wx[kx] * g);
      }
    }
  }
}

int64_t num_blocks(const GridSampleShape& s) { return (s.n * s.ho * s.wo + kThreads - 1) / kThreads; }

template <typename T>
cudaError_t gather_impl(const void* input, const void* grid, void* out, const GridSampleShape& s, int dx, int dy,
                        cudaStream_t stream) {
  gather_kernel<T><<<static_cast<unsigned>(num_blocks(s)), kThreads, 0, stream>>>(
      static_cast<const T*>(input), static_cast<const T*>(grid), static_cast<T*>(out), s, dx, dy);
  return cudaGetLastError();
}

template <typename T>
cudaError_t scatter_impl(const void* grad, const void* grid, void* acc, const GridSampleShape& s, int dx, int dy,
                         cudaStream_t stream) {
  scatter_kernel<T><<<static_cast<unsigned>(num_blocks(s)), kThreads, 0, stream>>>(
      static_cast<const T*>(grad), static_cast<const T*>(grid), static_cast<typename Acc<T>::type*>(acc), s, dx,
      dy);
  return cudaGetLastError();
}

bool valid(const GridSampleShape& s, int dx, int dy) {
  return (dx == 0 || dx == 1) && (dy == 0 || dy == 1) && num_blocks(s) <= 2147483647LL;
}

}  // namespace

cudaError_t launch_grid_sample_gather(const void* input, const void* grid, void* out, DType dtype,
                                      const GridSampleShape& shape, int dx, int dy, cudaStream_t stream) {
  if (!valid(shape, dx, dy)) return cudaErrorInvalidValue;
  if (shape.n * shape.ho * shape.wo == 0) return cudaSuccess;
  switch (dtype) {
    case DType::kFloat16: return gather_impl<__half>(input, grid, out, shape, dx, dy, stream);
    case DType::kBFloat16: return gather_impl<__nv_bfloat16>(input, grid, out, shape, dx, dy, stream);
    case DType::kFloat32: return gather_impl<float>(input, grid, out, shape, dx, dy, stream);
    case DType::kFloat64: return gather_impl<double>(input, grid, out, shape, dx, dy, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t launch_grid_sample_scatter(const void* grad, const void* grid, void* acc, DType dtype,
                                       const GridSampleShape& shape, int dx, int dy, cudaStream_t stream) {
  if (!valid(shape, dx, dy)) return cudaErrorInvalidValue;
  if (shape.n * shape.ho * shape.wo == 0) return cudaSuccess;
  switch (dtype) {
    case DType::kFloat16: return scatter_impl<__half>(grad, grid, acc, shape, dx, dy, stream);
    case DType::kBFloat16: return scatter_impl<__nv_bfloat16>(grad, grid, acc, shape, dx, dy, stream);
    case DType::kFloat32: return scatter_impl<float>(grad, grid, acc, shape, dx, dy, stream);
    case DType::kFloat64: return scatter_impl<double>(grad, grid, acc, shape, dx, dy, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace ganops
