// CUDA-on-CPU emulator runtime: runs the unmodified kernels of csrc/cuda on the CPU so their index
// math, vector paths, reductions and synchronisation can be tested on machines without a GPU.
//
// Every CUDA thread of a block is a fiber (ucontext) on one OS thread; blocks run one after another.
// __syncthreads and the warp shuffles are barriers in the fiber scheduler: a barrier that not every
// live thread of the block (or every lane of the warp) reaches is reported as a launch failure, as
// is a launch whose configuration a GPU would reject. Dynamic shared memory is filled with NaN bytes
// before each block, so reads of it that were never written show up as NaN; static __shared__ arrays
// are plain statics. Not modelled: memory races between threads, the memory model, timing and
// warp-synchronous code without explicit syncs.
#pragma once

#include <math.h>
#include <ucontext.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

typedef struct CUstream_st* cudaStream_t;

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorLaunchFailure = 719,
};

enum cudaDeviceAttr { cudaDevAttrMultiProcessorCount = 16 };

namespace emu {

constexpr int kWarp = 32;
constexpr size_t kStackBytes = 256 * 1024;
constexpr size_t kMaxDynamicShared = 48 * 1024;
constexpr int kMultiprocessors = 2;  // small, so grid-stride kernels get few blocks

enum class Wait { kNone, kBlock, kWarp };

struct Fiber {
  ucontext_t ctx;
  std::vector<char> stack;
  dim3 tid;
  int linear = 0;
  bool done = false;
  Wait wait = Wait::kNone;
  unsigned long gen = 0;
};

struct State {
  std::recursive_mutex launch_mutex;
  ucontext_t scheduler;
  std::vector<Fiber> fibers;
  Fiber* current = nullptr;
  std::function<void()> body;
  dim3 block_idx, block_dim, grid_dim;
  int live = 0;  // threads of the current block that have not exited
  int block_threads = 0;
  int block_arrivals = 0;
  unsigned long block_gen = 0;
  std::vector<int> warp_live, warp_size, warp_arrivals;
  std::vector<unsigned long> warp_gen;
  std::vector<uint64_t> lanes;  // shuffle exchange slots, one per thread
  std::vector<unsigned char> dynamic_shared;
  ucontext_t fresh_context;  // getcontext() once; fibers start from copies of it
  cudaError_t last_error = cudaSuccess;
  std::string failure;  // why the last launch failed
};

inline State& state() {
  static State* s = [] {
    State* created = new State();
    getcontext(&created->fresh_context);
    return created;
  }();
  return *s;
}

[[noreturn]] inline void fail(const std::string& why) {
  State& s = state();
  s.failure = why;
  throw std::runtime_error(why);
}

inline void yield() {
  State& s = state();
  swapcontext(&s.current->ctx, &s.scheduler);
}

inline bool runnable(const State& s, const Fiber& f) {
  if (f.done) return false;
  if (f.wait == Wait::kBlock) return s.block_gen != f.gen;
  if (f.wait == Wait::kWarp) return s.warp_gen[f.linear / kWarp] != f.gen;
  return true;
}

inline void syncthreads() {
  State& s = state();
  Fiber& f = *s.current;
  if (s.live < s.block_threads)
    fail("__syncthreads after some threads of the block exited (barrier not reached by every thread)");
  f.gen = s.block_gen;
  if (++s.block_arrivals == s.live) {
    s.block_arrivals = 0;
    ++s.block_gen;
    return;
  }
  f.wait = Wait::kBlock;
  yield();
  f.wait = Wait::kNone;
}

inline void warp_barrier(unsigned mask) {
  State& s = state();
  Fiber& f = *s.current;
  const int w = f.linear / kWarp;
  if (mask != 0xffffffffu) fail("emulator: only full-warp masks (0xffffffff) are modelled");
  if (s.warp_size[w] != kWarp || s.warp_live[w] != kWarp)
    fail("warp shuffle with mask 0xffffffff in a warp that does not have 32 live threads (block size "
         "not a multiple of 32, or lanes that exited): undefined behaviour on a GPU");
  f.gen = s.warp_gen[w];
  if (++s.warp_arrivals[w] == kWarp) {
    s.warp_arrivals[w] = 0;
    ++s.warp_gen[w];
    return;
  }
  f.wait = Wait::kWarp;
  yield();
  f.wait = Wait::kNone;
}

template <typename T>
inline T exchange(unsigned mask, T v, int src) {
  static_assert(sizeof(T) <= sizeof(uint64_t), "shuffle of a type wider than 8 bytes");
  State& s = state();
  Fiber& f = *s.current;
  std::memcpy(&s.lanes[f.linear], &v, sizeof(T));
  warp_barrier(mask);
  T out;
  std::memcpy(&out, &s.lanes[(f.linear / kWarp) * kWarp + src], sizeof(T));
  warp_barrier(mask);
  return out;
}

inline int lane() { return state().current->linear % kWarp; }

inline void fiber_main() {
  State& s = state();
  Fiber& f = *s.current;
  s.body();
  f.done = true;
  --s.live;
  --s.warp_live[f.linear / kWarp];
  if (s.block_arrivals > 0)
    fail("a thread exited while others wait at __syncthreads (barrier not reached by every thread)");
}

inline void trampoline() {
  try {
    fiber_main();
  } catch (const std::exception&) {
    // The scheduler sees state().failure and abandons the launch.
  }
}

inline void run_block() {
  State& s = state();
  const int threads = int(s.block_dim.x * s.block_dim.y * s.block_dim.z);
  const int warps = (threads + kWarp - 1) / kWarp;
  if (s.fibers.size() < size_t(threads)) s.fibers.resize(threads);
  s.live = s.block_threads = threads;
  s.block_arrivals = 0;
  s.warp_live.assign(warps, 0);
  s.warp_size.assign(warps, 0);
  s.warp_arrivals.assign(warps, 0);
  s.warp_gen.assign(warps, 0);
  s.lanes.assign(size_t(warps) * kWarp, 0);
  std::fill(s.dynamic_shared.begin(), s.dynamic_shared.end(), 0xff);
  for (int t = 0; t < threads; ++t) {
    Fiber& f = s.fibers[t];
    if (f.stack.empty()) f.stack.resize(kStackBytes);
    f.linear = t;
    f.tid = dim3(t % s.block_dim.x, (t / s.block_dim.x) % s.block_dim.y, t / (s.block_dim.x * s.block_dim.y));
    f.done = false;
    f.wait = Wait::kNone;
    ++s.warp_live[t / kWarp];
    ++s.warp_size[t / kWarp];
    f.ctx = s.fresh_context;
    f.ctx.uc_stack.ss_sp = f.stack.data();
    f.ctx.uc_stack.ss_size = f.stack.size();
    f.ctx.uc_link = &s.scheduler;
    makecontext(&f.ctx, trampoline, 0);
  }
  while (s.live > 0) {
    bool progressed = false;
    for (int t = 0; t < threads; ++t) {
      Fiber& f = s.fibers[t];
      if (!runnable(s, f)) continue;
      s.current = &f;
      swapcontext(&s.scheduler, &f.ctx);
      s.current = nullptr;
      if (!s.failure.empty()) throw std::runtime_error(s.failure);
      progressed = true;
    }
    if (!progressed) fail("deadlock: threads wait at a barrier that the others never reach");
  }
}

struct Config {
  dim3 grid, block;
  size_t shared;
  Config(dim3 g, dim3 b, size_t shared_bytes = 0, cudaStream_t = nullptr) : grid(g), block(b), shared(shared_bytes) {}
};

template <typename... Params, typename... Args>
cudaError_t launch(const Config& c, void (*kernel)(Params...), Args&&... args) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.launch_mutex);
  const uint64_t threads = uint64_t(c.block.x) * c.block.y * c.block.z;
  if (threads == 0 || threads > 1024 || c.block.z > 64 || c.grid.x == 0 || c.grid.y == 0 || c.grid.z == 0 ||
      c.grid.x > 2147483647u || c.grid.y > 65535 || c.grid.z > 65535 || c.shared > kMaxDynamicShared) {
    s.failure = "invalid launch configuration";
    return s.last_error = cudaErrorInvalidConfiguration;
  }
  s.failure.clear();
  s.block_dim = c.block;
  s.grid_dim = c.grid;
  s.dynamic_shared.assign(c.shared, 0xff);
  s.body = [&]() { kernel(Params(args)...); };
  try {
    for (unsigned z = 0; z < c.grid.z; ++z)
      for (unsigned y = 0; y < c.grid.y; ++y)
        for (unsigned x = 0; x < c.grid.x; ++x) {
          s.block_idx = dim3(x, y, z);
          run_block();
        }
  } catch (const std::exception&) {
    return s.last_error = cudaErrorLaunchFailure;
  }
  return cudaSuccess;
}

template <typename T>
T* dynamic_shared() {
  return reinterpret_cast<T*>(state().dynamic_shared.data());
}

}  // namespace emu

// ---- the CUDA names the kernels use ----
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define threadIdx (::emu::state().current->tid)
#define blockIdx (::emu::state().block_idx)
#define blockDim (::emu::state().block_dim)
#define gridDim (::emu::state().grid_dim)

inline void __syncthreads() { ::emu::syncthreads(); }
template <typename T>
inline T __ldg(const T* p) { return *p; }
template <typename T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask) { return ::emu::exchange(mask, v, ::emu::lane() ^ lane_mask); }
template <typename T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned delta) {
  const int src = ::emu::lane() + int(delta);
  const T out = ::emu::exchange(mask, v, src < ::emu::kWarp ? src : ::emu::lane());
  return out;
}
template <typename T>
inline T atomicAdd(T* address, T v) {  // one OS thread runs all fibers: a plain update is atomic
  const T old = *address;
  *address = old + v;
  return old;
}
using std::max;
using std::min;

inline cudaError_t cudaGetLastError() {
  const cudaError_t e = ::emu::state().last_error;
  ::emu::state().last_error = cudaSuccess;
  return e;
}
inline cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}
inline cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int) {
  if (attr != cudaDevAttrMultiProcessorCount) return cudaErrorInvalidValue;
  *value = ::emu::kMultiprocessors;
  return cudaSuccess;
}
inline const char* cudaGetErrorString(cudaError_t e) {
  static thread_local std::string text;
  const std::string& why = ::emu::state().failure;
  text = std::string("emulated CUDA error ") + std::to_string(int(e)) + (why.empty() ? "" : ": " + why);
  return text.c_str();
}
