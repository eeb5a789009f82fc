"""Custom ops of the fused bias_act backends and their autograd (first and second order).

Per backend B in ('triton', 'cuda') there are two ops with the same schemas:
  ganops::bias_act_B(x, b?, dim, act, alpha, gain, clamp) -> y
  ganops::bias_act_grad_B(g, h?, s, b?, dim, act, alpha, gain, clamp, s_is_y, reduce_db) -> (out, db)
      h is None: out = g * D(s)       with D = d y / d x = gain * act'(x + b) * [|y| < clamp]
      h given:   out = g * h * dD/ds  (the term that second-order gradients need)
      db = out summed over every dimension but dim when reduce_db, else an empty tensor.
s is the saved tensor: y when the derivative can be read off the output (see :func:`saves_output`),
else x (then b is passed too). act is the activation's code in ``ganops.ref.activations``; clamp < 0
means no clamp. The Triton ops are defined here; the CUDA ops come from ganops._C
(csrc/cuda/bias_act.cpp) and get the same fake kernels and autograd through ``_family.register``.
"""
from typing import Optional, Tuple

import torch

from ..ref.activations import ACTIVATIONS
from . import _family

NO_CLAMP = -1.0
_ZERO_SECOND_DERIVATIVE = {a.code for a in ACTIVATIONS.values() if a.zero_second_derivative}
_SWISH, _LRELU = ACTIVATIONS["swish"].code, ACTIVATIONS["lrelu"].code


def saves_output(act: int, alpha: float, gain: float, clamp: float, dtype: torch.dtype) -> bool:
    """Whether the backward can work from y (the output) instead of x.

    y determines act'(x + b) when act is invertible from its output (all but swish), gain > 0 and,
    for lrelu, alpha >= 0. With clamping the mask |y| < clamp is exact only when y is stored in the
    compute precision (float32); fp16/bf16 rounding could turn an unclamped value into +-clamp.
    """
    if act == _SWISH or gain <= 0 or (act == _LRELU and alpha < 0):
        return False
    return clamp < 0 or dtype == torch.float32


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


def _autograd(ops):
    """First- and second-order autograd of one backend's (bias_act, bias_act_grad) pair."""
    forward, grad = ops["bias_act"], ops["bias_act_grad"]

    def forward_setup(ctx, inputs, output):
        x, b, dim, act, alpha, gain, clamp = inputs
        s_is_y = saves_output(act, alpha, gain, clamp, x.dtype)
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
        if act not in _ZERO_SECOND_DERIVATIVE and (need_s or need_b):
            d_s, d_b = grad(d_out, g, s, b, *ctx.args, bool(need_b))
            d_s = d_s if need_s else None
            d_b = d_b if need_b else None
        return (d_g, None, d_s, d_b) + none

    torch.library.register_autograd(forward, forward_backward, setup_context=forward_setup)
    torch.library.register_autograd(grad, grad_backward, setup_context=grad_setup)


_FAST = _family.FastBackend({"bias_act": _forward_fake, "bias_act_grad": _grad_fake}, _autograd,
                            _family.fast_input_reason)
KERNELS = _family.register("bias_act", {"triton": _FAST, "cuda": _FAST})
