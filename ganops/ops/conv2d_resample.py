"""conv2d_resample: 2-D convolution with optional FIR up/downsampling (StyleGAN2-ADA semantics).

    y = downsample_down( conv( upsample_up(x, f, gain=up**2, padding), w ), f )

x: [N, groups*I, H, W]; w: [O, I, kh, kw] (O divisible by groups); f: a filter from
``ganops.setup_filter`` (None = identity; needed by up/down). padding: int, (x, y) or
(x0, x1, y0, y1) on the upsampled image. flip_weight=True is cross-correlation (torch's conv2d),
False a true convolution. The composition (cheapest equivalent order) is
``ganops.ref.conv2d_resample``; its convolutions go through ``conv2d_gradfix`` (no_weight_gradients
applies) and its FIR steps through ``ganops.upfirdn2d`` on the backend chosen for this call.
"""
from typing import Optional

import torch

from .. import _registry
from ..ref import conv2d_resample as _ref
from ._upfirdn2d_args import check_filter, check_flip, parse_padding
from .upfirdn2d import upfirdn2d

OP = "upfirdn2d"   # the only kernels conv2d_resample runs are its FIR steps


def _as_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _validate(x, w, f, up, down, groups):
    for name, t in (("x", x), ("w", w)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.ndim != 4:
            raise ValueError(f"{name} must be 4-D, got shape {tuple(t.shape)}")
    if w.dtype != x.dtype:
        raise TypeError(f"w must have the dtype of x ({x.dtype}), got {w.dtype}")
    if w.device != x.device:
        raise ValueError(f"w must be on the device of x ({x.device}), got {w.device}")
    up = _as_int(up, "up", 1)
    down = _as_int(down, "down", 1)
    groups = _as_int(groups, "groups", 1)
    if w.shape[0] % groups != 0:
        raise ValueError(f"w.shape[0] (out channels, {w.shape[0]}) must be divisible by groups={groups}")
    if x.shape[1] != w.shape[1] * groups:
        raise ValueError(f"x has {x.shape[1]} channels but w expects groups*w.shape[1] = {groups * w.shape[1]}")
    if f is not None:
        if not isinstance(f, torch.Tensor) or f.ndim not in (1, 2) or f.dtype != torch.float32:
            raise ValueError("f must be None or a float32 1-D/2-D filter from ganops.setup_filter")
        check_filter(f, x)
    elif up > 1 or down > 1:
        raise ValueError(f"f must be given when up > 1 or down > 1 (got up={up}, down={down}); "
                         "use ganops.setup_filter([1, 3, 3, 1])")
    return up, down, groups


def fir_on(backend: str) -> _ref.Fir:
    """The FIR steps of the composition on ``backend`` (a resolved backend, passed explicitly)."""
    if backend == "ref":
        return _ref.reference_fir

    def fir(x, f, up, down, padding, gain, flip_filter):
        return upfirdn2d(x, f, up=up, down=down, padding=list(padding), flip_filter=flip_filter, gain=float(gain),
                         impl=backend)
    return fir


def conv2d_resample(x: torch.Tensor, w: torch.Tensor, f: Optional[torch.Tensor] = None, up: int = 1,
                    down: int = 1, padding=0, groups: int = 1, flip_weight: bool = True,
                    flip_filter: bool = False, impl: Optional[str] = None) -> torch.Tensor:
    """Convolution with FIR up/downsampling; see the module docstring. Returns [N, O, H', W'].

    ``impl`` picks the upfirdn2d backend of the FIR steps ('ref': everything in plain PyTorch)."""
    up, down, groups = _validate(x, w, f, up, down, groups)
    padding = parse_padding(padding)
    flip_filter = check_flip(flip_filter)
    backend = _registry.choose(OP, impl, x)
    return _ref.conv2d_resample(x, w, f, up, down, padding, groups, flip_weight, flip_filter, fir=fir_on(backend))
