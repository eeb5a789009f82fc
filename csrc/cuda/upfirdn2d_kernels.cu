// upfirdn2d CUDA kernels.
//
// y[n, c, oy, ox] = gain * sum_{ky, kx} xu[oy*downy + ky - py0, ox*downx + kx - px0] * g[ky, kx]
// where xu is x with up-1 zeros inserted after every sample and g the (optionally flipped) filter.
// Only taps that hit a real sample are visited (polyphase): ky = ky0 + j*upy, ky0 = (py0 - oy*downy) mod upy.
//
// tile_kernel:   NCHW outputs. A block owns a tile of output pixels of one or more (n, c) planes at a
//                time (small images are packed several planes per block; blocks loop over planes); the
//                input tiles it needs and the filter (gain folded in) are staged in shared memory as
//                float32, then each thread accumulates its outputs from there.
// channels_last_kernel: channels_last outputs. A block is (kThreads / ct) pixels of one output row
//                times ct channel lanes (consecutive threads handle consecutive channels so loads and
//                stores coalesce); rows (n, oy) come from blockIdx.y, so there is one 32-bit division
//                per row, the tap geometry is computed once per pixel, and offsets within a sample
//                are 32-bit (the launcher checks that a sample spans < 2^31 elements).
// direct_kernel: any output layout, for what the two above cannot take (filters too large to stage,
//                samples of 2^31 elements or more); 64-bit index math per element.
// Both are templates on (upx, upy, downx, downy, fh, fw); 0 means "runtime value". The hot cases
// (up/down 2 with 4x4 filters, 4x4 filtering, 1-D 12-tap passes) have compile-time instances so
// their tap loops unroll completely. Accumulation is always float32.
#include "upfirdn2d.h"
#include "index_math.cuh"
#include "numeric.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace ganops {
namespace upfirdn2d {
namespace {

constexpr int kThreads = 256;
constexpr int kTileOutputs = 1024;          // output pixels per tile (4 per thread)
constexpr int kMaxTileW = 64;
constexpr size_t kMaxSharedBytes = 48 * 1024;
constexpr int kMaxGridYZ = 65535;

// Read-only cached load, converted to float.
template <typename T> __device__ __forceinline__ float load_f(const T* p) { return to_acc(__ldg(p)); }

template <int V> __device__ __forceinline__ int pick(int runtime) { return V > 0 ? V : runtime; }

// rest % d, leaving rest / d in rest (d > 0).
__device__ __forceinline__ int peel(int64_t& rest, int d) {
  const int64_t q = rest / d;
  const int r = (int)(rest - q * d);
  rest = q;
  return r;
}


// Weight of convolution tap (ky, kx): the filter flipped unless p.flip; gain not applied.
__device__ __forceinline__ float tap_weight(const Pass& p, int ky, int kx, int fh, int fw) {
  const int fy = p.flip ? ky : fh - 1 - ky;
  const int fx = p.flip ? kx : fw - 1 - kx;
  return p.separable ? __ldg(p.f + fy) * __ldg(p.f + fx) : __ldg(p.f + fy * fw + fx);
}

struct Tile {
  int tile_w, tile_h;  // output pixels per tile
  int in_tw, in_th;    // input pixels a tile reads (upper bound)
  int planes;          // (n, c) planes per block: > 1 packs small images so all threads have work
};

template <typename T, int UPX, int UPY, int DOWNX, int DOWNY, int FH, int FW>
__global__ void __launch_bounds__(kThreads) tile_kernel(Pass p, Tile t) {
  extern __shared__ float smem[];
  const int upx = pick<UPX>(p.upx), upy = pick<UPY>(p.upy);
  const int downx = pick<DOWNX>(p.downx), downy = pick<DOWNY>(p.downy);
  const int fh = pick<FH>(p.fh), fw = pick<FW>(p.fw);
  float* sf = smem;            // [fh, fw] convolution taps * gain
  float* sx = smem + fh * fw;  // [t.planes, in_th, in_tw] input tiles, zeros outside the image
  for (int i = threadIdx.x; i < fh * fw; i += kThreads) sf[i] = tap_weight(p, i / fw, i % fw, fh, fw) * p.gain;

  const int ox0 = blockIdx.x * t.tile_w, oy0 = blockIdx.y * t.tile_h;
  const int ix0 = floor_div(ox0 * downx - p.px0, upx);
  const int iy0 = floor_div(oy0 * downy - p.py0, upy);
  const int in_size = t.in_th * t.in_tw, out_size = t.tile_h * t.tile_w;
  const T* x = static_cast<const T*>(p.x);
  T* y = static_cast<T*>(p.y);
  const int planes = p.n * p.c;
  for (int base = blockIdx.z * t.planes; base < planes; base += gridDim.z * t.planes) {
    __syncthreads();  // the previous tiles have been consumed (and sf is written)
    for (int i = threadIdx.x; i < t.planes * in_size; i += kThreads) {
      const int plane = base + i / in_size, e = i % in_size;
      const int iy = iy0 + e / t.in_tw, ix = ix0 + e % t.in_tw;
      float v = 0.f;
      if (plane < planes && iy >= 0 && iy < p.h && ix >= 0 && ix < p.w) {
        const int n = plane / p.c, c = plane % p.c;
        v = load_f(x + n * p.sx[0] + c * p.sx[1] + iy * p.sx[2] + ix * p.sx[3]);
      }
      sx[i] = v;
    }
    __syncthreads();
    for (int i = threadIdx.x; i < t.planes * out_size; i += kThreads) {
      const int plane = base + i / out_size, e = i % out_size;
      if (plane >= planes) break;  // i only grows
      const int oy = oy0 + e / t.tile_w, ox = ox0 + e % t.tile_w;
      if (oy >= p.oh || ox >= p.ow) continue;
      const int ty = oy * downy - p.py0, tx = ox * downx - p.px0;
      const int ky0 = pos_mod(-ty, upy), kx0 = pos_mod(-tx, upx);
      const float* row = sx + (i / out_size) * in_size + ((ty + ky0) / upy - iy0) * t.in_tw + ((tx + kx0) / upx - ix0);
      float acc = 0.f;
#pragma unroll
      for (int j = 0; j < (fh + upy - 1) / upy; ++j) {
        const int ky = ky0 + j * upy;
        if (ky < fh) {
#pragma unroll
          for (int k = 0; k < (fw + upx - 1) / upx; ++k) {
            const int kx = kx0 + k * upx;
            if (kx < fw) acc += row[j * t.in_tw + k] * sf[ky * fw + kx];
          }
        }
      }
      const int n = plane / p.c, c = plane % p.c;
      y[n * p.sy[0] + c * p.sy[1] + oy * p.sy[2] + ox * p.sy[3]] = from_acc<T>(acc);
    }
  }
}

// Polyphase geometry of output pixel (oy, ox): first taps (ky0, kx0) that hit a real sample and the
// input pixel (iy, ix) they read.
struct Taps {
  int ky0, kx0, iy, ix;
};

__device__ __forceinline__ Taps taps_of(const Pass& p, int oy, int ox, int upx, int upy, int downx, int downy) {
  const int ty = oy * downy - p.py0, tx = ox * downx - p.px0;
  const int ky0 = pos_mod(-ty, upy), kx0 = pos_mod(-tx, upx);
  return Taps{ky0, kx0, (ty + ky0) / upy, (tx + kx0) / upx};
}

// sum over the real taps of one output pixel; xp points at x[n, c]; Index is the offset type.
template <typename T, typename Index>
__device__ __forceinline__ float tap_sum(const Pass& p, const Taps& t, const T* xp, Index sxh, Index sxw, int upx,
                                         int upy, int fh, int fw) {
  float acc = 0.f;
#pragma unroll
  for (int j = 0; j < (fh + upy - 1) / upy; ++j) {
    const int ky = t.ky0 + j * upy, iy = t.iy + j;
    if (ky < fh && iy >= 0 && iy < p.h) {
#pragma unroll
      for (int k = 0; k < (fw + upx - 1) / upx; ++k) {
        const int kx = t.kx0 + k * upx, ix = t.ix + k;
        if (kx < fw && ix >= 0 && ix < p.w) acc += load_f(xp + iy * sxh + ix * sxw) * tap_weight(p, ky, kx, fh, fw);
      }
    }
  }
  return acc;
}

template <typename T, int UPX, int UPY, int DOWNX, int DOWNY, int FH, int FW>
__global__ void __launch_bounds__(kThreads) channels_last_kernel(Pass p, int ct_log2) {
  const int upx = pick<UPX>(p.upx), upy = pick<UPY>(p.upy);
  const int downx = pick<DOWNX>(p.downx), downy = pick<DOWNY>(p.downy);
  const int fh = pick<FH>(p.fh), fw = pick<FW>(p.fw);
  const int lane = threadIdx.x & ((1 << ct_log2) - 1);
  const int ox = blockIdx.x * (kThreads >> ct_log2) + (threadIdx.x >> ct_log2);
  if (ox >= p.ow) return;
  const int sxc = (int)p.sx[1], sxh = (int)p.sx[2], sxw = (int)p.sx[3];
  const int syc = (int)p.sy[1], syh = (int)p.sy[2], syw = (int)p.sy[3];
  const int rows = p.n * p.oh;
  for (int row = blockIdx.y; row < rows; row += gridDim.y) {
    const int n = row / p.oh, oy = row - n * p.oh;
    const Taps t = taps_of(p, oy, ox, upx, upy, downx, downy);
    const T* xn = static_cast<const T*>(p.x) + n * p.sx[0];
    T* yp = static_cast<T*>(p.y) + n * p.sy[0] + (oy * syh + ox * syw);
    for (int c = lane; c < p.c; c += 1 << ct_log2)
      yp[c * syc] = from_acc<T>(tap_sum(p, t, xn + c * sxc, sxh, sxw, upx, upy, fh, fw) * p.gain);
  }
}

template <typename T, int UPX, int UPY, int DOWNX, int DOWNY, int FH, int FW>
__global__ void __launch_bounds__(kThreads) direct_kernel(Pass p, int64_t total, bool channels_fastest) {
  const int upx = pick<UPX>(p.upx), upy = pick<UPY>(p.upy);
  const int downx = pick<DOWNX>(p.downx), downy = pick<DOWNY>(p.downy);
  const int fh = pick<FH>(p.fh), fw = pick<FW>(p.fw);
  const T* x = static_cast<const T*>(p.x);
  T* y = static_cast<T*>(p.y);
  for (int64_t idx = blockIdx.x * (int64_t)kThreads + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * kThreads) {
    // Three 64-bit divisions, one per peeled coordinate (the former four spilled the down-2 4x4
    // instance on sm_80).
    int64_t rest = idx;
    int n, c, oy, ox;
    if (channels_fastest) {
      c = peel(rest, p.c);
      ox = peel(rest, p.ow);
      oy = peel(rest, p.oh);
    } else {
      ox = peel(rest, p.ow);
      oy = peel(rest, p.oh);
      c = peel(rest, p.c);
    }
    n = (int)rest;
    const Taps t = taps_of(p, oy, ox, upx, upy, downx, downy);
    const float acc = tap_sum(p, t, x + n * p.sx[0] + c * p.sx[1], p.sx[2], p.sx[3], upx, upy, fh, fw);
    y[n * p.sy[0] + c * p.sy[1] + oy * p.sy[2] + ox * p.sy[3]] = from_acc<T>(acc * p.gain);
  }
}

// Elements between the first and the last address of one sample, plus one.
int64_t sample_span(const int64_t* stride, int c, int h, int w) {
  return 1 + (c - 1) * stride[1] + (h - 1) * stride[2] + (w - 1) * stride[3];
}

// The channels_last kernel serves channels-fastest outputs whose samples have 32-bit offsets.
bool channels_last_fits(const Pass& p) {
  const int64_t limit = (int64_t)1 << 31;
  return p.sy[1] == 1 && p.c > 1 && sample_span(p.sx, p.c, p.h, p.w) < limit &&
         sample_span(p.sy, p.c, p.oh, p.ow) < limit && (int64_t)p.n * p.oh < limit;
}

int next_pow2(int v) {
  int r = 1;
  while (r < v) r <<= 1;
  return r;
}

struct TileConfig {
  Tile tile;
  size_t smem;
  dim3 grid;
};

size_t tile_smem(const Pass& p, const Tile& t) {
  return sizeof(float) * ((size_t)p.fh * p.fw + (size_t)t.planes * t.in_tw * t.in_th);
}

// A shared-memory tiling for NCHW outputs, or false when the direct kernel must serve the pass.
bool tile_config(const Pass& p, TileConfig* cfg) {
  if (p.sy[3] != 1) return false;
  Tile& t = cfg->tile;
  t.tile_w = next_pow2(p.ow) < kMaxTileW ? next_pow2(p.ow) : kMaxTileW;
  t.tile_h = next_pow2(p.oh) < kTileOutputs / t.tile_w ? next_pow2(p.oh) : kTileOutputs / t.tile_w;
  t.planes = 1;
  for (;;) {
    t.in_tw = ((t.tile_w - 1) * p.downx + p.fw - 1) / p.upx + 2;
    t.in_th = ((t.tile_h - 1) * p.downy + p.fh - 1) / p.upy + 2;
    if (tile_smem(p, t) <= kMaxSharedBytes) break;
    if (t.tile_h == 1) return false;
    t.tile_h /= 2;
  }
  const int planes = p.n * p.c;
  const int want = kTileOutputs / (t.tile_w * t.tile_h);
  t.planes = want < planes ? want : planes;
  while (t.planes > 1 && tile_smem(p, t) > kMaxSharedBytes) t.planes /= 2;
  const int tiles_y = (p.oh + t.tile_h - 1) / t.tile_h;
  if (tiles_y > kMaxGridYZ) return false;
  const int blocks_z = (planes + t.planes - 1) / t.planes;
  cfg->smem = tile_smem(p, t);
  cfg->grid = dim3((p.ow + t.tile_w - 1) / t.tile_w, tiles_y, blocks_z < kMaxGridYZ ? blocks_z : kMaxGridYZ);
  return true;
}

bool is(const Pass& p, int upx, int upy, int downx, int downy, int fh, int fw) {
  return p.upx == upx && p.upy == upy && p.downx == downx && p.downy == downy && p.fh == fh && p.fw == fw;
}

// The specialised instances: (upx, upy, downx, downy, fh, fw).
#define GANOPS_UFD_HOT_TILE(X)                                                           \
  X(2, 2, 1, 1, 4, 4) X(1, 1, 2, 2, 4, 4) X(1, 1, 1, 1, 4, 4) X(2, 1, 1, 1, 1, 12)        \
  X(1, 2, 1, 1, 12, 1) X(1, 1, 2, 1, 1, 12) X(1, 1, 1, 2, 12, 1)
#define GANOPS_UFD_HOT_DIRECT(X) X(2, 2, 1, 1, 4, 4) X(1, 1, 2, 2, 4, 4)

template <typename T, int UPX, int UPY, int DOWNX, int DOWNY, int FH, int FW>
cudaError_t run_tile(const Pass& p, const TileConfig& cfg, cudaStream_t stream) {
  tile_kernel<T, UPX, UPY, DOWNX, DOWNY, FH, FW><<<cfg.grid, kThreads, cfg.smem, stream>>>(p, cfg.tile);
  return cudaGetLastError();
}

template <typename T, int UPX, int UPY, int DOWNX, int DOWNY, int FH, int FW>
cudaError_t run_channels_last(const Pass& p, cudaStream_t stream) {
  int ct_log2 = 0;  // channel lanes: next_pow2(c) up to 32
  while ((1 << ct_log2) < p.c && ct_log2 < 5) ++ct_log2;
  const int pixels = kThreads >> ct_log2;
  const int rows = p.n * p.oh;
  const dim3 grid((p.ow + pixels - 1) / pixels, rows < kMaxGridYZ ? rows : kMaxGridYZ);
  channels_last_kernel<T, UPX, UPY, DOWNX, DOWNY, FH, FW><<<grid, kThreads, 0, stream>>>(p, ct_log2);
  return cudaGetLastError();
}

template <typename T, int UPX, int UPY, int DOWNX, int DOWNY, int FH, int FW>
cudaError_t run_direct(const Pass& p, cudaStream_t stream) {
  const int64_t total = (int64_t)p.n * p.c * p.oh * p.ow;
  const int64_t want = (total + kThreads - 1) / kThreads;
  const unsigned blocks = (unsigned)(want < (1 << 22) ? want : (1 << 22));
  const bool channels_fastest = p.sy[1] == 1 && p.c > 1;
  direct_kernel<T, UPX, UPY, DOWNX, DOWNY, FH, FW><<<blocks, kThreads, 0, stream>>>(p, total, channels_fastest);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_typed(const Pass& p, cudaStream_t stream) {
  TileConfig cfg;
  if (tile_config(p, &cfg)) {
#define GANOPS_UFD_TRY(UX, UY, DX, DY, FH_, FW_) \
  if (is(p, UX, UY, DX, DY, FH_, FW_)) return run_tile<T, UX, UY, DX, DY, FH_, FW_>(p, cfg, stream);
    GANOPS_UFD_HOT_TILE(GANOPS_UFD_TRY)
#undef GANOPS_UFD_TRY
    return run_tile<T, 0, 0, 0, 0, 0, 0>(p, cfg, stream);
  }
  if (channels_last_fits(p)) {
#define GANOPS_UFD_TRY(UX, UY, DX, DY, FH_, FW_) \
  if (is(p, UX, UY, DX, DY, FH_, FW_)) return run_channels_last<T, UX, UY, DX, DY, FH_, FW_>(p, stream);
    GANOPS_UFD_HOT_TILE(GANOPS_UFD_TRY)
#undef GANOPS_UFD_TRY
    return run_channels_last<T, 0, 0, 0, 0, 0, 0>(p, stream);
  }
#define GANOPS_UFD_TRY(UX, UY, DX, DY, FH_, FW_) \
  if (is(p, UX, UY, DX, DY, FH_, FW_)) return run_direct<T, UX, UY, DX, DY, FH_, FW_>(p, stream);
  GANOPS_UFD_HOT_DIRECT(GANOPS_UFD_TRY)
#undef GANOPS_UFD_TRY
  return run_direct<T, 0, 0, 0, 0, 0, 0>(p, stream);
}

bool is_hot_tile(const Pass& p) {
#define GANOPS_UFD_TRY(UX, UY, DX, DY, FH_, FW_) if (is(p, UX, UY, DX, DY, FH_, FW_)) return true;
  GANOPS_UFD_HOT_TILE(GANOPS_UFD_TRY)
#undef GANOPS_UFD_TRY
  return false;
}

bool is_hot_direct(const Pass& p) {
#define GANOPS_UFD_TRY(UX, UY, DX, DY, FH_, FW_) if (is(p, UX, UY, DX, DY, FH_, FW_)) return true;
  GANOPS_UFD_HOT_DIRECT(GANOPS_UFD_TRY)
#undef GANOPS_UFD_TRY
  return false;
}

}  // namespace

cudaError_t launch(const Pass& p, cudaStream_t stream) {
  if ((int64_t)p.n * p.c * p.oh * p.ow == 0) return cudaSuccess;  // nothing to write
  switch (p.dtype) {
    case DType::kFloat32: return launch_typed<float>(p, stream);
    case DType::kFloat16: return launch_typed<__half>(p, stream);
    case DType::kBFloat16: return launch_typed<__nv_bfloat16>(p, stream);
    default: break;  // no float64 kernels
  }
  return cudaErrorInvalidValue;
}

const char* kernel_name(const Pass& p) {
  TileConfig cfg;
  if (tile_config(p, &cfg)) return is_hot_tile(p) ? "tile-hot" : "tile";
  if (channels_last_fits(p)) return is_hot_tile(p) ? "channels-last-hot" : "channels-last";
  return is_hot_direct(p) ? "direct-hot" : "direct";
}

}  // namespace upfirdn2d
}  // namespace ganops
