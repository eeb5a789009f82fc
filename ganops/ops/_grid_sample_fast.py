"""grid_sample fast backends as torch.library custom ops with any-order autograd.

Per backend B in ('triton', 'cuda') two ops (the Triton ones defined here, the CUDA ones in
csrc/cuda/grid_sample.cpp), with k = (dx, dy) the derivative orders of the bilinear weights:
    ganops::grid_sample_gather_B(input, grid, dx, dy) -> [N, C, Ho, Wo]     (the forward for k = 0)
    ganops::grid_sample_scatter_B(grad, grid, height, width, dx, dy) -> [N, C, height, width] (its transpose)
Their autograd formulas are made of the same two ops (see ganops.ops.grid_sample), so every order
of gradient runs on the kernels.
"""
from typing import Optional

import torch

from . import _family

_MAX_GRID_AXIS = 65535


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


def _autograd(ops) -> None:
    """Any-order autograd of one backend's (gather, scatter) pair, written with the same two ops."""
    gather, scatter = ops["grid_sample_gather"], ops["grid_sample_scatter"]

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


def _triton_check(input: torch.Tensor) -> Optional[str]:
    from ..triton_kernels.grid_sample import MAX_BLOCK_C

    if input.dim() == 4 and input.shape[1] > _MAX_GRID_AXIS * MAX_BLOCK_C:
        return f"the Triton kernel handles at most {_MAX_GRID_AXIS * MAX_BLOCK_C} channels, got {input.shape[1]}"
    return None


_FAKES = {"grid_sample_gather": _gather_fake, "grid_sample_scatter": _scatter_fake}
KERNELS = _family.register("grid_sample", {"triton": _family.FastBackend(_FAKES, _autograd, _triton_check),
                                           "cuda": _family.FastBackend(_FAKES, _autograd)})


