// Per-sample sum of squares and its backward (CUDA launchers; no torch headers).
//
//   forward:  out[n] = scale * sum_i x[n, i]^2, i in [0, m); sample n starts at x + n * stride_n
//             (two deterministic passes: partial sums per chunk, then per sample)
//   backward: grad_x[n, i] = 2 * scale * grad_out[n] * x[n, i]   (grad_x has x's layout)
//
// x / grad_x are fp16, bf16, fp32 or fp64; partial sums, out and grad_out are fp32 (fp64 for fp64 x).
#pragma once
#include <cstdint>
#include <cuda_runtime.h>

#include "dtype.h"

namespace ganops {

// Elements reduced by one block of the first pass; partial has n * penalties_num_chunks(m) entries.
int64_t penalties_num_chunks(int64_t m);

cudaError_t launch_sum_squares(const void* x, DType dtype, int64_t n, int64_t m, int64_t stride_n,
                               void* partial, void* out, double scale, cudaStream_t stream);

cudaError_t launch_sum_squares_backward(const void* x, const void* grad_out, void* grad_x, DType dtype,
                                        int64_t n, int64_t m, int64_t stride_n, double scale,
                                        cudaStream_t stream);

}  // namespace ganops
