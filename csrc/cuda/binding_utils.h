// Helpers shared by the torch bindings of csrc/cuda (*.cpp): output poisoning and the one mapping
// from a tensor's dtype to the kernels' ganops::DType.
#pragma once

#include <ATen/ATen.h>

#include <cstdlib>
#include <cstring>
#include <limits>

#include "dtype.h"

namespace ganops {

// With GANOPS_POISON_OUTPUTS=1 (the tests set it) fill a fresh output with NaN before the kernel runs,
// so an element the kernel forgets to write shows up instead of passing by luck (ganops/_alloc.py
// does the same for the Triton launchers).
inline void poison(at::Tensor& t) {
  const char* value = std::getenv("GANOPS_POISON_OUTPUTS");
  if (value != nullptr && std::strcmp(value, "1") == 0) t.fill_(std::numeric_limits<double>::quiet_NaN());
}

// The kernel dtype of t: float32, float16, bfloat16, and float64 when the op's kernels take it
// (with_float64); otherwise a TypeError "<op>: <name> must be ..., got <dtype>".
inline DType kernel_dtype(const at::Tensor& t, const char* op, const char* name, bool with_float64 = false) {
  switch (t.scalar_type()) {
    case at::kFloat: return DType::kFloat32;
    case at::kHalf: return DType::kFloat16;
    case at::kBFloat16: return DType::kBFloat16;
    case at::kDouble:
      if (with_float64) return DType::kFloat64;
      break;
    default: break;
  }
  TORCH_CHECK_TYPE(false, op, ": ", name, " must be float16, bfloat16, float32", with_float64 ? " or float64" : "",
                   ", got ", t.scalar_type());
}

}  // namespace ganops
