"""upfirdn2d family (StyleGAN2-ADA semantics): upsample, FIR filter, downsample in one op.

``upfirdn2d(x, f, up, down, padding, flip_filter, gain)`` on x [N, C, H, W]:
insert up-1 zeros after every sample, pad by (x0, x1, y0, y1) (negative crops), convolve with f
(2-D [fh, fw], or 1-D [k] applied once per axis), multiply by gain, keep every down-th sample.
Output size per axis: (in*up + pad0 + pad1 - taps + down) // down. Output dtype = x.dtype; the
fast backends compute in float32 and keep x's memory format (NCHW or channels_last).

Gradients of any order: the backward of upfirdn2d is an upfirdn2d with up/down swapped, the filter
flipped and the padding recomputed. There is no gradient with respect to f.
"""
from typing import Optional

import torch

from .. import _registry
from ..ref.upfirdn2d import upfirdn2d_ref
from . import _upfirdn2d_args as A
from ._upfirdn2d_fast import KERNELS

OP = "upfirdn2d"

__all__ = ["upfirdn2d", "setup_filter", "filter2d", "upsample2d", "downsample2d"]


def upfirdn2d(x: torch.Tensor, f: Optional[torch.Tensor], up=1, down=1, padding=0, flip_filter: bool = False,
              gain: float = 1, impl: Optional[str] = None) -> torch.Tensor:
    """Pad, upsample, filter and downsample a batch of 2-D images (see the module docstring).

    x: [N, C, H, W] float16/bfloat16/float32/float64. f: float32 [fh, fw] or separable [k] (see
    :func:`setup_filter`), or None for identity. up, down: int or (x, y). padding: int, (x, y) or
    (x0, x1, y0, y1), applied to the upsampled image. Returns [N, C, OH, OW] in x.dtype.
    """
    A.check_x(x)
    f = A.check_filter(f, x)
    upx, upy = A.parse_scaling(up, "up")
    downx, downy = A.parse_scaling(down, "down")
    px0, px1, py0, py1 = A.parse_padding(padding)
    flip_filter = A.check_flip(flip_filter)
    gain = A.check_gain(gain)
    fw, fh = A.filter_size(f)
    A.output_shape(x, fw, fh, upx, upy, downx, downy, px0, px1, py0, py1)
    backend = _registry.choose(OP, impl, x)
    args = (upx, upy, downx, downy, px0, px1, py0, py1, flip_filter, gain)
    if backend == "ref":
        return upfirdn2d_ref(x, f, *args)
    return KERNELS[backend]["upfirdn2d"](x, f.float().contiguous(), *args)


def setup_filter(f, device=None, normalize: bool = True, flip_filter: bool = False, gain: float = 1,
                 separable: Optional[bool] = None) -> torch.Tensor:
    """Turn a filter spec (None, scalar, list, array or tensor) into a float32 filter for upfirdn2d.

    A 1-D filter with >= 8 taps stays separable unless ``separable=False``; shorter ones become their
    outer product f f^T. ``normalize`` divides by the sum, ``flip_filter`` flips all axes and the
    result is multiplied by gain**(ndim/2) (so a separable filter applied once per axis gives gain).
    ``device=None`` keeps a tensor's device (CPU for other inputs). Specs that are not tensors are
    built on the CPU whatever the default device (so under ``with torch.device('meta')`` a network's
    filter buffers still hold their values). The zero-sum check needs the values: it is skipped for a
    tensor on the meta device and inside torch.compile'd code (no data-dependent branch in the graph).
    """
    if device is None:
        device = f.device if isinstance(f, torch.Tensor) else torch.device("cpu")
    if isinstance(f, torch.Tensor):
        f = f.to(torch.float32)
    else:
        f = torch.as_tensor(1.0 if f is None else f, dtype=torch.float32, device="cpu")
    if f.ndim not in (0, 1, 2):
        raise ValueError(f"f must be a scalar, 1-D or 2-D, got shape {tuple(f.shape)}")
    if f.numel() == 0:
        raise ValueError("f must not be empty")
    gain = A.check_gain(gain)
    if f.ndim == 0:
        f = f.reshape(1)
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    if f.ndim != (1 if separable else 2):
        raise ValueError(f"separable=True needs a 1-D filter, got shape {tuple(f.shape)}")
    if normalize:
        total = f.sum()
        if _values_known(total) and total == 0:
            raise ValueError("f sums to zero and cannot be normalized (pass normalize=False)")
        f = f / total
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f * (gain ** (f.ndim / 2))
    return f.to(device=device)


def _values_known(t: torch.Tensor) -> bool:
    """Whether t's values can be read here: not a meta tensor, not traced by torch.compile."""
    return t.device.type != "meta" and not torch.compiler.is_compiling()


def filter2d(x: torch.Tensor, f: Optional[torch.Tensor], padding=0, flip_filter: bool = False, gain: float = 1,
             impl: Optional[str] = None) -> torch.Tensor:
    """Filter x with f keeping its size (extra ``padding`` grows/shrinks the output), as StyleGAN2-ADA."""
    px0, px1, py0, py1 = A.parse_padding(padding)
    fw, fh = A.filter_size(_filter_for_size(f))
    p = (px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2, py1 + (fh - 1) // 2)
    return upfirdn2d(x, f, padding=p, flip_filter=flip_filter, gain=gain, impl=impl)


def upsample2d(x: torch.Tensor, f: Optional[torch.Tensor], up=2, padding=0, flip_filter: bool = False,
               gain: float = 1, impl: Optional[str] = None) -> torch.Tensor:
    """Upsample x by ``up`` (int or (x, y)) with filter f: output size in*up (+ padding); the gain is
    multiplied by upx*upy to keep the signal's magnitude, as StyleGAN2-ADA."""
    upx, upy = A.parse_scaling(up, "up")
    px0, px1, py0, py1 = A.parse_padding(padding)
    fw, fh = A.filter_size(_filter_for_size(f))
    p = (px0 + (fw + upx - 1) // 2, px1 + (fw - upx) // 2, py0 + (fh + upy - 1) // 2, py1 + (fh - upy) // 2)
    gain = A.check_gain(gain)
    return upfirdn2d(x, f, up=(upx, upy), padding=p, flip_filter=flip_filter, gain=gain * upx * upy, impl=impl)


def downsample2d(x: torch.Tensor, f: Optional[torch.Tensor], down=2, padding=0, flip_filter: bool = False,
                 gain: float = 1, impl: Optional[str] = None) -> torch.Tensor:
    """Downsample x by ``down`` (int or (x, y)) with filter f: output size in//down (+ padding), as
    StyleGAN2-ADA."""
    downx, downy = A.parse_scaling(down, "down")
    px0, px1, py0, py1 = A.parse_padding(padding)
    fw, fh = A.filter_size(_filter_for_size(f))
    p = (px0 + (fw - downx + 1) // 2, px1 + (fw - downx) // 2, py0 + (fh - downy + 1) // 2, py1 + (fh - downy) // 2)
    return upfirdn2d(x, f, down=(downx, downy), padding=p, flip_filter=flip_filter, gain=gain, impl=impl)


def _filter_for_size(f):
    """f itself when it is a tensor of a valid rank (full validation happens in upfirdn2d)."""
    if f is None:
        return None
    if not isinstance(f, torch.Tensor):
        raise TypeError(f"f must be None or a torch.Tensor (see setup_filter), got {type(f).__name__}")
    if f.ndim not in (1, 2):
        raise ValueError(f"f must be 1-D [fw] (separable) or 2-D [fh, fw], got shape {tuple(f.shape)}")
    return f
