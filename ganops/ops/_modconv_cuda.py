"""Fake kernels and autograd of the CUDA modulated-convolution ops (csrc/cuda/modulated_conv2d.cpp):

    ganops::modconv_scale_cuda(x, s)             = x * s[n, c]              (prologue: x * styles)
    ganops::modconv_epilogue_cuda(c, d, noise, bias, act, alpha, gain, clamp)
                                                 = clamp(act(c * d[n, c] + noise + bias) * gain)

The convolution between them is cuDNN through conv2d_gradfix. Backward: the scale op's gradient is
the scale op again plus a torch reduction; the epilogue's is dz (from y: act is linear or leaky ReLU,
with a piecewise-constant derivative) scaled by d through the scale op, plus reductions for d, noise
and bias. Everything is differentiable again, so gradients of any order exist.
"""
import torch

from ._modconv_autograd import LINEAR, preactivation_grad

_registered = False


def _out_format(x: torch.Tensor) -> torch.memory_format:
    if not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


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


def ops():
    """(scale, epilogue) ops with fake kernels and autograd registered (once, on first use: the ops
    exist only when ganops._C was built with CUDA)."""
    global _registered
    if not _registered:
        torch.library.register_fake("ganops::modconv_scale_cuda")(
            lambda x, s: torch.empty_like(x, memory_format=_out_format(x)))
        torch.library.register_fake("ganops::modconv_epilogue_cuda")(
            lambda c, d, noise, bias, act, alpha, gain, clamp: torch.empty_like(c, memory_format=_out_format(c)))
        torch.library.register_autograd("ganops::modconv_scale_cuda", _scale_backward, setup_context=_scale_setup)
        torch.library.register_autograd("ganops::modconv_epilogue_cuda", _epilogue_backward,
                                        setup_context=_epilogue_setup)
        _registered = True
    return torch.ops.ganops.modconv_scale_cuda, torch.ops.ganops.modconv_epilogue_cuda
