"""Reference filtered_lrelu in plain PyTorch, composed of the reference upfirdn2d (StyleGAN3 semantics).

For x [N, C, H, W], bias b [C], up-filter fu and down-filter fd:

    m = upfirdn2d(x + b, fu, up=up, padding=(px0, px1, py0, py1), gain=up**2, flip_filter)
    a = clamp(lrelu(m, slope) * gain, -clamp, clamp)          (no clamp when clamp is None)
    y = upfirdn2d(a, fd, down=down, flip_filter)

Output size per axis: (in*up + pad0 + pad1 - (fu_taps - 1) - (fd_taps - 1) + (down - 1)) // down.
Every step is differentiable PyTorch, so gradients of any order come from autograd (also w.r.t. b).
The gain is applied by the down filter, clamp(g * a, -c, c) = g * clamp(a, -c/g, c/g) for g > 0,
which saves a pass over the largest (upsampled) tensor; the clamp is ``hardtanh`` (one fused
backward kernel; its gradient is 0 exactly at +-clamp, where ``clamp``'s is 1: a set of measure 0).
Deliberate difference from NVIDIA's ``_filtered_lrelu_ref``: float16/bfloat16 inputs are computed in
float32 and rounded once at the end (NVIDIA's runs the whole chain in float16), so the reference is
the more accurate of the two. Arguments must already be validated (see ganops.ops.filtered_lrelu).
"""
from typing import Optional

import torch
import torch.nn.functional as F

from .upfirdn2d import upfirdn2d_ref


def filtered_lrelu_ref(x: torch.Tensor, fu: torch.Tensor, fd: torch.Tensor, b: Optional[torch.Tensor], up: int,
                       down: int, px0: int, px1: int, py0: int, py1: int, gain: float, slope: float,
                       clamp: Optional[float], flip_filter: bool) -> torch.Tensor:
    """The reference filtered_lrelu (see the module docstring); returns x.dtype."""
    compute = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    v = x.to(compute)
    if b is not None:
        v = v + b.to(compute).reshape(1, -1, 1, 1)
    v = upfirdn2d_ref(v, fu, up, up, 1, 1, px0, px1, py0, py1, flip_filter, float(up * up))
    v = F.leaky_relu(v, slope)
    if clamp is not None:
        v = F.hardtanh(v, -clamp / gain, clamp / gain)
    v = upfirdn2d_ref(v, fd, 1, 1, down, down, 0, 0, 0, 0, flip_filter, gain)
    return v.to(x.dtype)
