// Integer helpers of the resampling kernels (upfirdn2d, filtered_lrelu): floor division and a
// non-negative modulo for possibly negative pixel coordinates. Plain CUDA headers only.
#pragma once

namespace ganops {

__host__ __device__ __forceinline__ int floor_div(int a, int b) {  // b > 0
  const int q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

__host__ __device__ __forceinline__ int pos_mod(int a, int b) {  // b > 0, result in [0, b)
  const int r = a % b;
  return r < 0 ? r + b : r;
}

}  // namespace ganops
