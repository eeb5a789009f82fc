"""filtered_lrelu family (StyleGAN3 semantics): up-FIR, bias, leaky ReLU, clamp, down-FIR in one op.

    m = upfirdn2d(x + b, fu, up=up, padding=(px0, px1, py0, py1), gain=up**2)
    y = upfirdn2d(clamp(lrelu(m, slope) * gain, -clamp, clamp), fd, down=down)

with NVIDIA's ``torch_utils.ops.filtered_lrelu`` argument conventions: filters float32, 2-D
[fh, fw] or separable [k] (see :func:`ganops.setup_filter`) or None; padding relative to the
upsampled image, int, (x, y) or (x0, x1, y0, y1), negative crops. Output size per axis:
(in*up + pad0 + pad1 - (fu_taps - 1) - (fd_taps - 1) + (down - 1)) // down.

Backends: 'ref' (plain PyTorch, gradients of any order w.r.t. x and b); 'triton' and 'cuda' (one
fused pass per output tile; the forward keeps a bit-packed sign/clamp mask of m, 2 bits per value,
and the backward is the same fused kernel run with up/down swapped that reads it). The fast backends
give first-order gradients w.r.t. x and b only (StyleGAN3 never differentiates twice through this
op): a double backward through them raises an error that says to use impl='ref'.
"""
import math
import numbers
from typing import Optional

import torch

from .. import _registry
from ..ref.filtered_lrelu import filtered_lrelu_ref
from . import _filtered_lrelu_fast
from . import _upfirdn2d_args as A
from ._numbers import is_finite

OP = "filtered_lrelu"

__all__ = ["filtered_lrelu"]


def _check_factor(value, name: str) -> int:
    if not isinstance(value, (int, torch.SymInt)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an int >= 1 (one factor for both axes, as in StyleGAN3), got {value!r}")
    return int(value)


def _check_real(value, name: str, low: float, strict: bool) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not is_finite(value):
        raise TypeError(f"{name} must be a finite real number, got {value!r}")
    if value < low or (strict and value == low):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {low}, got {value}")
    return float(value)


def _check_bias(b, x: torch.Tensor) -> None:
    if b is None:
        return
    if not isinstance(b, torch.Tensor):
        raise TypeError(f"b must be None or a torch.Tensor, got {type(b).__name__}")
    if b.ndim != 1 or b.shape[0] != x.shape[1]:
        raise ValueError(f"b must be 1-D with x.shape[1] = {x.shape[1]} elements, got shape {tuple(b.shape)}")
    if b.device != x.device:
        raise ValueError(f"b must be on the same device as x ({x.device}), got {b.device}")
    if b.dtype != x.dtype:
        raise TypeError(f"b must have the dtype of x ({x.dtype}), got {b.dtype}; use b.to(x.dtype)")


def output_size(size: int, up: int, down: int, pad0: int, pad1: int, fu_taps: int, fd_taps: int) -> int:
    """One axis of the output: (size*up + pad0 + pad1 - (fu_taps - 1) - (fd_taps - 1) + (down - 1)) // down."""
    return (size * up + pad0 + pad1 - (fu_taps - 1) - (fd_taps - 1) + (down - 1)) // down


def _check_output_size(x, fu, fd, up, down, px0, px1, py0, py1) -> None:
    (fu_w, fu_h), (fd_w, fd_h) = A.filter_size(fu), A.filter_size(fd)
    oh = output_size(x.shape[2], up, down, py0, py1, fu_h, fd_h)
    ow = output_size(x.shape[3], up, down, px0, px1, fu_w, fd_w)
    if oh < 1 or ow < 1:
        raise ValueError(
            f"padding (x0, x1, y0, y1)={(px0, px1, py0, py1)} leaves an empty output: input "
            f"{x.shape[2]}x{x.shape[3]} (HxW), up={up}, down={down}, fu {fu_h}x{fu_w}, fd {fd_h}x{fd_w} gives "
            f"{oh}x{ow}; the output size per axis is (in*up + pad0 + pad1 - (fu_taps - 1) - (fd_taps - 1) "
            f"+ (down - 1)) // down, which must be >= 1")


def filtered_lrelu(x: torch.Tensor, fu: Optional[torch.Tensor] = None, fd: Optional[torch.Tensor] = None,
                   b: Optional[torch.Tensor] = None, up: int = 1, down: int = 1, padding=0, gain: float = math.sqrt(2),
                   slope: float = 0.2, clamp: Optional[float] = None, flip_filter: bool = False,
                   impl: Optional[str] = None) -> torch.Tensor:
    """Filtered leaky ReLU of a batch of 2-D images (see the module docstring).

    x: [N, C, H, W] float16/bfloat16/float32 (float64 on 'ref'), any strides. fu, fd: float32
    [fh, fw], [k] (separable) or None (identity). b: None or [C] in x.dtype. up, down: int >= 1.
    gain > 0, slope >= 0, clamp None or >= 0. Returns [N, C, OH, OW] in x.dtype (x's memory format
    on the fast backends). Gradients w.r.t. x and b: any order on 'ref', first order on 'triton'/'cuda'.
    """
    A.check_x(x)
    fu = A.check_filter(fu, x)
    fd = A.check_filter(fd, x)
    _check_bias(b, x)
    up = _check_factor(up, "up")
    down = _check_factor(down, "down")
    px0, px1, py0, py1 = A.parse_padding(padding)
    gain = _check_real(gain, "gain", 0.0, strict=True)
    slope = _check_real(slope, "slope", 0.0, strict=False)
    clamp = None if clamp is None else _check_real(clamp, "clamp", 0.0, strict=False)
    flip_filter = A.check_flip(flip_filter)
    _check_output_size(x, fu, fd, up, down, px0, px1, py0, py1)
    backend = _registry.choose(OP, impl, x)
    if backend == "ref":
        return filtered_lrelu_ref(x, fu, fd, b, up, down, px0, px1, py0, py1, gain, slope, clamp, flip_filter)
    return _filtered_lrelu_fast.apply(backend, x, fu, fd, b, up, down, px0, px1, py0, py1, gain, slope, clamp,
                                      flip_filter)
