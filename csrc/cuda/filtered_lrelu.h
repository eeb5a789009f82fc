// filtered_lrelu CUDA launcher interface (plain C++: no torch headers, see filtered_lrelu.cpp for the binding).
#pragma once
#include <cstdint>
#include <cuda_runtime.h>

#include "dtype.h"

namespace ganops {
namespace filtered_lrelu {

using ::ganops::DType;
enum class Signs { kNone = 0, kWrite = 1, kRead = 2 };

// One fused pass (see filtered_lrelu_kernels.cu):
//   m[i, j] = sum_{a,b} fu[a, b] * xu[i + a - py0, j + b - px0]      xu = x + b at multiples of up, else 0
//   v       = act(m * gain)                                          lrelu + clamp, or the derivative read from si
//   y[o, p] = sum_{a,b} fd[a, b] * v[o*down + a, p*down + b]
// fu, fd: float32 correlation filters on the device, [fh, fw] row-major or 1-D (applied once per axis).
struct Params {
  const void* x;
  void* y;
  const void* b;          // [C] in x's dtype, or nullptr
  const float* fu;
  const float* fd;
  const uint8_t* si;      // kRead: codes to read
  uint8_t* so;            // kWrite: codes to write
  DType dtype;            // of x, y and b
  Signs signs;
  int n, c, h, w;         // input sizes
  int oh, ow;             // output sizes
  int64_t sx[4];          // input strides (elements), N C H W order
  int64_t sy[4];          // output strides (elements), N C H W order
  int up, down, px0, py0;
  int fuh, fuw, fdh, fdw;
  bool sep_u, sep_d;      // 1-D (separable) filters
  int sh, sw, swb;        // sign plane per (n, c): rows, values per row, bytes per row (4 values a byte)
  int sgx, sgy;           // kRead: code of v[i, j] is at (i + sgy, j + sgx)
  float gain, slope, clamp;  // clamp < 0: no clamp
};

// Launches the fused kernel on stream; returns the launch error (cudaSuccess when fine), or
// cudaErrorInvalidValue when the filters are too large for the shared-memory tile.
cudaError_t launch(const Params& p, cudaStream_t stream);

}  // namespace filtered_lrelu
}  // namespace ganops
