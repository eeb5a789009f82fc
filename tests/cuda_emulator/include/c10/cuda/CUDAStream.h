// Emulator stand-in for <c10/cuda/CUDAStream.h>: one null stream (emulated launches are synchronous).
#pragma once
#include <c10/core/Device.h>
#include <cuda_runtime.h>

namespace c10 {
namespace cuda {
struct CUDAStream {
  cudaStream_t stream() const { return nullptr; }
  operator cudaStream_t() const { return nullptr; }
};
inline CUDAStream getCurrentCUDAStream(c10::DeviceIndex = -1) { return CUDAStream{}; }
}  // namespace cuda
}  // namespace c10

namespace at {
namespace cuda {
using c10::cuda::CUDAStream;
using c10::cuda::getCurrentCUDAStream;
}  // namespace cuda
}  // namespace at
