// upfirdn2d CUDA launcher interface (plain C++: no torch headers, see upfirdn2d.cpp for the binding).
#pragma once
#include <cstdint>
#include <cuda_runtime.h>

#include "dtype.h"

namespace ganops {
namespace upfirdn2d {

using ::ganops::DType;

// One 2-D pass: y = gain * downsample(conv(pad(zero_insert(x, up)), g), down), g = f flipped unless
// flip. f is float32 on the device: [fh, fw] row-major, or a 1-D [fh == fw] filter applied as
// f[ky] * f[kx] when separable. A 1-D filter viewed as [1, k] or [k, 1] filters one axis only.
struct Pass {
  const void* x;
  void* y;
  const float* f;
  DType dtype;  // of x and y
  int n, c, h, w;       // input sizes
  int oh, ow;           // output sizes
  int64_t sx[4];        // input strides (elements), N C H W order
  int64_t sy[4];        // output strides (elements), N C H W order
  int upx, upy, downx, downy;
  int px0, py0;         // leading padding (trailing padding only shapes oh/ow)
  int fh, fw;
  bool separable;
  bool flip;
  float gain;
};

// Launches the best kernel for the pass on stream; returns the launch error (cudaSuccess when fine).
cudaError_t launch(const Pass& p, cudaStream_t stream);

// Which kernel launch() picks, for tests and benchmarks: "tile", "channels-last" or "direct", with
// "-hot" when a specialised (compile-time factors and filter size) instance serves it.
const char* kernel_name(const Pass& p);

}  // namespace upfirdn2d
}  // namespace ganops
