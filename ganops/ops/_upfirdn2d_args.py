"""Validation and normalisation of upfirdn2d arguments (shared by the public ops and the backends).

Scaling factors become (x, y) ints >= 1, padding becomes (x0, x1, y0, y1) ints (negative = crop),
filters must be float32/float64 1-D or 2-D tensors that do not require grad.
"""
import numbers
from typing import Optional, Tuple

import torch

from ._numbers import is_finite

X_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
F_DTYPES = (torch.float32, torch.float64)


def _is_int(v) -> bool:
    return isinstance(v, (int, torch.SymInt)) and not isinstance(v, bool)


def parse_scaling(value, name: str) -> Tuple[int, int]:
    """int or (x, y) -> (x, y), each an int >= 1."""
    if _is_int(value):
        value = (value, value)
    if not (isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_int(v) for v in value)):
        raise TypeError(f"{name} must be an int or a pair of ints (x, y), got {value!r}")
    if value[0] < 1 or value[1] < 1:
        raise ValueError(f"{name} must be >= 1 in both axes, got {tuple(value)!r}")
    return int(value[0]), int(value[1])


def parse_padding(value) -> Tuple[int, int, int, int]:
    """int, (x, y) or (x0, x1, y0, y1) -> (x0, x1, y0, y1)."""
    if _is_int(value):
        value = (value, value)
    if isinstance(value, (tuple, list)) and all(_is_int(v) for v in value):
        if len(value) == 2:
            return int(value[0]), int(value[0]), int(value[1]), int(value[1])
        if len(value) == 4:
            return tuple(int(v) for v in value)
    raise TypeError(f"padding must be an int, (x, y) or (x0, x1, y0, y1) of ints, got {value!r}")


def filter_size(f: Optional[torch.Tensor]) -> Tuple[int, int]:
    """(fw, fh) of a validated filter; a 1-D filter has the same size in both axes."""
    if f is None:
        return 1, 1
    return int(f.shape[-1]), int(f.shape[0])


def check_x(x) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"x must be 4-D [N, C, H, W], got shape {tuple(x.shape)}")
    if x.dtype not in X_DTYPES:
        raise TypeError(f"x must be float16, bfloat16, float32 or float64, got {x.dtype}")


def check_filter(f, x: torch.Tensor) -> torch.Tensor:
    """A valid filter for x; None becomes the 1x1 identity filter."""
    if f is None:
        return torch.ones(1, 1, dtype=torch.float32, device=x.device)
    if not isinstance(f, torch.Tensor):
        raise TypeError(f"f must be None or a torch.Tensor (see setup_filter), got {type(f).__name__}")
    if f.dtype not in F_DTYPES:
        raise TypeError(f"f must be a float32 (or float64) tensor, got {f.dtype}")
    if f.ndim not in (1, 2):
        raise ValueError(f"f must be 1-D [fw] (separable) or 2-D [fh, fw], got shape {tuple(f.shape)}")
    if f.numel() == 0:
        raise ValueError(f"f must not be empty, got shape {tuple(f.shape)}")
    if f.device != x.device:
        raise ValueError(f"f must be on the same device as x ({x.device}), got {f.device}")
    if f.requires_grad:
        raise ValueError("f must not require grad: upfirdn2d has no gradient with respect to the filter")
    return f


def check_gain(gain) -> float:
    if not isinstance(gain, numbers.Real) or isinstance(gain, bool) or not is_finite(gain):
        raise TypeError(f"gain must be a finite real number, got {gain!r}")
    return float(gain)


def check_flip(flip_filter) -> bool:
    if not isinstance(flip_filter, bool):
        raise TypeError(f"flip_filter must be a bool, got {flip_filter!r}")
    return flip_filter


def out_size(size: int, up: int, down: int, pad0: int, pad1: int, taps: int) -> int:
    """Output length of one axis: (size*up + pad0 + pad1 - taps + down) // down."""
    return (size * up + pad0 + pad1 - taps + down) // down


def output_shape(x: torch.Tensor, fw: int, fh: int, upx: int, upy: int, downx: int, downy: int,
                 px0: int, px1: int, py0: int, py1: int) -> Tuple[int, int, int, int]:
    """[N, C, OH, OW]; raises ValueError naming padding when an axis would be empty."""
    n, c, h, w = x.shape
    oh = out_size(h, upy, downy, py0, py1, fh)
    ow = out_size(w, upx, downx, px0, px1, fw)
    if oh < 1 or ow < 1:
        raise ValueError(
            f"padding (x0, x1, y0, y1)={(px0, px1, py0, py1)} leaves an empty output: "
            f"input {h}x{w} (HxW), up=({upx}, {upy}), down=({downx}, {downy}), filter {fh}x{fw} gives "
            f"{oh}x{ow}; output size per axis is (in*up + pad0 + pad1 - taps + down) // down, "
            f"which must be >= 1")
    return n, c, oh, ow


def grad_padding(x_hw: Tuple[int, int], y_hw: Tuple[int, int], fw: int, fh: int, upx: int, upy: int,
                 downx: int, downy: int, px0: int, py0: int) -> Tuple[int, int, int, int]:
    """Padding of the adjoint upfirdn2d (up/down swapped, filter flipped) that maps dy back to x's size.

    The adjoint tap index k' relates to the forward one by k' = taps - 1 - k, so pad0' = taps - 1 - pad0;
    pad1' follows from requiring the output to have the input's size.
    """
    (h, w), (oh, ow) = x_hw, y_hw
    return (fw - px0 - 1, w * upx - ow * downx + px0 - upx + 1,
            fh - py0 - 1, h * upy - oh * downy + py0 - upy + 1)


def same_memory_format(x: torch.Tensor) -> torch.memory_format:
    """channels_last when x is channels_last (and not also plain contiguous), else contiguous."""
    if x.is_contiguous() or not x.is_contiguous(memory_format=torch.channels_last):
        return torch.contiguous_format
    return torch.channels_last
