// Bilinear grid_sample (zeros padding, align_corners=False) and its transpose; CUDA launchers, no torch headers.
//
// (dx, dy) in {0, 1}^2 are derivative orders of the bilinear weights w.r.t. the pixel coordinates
// (ix, iy) = (((gx + 1) * W - 1) / 2, ((gy + 1) * H - 1) / 2): order 0 uses the weights (1 - f, f) of
// the left / right tap, order 1 their derivatives (-1, +1). With them every derivative of grid_sample
// is a gather or a scatter (see ganops/ops/grid_sample.py):
//   gather:  out[n, c, p]    = sum over the 4 taps t of w_t(p) * input[n, c, t]   (out contiguous NCHW)
//   scatter: acc[n, c, t]   += w_t(p) * grad[n, c, p]                              (acc contiguous, zeroed)
// input / grid / grad / out are fp16, bf16, fp32 or fp64 (grid has the data's dtype); compute and acc
// are fp32 (fp64 for fp64). Strides are in elements: input / grad (n, c, h, w), grid (n, h, w, k).
#pragma once
#include <cstdint>
#include <cuda_runtime.h>

#include "dtype.h"

namespace ganops {

struct GridSampleShape {
  int64_t n, c, h, w;      // image (input of gather, acc of scatter)
  int64_t ho, wo;          // sampling grid
  int64_t img_stride[4];   // input (gather) or grad (scatter)
  int64_t grid_stride[4];
};

cudaError_t launch_grid_sample_gather(const void* input, const void* grid, void* out, DType dtype,
                                      const GridSampleShape& shape, int dx, int dy, cudaStream_t stream);

cudaError_t launch_grid_sample_scatter(const void* grad, const void* grid, void* acc, DType dtype,
                                       const GridSampleShape& shape, int dx, int dy, cudaStream_t stream);

}  // namespace ganops
