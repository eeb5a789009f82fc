"""Public modulated_conv2d (StyleGAN2 synthesis layer): validation, backend dispatch.

    y = bias_act(conv2d_resample(x * s, w, f, up, down, padding) * d + noise, bias, act, alpha, gain, clamp)
    d[n, o] = rsqrt(sum_{i,kh,kw} (w[o, i] * s[n, i])^2 + 1e-8) when demodulate, else 1.

Backends: 'ref' (plain PyTorch: StyleGAN2's non-fused path, the grouped-convolution path for
batch-1 inference), 'triton' (implicit-GEMM convolution with the style scale in the prologue and
demodulation/noise/bias/activation in the epilogue; with up=2 the FIR lies between the transposed
convolution and noise/bias/act, which then run through ganops.bias_act) and 'cuda' (cuDNN
convolution between fused CUDA prologue and epilogue kernels). Every inner op (upfirdn2d,
conv2d_resample, bias_act) runs on the backend chosen for the call. Activations other than linear /
(leaky) ReLU, and clamping of float16/bfloat16 outputs that will be differentiated, are applied by
``ganops.bias_act`` after a linear epilogue (exact gradients). All backends take the same pre-normalisation for float16
(weights and styles rescaled by their max-norm before use, as StyleGAN2 does), compute the
demodulation coefficients with differentiable torch ops in float32 and route every convolution of
the reference through ``conv2d_gradfix`` so ``no_weight_gradients`` applies.
"""
import math
from typing import Optional

import torch

from .. import _registry
from ..ref.conv2d_resample import resample_padding, transposed_split
from ..ref.modulated_conv2d import demod_coefficients, modulated_conv2d_ref
from . import _modulated_conv2d_args as A
from ._modulated_conv2d_fast import KERNELS, LINEAR, LRELU, NO_CLAMP
from .bias_act import bias_act
from .conv2d_resample import conv2d_resample
from .upfirdn2d import setup_filter, upfirdn2d

OP = "modulated_conv2d"


def _prenormalize(weight: torch.Tensor, styles: torch.Tensor):
    """StyleGAN2's float16 safeguard: w / max|w[o]| / sqrt(I*kh*kw), s / max|s[n]| (d undoes it)."""
    fan_in = weight[0].numel()
    weight = weight * (1 / math.sqrt(fan_in) / weight.abs().amax(dim=(1, 2, 3), keepdim=True))
    styles = styles / styles.abs().amax(dim=1, keepdim=True)
    return weight, styles


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, noise: Optional[torch.Tensor] = None,
                     up: int = 1, down: int = 1, padding=None, resample_filter: Optional[torch.Tensor] = None,
                     demodulate: bool = True, flip_weight: bool = True, bias: Optional[torch.Tensor] = None,
                     act: str = "linear", alpha: Optional[float] = None, gain: Optional[float] = None,
                     clamp: Optional[float] = None, impl: Optional[str] = None) -> torch.Tensor:
    """StyleGAN2 modulated convolution fused with noise and bias_act (see the module docstring).

    x: [N, I, H, W] float16/bfloat16/float32/float64. weight: [O, I, kh, kw], styles: [N, I] (any
    float dtype; computed in float32, float64 for float64 x). noise: None or broadcastable to
    [N, 1, H', W']. bias: None or [O]. up / down: resampling factor (not both > 1); the FIR
    ``resample_filter`` defaults to setup_filter([1, 3, 3, 1]). padding: None = kernel_size // 2
    (odd kernels), else int, (x, y) or (x0, x1, y0, y1) as in conv2d_resample. act, alpha, gain,
    clamp: as in ``ganops.bias_act`` (gain None = the activation's default gain).
    Returns y [N, O, H', W'] in x.dtype. Differentiable twice (path-length regularisation).
    """
    args = A.validate(x, weight, styles, noise, up, down, padding, resample_filter, demodulate, flip_weight, bias,
                      act, alpha, gain, clamp)
    if args.needs_filter and resample_filter is None:
        resample_filter = setup_filter([1, 3, 3, 1], device=x.device)
    backend = _registry.choose(OP, impl, x)

    compute = torch.float64 if x.dtype == torch.float64 else torch.float32
    weight, styles = weight.to(compute), styles.to(compute)
    if demodulate and x.dtype == torch.float16:
        weight, styles = _prenormalize(weight, styles)
    bias = None if bias is None else bias.to(x.dtype)

    if backend == "ref":
        # The grouped path convolves with per-sample weights: styles get their gradient through the
        # weight gradient, which no_weight_gradients removes; so batch-1 eager inference only (under
        # torch.compile no branch on the batch size: one graph serves every batch, 1 included).
        grouped = (not torch.compiler.is_compiling() and x.shape[0] == 1
                   and not _needs_grad(x, weight, styles, noise, bias))
        z = modulated_conv2d_ref(x, weight, styles, noise, args.up, args.down, args.padding, resample_filter,
                                 demodulate, flip_weight, fused_modconv=grouped)
        return bias_act(z, bias, act=act, alpha=args.alpha, gain=args.gain, clamp=clamp, impl="ref")
    d = demod_coefficients(weight, styles) if demodulate else torch.ones(
        x.shape[0], weight.shape[0], dtype=compute, device=x.device)
    if backend == "cuda":
        return _cuda(x, weight, styles, d, noise, bias, args, resample_filter, flip_weight, act, clamp)
    return _triton(x, weight, styles, d, noise, bias, args, resample_filter, flip_weight, act, clamp)


def _needs_grad(*tensors) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _fusable_act(act: str, alpha: float, gain: float, clamp: Optional[float], x: torch.Tensor, training: bool) -> bool:
    """Whether the epilogue can apply act/gain/clamp itself: linear or (leaky) ReLU, and when a
    backward follows, a derivative readable from y exactly (gain > 0, alpha >= 0, and a clamp
    mask only for float32 outputs, where rounding cannot move a value onto the clamp)."""
    if act not in ("linear", "relu", "lrelu"):
        return False
    if not training:
        return True
    return gain > 0 and (act == "linear" or alpha >= 0) and (clamp is None or x.dtype == torch.float32)


def _epilogue(act, args, clamp, fuse):
    """(act code, alpha, gain, clamp) for a fused epilogue; the identity when not fusing."""
    if not fuse:
        return LINEAR, 0.0, 1.0, NO_CLAMP
    clamp = NO_CLAMP if clamp is None else clamp
    if act == "linear":
        return LINEAR, 0.0, args.gain, clamp
    return LRELU, 0.0 if act == "relu" else args.alpha, args.gain, clamp


def _cuda(x, weight, styles, d, noise, bias, args, f, flip_weight, act, clamp):
    """The CUDA path: fused prologue (x * styles), cuDNN conv2d_resample, fused epilogue (demod,
    noise, bias and, where possible, act/gain/clamp; otherwise ganops.bias_act afterwards)."""
    scale, epilogue = KERNELS["cuda"]["modconv_scale"], KERNELS["cuda"]["modconv_epilogue"]
    fuse = _fusable_act(act, args.alpha, args.gain, clamp, x, _needs_grad(x, weight, styles, noise, bias))
    c = conv2d_resample(scale(x, styles), weight.to(x.dtype), f, up=args.up, down=args.down, padding=args.padding,
                        flip_weight=flip_weight, impl="cuda")
    y = epilogue(c, d, None if noise is None else noise.to(x.dtype), bias, *_epilogue(act, args, clamp, fuse))
    return y if fuse else bias_act(y, None, act=act, alpha=args.alpha, gain=args.gain, clamp=clamp, impl="cuda")


def _triton(x, weight, styles, d, noise, bias, args, f, flip_weight, act, clamp):
    """The Triton path: the fused kernel does conv + demod (+ noise, bias, act where possible);
    the FIR of up/down runs through ganops.upfirdn2d, the rest through ganops.bias_act."""
    modconv_triton = KERNELS["triton"]["modconv"]
    kh, kw = weight.shape[2:]
    out_h, out_w = args.out_hw
    w_direct = weight if flip_weight else weight.flip([2, 3])
    linear = (LINEAR, 0.0, 1.0, NO_CLAMP)

    if args.up == 1:
        fuse = _fusable_act(act, args.alpha, args.gain, clamp, x, _needs_grad(x, weight, styles, noise, bias))
        epilogue = _epilogue(act, args, clamp, fuse)
        r, py, px = 1, args.padding[2], args.padding[0]
        if args.down > 1:
            x = upfirdn2d(x, f, padding=list(resample_padding(f, 1, args.down, args.padding)), impl="triton")
            r, py, px = args.down, 0, 0
        y = modconv_triton(x, w_direct, styles, d, noise, bias, False, r, py, px, out_h, out_w, *epilogue)
        if fuse:
            return y
        return bias_act(y, None, act=act, alpha=args.alpha, gain=args.gain, clamp=clamp, impl="triton")

    pad = resample_padding(f, args.up, 1, args.padding)
    h, w = x.shape[2:]
    if kh == 1 and kw == 1:
        z = modconv_triton(x, w_direct, styles, d, None, None, False, 1, 0, 0, h, w, *linear)
        z = upfirdn2d(z, f, up=args.up, padding=list(pad), gain=args.up ** 2, impl="triton")
    else:
        (pxt, pyt), fir_pad = transposed_split(kh, kw, args.up, pad)
        w_transposed = weight.flip([2, 3]) if flip_weight else weight
        oh, ow = (h - 1) * args.up - 2 * pyt + kh, (w - 1) * args.up - 2 * pxt + kw
        z = modconv_triton(x, w_transposed, styles, d, None, None, True, args.up, pyt, pxt, oh, ow, *linear)
        z = upfirdn2d(z, f, padding=list(fir_pad), gain=args.up ** 2, impl="triton")
    if noise is not None:
        z = z + noise.to(z.dtype)
    return bias_act(z, bias, act=act, alpha=args.alpha, gain=args.gain, clamp=clamp, impl="triton")
