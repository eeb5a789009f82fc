// torch bindings of the modulated-convolution prologue / epilogue kernels (modulated_conv2d.h):
//   ganops::modconv_scale_cuda(x, s) -> x * s[n, c]
//   ganops::modconv_epilogue_cuda(c, d, noise?, bias?, act, alpha, gain, clamp)
//       -> clamp(act(c * d[n, c] + noise + bias[c]) * gain)
// Autograd and fake kernels are registered from Python (ganops/ops/_modulated_conv2d_fast.py). Inputs are
// used in their layout when it is dense NCHW or channels_last (else copied to NCHW); the output
// has the same layout.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <optional>

#include "binding_utils.h"
#include "modulated_conv2d.h"

namespace {

namespace mc = ganops::modconv;

using ganops::kernel_dtype;
using ganops::poison;

// x as a dense NCHW or channels_last tensor (a copy only when it is neither) and its layout.
at::Tensor dense4d(const at::Tensor& x, bool* channels_last) {
  if (x.is_contiguous()) {
    *channels_last = false;
    return x;
  }
  if (x.is_contiguous(at::MemoryFormat::ChannelsLast)) {
    *channels_last = true;
    return x;
  }
  *channels_last = false;
  return x.contiguous();
}

void check_4d(const at::Tensor& x, const char* op, const char* name) {
  TORCH_CHECK_VALUE(x.is_cuda(), op, ": ", name, " must be a CUDA tensor, got one on ", x.device());
  TORCH_CHECK_VALUE(x.dim() == 4, op, ": ", name, " must be 4-D [N, C, H, W], got shape ", x.sizes());
}

void check_scale(const at::Tensor& s, const at::Tensor& x, const char* op, const char* name) {
  TORCH_CHECK_VALUE(s.device() == x.device(), op, ": ", name, " must be on ", x.device(), ", got ", s.device());
  TORCH_CHECK_TYPE(s.scalar_type() == at::kFloat, op, ": ", name, " must be float32, got ", s.scalar_type());
  TORCH_CHECK_VALUE(s.dim() == 2 && s.size(0) == x.size(0) && s.size(1) == x.size(1), op, ": ", name,
                    " must have shape [N, C] = [", x.size(0), ", ", x.size(1), "], got ", s.sizes());
}

void check_launch(cudaError_t err, const char* op) {
  TORCH_CHECK(err == cudaSuccess, op, ": kernel launch failed: ", cudaGetErrorString(err));
}

at::Tensor scale_cuda(const at::Tensor& x_in, const at::Tensor& s_in) {
  constexpr const char* op = "ganops::modconv_scale_cuda";
  check_4d(x_in, op, "x");
  check_scale(s_in, x_in, op, "s");
  const mc::DType dtype = kernel_dtype(x_in, op, "x");
  c10::cuda::CUDAGuard guard(x_in.device());
  bool channels_last = false;
  const at::Tensor x = dense4d(x_in, &channels_last);
  const at::Tensor s = s_in.contiguous();
  at::Tensor y = at::empty_like(x);
  poison(y);
  const mc::Shape shape{x.size(0), x.size(1), x.size(2), x.size(3), channels_last};
  check_launch(mc::launch_scale(x.data_ptr(), s.data_ptr<float>(), y.data_ptr(), dtype, shape,
                                c10::cuda::getCurrentCUDAStream()),
               op);
  return y;
}

at::Tensor epilogue_cuda(const at::Tensor& c_in, const at::Tensor& d_in, const std::optional<at::Tensor>& noise,
                         const std::optional<at::Tensor>& bias_in, int64_t act, double alpha, double gain,
                         double clamp) {
  constexpr const char* op = "ganops::modconv_epilogue_cuda";
  check_4d(c_in, op, "c");
  check_scale(d_in, c_in, op, "d");
  const mc::DType dtype = kernel_dtype(c_in, op, "c");
  TORCH_CHECK_VALUE(act == mc::kLinear || act == mc::kLeakyRelu, op, ": act must be 0 (linear) or 1 (leaky relu), got ",
                    act);
  c10::cuda::CUDAGuard guard(c_in.device());
  bool channels_last = false;
  const at::Tensor c = dense4d(c_in, &channels_last);
  const at::Tensor d = d_in.contiguous();
  mc::EpilogueParams p{};
  p.c = c.data_ptr();
  p.d = d.data_ptr<float>();
  at::Tensor noise_view;
  if (noise.has_value()) {
    TORCH_CHECK_VALUE(noise->device() == c.device(), op, ": noise must be on ", c.device(), ", got ", noise->device());
    TORCH_CHECK_TYPE(noise->scalar_type() == c.scalar_type(), op, ": noise must have dtype ", c.scalar_type(),
                     ", got ", noise->scalar_type());
    noise_view = noise->expand({c.size(0), 1, c.size(2), c.size(3)});
    p.noise = noise_view.data_ptr();
    p.noise_sn = noise_view.stride(0);
    p.noise_sh = noise_view.stride(2);
    p.noise_sw = noise_view.stride(3);
  }
  at::Tensor bias;
  if (bias_in.has_value()) {
    TORCH_CHECK_TYPE(bias_in->scalar_type() == c.scalar_type(), op, ": bias must have dtype ", c.scalar_type(),
                     ", got ", bias_in->scalar_type());
    TORCH_CHECK_VALUE(bias_in->device() == c.device() && bias_in->dim() == 1 && bias_in->size(0) == c.size(1), op,
                      ": bias must be 1-D with ", c.size(1), " elements on ", c.device());
    bias = bias_in->contiguous();
    p.bias = bias.data_ptr();
  }
  at::Tensor y = at::empty_like(c);
  poison(y);
  p.y = y.data_ptr();
  p.act = static_cast<int>(act);
  p.alpha = static_cast<float>(alpha);
  p.gain = static_cast<float>(gain);
  p.clamp = static_cast<float>(clamp);
  const mc::Shape shape{c.size(0), c.size(1), c.size(2), c.size(3), channels_last};
  check_launch(mc::launch_epilogue(p, dtype, shape, c10::cuda::getCurrentCUDAStream()), op);
  return y;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(ganops, m) {
  m.def("modconv_scale_cuda(Tensor x, Tensor s) -> Tensor");
  m.def(
      "modconv_epilogue_cuda(Tensor c, Tensor d, Tensor? noise, Tensor? bias, int act, float alpha, float gain, "
      "float clamp) -> Tensor");
}

TORCH_LIBRARY_IMPL(ganops, CUDA, m) {
  m.impl("modconv_scale_cuda", &scale_cuda);
  m.impl("modconv_epilogue_cuda", &epilogue_cuda);
}
