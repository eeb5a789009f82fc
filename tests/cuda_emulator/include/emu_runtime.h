// CUDA-on-CPU emulator runtime: runs the unmodified kernels of csrc/cuda on the CPU so their index
// math, vector paths, reductions and synchronisation can be tested on machines without a GPU.
//
// Every CUDA thread of a block is a fiber (ucontext) on one OS thread; blocks run one after another.
// __syncthreads and the warp shuffles are barriers in the fiber scheduler: a barrier that not every
// live thread of the block (or every lane of the warp) reaches is reported as a launch failure, as
// is a launch whose configuration a GPU would reject.
//
// Schedules (GANOPS_EMU_SCHEDULE, read at every launch): 'forward' (default: blocks in grid order,
// and within every barrier interval the block's threads from thread 0 up), 'reverse' (blocks and
// threads from the last down) or 'random:SEED' (blocks in a seeded random order, and the threads of
// each barrier interval in a fresh seeded random order, warps interleaved). A kernel whose results
// depend on the schedule has a race: a missing __syncthreads/__syncwarp, a warp-synchronous
// reduction, blocks writing the same element without an atomic (tests/schedule_check.py compares).
// Shared memory, dynamic and static __shared__ alike, is poisoned before each block: 0xFF bytes (NaN)
// under 'forward' and 'reverse', 0x7F bytes under 'random:SEED', so a read of a value this block
// never wrote shows up as NaN and as a difference between schedules.
// Not modelled: the memory model (a fiber runs from one barrier to the next without preemption, so
// a non-atomic read-modify-write race inside one barrier interval is not seen), timing.
#pragma once

#include <math.h>
#include <ucontext.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <unordered_map>
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

enum class Order { kForward, kReverse, kRandom };

// The schedule of one launch, from GANOPS_EMU_SCHEDULE (see the header comment).
struct Schedule {
  Order order = Order::kForward;
  unsigned long long seed = 0;
  unsigned char poison = 0xff;
};

inline bool parse_schedule(const char* text, Schedule* out) {
  const std::string s = text ? text : "";
  Schedule r;
  if (s.empty() || s == "forward") {
  } else if (s == "reverse") {
    r.order = Order::kReverse;
  } else if (s.rfind("random:", 0) == 0 && s.size() > 7 &&
             s.find_first_not_of("0123456789", 7) == std::string::npos && s.size() <= 7 + 19) {
    r.order = Order::kRandom;
    r.seed = std::stoull(s.substr(7));
    r.poison = 0x7f;
  } else {
    return false;
  }
  *out = r;
  return true;
}

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
  Schedule schedule;
  std::mt19937_64 rng;
  std::vector<int> order;  // the threads of the current block in the order they run this round
  unsigned long block_serial = 0;  // counts blocks, so static __shared__ arrays are poisoned once each
  std::unordered_map<void*, unsigned long> poisoned;  // static __shared__ array -> block_serial
  ucontext_t fresh_context;  // getcontext() once; fibers start from copies of it
  cudaError_t last_error = cudaSuccess;
  std::string failure;  // why the last launch failed
  std::string launches;  // the launch log (log_launch), read and cleared through ganops_emu_launches
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

inline void syncwarp(unsigned mask) { warp_barrier(mask); }

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
  std::fill(s.dynamic_shared.begin(), s.dynamic_shared.end(), s.schedule.poison);
  ++s.block_serial;
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
  s.order.resize(threads);
  for (int t = 0; t < threads; ++t) s.order[t] = s.schedule.order == Order::kReverse ? threads - 1 - t : t;
  while (s.live > 0) {
    bool progressed = false;
    if (s.schedule.order == Order::kRandom) std::shuffle(s.order.begin(), s.order.end(), s.rng);
    for (int t : s.order) {
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
  const char* name = "kernel";  // the kernel as the launch names it (set by the source translation)
  Config(dim3 g, dim3 b, size_t shared_bytes = 0, cudaStream_t = nullptr) : grid(g), block(b), shared(shared_bytes) {}
  Config named(const char* kernel) const {
    Config c = *this;
    c.name = kernel;
    return c;
  }
};

// "name grid (x, y, z) block (x, y, z) shared N B", one line per launch since the last clear.
inline void log_launch(const Config& c) {
  State& s = state();
  s.launches += std::string(c.name) + " grid (" + std::to_string(c.grid.x) + ", " + std::to_string(c.grid.y) + ", " +
                std::to_string(c.grid.z) + ") block (" + std::to_string(c.block.x) + ", " + std::to_string(c.block.y) +
                ", " + std::to_string(c.block.z) + ") shared " + std::to_string(c.shared) + " B\n";
}

template <typename... Params, typename... Args>
cudaError_t launch(const Config& c, void (*kernel)(Params...), Args&&... args) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.launch_mutex);
  log_launch(c);
  const uint64_t threads = uint64_t(c.block.x) * c.block.y * c.block.z;
  if (threads == 0 || threads > 1024 || c.block.z > 64 || c.grid.x == 0 || c.grid.y == 0 || c.grid.z == 0 ||
      c.grid.x > 2147483647u || c.grid.y > 65535 || c.grid.z > 65535 || c.shared > kMaxDynamicShared) {
    s.failure = "invalid launch configuration";
    return s.last_error = cudaErrorInvalidConfiguration;
  }
  s.failure.clear();
  if (!parse_schedule(std::getenv("GANOPS_EMU_SCHEDULE"), &s.schedule)) {
    s.failure = "GANOPS_EMU_SCHEDULE must be forward, reverse or random:SEED (a decimal seed)";
    return s.last_error = cudaErrorInvalidValue;
  }
  s.rng.seed(s.schedule.seed);
  s.block_dim = c.block;
  s.grid_dim = c.grid;
  s.dynamic_shared.assign(c.shared, s.schedule.poison);
  s.body = [&]() { kernel(Params(args)...); };
  const uint64_t blocks = uint64_t(c.grid.x) * c.grid.y * c.grid.z;
  std::vector<uint64_t> block_order;
  if (s.schedule.order == Order::kRandom) {
    block_order.resize(blocks);
    for (uint64_t b = 0; b < blocks; ++b) block_order[b] = b;
    std::shuffle(block_order.begin(), block_order.end(), s.rng);
  }
  try {
    for (uint64_t i = 0; i < blocks; ++i) {
      const uint64_t b = s.schedule.order == Order::kForward ? i
                         : s.schedule.order == Order::kReverse ? blocks - 1 - i
                                                               : block_order[i];
      s.block_idx = dim3(unsigned(b % c.grid.x), unsigned(b / c.grid.x % c.grid.y), unsigned(b / c.grid.x / c.grid.y));
      run_block();
    }
  } catch (const std::exception&) {
    return s.last_error = cudaErrorLaunchFailure;
  }
  return cudaSuccess;
}

// Called where a static __shared__ array is declared (tests/cuda_emulator/__init__.py adds the call):
// the first thread of each block to get there fills it with the schedule's poison byte.
inline void poison_static_shared(void* array, size_t bytes) {
  State& s = state();
  unsigned long& stamp = s.poisoned[array];
  if (stamp != s.block_serial) {
    std::memset(array, s.schedule.poison, bytes);
    stamp = s.block_serial;
  }
}

template <typename T>
T* dynamic_shared() {
  return reinterpret_cast<T*>(state().dynamic_shared.data());
}

}  // namespace emu

// The launches since the last call, one per line (see log_launch); the log is then cleared. For the
// schedule check (tests/schedule_check.py), through ctypes.
extern "C" __attribute__((used, visibility("default"))) inline const char* ganops_emu_launches() {
  static std::string taken;
  taken.swap(::emu::state().launches);
  ::emu::state().launches.clear();
  return taken.c_str();
}

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
inline void __syncwarp(unsigned mask = 0xffffffffu) { ::emu::syncwarp(mask); }
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
