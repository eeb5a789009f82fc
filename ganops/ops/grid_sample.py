"""ganops.grid_sample: bilinear sampling (zeros padding, align_corners=False), differentiable to any order.

Same values as ``torch.nn.functional.grid_sample(input, grid, 'bilinear', 'zeros', align_corners=False)``,
but its backward is itself differentiable (w.r.t. the incoming gradient, the input and the grid),
so ADA's geometric augmentation can sit inside an R1 / path-length pass.

Fast paths (CUDA, Triton): two custom ops per backend, ``gather`` (the forward, and derivatives of
the bilinear weights) and ``scatter`` (its transpose). Their autograd formulas are made of the same
two ops, so first, second and higher orders all run on the kernels:
  d gather_k(x, g) / dx      = scatter_k(.)            d gather_k / d grid = sum_c(. * gather_{k+1}(x))
  d scatter_k(y, g) / dy     = gather_k(.)             d scatter_k / d grid = sum_c(y * gather_{k+1}(.))
where k = (DX, DY) are derivative orders of the bilinear weights w.r.t. the pixel coordinates.
"""
from typing import Optional

import torch

from .. import _extension, _registry
from ..ref import grid_sample as _ref

_FAMILY = "grid_sample"
_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)

_MAX_GRID_AXIS = 65535


def _triton_check(input: torch.Tensor) -> Optional[str]:
    from ..triton_kernels.grid_sample import MAX_BLOCK_C

    if input.dim() == 4 and input.shape[1] > _MAX_GRID_AXIS * MAX_BLOCK_C:
        return f"the Triton kernel handles at most {_MAX_GRID_AXIS * MAX_BLOCK_C} channels, got {input.shape[1]}"
    return None


_registry.register(_FAMILY, "ref")
_registry.register(_FAMILY, "triton", check=_triton_check)
_registry.register(_FAMILY, "cuda")


def _validate(input, grid) -> None:
    for name, t in (("input", input), ("grid", grid)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"grid_sample: {name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dtype not in _FLOAT_DTYPES:
            raise TypeError(f"grid_sample: {name} must be float16, bfloat16, float32 or float64, got {t.dtype}")
    if input.dim() != 4:
        raise ValueError(f"grid_sample: input must be 4-D [N, C, H, W], got shape {tuple(input.shape)}")
    if grid.dim() != 4 or grid.shape[3] != 2:
        raise ValueError(f"grid_sample: grid must be 4-D [N, Ho, Wo, 2], got shape {tuple(grid.shape)}")
    if grid.shape[0] != input.shape[0]:
        raise ValueError(f"grid_sample: grid batch {grid.shape[0]} must equal input batch {input.shape[0]}")
    if grid.device != input.device:
        raise ValueError(f"grid_sample: grid must be on the input's device {input.device}, got {grid.device}")
    if input.shape[2] == 0 or input.shape[3] == 0:
        raise ValueError(f"grid_sample: input must have H, W >= 1, got shape {tuple(input.shape)}")
    if grid.dtype != input.dtype:
        raise TypeError(f"grid_sample: grid dtype must equal the input dtype {input.dtype}, got {grid.dtype}")


# --- Triton custom ops ----------------------------------------------------------------------------

@torch.library.custom_op("ganops::grid_sample_gather_triton", mutates_args=())
def _gather_triton(input: torch.Tensor, grid: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    from ..triton_kernels import grid_sample as kernels

    return kernels.gather(input, grid, dx, dy)


@torch.library.custom_op("ganops::grid_sample_scatter_triton", mutates_args=())
def _scatter_triton(grad: torch.Tensor, grid: torch.Tensor, height: int, width: int, dx: int, dy: int) -> torch.Tensor:
    from ..triton_kernels import grid_sample as kernels

    return kernels.scatter(grad, grid, height, width, dx, dy)


def _gather_fake(input, grid, dx, dy):
    return input.new_empty((input.shape[0], input.shape[1], grid.shape[1], grid.shape[2]))


def _scatter_fake(grad, grid, height, width, dx, dy):
    return grad.new_empty((grad.shape[0], grad.shape[1], height, width))


_OPS = {"triton": (_gather_triton, _scatter_triton)}

# --- CUDA custom ops (schemas defined in csrc/cuda/grid_sample.cpp) ---------------------------------

if _extension.status().cuda_usable and hasattr(torch.ops.ganops, "grid_sample_gather_cuda"):
    _OPS["cuda"] = (torch.ops.ganops.grid_sample_gather_cuda.default,
                    torch.ops.ganops.grid_sample_scatter_cuda.default)

for _gather, _scatter in _OPS.values():
    torch.library.register_fake(_gather, _gather_fake)
    torch.library.register_fake(_scatter, _scatter_fake)


# --- autograd (the same formulas for both fast backends) --------------------------------------------

def _grid_grad(gather, grad: torch.Tensor, values: torch.Tensor, grid: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """d <grad, gather_{dx,dy}(values, grid)> / d grid, shape of grid (zero where the order would exceed 1)."""
    height, width = values.shape[2], values.shape[3]
    parts = []
    for axis, size, order in ((0, width, (dx + 1, dy)), (1, height, (dx, dy + 1))):
        if order[axis] > 1:  # bilinear weights are linear in each coordinate
            parts.append(grid.new_zeros(grid.shape[:3]))
        else:
            parts.append((grad * gather(values, grid, *order)).sum(1) * (size * 0.5))
    return torch.stack(parts, dim=3).to(grid.dtype)


def _save(ctx, inputs, output):
    ctx.save_for_backward(inputs[0], inputs[1])
    ctx.args = inputs[2:]


def _register_autograd(gather, scatter) -> None:
    def gather_backward(ctx, grad_out):
        input, grid = ctx.saved_tensors
        dx, dy = ctx.args
        grad_input = grad_grid = None
        if ctx.needs_input_grad[0]:
            grad_input = scatter(grad_out, grid, input.shape[2], input.shape[3], dx, dy)
        if ctx.needs_input_grad[1]:
            grad_grid = _grid_grad(gather, grad_out, input, grid, dx, dy)
        return grad_input, grad_grid, None, None

    def scatter_backward(ctx, grad_out):
        grad, grid = ctx.saved_tensors
        dx, dy = ctx.args[2:]
        grad_grad = grad_grid = None
        if ctx.needs_input_grad[0]:
            grad_grad = gather(grad_out, grid, dx, dy)
        if ctx.needs_input_grad[1]:
            # <G, scatter(y)> = <gather(G), y>: the grid derivative of the forward with values G.
            grad_grid = _grid_grad(gather, grad, grad_out, grid, dx, dy)
        return grad_grad, grad_grid, None, None, None, None

    torch.library.register_autograd(gather, gather_backward, setup_context=_save)
    torch.library.register_autograd(scatter, scatter_backward, setup_context=_save)


for _gather, _scatter in _OPS.values():
    _register_autograd(_gather, _scatter)


# --- public op -------------------------------------------------------------------------------------

def grid_sample(input: torch.Tensor, grid: torch.Tensor, impl: Optional[str] = None) -> torch.Tensor:
    """Bilinear grid sampling, zeros padding, align_corners=False; differentiable to any order.

    input [N, C, H, W] and grid [N, Ho, Wo, 2] (x, y in [-1, 1]) of the same float dtype and device
    -> [N, C, Ho, Wo]. ``impl``: None | 'cuda' | 'triton' | 'ref' (see ganops._registry).
    """
    _validate(input, grid)
    backend = _registry.choose(_FAMILY, impl, input)
    if backend == "ref":
        return _ref.grid_sample(input, grid)
    return _OPS[backend][0](input, grid, 0, 0)
