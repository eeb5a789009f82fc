// Emulator stand-in for <cuda_bf16.h>: bfloat16 storage (the top 16 bits of a float32) with
// round-to-nearest-even conversion from float; NaN stays NaN.
#pragma once
#include <cstdint>
#include <cstring>

#include "emu_runtime.h"

struct __nv_bfloat16 {
  uint16_t bits;
};

inline float __bfloat162float(__nv_bfloat16 h) {
  const uint32_t u = uint32_t(h.bits) << 16;
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  __nv_bfloat16 h;
  if ((u & 0x7fffffffu) > 0x7f800000u) {
    h.bits = uint16_t((u >> 16) | 0x40u);  // quiet NaN
  } else {
    h.bits = uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
  }
  return h;
}
