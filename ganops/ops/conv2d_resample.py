"""conv2d_resample: 2-D convolution with optional FIR up/downsampling (StyleGAN2-ADA semantics).

    y = downsample_down( conv( upsample_up(x, f, gain=up**2, padding), w ), f )

computed in the cheapest equivalent order, as StyleGAN2-ADA's ``conv2d_resample`` does:
  * 1x1 kernel, down only: FIR-downsample, then the 1x1 conv;
  * 1x1 kernel, up only: the 1x1 conv, then FIR-upsample;
  * down only: FIR (with padding), then a stride-``down`` conv;
  * up (optionally followed by down): stride-``up`` transposed conv, FIR (gain up**2), then FIR-down;
  * plain conv when no resampling and the padding is symmetric and non-negative;
  * otherwise the generic composition above.
x: [N, groups*I, H, W]; w: [O, I, kh, kw] (O divisible by groups); f: a filter from
``ganops.setup_filter`` (None = identity; needed by up/down). padding: int, (x, y) or
(x0, x1, y0, y1) on the upsampled image. flip_weight=True is cross-correlation (torch's conv2d),
False a true convolution. Every convolution goes through ``conv2d_gradfix`` (no_weight_gradients
applies); FIR steps go through ``ganops.upfirdn2d``.
"""
from typing import Optional, Tuple

import torch

from . import conv2d_gradfix
from .upfirdn2d import upfirdn2d


def _as_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def parse_padding(padding) -> Tuple[int, int, int, int]:
    """padding as (x0, x1, y0, y1) from an int, (x, y) or (x0, x1, y0, y1)."""
    if isinstance(padding, int) and not isinstance(padding, bool):
        return padding, padding, padding, padding
    if isinstance(padding, (list, tuple)) and all(isinstance(p, int) and not isinstance(p, bool) for p in padding):
        if len(padding) == 2:
            return padding[0], padding[0], padding[1], padding[1]
        if len(padding) == 4:
            return tuple(padding)
    raise TypeError(f"padding must be an int, (x, y) or (x0, x1, y0, y1) of ints, got {padding!r}")


def _filter_size(f: Optional[torch.Tensor]) -> Tuple[int, int]:
    """(fw, fh) of an upfirdn2d filter (a 1-D filter is applied along both axes)."""
    if f is None:
        return 1, 1
    return (f.shape[-1], f.shape[0])


def _conv(x, w, stride=1, padding=0, groups=1, transpose=False, flip_weight=True):
    """conv2d or conv_transpose2d through conv2d_gradfix; flip_weight=False flips the taps."""
    if not flip_weight:
        w = w.flip([2, 3])
    if transpose:
        return conv2d_gradfix.conv_transpose2d(x, w, stride=stride, padding=padding, groups=groups)
    return conv2d_gradfix.conv2d(x, w, stride=stride, padding=padding, groups=groups)


def _transpose_weight(w: torch.Tensor, groups: int) -> torch.Tensor:
    """[O, I, kh, kw] conv weight -> [groups*I, O/groups, kh, kw] conv_transpose2d weight."""
    out_channels, in_per_group, kh, kw = w.shape
    w = w.reshape(groups, out_channels // groups, in_per_group, kh, kw).transpose(1, 2)
    return w.reshape(groups * in_per_group, out_channels // groups, kh, kw)


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
    elif up > 1 or down > 1:
        raise ValueError(f"f must be given when up > 1 or down > 1 (got up={up}, down={down}); "
                         "use ganops.setup_filter([1, 3, 3, 1])")
    return up, down, groups


def resample_padding(f: Optional[torch.Tensor], up: int, down: int, padding) -> Tuple[int, int, int, int]:
    """The padding (x0, x1, y0, y1) of the composite op on the upsampled image, including the extra
    taps the up/down FIR needs (what the generic composition applies before its convolution)."""
    fw, fh = _filter_size(f)
    px0, px1, py0, py1 = parse_padding(padding)
    if up > 1:
        px0, px1 = px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2
        py0, py1 = py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2
    if down > 1:
        px0, px1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2
        py0, py1 = py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2
    return px0, px1, py0, py1


def transposed_split(kh: int, kw: int, up: int, pad):
    """Split ``pad`` (from resample_padding) for the up path: ((pxt, pyt), fir_pad) where the
    stride-``up`` transposed conv crops pxt/pyt on each side and the FIR pads by fir_pad.
    The transposed conv already covers kernel-1 (left) and kernel-up (right) taps of the padding."""
    px0, px1, py0, py1 = pad
    px0, px1 = px0 - (kw - 1), px1 - (kw - up)
    py0, py1 = py0 - (kh - 1), py1 - (kh - up)
    pxt, pyt = max(min(-px0, -px1), 0), max(min(-py0, -py1), 0)
    return (pxt, pyt), [px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt]


def conv2d_resample(x: torch.Tensor, w: torch.Tensor, f: Optional[torch.Tensor] = None, up: int = 1,
                    down: int = 1, padding=0, groups: int = 1, flip_weight: bool = True,
                    flip_filter: bool = False) -> torch.Tensor:
    """Convolution with FIR up/downsampling; see the module docstring. Returns [N, O, H', W']."""
    up, down, groups = _validate(x, w, f, up, down, groups)
    kh, kw = w.shape[2], w.shape[3]
    pad = resample_padding(f, up, down, padding)
    pointwise = kh == 1 and kw == 1

    if pointwise and down > 1 and up == 1:
        x = upfirdn2d(x, f, down=down, padding=pad, flip_filter=flip_filter)
        return _conv(x, w, groups=groups, flip_weight=flip_weight)
    if pointwise and up > 1 and down == 1:
        x = _conv(x, w, groups=groups, flip_weight=flip_weight)
        return upfirdn2d(x, f, up=up, padding=pad, gain=up ** 2, flip_filter=flip_filter)
    if down > 1 and up == 1:
        x = upfirdn2d(x, f, padding=pad, flip_filter=flip_filter)
        return _conv(x, w, stride=down, groups=groups, flip_weight=flip_weight)
    if up > 1:
        (pxt, pyt), fir_pad = transposed_split(kh, kw, up, pad)
        x = _conv(x, _transpose_weight(w, groups), stride=up, padding=[pyt, pxt], groups=groups, transpose=True,
                  flip_weight=not flip_weight)
        x = upfirdn2d(x, f, padding=fir_pad, gain=up ** 2, flip_filter=flip_filter)
        if down > 1:
            x = upfirdn2d(x, f, down=down, flip_filter=flip_filter)
        return x
    px0, px1, py0, py1 = pad
    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv(x, w, padding=[py0, px0], groups=groups, flip_weight=flip_weight)
    return conv2d_resample_generic(x, w, f, up, down, pad, groups, flip_weight, flip_filter)


def conv2d_resample_generic(x, w, f, up, down, pad, groups, flip_weight, flip_filter):
    """The defining composition: FIR-upsample (gain up**2, padding pad), conv, FIR-downsample.

    ``pad`` is (x0, x1, y0, y1) already including the up/down adjustment of conv2d_resample.
    Used for asymmetric/negative padding and as the reference the fast orderings are tested against.
    """
    x = upfirdn2d(x, f if up > 1 else None, up=up, padding=list(pad), gain=up ** 2, flip_filter=flip_filter)
    x = _conv(x, w, groups=groups, flip_weight=flip_weight)
    if down > 1:
        x = upfirdn2d(x, f, down=down, flip_filter=flip_filter)
    return x
