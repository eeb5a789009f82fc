// torch bindings of the grid_sample gather / scatter kernels (grid_sample.h):
//   ganops::grid_sample_gather_cuda(input, grid, dx, dy) -> [N, C, Ho, Wo] contiguous, input's dtype
//   ganops::grid_sample_scatter_cuda(grad, grid, height, width, dx, dy) -> [N, C, height, width], grad's dtype
// Fake kernels and autograd are registered from Python (ganops/ops/_grid_sample_fast.py); arguments are
// validated in ganops/ops/grid_sample.py.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>


#include "binding_utils.h"
#include "grid_sample.h"

namespace {

void check_args(const at::Tensor& data, const at::Tensor& grid, int64_t dx, int64_t dy, const char* op) {
  TORCH_CHECK(data.is_cuda() && grid.device() == data.device(), op,
              ": data and grid must be CUDA tensors on one device, got ", data.device(), " and ", grid.device());
  TORCH_CHECK(data.dim() == 4, op, ": data must be 4-D, got ", data.sizes());
  TORCH_CHECK(grid.dim() == 4 && grid.size(3) == 2 && grid.size(0) == data.size(0), op,
              ": grid must be [N, Ho, Wo, 2] with N = ", data.size(0), ", got ", grid.sizes());
  TORCH_CHECK_TYPE(grid.scalar_type() == data.scalar_type(), op, ": grid dtype must be ", data.scalar_type(),
                   ", got ", grid.scalar_type());
  TORCH_CHECK((dx == 0 || dx == 1) && (dy == 0 || dy == 1), op, ": dx and dy must be 0 or 1, got ", dx, ", ", dy);
}

ganops::GridSampleShape make_shape(const at::Tensor& img, int64_t n, int64_t c, int64_t h, int64_t w,
                                   const at::Tensor& grid) {
  ganops::GridSampleShape s{n, c, h, w, grid.size(1), grid.size(2), {}, {}};
  for (int i = 0; i < 4; ++i) {
    s.img_stride[i] = img.stride(i);
    s.grid_stride[i] = grid.stride(i);
  }
  return s;
}

at::Tensor gather_cuda(const at::Tensor& input, const at::Tensor& grid, int64_t dx, int64_t dy) {
  constexpr const char* op = "ganops::grid_sample_gather_cuda";
  check_args(input, grid, dx, dy, op);
  const auto dtype = ganops::kernel_dtype(input, op, "input", /*with_float64=*/true);
  c10::cuda::CUDAGuard guard(input.device());
  const auto s = make_shape(input, input.size(0), input.size(1), input.size(2), input.size(3), grid);
  at::Tensor out = at::empty({s.n, s.c, s.ho, s.wo}, input.options());
  ganops::poison(out);
  const cudaError_t err = ganops::launch_grid_sample_gather(input.data_ptr(), grid.data_ptr(), out.data_ptr(), dtype,
                                                            s, static_cast<int>(dx), static_cast<int>(dy),
                                                            c10::cuda::getCurrentCUDAStream());
  TORCH_CHECK(err == cudaSuccess, op, ": kernel launch failed: ", cudaGetErrorString(err));
  return out;
}

at::Tensor scatter_cuda(const at::Tensor& grad, const at::Tensor& grid, int64_t height, int64_t width, int64_t dx,
                        int64_t dy) {
  constexpr const char* op = "ganops::grid_sample_scatter_cuda";
  check_args(grad, grid, dx, dy, op);
  TORCH_CHECK(grad.size(2) == grid.size(1) && grad.size(3) == grid.size(2), op, ": grad must be [N, C, ",
              grid.size(1), ", ", grid.size(2), "], got ", grad.sizes());
  TORCH_CHECK(height >= 1 && width >= 1, op, ": height and width must be >= 1, got ", height, ", ", width);
  const auto dtype = ganops::kernel_dtype(grad, op, "grad", /*with_float64=*/true);
  c10::cuda::CUDAGuard guard(grad.device());
  const auto s = make_shape(grad, grad.size(0), grad.size(1), height, width, grid);
  // The accumulator is zero-initialised by definition of a scatter-add (it is not a poisoned output).
  const auto acc_type = grad.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  at::Tensor acc = at::zeros({s.n, s.c, height, width}, grad.options().dtype(acc_type));
  const cudaError_t err = ganops::launch_grid_sample_scatter(grad.data_ptr(), grid.data_ptr(), acc.data_ptr(), dtype,
                                                             s, static_cast<int>(dx), static_cast<int>(dy),
                                                             c10::cuda::getCurrentCUDAStream());
  TORCH_CHECK(err == cudaSuccess, op, ": kernel launch failed: ", cudaGetErrorString(err));
  return acc.scalar_type() == grad.scalar_type() ? acc : acc.to(grad.scalar_type());
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(ganops, m) {
  m.def("grid_sample_gather_cuda(Tensor input, Tensor grid, int dx, int dy) -> Tensor");
  m.def("grid_sample_scatter_cuda(Tensor grad, Tensor grid, int height, int width, int dx, int dy) -> Tensor");
}

TORCH_LIBRARY_IMPL(ganops, CUDA, m) {
  m.impl("grid_sample_gather_cuda", &gather_cuda);
  m.impl("grid_sample_scatter_cuda", &scatter_cuda);
}
