"""sum_squares fast backends as torch.library custom ops with any-order autograd.

Per backend B in ('triton', 'cuda') (Triton ops defined here, CUDA ones in csrc/cuda/penalties.cpp):
    ganops::sum_squares_B(x, scale) -> [N]                  scale * sum(x[n]^2), float32 (float64 for fp64)
    ganops::sum_squares_backward_B(x, grad_out, scale)      2 * scale * grad_out[n] * x, x's dtype/layout
The backward op's own backward is written with the same ops, so penalties can be differentiated again.
"""
from typing import Optional

import torch

from ..ref.sum_squares import accumulate_dtype
from . import _family

_MAX_BATCH = 65535  # the batch is the second launch-grid axis of both fast backends


def batch_dense(x: torch.Tensor) -> torch.Tensor:
    """x itself when each sample is one dense block of memory (contiguous, channels_last), else a copy."""
    if x.is_contiguous() or (x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)):
        return x
    return x.contiguous()


def _acc(x: torch.Tensor) -> torch.dtype:
    return accumulate_dtype(x.dtype)


# --- Triton custom ops ----------------------------------------------------------------------------

@torch.library.custom_op("ganops::sum_squares_triton", mutates_args=())
def _sumsq_triton(x: torch.Tensor, scale: float) -> torch.Tensor:
    from ..triton_kernels import penalties as kernels

    return kernels.sum_squares(batch_dense(x), scale)


@torch.library.custom_op("ganops::sum_squares_backward_triton", mutates_args=())
def _sumsq_backward_triton(x: torch.Tensor, grad_out: torch.Tensor, scale: float) -> torch.Tensor:
    from ..triton_kernels import penalties as kernels

    return kernels.sum_squares_backward(batch_dense(x), grad_out.to(_acc(x)), scale)


def _forward_fake(x, scale):
    return x.new_empty((x.shape[0],), dtype=_acc(x))


def _backward_fake(x, grad_out, scale):
    return torch.empty_like(batch_dense(x))


# --- autograd (the same for both fast backends) ---------------------------------------------------

def _autograd(ops):
    """Any-order autograd of one backend's (sum_squares, sum_squares_backward) pair."""
    forward_op, backward_op = ops["sum_squares"], ops["sum_squares_backward"]

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



def _batch_check(x: torch.Tensor) -> Optional[str]:
    if x.dim() >= 1 and x.shape[0] > _MAX_BATCH:
        return f"the kernels handle a batch of at most {_MAX_BATCH}, got {x.shape[0]}"
    return None


_FAST = _family.FastBackend({"sum_squares": _forward_fake, "sum_squares_backward": _backward_fake}, _autograd,
                            _batch_check)
KERNELS = _family.register("sum_squares", {"triton": _FAST, "cuda": _FAST})
