// torch bindings of the bias_act kernels (bias_act.h):
//   ganops::bias_act_cuda(x, b?, dim, act, alpha, gain, clamp) -> y
//   ganops::bias_act_grad_cuda(g, h?, s, b?, dim, act, alpha, gain, clamp, s_is_y, reduce_db) -> (out, db)
// Same contract as the Triton ops in ganops/ops/_bias_act_fast.py (which also registers the fake
// kernels and autograd for these). Dense inputs (contiguous, channels_last, any permutation) are used
// in place and outputs get their strides; other inputs are copied to empty_like's layout first.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <cmath>
#include <optional>
#include <tuple>

#include "bias_act.h"
#include "binding_utils.h"

namespace {

namespace ba = ganops::bias_act;
// The column kernel puts 256 channels (scalar path) on each of at most 65535 grid rows.
constexpr int64_t kMaxChannels = int64_t(65535) * 256;

using ganops::kernel_dtype;
using ganops::poison;

// t itself when dense, else a copy with the strides empty_like gives (what the fake kernel predicts).
at::Tensor dense(const at::Tensor& t) { return t.is_non_overlapping_and_dense() ? t : at::empty_like(t).copy_(t); }

// t with the strides of the dense tensor like (a copy when they differ, e.g. an expanded gradient).
at::Tensor like(const at::Tensor& t, const at::Tensor& ref) {
  return t.strides() == ref.strides() ? t : at::empty_like(ref, t.options()).copy_(t);
}

void check_same(const at::Tensor& t, const at::Tensor& s, const char* op, const char* name) {
  TORCH_CHECK_VALUE(t.device() == s.device(), op, ": ", name, " must be on ", s.device(), ", got ", t.device());
  TORCH_CHECK_TYPE(t.scalar_type() == s.scalar_type(), op, ": ", name, " must have dtype ", s.scalar_type(),
                   ", got ", t.scalar_type());
}

int64_t check_common(const at::Tensor& s, const std::optional<at::Tensor>& b, int64_t dim, int64_t act,
                     double clamp, const char* op, const char* name) {
  TORCH_CHECK_VALUE(s.is_cuda(), op, ": ", name, " must be a CUDA tensor, got one on ", s.device());
  kernel_dtype(s, op, name);
  TORCH_CHECK_VALUE(s.dim() >= 1, op, ": ", name, " must have at least one dimension");
  TORCH_CHECK_VALUE(dim >= -s.dim() && dim < s.dim(), op, ": dim must be in [", -s.dim(), ", ", s.dim() - 1,
                    "], got ", dim);
  dim = dim < 0 ? dim + s.dim() : dim;
  TORCH_CHECK_VALUE(act >= 0 && act < ba::kNumActs, op, ": act must be an activation code in [0, ",
                    int(ba::kNumActs) - 1, "], got ", act);
  TORCH_CHECK_VALUE(!std::isnan(clamp), op, ": clamp must not be NaN (negative means no clamp)");
  TORCH_CHECK_VALUE(s.size(dim) <= kMaxChannels, op, ": at most ", kMaxChannels, " channels, got ", s.size(dim));
  if (b.has_value()) {
    check_same(*b, s, op, "b");
    TORCH_CHECK_VALUE(b->dim() == 1 && b->size(0) == s.size(dim), op, ": b must be 1-D with ", s.size(dim),
                      " elements, got shape ", b->sizes());
  }
  return dim;
}

ba::Params make_params(const at::Tensor& out, const at::Tensor& s, const std::optional<at::Tensor>& b,
                       int64_t dim, bool per_channel, int64_t act, double alpha, double gain, double clamp) {
  ba::Params p{};
  p.out = out.data_ptr();
  p.s = s.data_ptr();
  p.b = b.has_value() ? b->data_ptr() : nullptr;
  p.dtype = kernel_dtype(s, "bias_act", "s");
  const int64_t n = s.numel(), c = s.size(dim);
  if (!per_channel || c == 1) {
    p.rows = 1, p.cols = n, p.channels = 1, p.channel_per_row = true;
  } else if (s.stride(dim) == 1) {
    p.rows = n / c, p.cols = c, p.channels = c, p.channel_per_row = false;
  } else {
    p.rows = n / s.stride(dim), p.cols = s.stride(dim), p.channels = c, p.channel_per_row = true;
  }
  p.act = int(act);
  p.alpha = float(alpha), p.gain = float(gain), p.clamp = float(clamp);
  return p;
}

void run(const ba::Params& p, const char* op) {
  const cudaError_t err = ba::launch(p, at::cuda::getCurrentCUDAStream());
  TORCH_CHECK(err == cudaSuccess, op, ": kernel launch failed: ", cudaGetErrorString(err));
}

at::Tensor bias_act_cuda(const at::Tensor& x_in, const std::optional<at::Tensor>& b, int64_t dim, int64_t act,
                         double alpha, double gain, double clamp) {
  constexpr const char* kOp = "ganops::bias_act_cuda";
  dim = check_common(x_in, b, dim, act, clamp, kOp, "x");
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = dense(x_in);
  at::Tensor y = at::empty_like(x);
  poison(y);
  if (x.numel() == 0) return y;
  ba::Params p = make_params(y, x, b, dim, b.has_value(), act, alpha, gain, clamp);
  p.mode = 0;
  run(p, kOp);
  return y;
}

std::tuple<at::Tensor, at::Tensor> bias_act_grad_cuda(const at::Tensor& g_in, const std::optional<at::Tensor>& h_in,
                                                      const at::Tensor& s_in, const std::optional<at::Tensor>& b,
                                                      int64_t dim, int64_t act, double alpha, double gain,
                                                      double clamp, bool s_is_y, bool reduce_db) {
  constexpr const char* kOp = "ganops::bias_act_grad_cuda";
  dim = check_common(s_in, b, dim, act, clamp, kOp, "s");
  check_same(g_in, s_in, kOp, "g");
  TORCH_CHECK_VALUE(g_in.sizes() == s_in.sizes(), kOp, ": g must have shape ", s_in.sizes(), ", got ", g_in.sizes());
  if (h_in.has_value()) {
    check_same(*h_in, s_in, kOp, "h");
    TORCH_CHECK_VALUE(h_in->sizes() == s_in.sizes(), kOp, ": h must have shape ", s_in.sizes(), ", got ",
                      h_in->sizes());
  }
  TORCH_CHECK_VALUE(!s_is_y || (act != ba::kSwish && gain > 0), kOp,
                    ": s_is_y needs an activation other than swish and gain > 0");
  const c10::cuda::CUDAGuard guard(s_in.device());
  const at::Tensor s = dense(s_in);
  const at::Tensor g = like(g_in, s);
  const std::optional<at::Tensor> h = h_in.has_value() ? std::optional<at::Tensor>(like(*h_in, s)) : std::nullopt;
  at::Tensor out = at::empty_like(s);
  poison(out);
  at::Tensor db32 = reduce_db ? at::zeros({s.size(dim)}, s.options().dtype(at::kFloat)) : at::Tensor();
  if (s.numel() > 0) {
    ba::Params p = make_params(out, s, b, dim, b.has_value() || reduce_db, act, alpha, gain, clamp);
    p.g = g.data_ptr();
    p.h = h.has_value() ? h->data_ptr() : nullptr;
    p.db = reduce_db ? db32.data_ptr<float>() : nullptr;
    p.mode = h.has_value() ? 2 : 1;
    p.s_is_y = s_is_y;
    run(p, kOp);
  }
  at::Tensor db = reduce_db ? db32.to(s.scalar_type()) : at::empty({0}, s.options());
  return {out, db};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(ganops, m) {
  m.def("bias_act_cuda(Tensor x, Tensor? b, int dim, int act, float alpha, float gain, float clamp) -> Tensor");
  m.def("bias_act_grad_cuda(Tensor g, Tensor? h, Tensor s, Tensor? b, int dim, int act, float alpha, float gain, "
        "float clamp, bool s_is_y, bool reduce_db) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(ganops, CUDA, m) {
  m.impl("bias_act_cuda", &bias_act_cuda);
  m.impl("bias_act_grad_cuda", &bias_act_grad_cuda);
}
