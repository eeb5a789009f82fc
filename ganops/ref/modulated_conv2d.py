"""Reference modulated convolution (StyleGAN2), plain differentiable PyTorch.

    d[n, o] = rsqrt(sum_{i,kh,kw} (w[o, i] * s[n, i])^2 + 1e-8)      (demodulate, else 1)
    z       = conv2d_resample(x * s[n, i], w, f, up, down, padding) * d[n, o] + noise

Two equivalent evaluations, as in StyleGAN2-ADA:
  * non-fused: scale the activations by the styles, one ordinary convolution with the shared
    weight, then scale by d (used for training batches);
  * fused_modconv: per-sample weights w[o, i] * s[n, i] * d[n, o] and one grouped convolution
    with groups = N (used for batch-1 inference).
Bias, activation, gain and clamp are applied by the caller through ``ganops.bias_act``. Every
convolution and FIR step is the reference ``conv2d_resample`` (no compiled or Triton kernel).
"""
from typing import Optional

import torch

from .conv2d_resample import conv2d_resample

DEMOD_EPS = 1e-8


def demod_coefficients(weight: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """d [N, O] = rsqrt(sum_i s[n,i]^2 * sum_k w[o,i,k]^2 + 1e-8), in the dtype of weight."""
    return (styles.square() @ weight.square().sum(dim=(2, 3)).t() + DEMOD_EPS).rsqrt()


def modulated_conv2d_ref(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor,
                         noise: Optional[torch.Tensor], up: int, down: int, padding, f: Optional[torch.Tensor],
                         demodulate: bool, flip_weight: bool, fused_modconv: bool) -> torch.Tensor:
    """z = conv(x * s, w) * d + noise (see the module docstring).

    padding: (x0, x1, y0, y1). x [N, I, H, W] in the compute dtype; weight [O, I, kh, kw] and styles [N, I] in float32 (float64
    for float64 x), already pre-normalised by the caller where needed. Returns z in x.dtype.
    """
    batch, in_channels = styles.shape
    out_channels = weight.shape[0]
    dcoefs = demod_coefficients(weight, styles) if demodulate else None
    if fused_modconv:
        w = weight.unsqueeze(0) * styles.reshape(batch, 1, in_channels, 1, 1)
        if dcoefs is not None:
            w = w * dcoefs.reshape(batch, out_channels, 1, 1, 1)
        w = w.reshape(batch * out_channels, in_channels, *weight.shape[2:]).to(x.dtype)
        z = conv2d_resample(x.reshape(1, batch * in_channels, *x.shape[2:]), w, f, up, down, padding, batch,
                            flip_weight, False)
        z = z.reshape(batch, out_channels, *z.shape[2:])
    else:
        z = conv2d_resample(x * styles.to(x.dtype).reshape(batch, in_channels, 1, 1), weight.to(x.dtype), f,
                            up, down, padding, 1, flip_weight, False)
        if dcoefs is not None:
            z = z * dcoefs.to(x.dtype).reshape(batch, out_channels, 1, 1)
    if noise is not None:
        z = z + noise.to(x.dtype)
    return z
