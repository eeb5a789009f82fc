"""Custom ops of the fused bias_act backends and their autograd (first and second order).

Per backend B in ('triton', 'cuda') there are two ops with the same schemas:
  ganops::bias_act_B(x, b?, dim, act, alpha, gain, clamp) -> y
  ganops::bias_act_grad_B(g, h?, s, b?, dim, act, alpha, gain, clamp, s_is_y, reduce_db) -> (out, db)
      h is None: out = g * D(s)       with D = d y / d x = gain * act'(x + b) * [|y| < clamp]
      h given:   out = g * h * dD/ds  (the term that second-order gradients need)
      db = out summed over every dimension but dim when reduce_db, else an empty tensor.
s is the saved tensor: y when the derivative can be read off the output (see
``_bias_act_spec.saves_output``), else x (then b is passed too). The Triton ops are defined here;
the CUDA ops come from ganops._C (csrc/cuda/bias_act.cpp) and get the same fake and autograd.
"""
from typing import Optional, Tuple

import torch

from .. import _extension
from . import _bias_act_spec as spec


@torch.library.custom_op("ganops::bias_act_triton", mutates_args=())
def _bias_act_triton(x: torch.Tensor, b: Optional[torch.Tensor], dim: int, act: int, alpha: float, gain: float,
                     clamp: float) -> torch.Tensor:
    from ..triton_kernels import bias_act as kernels

    return kernels.forward(x, b, dim, act, alpha, gain, clamp)


@torch.library.custom_op("ganops::bias_act_grad_triton", mutates_args=())
def _bias_act_grad_triton(g: torch.Tensor, h: Optional[torch.Tensor], s: torch.Tensor, b: Optional[torch.Tensor],
                          dim: int, act: int, alpha: float, gain: float, clamp: float, s_is_y: bool,
                          reduce_db: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    from ..triton_kernels import bias_act as kernels

    return kernels.grad(g, h, s, b, dim, act, alpha, gain, clamp, s_is_y, reduce_db)


def _forward_fake(x, b, dim, act, alpha, gain, clamp):
    return torch.empty_like(x)


def _grad_fake(g, h, s, b, dim, act, alpha, gain, clamp, s_is_y, reduce_db):
    return torch.empty_like(s), s.new_empty([s.shape[dim]] if reduce_db else [0])


def _wire(backend: str):
    """Register fake kernels and autograd for one backend's (forward, grad) op pair."""
    forward, grad_name = f"ganops::bias_act_{backend}", f"ganops::bias_act_grad_{backend}"
    grad = getattr(torch.ops.ganops, f"bias_act_grad_{backend}")

    def forward_setup(ctx, inputs, output):
        x, b, dim, act, alpha, gain, clamp = inputs
        s_is_y = spec.saves_output(act, alpha, gain, clamp, x.dtype)
        ctx.args = (dim, act, alpha, gain, clamp, s_is_y)
        ctx.has_bias = b is not None
        ctx.save_for_backward(output if s_is_y else x, None if s_is_y else b)

    def forward_backward(ctx, dy):
        s, b = ctx.saved_tensors
        reduce_db = ctx.has_bias and ctx.needs_input_grad[1]
        dx, db = grad(dy, None, s, b, *ctx.args, reduce_db)
        return dx, (db if reduce_db else None), None, None, None, None, None

    def grad_setup(ctx, inputs, output):
        g, h, s, b, dim, act, alpha, gain, clamp, s_is_y, reduce_db = inputs
        ctx.args = (dim, act, alpha, gain, clamp, s_is_y)
        ctx.reduce_db = reduce_db
        ctx.second_order = h is not None
        ctx.save_for_backward(g, s, b)
        ctx.set_materialize_grads(False)  # an unused db (or dx) arrives as None, not as zeros to add

    def grad_backward(ctx, d_out, d_db):
        if ctx.second_order:
            raise NotImplementedError("bias_act supports first- and second-order gradients, "
                                      "not third-order ones")
        g, s, b = ctx.saved_tensors
        dim, act = ctx.args[:2]
        if ctx.reduce_db and d_db is not None:
            shape = [1] * s.ndim
            shape[dim] = -1
            d_db = d_db.reshape(shape)
            d_out = d_db.expand(s.shape) if d_out is None else d_out + d_db
        none = (None,) * 7
        if d_out is None:
            return (None, None, None, None) + none
        need_g, _, need_s, need_b = ctx.needs_input_grad[:4]
        d_g = grad(d_out, None, s, b, *ctx.args, False)[0] if need_g else None
        d_s = d_b = None
        if spec.has_second_derivative(act) and (need_s or need_b):
            d_s, d_b = grad(d_out, g, s, b, *ctx.args, bool(need_b))
            d_s = d_s if need_s else None
            d_b = d_b if need_b else None
        return (d_g, None, d_s, d_b) + none

    torch.library.register_fake(forward, _forward_fake)
    torch.library.register_fake(grad_name, _grad_fake)
    torch.library.register_autograd(forward, forward_backward, setup_context=forward_setup)
    torch.library.register_autograd(grad_name, grad_backward, setup_context=grad_setup)


_wire("triton")
_OPS = {"triton": (torch.ops.ganops.bias_act_triton, torch.ops.ganops.bias_act_grad_triton)}

if _extension.status().cuda_usable and hasattr(torch.ops.ganops, "bias_act_cuda"):
    _wire("cuda")
    _OPS["cuda"] = (torch.ops.ganops.bias_act_cuda, torch.ops.ganops.bias_act_grad_cuda)


def forward_op(backend: str):
    """The forward op of a fused backend ('triton' or 'cuda')."""
    if backend not in _OPS:
        raise RuntimeError(f"bias_act: the {backend} kernels are not registered in this build of ganops._C; "
                           f"rebuild with: {_extension.REBUILD_COMMAND}")
    return _OPS[backend][0]
