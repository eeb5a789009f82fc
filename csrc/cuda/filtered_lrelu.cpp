// torch binding of the fused filtered_lrelu kernel (filtered_lrelu.h):
//   ganops::filtered_lrelu_cuda(x, fu, fd, b?, si, up, down, px0, px1, py0, py1, sx, sy, gain, slope, clamp,
//                               write_signs) -> (y, so)
//       x fp16/bf16/fp32 [N, C, H, W] (any strides); fu, fd float32 correlation filters, [fh, fw] or 1-D
//       (separable); b None or [C] in x's dtype; si uint8 [N, C, SH, SWB] codes to read (empty: none);
//       clamp < 0: no clamp. y has x's dtype and memory format; so holds the codes of the intermediate
//       when write_signs (else it is empty). Same contract as ganops::filtered_lrelu_triton; autograd
//       is registered from Python (ganops/ops/_filtered_lrelu_fast.py).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <cstdlib>
#include <optional>
#include <tuple>

#include "binding_utils.h"
#include "filtered_lrelu.h"

namespace {

namespace flr = ganops::filtered_lrelu;
constexpr const char* kOp = "ganops::filtered_lrelu_cuda";
constexpr int64_t kIndexLimit = int64_t(1) << 30;

using ganops::poison;

void check_filter(const at::Tensor& f, const at::Tensor& x, const char* name) {
  TORCH_CHECK_VALUE(f.device() == x.device(), kOp, ": ", name, " must be on ", x.device(), ", got ", f.device());
  TORCH_CHECK_TYPE(f.scalar_type() == at::kFloat, kOp, ": ", name, " must be float32, got ", f.scalar_type());
  TORCH_CHECK_VALUE((f.dim() == 1 || f.dim() == 2) && f.numel() > 0, kOp, ": ", name,
                    " must be a non-empty 1-D [k] or 2-D [fh, fw] filter, got shape ", f.sizes());
}

at::MemoryFormat out_format(const at::Tensor& x) {
  if (x.is_contiguous() || !x.is_contiguous(at::MemoryFormat::ChannelsLast)) return at::MemoryFormat::Contiguous;
  return at::MemoryFormat::ChannelsLast;
}

std::tuple<at::Tensor, at::Tensor> filtered_lrelu_cuda(
    const at::Tensor& x, const at::Tensor& fu_in, const at::Tensor& fd_in, const std::optional<at::Tensor>& b_in,
    const at::Tensor& si, int64_t up, int64_t down, int64_t px0, int64_t px1, int64_t py0, int64_t py1, int64_t sx,
    int64_t sy, double gain, double slope, double clamp, bool write_signs) {
  TORCH_CHECK_VALUE(x.is_cuda(), kOp, ": x must be a CUDA tensor, got one on ", x.device());
  TORCH_CHECK_VALUE(x.dim() == 4, kOp, ": x must be 4-D [N, C, H, W], got shape ", x.sizes());
  c10::cuda::CUDAGuard guard(x.device());
  const flr::DType dtype = ganops::kernel_dtype(x, kOp, "x");
  check_filter(fu_in, x, "fu");
  check_filter(fd_in, x, "fd");
  TORCH_CHECK_VALUE(up >= 1 && down >= 1, kOp, ": up and down must be >= 1, got ", up, " and ", down);
  const bool read_signs = si.numel() > 0;
  TORCH_CHECK_VALUE(!(read_signs && write_signs), kOp, ": signs are either read (si given) or written, not both");
  const at::Tensor fu = fu_in.contiguous(), fd = fd_in.contiguous();
  at::Tensor b;
  if (b_in.has_value()) {
    b = b_in->contiguous();
    TORCH_CHECK_VALUE(b.dim() == 1 && b.size(0) == x.size(1) && b.device() == x.device(), kOp,
                      ": b must be [C] = [", x.size(1), "] on ", x.device(), ", got shape ", b.sizes());
    TORCH_CHECK_TYPE(b.scalar_type() == x.scalar_type(), kOp, ": b must have x's dtype ", x.scalar_type());
  }
  const int64_t fuh = fu.size(0), fuw = fu.size(-1), fdh = fd.size(0), fdw = fd.size(-1);
  const int64_t mh = x.size(2) * up + py0 + py1 - fuh + 1, mw = x.size(3) * up + px0 + px1 - fuw + 1;
  const int64_t oh = mh >= fdh ? (mh - fdh) / down + 1 : 0, ow = mw >= fdw ? (mw - fdw) / down + 1 : 0;
  TORCH_CHECK_VALUE(oh >= 1 && ow >= 1, kOp, ": padding (", px0, ", ", px1, ", ", py0, ", ", py1,
                    ") leaves an empty output (", oh, "x", ow, ")");
  TORCH_CHECK_VALUE(mh + std::abs(py0) + fuh < kIndexLimit && mw + std::abs(px0) + fuw < kIndexLimit &&
                        x.size(0) * x.size(1) < kIndexLimit,
                    kOp, ": sizes too large for 32-bit pixel indices");
  if (read_signs) {
    TORCH_CHECK_VALUE(si.scalar_type() == at::kByte && si.dim() == 4 && si.size(0) == x.size(0) &&
                          si.size(1) == x.size(1) && si.is_contiguous() && si.device() == x.device(),
                      kOp, ": si must be contiguous uint8 [N, C, SH, SWB] on x's device, got ", si.sizes());
  }

  at::Tensor y = at::empty({x.size(0), x.size(1), oh, ow}, x.options().memory_format(out_format(x)));
  poison(y);
  at::Tensor so = write_signs ? at::zeros({x.size(0), x.size(1), mh, (mw + 3) / 4}, x.options().dtype(at::kByte))
                              : at::empty({0}, x.options().dtype(at::kByte));

  flr::Params p{};
  p.x = x.data_ptr();
  p.y = y.data_ptr();
  p.b = b.defined() ? b.data_ptr() : nullptr;
  p.fu = fu.data_ptr<float>();
  p.fd = fd.data_ptr<float>();
  p.dtype = dtype;
  p.n = int(x.size(0)), p.c = int(x.size(1)), p.h = int(x.size(2)), p.w = int(x.size(3));
  p.oh = int(oh), p.ow = int(ow);
  for (int d = 0; d < 4; ++d) {
    p.sx[d] = x.stride(d);
    p.sy[d] = y.stride(d);
  }
  p.up = int(up), p.down = int(down), p.px0 = int(px0), p.py0 = int(py0);
  p.fuh = int(fuh), p.fuw = int(fuw), p.fdh = int(fdh), p.fdw = int(fdw);
  p.sep_u = fu.dim() == 1, p.sep_d = fd.dim() == 1;
  if (read_signs) {
    p.signs = flr::Signs::kRead;
    p.si = si.data_ptr<uint8_t>();
    p.sh = int(si.size(2)), p.swb = int(si.size(3)), p.sw = int(si.size(3)) * 4;
  } else if (write_signs) {
    p.signs = flr::Signs::kWrite;
    p.so = so.data_ptr<uint8_t>();
    p.sh = int(mh), p.sw = int(mw), p.swb = int(so.size(3));
  } else {
    p.signs = flr::Signs::kNone;
  }
  p.sgx = int(sx), p.sgy = int(sy);
  p.gain = float(gain), p.slope = float(slope), p.clamp = float(clamp);
  const cudaError_t err = flr::launch(p, c10::cuda::getCurrentCUDAStream());
  TORCH_CHECK(err != cudaErrorInvalidValue, kOp, ": filters of ", fuh, "x", fuw, " and ", fdh, "x", fdw,
              " taps with up=", up, ", down=", down, " do not fit the kernel's shared-memory tile; use impl='triton' "
              "or impl='ref'");
  TORCH_CHECK(err == cudaSuccess, kOp, ": kernel launch failed: ", cudaGetErrorString(err));
  return {y, so};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(ganops, m) {
  m.def("filtered_lrelu_cuda(Tensor x, Tensor fu, Tensor fd, Tensor? b, Tensor si, int up, int down, int px0, "
        "int px1, int py0, int py1, int sx, int sy, float gain, float slope, float clamp, bool write_signs) "
        "-> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(ganops, CUDA, m) { m.impl("filtered_lrelu_cuda", &filtered_lrelu_cuda); }
