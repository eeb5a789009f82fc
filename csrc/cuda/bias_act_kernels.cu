// bias_act kernels (interface and math in bias_act.h).
//
// Two kernels over the [rows, cols] matrix view, both with 16-byte vector access when the row
// length and the pointers allow it, templated on the element type, the activation and forward vs
// backward (modes 1 and 2 share the backward instance):
//   row kernel (channel per row, e.g. NCHW): a group of gs <= 32 lanes walks a chunk of one row;
//       the bias is loaded once per chunk and db gets one atomicAdd per chunk after a shuffle sum.
//   col kernel (channel per column, e.g. channels_last): each thread owns one column vector and
//       walks rows; db partial sums go through shared memory, then one atomicAdd per column.
// Derivative conventions at the kinks follow PyTorch (see ganops/triton_kernels/bias_act.py).
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "bias_act.h"
#include "numeric.cuh"

namespace ganops {
namespace bias_act {
namespace {

constexpr float kSeluLambda = 1.0507009873554805f;
constexpr float kSeluAlpha = 1.6732632423543772f;
constexpr float kSeluLambdaAlpha = 1.7580993408473766f;
constexpr int kThreads = 256;
constexpr int kUnroll = 2;
// Blocks of 256 threads per SM the register budget must allow (4: <= 64 registers, 3: <= 80, 2: <= 128);
// with two 16-byte loads in flight per thread per input that keeps enough bytes in flight on H100.
// The bfloat16 backward with 8-element vectors (up to three inputs, two vectors each) needs more than
// 80 registers on sm_90 (ptxas spilled 20-62 bytes at 3 blocks): it gets 2 blocks and no spills.
template <typename T, int VEC, bool FWD>
constexpr int min_blocks() {
  if constexpr (VEC != 8) return 4;
  else if constexpr (!FWD && std::is_same_v<T, __nv_bfloat16>) return 2;
  else return 3;
}
constexpr int kChunkPerLane = 8;  // row kernel: vectors per lane per unit of work

struct Scalars {
  float alpha, gain, inv_gain, clamp;
  bool s_is_y, clamped;
};

template <typename T, int VEC>
struct alignas(sizeof(T) * VEC) Pack {
  T v[VEC];
};

__device__ __forceinline__ float sigmoid(float v) { return 1.f / (1.f + expf(-v)); }

template <int A>
__device__ __forceinline__ float act_fn(float v, float alpha) {
  if constexpr (A == kLinear) return v;
  else if constexpr (A == kRelu) return v > 0.f ? v : 0.f;
  else if constexpr (A == kLrelu) return v > 0.f ? v : v * alpha;
  else if constexpr (A == kTanh) return tanhf(v);
  else if constexpr (A == kSigmoid) return sigmoid(v);
  else if constexpr (A == kElu) return v > 0.f ? v : expm1f(v);
  else if constexpr (A == kSelu) return kSeluLambda * (v > 0.f ? v : kSeluAlpha * expm1f(v));
  else if constexpr (A == kSoftplus) return v > 20.f ? v : log1pf(expf(v));
  else return v * sigmoid(v);
}

// act'(v) (ORDER 1) or act''(v) (ORDER 2).
template <int A, int ORDER>
__device__ __forceinline__ float deriv_x(float v, float alpha) {
  if constexpr (A == kLinear) return ORDER == 1 ? 1.f : 0.f;
  else if constexpr (A == kRelu) return ORDER == 1 ? (v > 0.f ? 1.f : 0.f) : 0.f;
  else if constexpr (A == kLrelu) return ORDER == 1 ? (v > 0.f ? 1.f : alpha) : 0.f;
  else if constexpr (A == kTanh) {
    const float t = tanhf(v);
    return ORDER == 1 ? 1.f - t * t : -2.f * t * (1.f - t * t);
  } else if constexpr (A == kSigmoid) {
    const float s = sigmoid(v);
    return ORDER == 1 ? s * (1.f - s) : s * (1.f - s) * (1.f - 2.f * s);
  } else if constexpr (A == kElu) {
    return ORDER == 1 ? (v > 0.f ? 1.f : expf(v)) : (v < 0.f ? expf(v) : 0.f);
  } else if constexpr (A == kSelu) {
    return ORDER == 1 ? (v > 0.f ? kSeluLambda : kSeluLambdaAlpha * expf(v))
                      : (v < 0.f ? kSeluLambdaAlpha * expf(v) : 0.f);
  } else if constexpr (A == kSoftplus) {
    const float s = sigmoid(v);
    return ORDER == 1 ? (v > 20.f ? 1.f : s) : (v > 20.f ? 0.f : s * (1.f - s));
  } else {
    const float s = sigmoid(v);
    return ORDER == 1 ? s * (1.f + v * (1.f - s)) : s * (1.f - s) * (2.f + v * (1.f - 2.f * s));
  }
}

// act'(.) (ORDER 1) or d act'(.)/dt (ORDER 2) as functions of the activation value t = act(.).
template <int A, int ORDER>
__device__ __forceinline__ float deriv_y(float t, float alpha) {
  if constexpr (A == kLinear) return ORDER == 1 ? 1.f : 0.f;
  else if constexpr (A == kRelu) return ORDER == 1 ? (t > 0.f ? 1.f : 0.f) : 0.f;
  else if constexpr (A == kLrelu) return ORDER == 1 ? (t > 0.f ? 1.f : alpha) : 0.f;
  else if constexpr (A == kTanh) return ORDER == 1 ? 1.f - t * t : -2.f * t;
  else if constexpr (A == kSigmoid) return ORDER == 1 ? t * (1.f - t) : 1.f - 2.f * t;
  else if constexpr (A == kElu) return ORDER == 1 ? (t > 0.f ? 1.f : t + 1.f) : (t < 0.f ? 1.f : 0.f);
  else if constexpr (A == kSelu) return ORDER == 1 ? (t > 0.f ? kSeluLambda : t + kSeluLambdaAlpha) : (t < 0.f ? 1.f : 0.f);
  else if constexpr (A == kSoftplus) return ORDER == 1 ? -expm1f(-t) : expf(-t);
  else return 0.f;  // swish never saves y (see ganops/ops/_bias_act_fast.py saves_output)
}

template <int A>
__device__ __forceinline__ float element(int mode, const Scalars& k, float s, float bias, float g, float h) {
  if (mode == 0) {
    const float y = act_fn<A>(s + bias, k.alpha) * k.gain;
    if (!k.clamped) return y;
    return y > k.clamp ? k.clamp : (y < -k.clamp ? -k.clamp : y);
  }
  float d;
  bool keep = true;
  if (k.s_is_y) {
    const float t = s * k.inv_gain;
    d = mode == 1 ? deriv_y<A, 1>(t, k.alpha) * k.gain : deriv_y<A, 2>(t, k.alpha);
    if (k.clamped) keep = fabsf(s) < k.clamp;
  } else {
    const float v = s + bias;
    d = (mode == 1 ? deriv_x<A, 1>(v, k.alpha) : deriv_x<A, 2>(v, k.alpha)) * k.gain;
    if (k.clamped) keep = fabsf(act_fn<A>(v, k.alpha) * k.gain) < k.clamp;
  }
  float out = g * d;
  if (mode == 2) out *= h;
  return keep ? out : 0.f;
}

template <typename T, int A, int VEC, bool FWD>
__global__ void __launch_bounds__(kThreads, min_blocks<T, VEC, FWD>())
row_kernel(Params p, Scalars k, int64_t vec_cols, int64_t chunk, int64_t chunks, int gs) {
  using P = Pack<T, VEC>;
  const int mode = FWD ? 0 : p.mode;
  const T* s = static_cast<const T*>(p.s);
  const T* b = static_cast<const T*>(p.b);
  const T* g = static_cast<const T*>(p.g);
  const T* h = static_cast<const T*>(p.h);
  T* out = static_cast<T*>(p.out);
  const int lane = threadIdx.x & 31;
  const int group_lane = lane & (gs - 1);
  const int groups_per_warp = 32 / gs;
  const int64_t warp = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int64_t warps = (int64_t(gridDim.x) * blockDim.x) >> 5;
  const int64_t units = p.rows * chunks;
  // The loop bound is uniform over the warp, so every lane reaches the shuffles below.
  for (int64_t base = warp * groups_per_warp; base < units; base += warps * groups_per_warp) {
    const int64_t unit = base + lane / gs;
    float acc = 0.f;
    int64_t channel = 0;
    if (unit < units) {
      const int64_t row = unit / chunks;
      const int64_t k0 = (unit - row * chunks) * chunk;
      const int64_t k1 = min(k0 + chunk, vec_cols);
      channel = p.channels > 1 ? row % p.channels : 0;
      const float bias = b != nullptr ? to_acc(b[channel]) : 0.f;
      const int64_t row_off = row * p.cols;
      for (int64_t kv = k0 + group_lane; kv < k1; kv += int64_t(gs) * kUnroll) {
        P sv[kUnroll], gv[kUnroll], hv[kUnroll];
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
          const int64_t kk = kv + int64_t(u) * gs;
          if (kk < k1) {
            const int64_t off = row_off + kk * VEC;
            sv[u] = *reinterpret_cast<const P*>(s + off);
            if (mode != 0) gv[u] = *reinterpret_cast<const P*>(g + off);
            if (mode == 2) hv[u] = *reinterpret_cast<const P*>(h + off);
          }
        }
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
          const int64_t kk = kv + int64_t(u) * gs;
          if (kk < k1) {
            P ov;
#pragma unroll
            for (int j = 0; j < VEC; ++j) {
              const float r = element<A>(mode, k, to_acc(sv[u].v[j]), bias,
                                         mode != 0 ? to_acc(gv[u].v[j]) : 0.f,
                                         mode == 2 ? to_acc(hv[u].v[j]) : 0.f);
              ov.v[j] = from_acc<T>(r);
              if constexpr (!FWD) acc += r;
            }
            *reinterpret_cast<P*>(out + row_off + kk * VEC) = ov;
          }
        }
      }
    }
    if (!FWD && p.db != nullptr) {
      for (int offset = gs >> 1; offset > 0; offset >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, offset);
      if (group_lane == 0 && unit < units) atomicAdd(p.db + channel, acc);
    }
  }
}

template <typename T, int A, int VEC, bool FWD>
__global__ void __launch_bounds__(kThreads, min_blocks<T, VEC, FWD>()) col_kernel(Params p, Scalars k, int64_t vec_cols) {
  using P = Pack<T, VEC>;
  const int mode = FWD ? 0 : p.mode;
  extern __shared__ float partial[];  // [blockDim.y][blockDim.x * VEC], only when p.db
  const T* s = static_cast<const T*>(p.s);
  const T* g = static_cast<const T*>(p.g);
  const T* h = static_cast<const T*>(p.h);
  T* out = static_cast<T*>(p.out);
  const int64_t kv = int64_t(blockIdx.y) * blockDim.x + threadIdx.x;
  const bool col_ok = kv < vec_cols;
  float bias[VEC], acc[VEC];
  P bv;
  if (col_ok && p.b != nullptr) bv = *reinterpret_cast<const P*>(static_cast<const T*>(p.b) + kv * VEC);
#pragma unroll
  for (int j = 0; j < VEC; ++j) {
    bias[j] = col_ok && p.b != nullptr ? to_acc(bv.v[j]) : 0.f;
    acc[j] = 0.f;
  }
  const int64_t row_step = int64_t(gridDim.x) * blockDim.y;
  if (col_ok) {
    for (int64_t r = int64_t(blockIdx.x) * blockDim.y + threadIdx.y; r < p.rows; r += row_step * kUnroll) {
      P sv[kUnroll], gv[kUnroll], hv[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t rr = r + u * row_step;
        if (rr < p.rows) {
          const int64_t off = rr * p.cols + kv * VEC;
          sv[u] = *reinterpret_cast<const P*>(s + off);
          if (mode != 0) gv[u] = *reinterpret_cast<const P*>(g + off);
          if (mode == 2) hv[u] = *reinterpret_cast<const P*>(h + off);
        }
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t rr = r + u * row_step;
        if (rr < p.rows) {
          P ov;
#pragma unroll
          for (int j = 0; j < VEC; ++j) {
            const float res = element<A>(mode, k, to_acc(sv[u].v[j]), bias[j],
                                         mode != 0 ? to_acc(gv[u].v[j]) : 0.f,
                                         mode == 2 ? to_acc(hv[u].v[j]) : 0.f);
            ov.v[j] = from_acc<T>(res);
            if constexpr (!FWD) acc[j] += res;
          }
          *reinterpret_cast<P*>(out + rr * p.cols + kv * VEC) = ov;
        }
      }
    }
  }
  if (FWD || p.db == nullptr) return;
  const int width = blockDim.x * VEC;
#pragma unroll
  for (int j = 0; j < VEC; ++j) partial[threadIdx.y * width + threadIdx.x * VEC + j] = acc[j];
  __syncthreads();
  // Tree over the rows of the block (blockDim.y is a power of two).
  for (int half = blockDim.y >> 1; half > 0; half >>= 1) {
    if (threadIdx.y < half) {
#pragma unroll
      for (int j = 0; j < VEC; ++j)
        partial[threadIdx.y * width + threadIdx.x * VEC + j] += partial[(threadIdx.y + half) * width + threadIdx.x * VEC + j];
    }
    __syncthreads();
  }
  if (threadIdx.y == 0 && col_ok) {
#pragma unroll
    for (int j = 0; j < VEC; ++j) atomicAdd(p.db + kv * VEC + j, partial[threadIdx.x * VEC + j]);
  }
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

int pow2_ceil(int64_t v, int cap) {
  int r = 1;
  while (r < v && r < cap) r <<= 1;
  return r;
}

int pow2_floor(int64_t v) {
  int r = 1;
  while (int64_t(r) * 2 <= v) r <<= 1;
  return r;
}

bool aligned16(const void* ptr) { return ptr == nullptr || reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }

// Multiprocessors of the current device (cached per device).
int sm_count() {
  constexpr int kMaxDevices = 64;
  static int counts[kMaxDevices] = {};
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= kMaxDevices) return 132;
  if (counts[device] == 0) {
    int count = 0;
    if (cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device) != cudaSuccess || count <= 0) return 132;
    counts[device] = count;
  }
  return counts[device];
}

template <typename T, int A, int VEC, bool FWD>
cudaError_t launch_vec(const Params& p, const Scalars& k, cudaStream_t stream) {
  const int64_t vec_cols = p.cols / VEC;
  const int64_t max_blocks = int64_t(sm_count()) * 16;
  if (p.channel_per_row) {
    const int gs = pow2_ceil(vec_cols, 32);
    const int64_t chunk = int64_t(gs) * kChunkPerLane;
    const int64_t chunks = ceil_div(vec_cols, chunk);
    const int64_t groups = p.rows * chunks;
    const int64_t blocks = std::min<int64_t>(ceil_div(groups * gs, kThreads), max_blocks);
    row_kernel<T, A, VEC, FWD><<<unsigned(blocks), kThreads, 0, stream>>>(p, k, vec_cols, chunk, chunks, gs);
  } else {
    // blockDim.x covers the column vectors (up to 256), blockDim.y (a power of two) the rows.
    const int tx = int(std::min<int64_t>(vec_cols, kThreads));
    const int ty = pow2_floor(kThreads / tx);
    const int64_t grid_y = ceil_div(vec_cols, tx);
    const int64_t grid_x = std::max<int64_t>(
        1, std::min<int64_t>(ceil_div(p.rows, int64_t(ty) * kUnroll), std::max<int64_t>(1, max_blocks / grid_y)));
    const size_t smem = p.db != nullptr ? size_t(tx) * ty * VEC * sizeof(float) : 0;
    col_kernel<T, A, VEC, FWD><<<dim3(unsigned(grid_x), unsigned(grid_y)), dim3(tx, ty), smem, stream>>>(p, k, vec_cols);
  }
  return cudaGetLastError();
}

template <typename T, int A>
cudaError_t launch_act(const Params& p, const Scalars& k, cudaStream_t stream) {
  constexpr int kVec = 16 / sizeof(T);
  const bool vectorize = p.cols % kVec == 0 && aligned16(p.out) && aligned16(p.s) && aligned16(p.g) &&
                         aligned16(p.h) && (p.channel_per_row || aligned16(p.b));
  if (p.mode == 0) return vectorize ? launch_vec<T, A, kVec, true>(p, k, stream) : launch_vec<T, A, 1, true>(p, k, stream);
  return vectorize ? launch_vec<T, A, kVec, false>(p, k, stream) : launch_vec<T, A, 1, false>(p, k, stream);
}

template <typename T>
cudaError_t launch_typed(const Params& p, const Scalars& k, cudaStream_t stream) {
  switch (p.act) {
    case kLinear: return launch_act<T, kLinear>(p, k, stream);
    case kRelu: return launch_act<T, kRelu>(p, k, stream);
    case kLrelu: return launch_act<T, kLrelu>(p, k, stream);
    case kTanh: return launch_act<T, kTanh>(p, k, stream);
    case kSigmoid: return launch_act<T, kSigmoid>(p, k, stream);
    case kElu: return launch_act<T, kElu>(p, k, stream);
    case kSelu: return launch_act<T, kSelu>(p, k, stream);
    case kSoftplus: return launch_act<T, kSoftplus>(p, k, stream);
    case kSwish: return launch_act<T, kSwish>(p, k, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace

cudaError_t launch(const Params& p, cudaStream_t stream) {
  if (p.rows <= 0 || p.cols <= 0) return cudaSuccess;
  if (p.mode < 0 || p.mode > 2 || (p.s_is_y && (p.act == kSwish || p.gain <= 0.f))) return cudaErrorInvalidValue;
  const Scalars k{p.alpha, p.gain, p.gain != 0.f ? 1.f / p.gain : 0.f, p.clamp, p.s_is_y, p.clamp >= 0.f};
  switch (p.dtype) {
    case DType::kFloat32: return launch_typed<float>(p, k, stream);
    case DType::kFloat16: return launch_typed<__half>(p, k, stream);
    case DType::kBFloat16: return launch_typed<__nv_bfloat16>(p, k, stream);
    default: break;  // no float64 kernels
  }
  return cudaErrorInvalidValue;
}

}  // namespace bias_act
}  // namespace ganops
