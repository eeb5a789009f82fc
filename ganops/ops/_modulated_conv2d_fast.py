"""Fast backends of modulated_conv2d as torch.library custom ops with autograd of any order.

Triton: the fused convolution F and its fused weight/style gradient B (defined here).

``ganops::modconv_triton`` (op F):
    y = clamp(act(s_out[n,o] * conv_geom(s_in[n,c] * x, w) + noise + bias) * gain)
with act linear or leaky ReLU (slope alpha, gain > 0 when differentiated), geometry "direct" or
"transposed" (see ganops.triton_kernels.modulated_conv2d).
``ganops::modconv_wgrad_triton`` (op B): with dz the gradient at the pre-activation,
    dW = WG(s_in * x, s_out * dz), ds_in = sum_pix x * conv_geom^T(s_out * dz, w),
    ds_out = sum_pix dz * conv_geom(s_in * x, w)
in one fused reduction.

Backward of F: dz = dy * gain * act'(from y) * [|y| < clamp] (torch ops; act' is piecewise
constant), dx = F on the adjoint geometry (weight transposed, scales swapped), (dW, ds_in, ds_out)
= B, dnoise / dbias = sums of dz. Backward of B is written with F and B again (it is bilinear in
dz and x), so gradients of every order exist; the weight gradient is skipped inside
``no_weight_gradients``.

CUDA (csrc/cuda/modulated_conv2d.cpp): a prologue and an epilogue around cuDNN's convolution
(conv2d_resample through conv2d_gradfix):
    ganops::modconv_scale_cuda(x, s)             = x * s[n, c]              (prologue: x * styles)
    ganops::modconv_epilogue_cuda(c, d, noise, bias, act, alpha, gain, clamp)
                                                 = clamp(act(c * d[n, c] + noise + bias) * gain)
The scale op's gradient is the scale op again plus a torch reduction; the epilogue's is dz (from y)
scaled by d through the scale op, plus reductions for d, noise and bias.

act is LINEAR or LRELU (this family's own codes, those of the Act enum in modulated_conv2d.h).
"""
from typing import List, Optional, Tuple

import torch
from torch import Tensor

from ..ref import conv2d_gradfix
from . import _family

LINEAR, LRELU = 0, 1
NO_CLAMP = -1.0


def _tf32() -> bool:
    """Whether float32 convolutions may use TF32, as cuDNN decides for the CUDA path's convolutions:
    ``torch.backends.cudnn.conv.fp32_precision`` ("none" defers to the cuDNN, then the global
    setting), which the legacy ``torch.backends.cudnn.allow_tf32`` also sets (default: allowed)."""
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is None or not hasattr(conv, "fp32_precision"):  # torch < 2.9: only the legacy flag
        return bool(torch.backends.cudnn.allow_tf32)
    for precision in (conv.fp32_precision, torch.backends.cudnn.fp32_precision, torch.backends.fp32_precision):
        if precision != "none":
            return precision == "tf32"
    return False


def _out_format(x: Tensor) -> torch.memory_format:
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


# ---------------------------------------------------------------------------------------------
# F: fused modulated convolution


@torch.library.custom_op("ganops::modconv_triton", mutates_args=())
def modconv_triton(x: Tensor, w: Tensor, s_in: Tensor, s_out: Tensor, noise: Optional[Tensor],
                   bias: Optional[Tensor], transposed: bool, r: int, py: int, px: int, oh: int, ow: int,
                   act: int, alpha: float, gain: float, clamp: float) -> Tensor:
    from ..triton_kernels import modulated_conv2d as K

    return K.modconv_fwd(x, w, s_in.contiguous(), s_out.contiguous(), noise,
                         None if bias is None else bias.contiguous(), transposed, r, py, px, oh, ow, act, alpha,
                         gain, clamp, _tf32())


def _modconv_fake(x, w, s_in, s_out, noise, bias, transposed, r, py, px, oh, ow, act, alpha, gain, clamp):
    return x.new_empty((x.shape[0], w.shape[0], oh, ow)).contiguous(memory_format=_out_format(x))


def _f_setup(ctx, inputs, output):
    x, w, s_in, s_out, noise, bias, transposed, r, py, px, oh, ow, act, alpha, gain, clamp = inputs
    ctx.geom = (transposed, r, py, px)
    ctx.act = (act, alpha, gain, clamp)
    ctx.noise_shape = None if noise is None else noise.shape
    ctx.noise_dtype = None if noise is None else noise.dtype
    ctx.bias_dtype = None if bias is None else bias.dtype
    keep_y = act != LINEAR or clamp >= 0
    ctx.save_for_backward(x, w, s_in, s_out, output if keep_y else None)


def preactivation_grad(dy: Tensor, y: Optional[Tensor], act: int, alpha: float, gain: float, clamp: float) -> Tensor:
    """dz = dy * gain * act'(z) * [|y| < clamp], with act' read from y (gain > 0)."""
    dz = dy * gain
    if act == LRELU:
        dz = dz * torch.where(y > 0, 1.0, alpha).to(dz.dtype)
    if clamp >= 0:
        dz = dz * (y.abs() < clamp).to(dz.dtype)
    return dz


def adjoint(u: Tensor, w: Tensor, pre: Tensor, post: Tensor, geom, hw) -> Tensor:
    """post * conv_geom^T(pre * u, w): F on the adjoint geometry, output size hw."""
    transposed, r, py, px = geom
    return modconv_triton(u, w.transpose(0, 1), pre, post, None, None, not transposed, r, py, px, hw[0], hw[1],
                          LINEAR, 0.0, 1.0, NO_CLAMP)


def forward_linear(x: Tensor, w: Tensor, s_in: Tensor, s_out: Tensor, geom, hw) -> Tensor:
    """s_out * conv_geom(s_in * x, w) with output size hw."""
    transposed, r, py, px = geom
    return modconv_triton(x, w, s_in, s_out, None, None, transposed, r, py, px, hw[0], hw[1], LINEAR, 0.0, 1.0,
                          NO_CLAMP)


def _f_backward(ctx, dy):
    x, w, s_in, s_out, y = ctx.saved_tensors
    need = ctx.needs_input_grad
    dz = preactivation_grad(dy, y, *ctx.act)
    dx = dw = ds_in = ds_out = dnoise = dbias = None
    if need[0]:
        dx = adjoint(dz, w, s_out, s_in, ctx.geom, x.shape[2:])
    want_w = need[1] and not conv2d_gradfix.weight_gradients_disabled()
    if want_w or need[2] or need[3]:
        dw_, ds_in_, ds_out_ = modconv_wgrad_triton(dz, x, w, s_in, s_out, *ctx.geom)
        dw = dw_.to(w.dtype) if want_w else None
        ds_in = ds_in_.to(s_in.dtype) if need[2] else None
        ds_out = ds_out_.to(s_out.dtype) if need[3] else None
    if ctx.noise_shape is not None and need[4]:
        dnoise = dz.sum(dim=1, keepdim=True).sum_to_size(ctx.noise_shape).to(ctx.noise_dtype)
    if ctx.bias_dtype is not None and need[5]:
        dbias = dz.sum(dim=(0, 2, 3)).to(ctx.bias_dtype)
    return dx, dw, ds_in, ds_out, dnoise, dbias, None, None, None, None, None, None, None, None, None, None


# ---------------------------------------------------------------------------------------------
# B: fused weight / style gradients


@torch.library.custom_op("ganops::modconv_wgrad_triton", mutates_args=())
def modconv_wgrad_triton(dz: Tensor, x: Tensor, w: Tensor, s_in: Tensor, s_out: Tensor, transposed: bool, r: int,
                         py: int, px: int) -> Tuple[Tensor, Tensor, Tensor]:
    from ..triton_kernels import modulated_conv2d as K

    s_in, s_out = s_in.float().contiguous(), s_out.float().contiguous()
    if not transposed:
        dw, ds_out, ds_in = K.modconv_wgrad(dz, x, w, s_out, s_in, r, py, px, _tf32())
        return dw, ds_in, ds_out
    dw, ds_in, ds_out = K.modconv_wgrad(x, dz, w.transpose(0, 1), s_in, s_out, r, py, px, _tf32())
    return dw.transpose(0, 1).contiguous(), ds_in, ds_out


def _wgrad_fake(dz, x, w, s_in, s_out, transposed, r, py, px):
    f32 = dict(dtype=torch.float32)
    return (w.new_empty(w.shape, **f32), s_in.new_empty(s_in.shape, **f32), s_out.new_empty(s_out.shape, **f32))


def _b_setup(ctx, inputs, output):
    dz, x, w, s_in, s_out, transposed, r, py, px = inputs
    ctx.geom = (transposed, r, py, px)
    ctx.save_for_backward(dz, x, w, s_in, s_out)


def _add(total: Optional[Tensor], term: Tensor) -> Tensor:
    return term if total is None else total + term


def _b_backward(ctx, g_w, g_si, g_so):
    """VJP of B: with L = <g_w, dW> + <g_si, ds_in> + <g_so, ds_out>
    = <s_out dz, C_gw(s_in x)> + <s_out dz, C_w(g_si x)> + <g_so dz, C_w(s_in x)>."""
    dz, x, w, s_in, s_out = ctx.saved_tensors
    geom = ctx.geom
    need = ctx.needs_input_grad
    g_dz = g_x = g_wt = g_sin = g_sout = None
    terms: List[Tuple[Tensor, Tensor, Tensor]] = []  # (weight, s_in, s_out) of the three bilinear terms
    if g_w is not None:
        terms.append((g_w, s_in, s_out))
    if g_si is not None:
        terms.append((w, g_si, s_out))
    if g_so is not None:
        terms.append((w, s_in, g_so))
    if need[0]:
        for wt, si, so in terms:
            g_dz = _add(g_dz, forward_linear(x, wt, si, so, geom, dz.shape[2:]))
    if need[1]:
        for wt, si, so in terms:
            g_x = _add(g_x, adjoint(dz, wt, so, si, geom, x.shape[2:]))
    if g_si is not None and (need[2] or need[4]):
        dw_, _, ds_out_ = modconv_wgrad_triton(dz, x, w, g_si, s_out, *geom)
        g_wt, g_sout = _add(g_wt, dw_), _add(g_sout, ds_out_)
    if g_so is not None and (need[2] or need[3]):
        dw_, ds_in_, _ = modconv_wgrad_triton(dz, x, w, s_in, g_so, *geom)
        g_wt, g_sin = _add(g_wt, dw_), _add(g_sin, ds_in_)
    if g_w is not None and (need[3] or need[4]):
        _, ds_in_, ds_out_ = modconv_wgrad_triton(dz, x, g_w, s_in, s_out, *geom)
        g_sin, g_sout = _add(g_sin, ds_in_), _add(g_sout, ds_out_)
    cast = lambda g, like: None if g is None else g.to(like.dtype)
    return (cast(g_dz, dz), cast(g_x, x), cast(g_wt, w) if need[2] else None, cast(g_sin, s_in) if need[3] else None,
            cast(g_sout, s_out) if need[4] else None, None, None, None, None)



def _triton_autograd(ops):
    torch.library.register_autograd(ops["modconv"], _f_backward, setup_context=_f_setup)
    torch.library.register_autograd(ops["modconv_wgrad"], _b_backward, setup_context=_b_setup)


# ---------------------------------------------------------------------------------------------
# CUDA: prologue (x * styles) and epilogue around cuDNN's convolution


def _scale_setup(ctx, inputs, output):
    x, s = inputs
    ctx.save_for_backward(x, s)


def _scale_backward(ctx, g):
    x, s = ctx.saved_tensors
    dx = torch.ops.ganops.modconv_scale_cuda(g, s) if ctx.needs_input_grad[0] else None
    ds = (g.float() * x.float()).sum(dim=(2, 3)) if ctx.needs_input_grad[1] else None
    return dx, ds


def _epilogue_setup(ctx, inputs, output):
    c, d, noise, bias, act, alpha, gain, clamp = inputs
    ctx.act = (act, alpha, gain, clamp)
    ctx.noise_shape = None if noise is None else noise.shape
    ctx.bias = bias is not None
    ctx.save_for_backward(c, d, output if (act != LINEAR or clamp >= 0) else None)


def _epilogue_backward(ctx, dy):
    c, d, y = ctx.saved_tensors
    need = ctx.needs_input_grad
    dz = preactivation_grad(dy, y, *ctx.act)
    dc = torch.ops.ganops.modconv_scale_cuda(dz, d) if need[0] else None
    dd = (dz.float() * c.float()).sum(dim=(2, 3)) if need[1] else None
    dnoise = dz.sum(dim=1, keepdim=True).sum_to_size(ctx.noise_shape) if ctx.noise_shape is not None and need[2] else None
    dbias = dz.sum(dim=(0, 2, 3)) if ctx.bias and need[3] else None
    return dc, dd, dnoise, dbias, None, None, None, None


def _cuda_autograd(ops):
    torch.library.register_autograd(ops["modconv_scale"], _scale_backward, setup_context=_scale_setup)
    torch.library.register_autograd(ops["modconv_epilogue"], _epilogue_backward, setup_context=_epilogue_setup)


KERNELS = _family.register("modulated_conv2d", {
    "triton": _family.FastBackend({"modconv": _modconv_fake, "modconv_wgrad": _wgrad_fake}, _triton_autograd,
                                  _family.fast_input_reason),
    "cuda": _family.FastBackend({
        "modconv_scale": lambda x, s: torch.empty_like(x, memory_format=_out_format(x)),
        "modconv_epilogue": lambda c, d, noise, bias, act, alpha, gain, clamp: torch.empty_like(
            c, memory_format=_out_format(c))}, _cuda_autograd, _family.fast_input_reason),
})
