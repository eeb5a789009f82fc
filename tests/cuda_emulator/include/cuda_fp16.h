// Emulator stand-in for <cuda_fp16.h>: IEEE binary16 storage with round-to-nearest-even conversions
// (GCC's _Float16 does the rounding).
#pragma once
#include <cstdint>
#include <cstring>

#include "emu_runtime.h"

struct __half {
  uint16_t bits;
};

inline float __half2float(__half h) {
  _Float16 v;
  std::memcpy(&v, &h.bits, sizeof(v));
  return static_cast<float>(v);
}

inline __half __float2half_rn(float f) {
  const _Float16 v = static_cast<_Float16>(f);
  __half h;
  std::memcpy(&h.bits, &v, sizeof(v));
  return h;
}
