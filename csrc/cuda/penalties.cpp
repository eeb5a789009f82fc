// torch bindings of the per-sample sum of squares kernels (penalties.h):
//   ganops::sum_squares_cuda(x, scale) -> [N]               scale * sum(x[n]^2), fp32 (fp64 for fp64 x)
//   ganops::sum_squares_backward_cuda(x, grad_out, scale)   2 * scale * grad_out[n] * x, x's dtype/layout
// Fake kernels and autograd are registered from Python (ganops/ops/_sum_squares_fast.py).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>


#include "binding_utils.h"
#include "penalties.h"

namespace {

using ganops::poison;

at::ScalarType acc_type(const at::Tensor& x) { return x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat; }

// Sample n must occupy [n * stride(0), n * stride(0) + numel / N) in memory, in any order.
at::Tensor batch_dense(const at::Tensor& x) {
  if (x.is_contiguous() || (x.dim() == 4 && x.is_contiguous(at::MemoryFormat::ChannelsLast))) return x;
  return x.contiguous();
}

void check_x(const at::Tensor& x, const char* op) {
  TORCH_CHECK(x.is_cuda(), op, ": x must be a CUDA tensor, got one on ", x.device());
  TORCH_CHECK(x.dim() >= 1, op, ": x must have a batch dimension, got a 0-d tensor");
  TORCH_CHECK(x.size(0) <= 65535, op, ": batch size must be at most 65535, got ", x.size(0));
}

at::Tensor sum_squares_cuda(const at::Tensor& x_in, double scale) {
  constexpr const char* op = "ganops::sum_squares_cuda";
  check_x(x_in, op);
  const auto dtype = ganops::kernel_dtype(x_in, op, "x", /*with_float64=*/true);
  c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = batch_dense(x_in);
  const int64_t n = x.size(0);
  const int64_t m = n > 0 ? x.numel() / n : 0;
  const auto options = x.options().dtype(acc_type(x));
  at::Tensor out = at::empty({n}, options);
  poison(out);
  at::Tensor partial = at::empty({n, ganops::penalties_num_chunks(m)}, options);
  const cudaError_t err = ganops::launch_sum_squares(x.data_ptr(), dtype, n, m, n > 1 ? x.stride(0) : m,
                                                     partial.data_ptr(), out.data_ptr(), scale,
                                                     c10::cuda::getCurrentCUDAStream());
  TORCH_CHECK(err == cudaSuccess, op, ": kernel launch failed: ", cudaGetErrorString(err));
  return out;
}

at::Tensor sum_squares_backward_cuda(const at::Tensor& x_in, const at::Tensor& grad_out_in, double scale) {
  constexpr const char* op = "ganops::sum_squares_backward_cuda";
  check_x(x_in, op);
  const auto dtype = ganops::kernel_dtype(x_in, op, "x", /*with_float64=*/true);
  TORCH_CHECK(grad_out_in.device() == x_in.device(), op, ": grad_out must be on ", x_in.device(), ", got ",
              grad_out_in.device());
  TORCH_CHECK(grad_out_in.dim() == 1 && grad_out_in.size(0) == x_in.size(0), op,
              ": grad_out must have shape [", x_in.size(0), "], got ", grad_out_in.sizes());
  c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = batch_dense(x_in);
  const at::Tensor grad_out = grad_out_in.to(acc_type(x)).contiguous();
  const int64_t n = x.size(0);
  const int64_t m = n > 0 ? x.numel() / n : 0;
  at::Tensor grad_x = at::empty_like(x);
  poison(grad_x);
  const cudaError_t err = ganops::launch_sum_squares_backward(
      x.data_ptr(), grad_out.data_ptr(), grad_x.data_ptr(), dtype, n, m, n > 1 ? x.stride(0) : m, scale,
      c10::cuda::getCurrentCUDAStream());
  TORCH_CHECK(err == cudaSuccess, op, ": kernel launch failed: ", cudaGetErrorString(err));
  return grad_x;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(ganops, m) {
  m.def("sum_squares_cuda(Tensor x, float scale) -> Tensor");
  m.def("sum_squares_backward_cuda(Tensor x, Tensor grad_out, float scale) -> Tensor");
}

TORCH_LIBRARY_IMPL(ganops, CUDA, m) {
  m.impl("sum_squares_cuda", &sum_squares_cuda);
  m.impl("sum_squares_backward_cuda", &sum_squares_backward_cuda);
}
