// The storage dtypes of every CUDA kernel, as the launchers (plain C++, no torch headers) receive them.
// The bindings map tensors to it with ganops::kernel_dtype (binding_utils.h); each launcher switches
// on it to instantiate its kernels for float, __half, __nv_bfloat16 (and double where it supports it).
#pragma once

namespace ganops {

enum class DType { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2, kFloat64 = 3 };

}  // namespace ganops
