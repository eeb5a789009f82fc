// bias_act CUDA launcher interface (plain C++: no torch headers). Kernels: bias_act_kernels.cu (not
// bias_act.cu: setup.py builds .cpp and .cu into same-named objects); binding: bias_act.cpp.
#pragma once
#include <cstdint>
#include <cuda_runtime.h>

#include "dtype.h"

namespace ganops {
namespace bias_act {

using ::ganops::DType;

// Activation codes: the codes of ganops/ref/activations.py (tests/test_activation_table.py checks them).
enum Act { kLinear = 0, kRelu, kLrelu, kTanh, kSigmoid, kElu, kSelu, kSoftplus, kSwish, kNumActs };

// One pass over a dense tensor viewed as a row-major matrix [rows, cols]. The bias channel of an
// element is (row % channels) when channel_per_row (NCHW-like: cols = stride of dim), else its
// column (channels_last / fully connected: cols = channels).
//   mode 0: out = clamp(gain * act(s + b))                                         (s = x)
//   mode 1: out = g * gain * act'(.) * [|y| < clamp]                              first derivative
//   mode 2: out = g * h * d(gain * act'(.))/ds * [|y| < clamp]                     second-order term
// (.) is read off s = y when s_is_y, else recomputed from s = x and b. When db is not null, the
// per-channel sums of out are added to db (float32, zeroed by the caller) with atomics.
struct Params {
  void* out;
  float* db;
  const void* s;
  const void* b;  // may be null
  const void* g;  // modes 1, 2
  const void* h;  // mode 2
  DType dtype;    // of out, s, b, g, h
  int64_t rows, cols, channels;
  bool channel_per_row;
  int act, mode;
  bool s_is_y;
  float alpha, gain, clamp;  // clamp < 0: no clamp
};

// Launches the kernel for p on stream; returns the launch error (cudaSuccess when fine).
cudaError_t launch(const Params& p, cudaStream_t stream);

}  // namespace bias_act
}  // namespace ganops
