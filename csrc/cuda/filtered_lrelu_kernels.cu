// filtered_lrelu CUDA kernel: one fused pass per output tile in shared memory.
//
// A block owns one output tile (TY x TX pixels of one (n, c) plane) at a time and loops over tiles.
// Per tile it
//   1. stages the input window it needs (x + bias, float32, zeros outside the image) and applies the
//      up-FIR polyphase (only taps that land on real samples): for a 1-D fu as an x pass into a row
//      buffer then a y pass, for a 2-D fu directly;
//   2. multiplies by gain and applies leaky ReLU and clamp to its MY x MX window of the intermediate m,
//      each thread handling 4 horizontally adjacent values so that it packs their 2-bit codes
//      (bit 0: negative, bit 1: clamped) into one byte (Signs::kWrite); Signs::kRead instead multiplies
//      by the derivative gain * {1, slope, 0} read from si at (i + sgy, j + sgx) (codes outside the
//      sign plane read as "clamped": zero derivative);
//   3. applies the down-FIR from shared memory (x pass then y pass for a 1-D fd) and stores the tile.
// Tiles start at intermediate columns that are multiples of 4, so each sign byte is written whole; the
// overlapping halos of neighbouring tiles write identical bytes. Accumulation is float32.
#include "filtered_lrelu.h"
#include "index_math.cuh"
#include "numeric.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace ganops {
namespace filtered_lrelu {
namespace {

constexpr int kThreads = 256;
constexpr size_t kMaxSharedBytes = 48 * 1024;

// The shared-memory tile: an MY x MX window of m serving TY x TX outputs, the XR x XC input window
// it reads, and the offsets (in floats) of the buffers in dynamic shared memory.
struct Tile {
  int my, mx, ty, tx, xr, xc;
  int fu_len, fd_len;
  int off_x, off_rows, off_v, off_cols, floats;
};

__host__ __forceinline__ int filter_len(int fh, int fw, bool sep) { return sep ? fh : fh * fw; }

__host__ bool make_tile(const Params& p, int window, Tile* t) {
  t->my = t->mx = window;
  if (window < p.fdh || window < p.fdw) return false;
  t->ty = (window - p.fdh) / p.down + 1;
  const int step = p.down >= 4 ? 1 : 4 / p.down;  // tx * down must be a multiple of 4
  t->tx = (window - p.fdw) / p.down + 1;
  t->tx -= t->tx % step;
  if (t->tx < 1) return false;
  t->xr = (t->my + p.fuh - 2) / p.up + 2;
  t->xc = (t->mx + p.fuw - 2) / p.up + 2;
  t->fu_len = filter_len(p.fuh, p.fuw, p.sep_u);
  t->fd_len = filter_len(p.fdh, p.fdw, p.sep_d);
  t->off_x = t->fu_len + t->fd_len;
  t->off_rows = t->off_x + t->xr * t->xc;
  t->off_v = t->off_rows + (p.sep_u ? t->xr * t->mx : 0);
  t->off_cols = t->off_v + t->my * t->mx;
  t->floats = t->off_cols + (p.sep_d ? t->my * t->tx : 0);
  return size_t(t->floats) * sizeof(float) <= kMaxSharedBytes;
}

template <typename T>
__global__ void __launch_bounds__(kThreads) fused_kernel(Params p, Tile t) {
  extern __shared__ float smem[];
  float* s_fu = smem;
  float* s_fd = smem + t.fu_len;
  float* s_x = smem + t.off_x;
  float* s_rows = smem + t.off_rows;
  float* s_v = smem + t.off_v;
  float* s_cols = smem + t.off_cols;
  for (int k = threadIdx.x; k < t.fu_len; k += kThreads) s_fu[k] = p.fu[k];
  for (int k = threadIdx.x; k < t.fd_len; k += kThreads) s_fd[k] = p.fd[k];

  const T* x = static_cast<const T*>(p.x);
  T* y = static_cast<T*>(p.y);
  const int tiles_x = (p.ow + t.tx - 1) / t.tx;
  const int tiles_per_plane = tiles_x * ((p.oh + t.ty - 1) / t.ty);
  const int64_t total = int64_t(p.n) * p.c * tiles_per_plane;
  const int quads = t.mx / 4;
  for (int64_t item = blockIdx.x; item < total; item += gridDim.x) {
    const int64_t plane = item / tiles_per_plane;
    const int tile = int(item % tiles_per_plane);
    const int nn = int(plane / p.c), cc = int(plane % p.c);
    const int oy0 = (tile / tiles_x) * t.ty, ox0 = (tile % tiles_x) * t.tx;
    const int i0 = oy0 * p.down, j0 = ox0 * p.down;
    const int iyb = floor_div(i0 - p.py0, p.up), ixb = floor_div(j0 - p.px0, p.up);
    const T* xp = x + nn * p.sx[0] + cc * p.sx[1];
    const float bias = p.b ? to_acc(static_cast<const T*>(p.b)[cc]) : 0.f;
    __syncthreads();  // the filters are staged; the previous tile is done with shared memory

    // 1. input window, then the x pass of a separable up-FIR
    for (int k = threadIdx.x; k < t.xr * t.xc; k += kThreads) {
      const int iy = iyb + k / t.xc, ix = ixb + k % t.xc;
      const bool inside = iy >= 0 && iy < p.h && ix >= 0 && ix < p.w;
      s_x[k] = inside ? to_acc(xp[iy * p.sx[2] + ix * p.sx[3]]) + bias : 0.f;
    }
    __syncthreads();
    if (p.sep_u) {
      for (int k = threadIdx.x; k < t.xr * t.mx; k += kThreads) {
        const int r = k / t.mx, q = k % t.mx;
        const int ux = j0 + q - p.px0;
        float acc = 0.f;
        for (int b = pos_mod(-ux, p.up); b < p.fuw; b += p.up) acc += s_fu[b] * s_x[r * t.xc + (ux + b) / p.up - ixb];
        s_rows[k] = acc;
      }
      __syncthreads();
    }

    // 2. m, activation and sign codes, 4 adjacent values per thread
    for (int k = threadIdx.x; k < t.my * quads; k += kThreads) {
      const int r = k / quads, q0 = (k % quads) * 4;
      const int i = i0 + r, uy = i - p.py0, a0 = pos_mod(-uy, p.up);
      unsigned byte = 0;
      for (int e = 0; e < 4; ++e) {
        const int q = q0 + e, j = j0 + q;
        float m = 0.f;
        if (p.sep_u) {
          for (int a = a0; a < p.fuh; a += p.up) m += s_fu[a] * s_rows[((uy + a) / p.up - iyb) * t.mx + q];
        } else {
          const int ux = j - p.px0, b0 = pos_mod(-ux, p.up);
          for (int a = a0; a < p.fuh; a += p.up) {
            const float* row = s_x + ((uy + a) / p.up - iyb) * t.xc - ixb;
            for (int b = b0; b < p.fuw; b += p.up) m += s_fu[a * p.fuw + b] * row[(ux + b) / p.up];
          }
        }
        float v = m * p.gain;
        if (p.signs == Signs::kRead) {
          const int si = i + p.sgy, sj = j + p.sgx;
          unsigned code = 2;
          if (si >= 0 && si < p.sh && sj >= 0 && sj < p.sw)
            code = (p.si[(plane * p.sh + si) * p.swb + sj / 4] >> ((sj % 4) * 2)) & 3u;
          v = code == 0 ? v : (code == 1 ? v * p.slope : 0.f);
        } else {
          unsigned code = v < 0.f ? 1u : 0u;
          if (code) v *= p.slope;
          if (p.clamp >= 0.f && fabsf(v) > p.clamp) {
            v = v < 0.f ? -p.clamp : p.clamp;
            code |= 2u;
          }
          if (i < p.sh && j < p.sw) byte |= code << (2 * e);
        }
        s_v[r * t.mx + q] = v;
      }
      const int col = j0 / 4 + q0 / 4;
      if (p.signs == Signs::kWrite && i < p.sh && col < p.swb) p.so[(plane * p.sh + i) * p.swb + col] = uint8_t(byte);
    }
    __syncthreads();

    // 3. down-FIR and store
    if (p.sep_d) {
      for (int k = threadIdx.x; k < t.my * t.tx; k += kThreads) {
        const int r = k / t.tx, q = k % t.tx;
        const float* row = s_v + r * t.mx + q * p.down;
        float acc = 0.f;
        for (int b = 0; b < p.fdw; ++b) acc += s_fd[b] * row[b];
        s_cols[k] = acc;
      }
      __syncthreads();
    }
    T* yp = y + nn * p.sy[0] + cc * p.sy[1];
    for (int k = threadIdx.x; k < t.ty * t.tx; k += kThreads) {
      const int ty = k / t.tx, tx = k % t.tx;
      const int oy = oy0 + ty, ox = ox0 + tx;
      if (oy >= p.oh || ox >= p.ow) continue;
      float acc = 0.f;
      if (p.sep_d) {
        for (int a = 0; a < p.fdh; ++a) acc += s_fd[a] * s_cols[(ty * p.down + a) * t.tx + tx];
      } else {
        for (int a = 0; a < p.fdh; ++a) {
          const float* row = s_v + (ty * p.down + a) * t.mx + tx * p.down;
          for (int b = 0; b < p.fdw; ++b) acc += s_fd[a * p.fdw + b] * row[b];
        }
      }
      yp[oy * p.sy[2] + ox * p.sy[3]] = from_acc<T>(acc);
    }
  }
}

template <typename T>
cudaError_t launch_typed(const Params& p, const Tile& t, cudaStream_t stream) {
  const int tiles = ((p.ow + t.tx - 1) / t.tx) * ((p.oh + t.ty - 1) / t.ty);
  const int64_t total = int64_t(p.n) * p.c * tiles;
  int device = 0, sms = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess)
    sms = 128;
  const int64_t cap = int64_t(sms) * 16;
  const unsigned blocks = unsigned(total < cap ? total : cap);
  fused_kernel<T><<<blocks, kThreads, size_t(t.floats) * sizeof(float), stream>>>(p, t);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch(const Params& p, cudaStream_t stream) {
  if (int64_t(p.n) * p.c * p.oh * p.ow == 0) return cudaSuccess;  // nothing to write
  Tile t{};
  if (!make_tile(p, 64, &t) && !make_tile(p, 32, &t)) return cudaErrorInvalidValue;
  switch (p.dtype) {
    case DType::kFloat32: return launch_typed<float>(p, t, stream);
    case DType::kFloat16: return launch_typed<__half>(p, t, stream);
    case DType::kBFloat16: return launch_typed<__nv_bfloat16>(p, t, stream);
    default: break;  // no float64 kernels
  }
  return cudaErrorInvalidValue;
}

}  // namespace filtered_lrelu
}  // namespace ganops
