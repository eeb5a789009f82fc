// Launchers of the modulated-convolution prologue / epilogue kernels (modulated_conv2d_kernels.cu).
// Plain C++ interface: raw pointers, sizes, cudaStream_t; no torch headers.
//
// Both kernels walk a dense 4-D tensor [N, C, H, W] in memory order, NCHW (channels_last = false)
// or NHWC (channels_last = true); input and output share that layout. Arithmetic in float32.
#pragma once

#include <cuda_runtime.h>

#include "dtype.h"

#include <cstdint>

namespace ganops {
namespace modconv {

using ::ganops::DType;

enum Act { kLinear = 0, kLeakyRelu = 1 };

struct Shape {
  int64_t n, c, h, w;
  bool channels_last;
};

// y[n, c, h, w] = x[n, c, h, w] * s[n, c]   (s: float32 [N, C] contiguous)
cudaError_t launch_scale(const void* x, const float* s, void* y, DType dtype, Shape shape, cudaStream_t stream);

struct EpilogueParams {
  const void* c;       // [N, C, H, W] conv output, layout of `shape`
  const float* d;      // [N, C] float32 demodulation coefficients
  const void* noise;   // nullptr or noise of dtype, element (n, h, w) at n*noise_sn + h*noise_sh + w*noise_sw
  int64_t noise_sn, noise_sh, noise_sw;
  const void* bias;    // nullptr or [C] of dtype
  void* y;             // output, layout of `shape`
  int act;             // Act
  float alpha, gain, clamp;  // clamp < 0: none
};

// y = clamp(act(c * d[n, c] + noise[n, h, w] + bias[c]) * gain, -clamp, clamp)
cudaError_t launch_epilogue(const EpilogueParams& p, DType dtype, Shape shape, cudaStream_t stream);

}  // namespace modconv
}  // namespace ganops
