"""conv2d_resample: 2-D convolution with FIR up/downsampling (StyleGAN2-ADA semantics), in plain PyTorch.

    y = downsample_down( conv( upsample_up(x, f, gain=up**2, padding), w ), f )

computed in the cheapest equivalent order, as StyleGAN2-ADA's ``conv2d_resample`` does:
  * 1x1 kernel, down only: FIR-downsample, then the 1x1 conv;
  * 1x1 kernel, up only: the 1x1 conv, then FIR-upsample;
  * down only: FIR (with padding), then a stride-``down`` conv;
  * up (optionally followed by down): stride-``up`` transposed conv, FIR (gain up**2), then FIR-down;
  * plain conv when no resampling and the padding is symmetric and non-negative;
  * otherwise the generic composition above (:func:`conv2d_resample_generic`).
Every convolution goes through ``conv2d_gradfix`` (``no_weight_gradients`` applies). The FIR steps
run through ``fir`` (see :data:`Fir`): the reference upfirdn2d unless the caller passes another
backend's (``ganops.ops.conv2d_resample`` does, for impl='triton'/'cuda'). Arguments must already be
validated (see ganops.ops.conv2d_resample).
"""
from typing import Callable, Optional, Tuple

import torch

from . import conv2d_gradfix
from .upfirdn2d import upfirdn2d_ref

# fir(x, f or None, up, down, (x0, x1, y0, y1), gain, flip_filter) -> upfirdn2d of x
Fir = Callable[[torch.Tensor, Optional[torch.Tensor], int, int, Tuple[int, int, int, int], float, bool],
               torch.Tensor]


def reference_fir(x, f, up, down, padding, gain, flip_filter):
    """The reference upfirdn2d as a :data:`Fir` (None is the 1x1 identity filter)."""
    if f is None:
        f = torch.ones(1, 1, dtype=torch.float32, device=x.device)
    return upfirdn2d_ref(x, f, up, up, down, down, *padding, flip_filter, float(gain))


def filter_size(f: Optional[torch.Tensor]) -> Tuple[int, int]:
    """(fw, fh) of an upfirdn2d filter (a 1-D filter is applied along both axes)."""
    if f is None:
        return 1, 1
    return int(f.shape[-1]), int(f.shape[0])


def resample_padding(f: Optional[torch.Tensor], up: int, down: int, padding) -> Tuple[int, int, int, int]:
    """The padding (x0, x1, y0, y1) of the composite op on the upsampled image, including the extra
    taps the up/down FIR needs (what the generic composition applies before its convolution)."""
    fw, fh = filter_size(f)
    px0, px1, py0, py1 = padding
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
    return (pxt, pyt), (px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt)


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


def conv2d_resample(x: torch.Tensor, w: torch.Tensor, f: Optional[torch.Tensor], up: int, down: int,
                    padding: Tuple[int, int, int, int], groups: int, flip_weight: bool, flip_filter: bool,
                    fir: Fir = reference_fir) -> torch.Tensor:
    """The op in the cheapest order (see the module docstring); padding is (x0, x1, y0, y1)."""
    kh, kw = w.shape[2], w.shape[3]
    pad = resample_padding(f, up, down, padding)
    pointwise = kh == 1 and kw == 1

    if pointwise and down > 1 and up == 1:
        x = fir(x, f, 1, down, pad, 1.0, flip_filter)
        return _conv(x, w, groups=groups, flip_weight=flip_weight)
    if pointwise and up > 1 and down == 1:
        x = _conv(x, w, groups=groups, flip_weight=flip_weight)
        return fir(x, f, up, 1, pad, up ** 2, flip_filter)
    if down > 1 and up == 1:
        x = fir(x, f, 1, 1, pad, 1.0, flip_filter)
        return _conv(x, w, stride=down, groups=groups, flip_weight=flip_weight)
    if up > 1:
        (pxt, pyt), fir_pad = transposed_split(kh, kw, up, pad)
        x = _conv(x, _transpose_weight(w, groups), stride=up, padding=[pyt, pxt], groups=groups, transpose=True,
                  flip_weight=not flip_weight)
        x = fir(x, f, 1, 1, fir_pad, up ** 2, flip_filter)
        if down > 1:
            x = fir(x, f, 1, down, (0, 0, 0, 0), 1.0, flip_filter)
        return x
    px0, px1, py0, py1 = pad
    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv(x, w, padding=[py0, px0], groups=groups, flip_weight=flip_weight)
    return conv2d_resample_generic(x, w, f, up, down, pad, groups, flip_weight, flip_filter, fir)


def conv2d_resample_generic(x, w, f, up, down, pad, groups, flip_weight, flip_filter, fir: Fir = reference_fir):
    """The defining composition: FIR-upsample (gain up**2, padding pad), conv, FIR-downsample.

    ``pad`` is (x0, x1, y0, y1) already including the up/down adjustment (:func:`resample_padding`).
    Used for asymmetric/negative padding and as the reference the fast orderings are tested against.
    """
    x = fir(x, f if up > 1 else None, up, 1, tuple(pad), up ** 2, flip_filter)
    x = _conv(x, w, groups=groups, flip_weight=flip_weight)
    if down > 1:
        x = fir(x, f, 1, down, (0, 0, 0, 0), 1.0, flip_filter)
    return x
