"""ganops.sum_squares: the per-sample sum of squares behind every gradient penalty, on three backends.

sum_squares(x, scale)[n] = scale * sum over all non-batch elements of x[n]^2, one fused pass over x;
its backward 2 * scale * grad[n] * x is a second fused pass (a custom op whose own backward is
differentiable, so penalties can be differentiated again). Output is float32 (float64 for float64 x).

Backends: 'cuda' (csrc/cuda/penalties.*), 'triton' (ganops/triton_kernels/penalties.py), 'ref'.
Contiguous and channels_last inputs are read in place; other layouts are made contiguous first.
"""
from typing import Optional

import torch

from .. import _extension, _registry
from ..ref import penalties as _ref

_FAMILY = "sum_squares"
_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_MAX_BATCH = 65535  # the batch is the second launch-grid axis of both fast backends


def _batch_check(x: torch.Tensor) -> Optional[str]:
    if x.dim() >= 1 and x.shape[0] > _MAX_BATCH:
        return f"the kernels handle a batch of at most {_MAX_BATCH}, got {x.shape[0]}"
    return None


_registry.register(_FAMILY, "ref")
_registry.register(_FAMILY, "triton", check=_batch_check)
_registry.register(_FAMILY, "cuda", check=_batch_check)


def batch_dense(x: torch.Tensor) -> torch.Tensor:
    """x itself when each sample is one dense block of memory (contiguous, channels_last), else a copy."""
    if x.is_contiguous() or (x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)):
        return x
    return x.contiguous()


def _acc(x: torch.Tensor) -> torch.dtype:
    return _ref.accumulate_dtype(x.dtype)


# --- Triton custom ops ----------------------------------------------------------------------------

@torch.library.custom_op("ganops::sum_squares_triton", mutates_args=())
def _sumsq_triton(x: torch.Tensor, scale: float) -> torch.Tensor:
    from ..triton_kernels import penalties as kernels

    return kernels.sum_squares(batch_dense(x), scale)


@_sumsq_triton.register_fake
def _(x, scale):
    return x.new_empty((x.shape[0],), dtype=_acc(x))


@torch.library.custom_op("ganops::sum_squares_backward_triton", mutates_args=())
def _sumsq_backward_triton(x: torch.Tensor, grad_out: torch.Tensor, scale: float) -> torch.Tensor:
    from ..triton_kernels import penalties as kernels

    return kernels.sum_squares_backward(batch_dense(x), grad_out.to(_acc(x)), scale)


@_sumsq_backward_triton.register_fake
def _(x, grad_out, scale):
    return torch.empty_like(batch_dense(x))


_OPS = {"triton": (_sumsq_triton, _sumsq_backward_triton)}

# --- CUDA custom ops (schemas defined in csrc/cuda/penalties.cpp) -----------------------------------

if _extension.status().cuda_usable and hasattr(torch.ops.ganops, "sum_squares_cuda"):
    _OPS["cuda"] = (torch.ops.ganops.sum_squares_cuda.default, torch.ops.ganops.sum_squares_backward_cuda.default)

    @torch.library.register_fake("ganops::sum_squares_cuda")
    def _(x, scale):
        return x.new_empty((x.shape[0],), dtype=_acc(x))

    @torch.library.register_fake("ganops::sum_squares_backward_cuda")
    def _(x, grad_out, scale):
        return torch.empty_like(batch_dense(x))


# --- autograd (the same for both fast backends) ---------------------------------------------------

def _autograd(backend: str):
    forward_op, backward_op = _OPS[backend]

    def save(ctx, inputs, output):
        ctx.save_for_backward(*[t for t in inputs if isinstance(t, torch.Tensor)])
        ctx.scale = inputs[-1]

    def forward_backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return backward_op(x, grad, ctx.scale), None

    def backward_backward(ctx, grad_grad_x):
        x, grad_out = ctx.saved_tensors
        grad_x = grad_g = None
        if ctx.needs_input_grad[0]:  # d(2 s g[n] x)/dx applied to G = 2 s g[n] G
            grad_x = backward_op(grad_grad_x, grad_out, ctx.scale)
        if ctx.needs_input_grad[1]:  # d(2 s g[n] x)/dg[n] applied to G = 2 s <x[n], G[n]>
            prod = x.to(_acc(x)) * grad_grad_x.to(_acc(x))
            grad_g = (prod.reshape(x.shape[0], -1).sum(1) * (2.0 * ctx.scale)).to(grad_out.dtype)
        return grad_x, grad_g, None

    torch.library.register_autograd(forward_op, forward_backward, setup_context=save)
    torch.library.register_autograd(backward_op, backward_backward, setup_context=save)


for _backend in list(_OPS):
    _autograd(_backend)


# --- public op -------------------------------------------------------------------------------------

def sum_squares(x: torch.Tensor, scale: float = 1.0, impl: Optional[str] = None) -> torch.Tensor:
    """x [N, ...] (fp16 / bf16 / fp32 / fp64) -> [N] = scale * sum(x[n]^2), float32 (float64 for fp64).

    Differentiable to any order. ``impl``: None | 'cuda' | 'triton' | 'ref'.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"sum_squares: x must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"sum_squares: x must be float16, bfloat16, float32 or float64, got {x.dtype}")
    if x.dim() < 1:
        raise ValueError("sum_squares: x must have a batch dimension [N, ...], got a 0-d tensor")
    if isinstance(scale, bool) or not isinstance(scale, (int, float)):
        raise TypeError(f"sum_squares: scale must be a Python number, got {type(scale).__name__}")
    backend = _registry.choose(_FAMILY, impl, x)
    if backend == "ref":
        return _ref.sum_squares(x, float(scale))
    return _OPS[backend][0](x, float(scale))
