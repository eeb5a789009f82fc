// torch bindings of the upfirdn2d kernels (upfirdn2d.h):
//   ganops::upfirdn2d_cuda(x, f, upx, upy, downx, downy, px0, px1, py0, py1, flip_filter, gain) -> y
//       x fp16/bf16/fp32 [N, C, H, W] (any strides), f float32 [fh, fw] or separable [k];
//       y has x's dtype and memory format (channels_last stays channels_last).
//   ganops::upfirdn2d_cuda_kernels(same arguments) -> str    the kernel(s) that call would launch.
// Separable filters whose fused 2-D pass would visit > 16 taps run as an x pass then a y pass through an
// intermediate of x's dtype. Autograd is registered from Python (ganops/ops/_upfirdn2d_fast.py).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "binding_utils.h"
#include "upfirdn2d.h"

namespace {

namespace ufd = ganops::upfirdn2d;
constexpr const char* kOp = "ganops::upfirdn2d_cuda";
constexpr int64_t kMaxFusedTaps = 16;
constexpr int64_t kIndexLimit = int64_t(1) << 30;

using ganops::poison;

int64_t out_len(int64_t in, int64_t up, int64_t down, int64_t pad0, int64_t pad1, int64_t taps) {
  const int64_t num = in * up + pad0 + pad1 - taps + down;
  return num >= 0 ? num / down : -1;
}

struct Call {
  int64_t upx, upy, downx, downy, px0, px1, py0, py1;
  bool flip;
  double gain;
};

void check(const at::Tensor& x, const at::Tensor& f, const Call& a) {
  TORCH_CHECK_VALUE(x.is_cuda(), kOp, ": x must be a CUDA tensor, got one on ", x.device());
  TORCH_CHECK_VALUE(x.dim() == 4, kOp, ": x must be 4-D [N, C, H, W], got shape ", x.sizes());
  ganops::kernel_dtype(x, kOp, "x");
  TORCH_CHECK_VALUE(f.device() == x.device(), kOp, ": f must be on ", x.device(), ", got ", f.device());
  TORCH_CHECK_TYPE(f.scalar_type() == at::kFloat, kOp, ": f must be float32, got ", f.scalar_type());
  TORCH_CHECK_VALUE((f.dim() == 1 || f.dim() == 2) && f.numel() > 0, kOp,
                    ": f must be a non-empty 1-D [k] or 2-D [fh, fw] filter, got shape ", f.sizes());
  TORCH_CHECK_VALUE(a.upx >= 1 && a.upy >= 1, kOp, ": up must be >= 1, got (", a.upx, ", ", a.upy, ")");
  TORCH_CHECK_VALUE(a.downx >= 1 && a.downy >= 1, kOp, ": down must be >= 1, got (", a.downx, ", ", a.downy, ")");
  const int64_t fw = f.size(-1), fh = f.size(0);
  const int64_t oh = out_len(x.size(2), a.upy, a.downy, a.py0, a.py1, fh);
  const int64_t ow = out_len(x.size(3), a.upx, a.downx, a.px0, a.px1, fw);
  TORCH_CHECK_VALUE(oh >= 1 && ow >= 1, kOp, ": padding (", a.px0, ", ", a.px1, ", ", a.py0, ", ", a.py1,
                    ") leaves an empty output (", oh, "x", ow, ")");
  const int64_t extent_y = x.size(2) * a.upy + std::abs(a.py0) + std::abs(a.py1) + fh + oh * a.downy;
  const int64_t extent_x = x.size(3) * a.upx + std::abs(a.px0) + std::abs(a.px1) + fw + ow * a.downx;
  TORCH_CHECK_VALUE(extent_y < kIndexLimit && extent_x < kIndexLimit && x.size(0) * x.size(1) < kIndexLimit,
                    kOp, ": sizes too large for 32-bit pixel indices");
}

at::MemoryFormat out_format(const at::Tensor& x) {
  if (x.is_contiguous() || !x.is_contiguous(at::MemoryFormat::ChannelsLast)) return at::MemoryFormat::Contiguous;
  return at::MemoryFormat::ChannelsLast;
}

at::Tensor empty_out(const at::Tensor& x, int64_t oh, int64_t ow) {
  at::Tensor y = at::empty({x.size(0), x.size(1), oh, ow}, x.options().memory_format(out_format(x)));
  poison(y);
  return y;
}

ufd::Pass make_pass(const at::Tensor& x, const at::Tensor& y, const at::Tensor& f, int upx, int upy, int downx,
                    int downy, int px0, int py0, int fh, int fw, bool separable, const Call& a, double gain) {
  ufd::Pass p{};
  p.x = x.data_ptr();
  p.y = y.data_ptr();
  p.f = f.data_ptr<float>();
  p.dtype = ganops::kernel_dtype(x, kOp, "x");
  p.n = (int)x.size(0), p.c = (int)x.size(1), p.h = (int)x.size(2), p.w = (int)x.size(3);
  p.oh = (int)y.size(2), p.ow = (int)y.size(3);
  for (int d = 0; d < 4; ++d) {
    p.sx[d] = x.stride(d);
    p.sy[d] = y.stride(d);
  }
  p.upx = upx, p.upy = upy, p.downx = downx, p.downy = downy;
  p.px0 = px0, p.py0 = py0, p.fh = fh, p.fw = fw;
  p.separable = separable;
  p.flip = a.flip;
  p.gain = (float)gain;
  return p;
}

bool two_passes(const at::Tensor& f, const Call& a) {
  if (f.dim() != 1) return false;
  const int64_t k = f.size(0);
  return ((k + a.upx - 1) / a.upx) * ((k + a.upy - 1) / a.upy) > kMaxFusedTaps;
}

// The output, the passes that fill it and the intermediate of a two-pass plan (kept alive until launched).
struct Planned {
  at::Tensor y;
  at::Tensor f;
  std::vector<ufd::Pass> passes;
  std::vector<at::Tensor> keep;
};

Planned prepare(const at::Tensor& x, const at::Tensor& f_in, const Call& a) {
  check(x, f_in, a);
  Planned out;
  out.f = f_in.contiguous();
  const int64_t fw = out.f.size(-1), fh = out.f.size(0);
  out.y = empty_out(x, out_len(x.size(2), a.upy, a.downy, a.py0, a.py1, fh),
                    out_len(x.size(3), a.upx, a.downx, a.px0, a.px1, fw));
  if (two_passes(out.f, a)) {
    const int k = (int)fh;
    at::Tensor mid = empty_out(x, x.size(2), out.y.size(3));
    out.keep.push_back(mid);
    out.passes = {make_pass(x, mid, out.f, (int)a.upx, 1, (int)a.downx, 1, (int)a.px0, 0, 1, k, false, a, 1.0),
                  make_pass(mid, out.y, out.f, 1, (int)a.upy, 1, (int)a.downy, 0, (int)a.py0, k, 1, false, a,
                            a.gain)};
  } else {
    out.passes = {make_pass(x, out.y, out.f, (int)a.upx, (int)a.upy, (int)a.downx, (int)a.downy, (int)a.px0,
                            (int)a.py0, (int)fh, (int)fw, out.f.dim() == 1, a, a.gain)};
  }
  return out;
}

at::Tensor upfirdn2d_cuda(const at::Tensor& x, const at::Tensor& f, int64_t upx, int64_t upy, int64_t downx,
                          int64_t downy, int64_t px0, int64_t px1, int64_t py0, int64_t py1, bool flip_filter,
                          double gain) {
  c10::cuda::CUDAGuard guard(x.device());
  const Planned planned = prepare(x, f, Call{upx, upy, downx, downy, px0, px1, py0, py1, flip_filter, gain});
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  for (const ufd::Pass& p : planned.passes) {
    const cudaError_t err = ufd::launch(p, stream);
    TORCH_CHECK(err == cudaSuccess, kOp, ": kernel launch failed: ", cudaGetErrorString(err));
  }
  return planned.y;
}

std::string upfirdn2d_cuda_kernels(const at::Tensor& x, const at::Tensor& f, int64_t upx, int64_t upy,
                                   int64_t downx, int64_t downy, int64_t px0, int64_t px1, int64_t py0,
                                   int64_t py1, bool flip_filter, double gain) {
  c10::cuda::CUDAGuard guard(x.device());
  const Planned planned = prepare(x, f, Call{upx, upy, downx, downy, px0, px1, py0, py1, flip_filter, gain});
  std::string names;
  for (const ufd::Pass& p : planned.passes) names += (names.empty() ? "" : "+") + std::string(ufd::kernel_name(p));
  return names;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(ganops, m) {
  m.def("upfirdn2d_cuda(Tensor x, Tensor f, int upx, int upy, int downx, int downy, int px0, int px1, int py0, "
        "int py1, bool flip_filter, float gain) -> Tensor");
  m.def("upfirdn2d_cuda_kernels(Tensor x, Tensor f, int upx, int upy, int downx, int downy, int px0, int px1, "
        "int py0, int py1, bool flip_filter, float gain) -> str");
}

TORCH_LIBRARY_IMPL(ganops, CUDA, m) {
  m.impl("upfirdn2d_cuda", &upfirdn2d_cuda);
  m.impl("upfirdn2d_cuda_kernels", &upfirdn2d_cuda_kernels);
}
