"""Argument checking of modulated_conv2d: clear ValueError/TypeError naming the argument."""
import dataclasses
from typing import Optional, Tuple

import torch

from ._upfirdn2d_args import parse_padding
from .bias_act import resolve_activation


@dataclasses.dataclass(frozen=True)
class ModconvArgs:
    up: int
    down: int
    padding: Tuple[int, int, int, int]  # (x0, x1, y0, y1)
    alpha: float
    gain: float
    clamp: Optional[float]
    out_hw: Tuple[int, int]
    needs_filter: bool


def _tensor(t, name: str, ndim: int, floating: bool = True) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if floating and not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {t.dtype}")
    if t.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {tuple(t.shape)}")


def _factor(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def _resampled_size(size: int, k: int, pad_total: int, up: int, down: int) -> int:
    """Output size of conv2d_resample along one axis: (size*up + pad_total - k + 1) // down."""
    return (size * up + pad_total - k + 1) // down


def validate(x, weight, styles, noise, up, down, padding, resample_filter, demodulate, flip_weight, bias,
             act, alpha, gain, clamp) -> ModconvArgs:
    _tensor(x, "x", 4)
    _tensor(weight, "weight", 4)
    _tensor(styles, "styles", 2)
    n, in_channels, h, w = x.shape
    out_channels, w_in, kh, kw = weight.shape
    if in_channels == 0:
        raise ValueError(f"x must have at least 1 channel (x.shape[1] >= 1), got shape {tuple(x.shape)}")
    if out_channels == 0:
        raise ValueError(f"weight must have at least 1 output channel (weight.shape[0] >= 1), "
                         f"got shape {tuple(weight.shape)}")
    if kh == 0 or kw == 0:
        raise ValueError(f"weight must have a kernel of at least 1x1, got shape {tuple(weight.shape)}")
    if w_in != in_channels:
        raise ValueError(f"weight.shape[1] ({w_in} input channels) must equal x.shape[1] ({in_channels})")
    if tuple(styles.shape) != (n, in_channels):
        raise ValueError(f"styles must have shape [N, I] = [{n}, {in_channels}], got {tuple(styles.shape)}")
    for name, t in (("weight", weight), ("styles", styles), ("noise", noise), ("bias", bias),
                    ("resample_filter", resample_filter)):
        if t is not None and isinstance(t, torch.Tensor) and t.device != x.device:
            raise ValueError(f"{name} must be on the device of x ({x.device}), got {t.device}")
    up, down = _factor(up, "up"), _factor(down, "down")
    if up > 1 and down > 1:
        raise ValueError(f"up and down cannot both be > 1 (got up={up}, down={down})")
    for name, flag in (("demodulate", demodulate), ("flip_weight", flip_weight)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool, got {type(flag).__name__}")
    if padding is None:
        if kh % 2 == 0 or kw % 2 == 0:
            raise ValueError(f"padding=None needs an odd kernel size, got weight kernel {kh}x{kw}; pass padding")
        padding = (kw // 2, kw // 2, kh // 2, kh // 2)
    padding = parse_padding(padding)
    if resample_filter is not None:
        if not isinstance(resample_filter, torch.Tensor) or resample_filter.ndim not in (1, 2) \
                or resample_filter.dtype != torch.float32:
            raise ValueError("resample_filter must be None or a float32 1-D/2-D filter from ganops.setup_filter")
        if resample_filter.ndim == 2 and resample_filter.shape[0] != resample_filter.shape[1]:
            raise ValueError(f"resample_filter must be square, got shape {tuple(resample_filter.shape)}")
    out_h = _resampled_size(h, kh, padding[2] + padding[3], up, down)
    out_w = _resampled_size(w, kw, padding[0] + padding[1], up, down)
    if out_h < 1 or out_w < 1:
        raise ValueError(f"x of size {h}x{w} is too small for a {kh}x{kw} kernel with padding {padding}")
    if noise is not None:
        if not isinstance(noise, torch.Tensor) or not noise.is_floating_point():
            raise TypeError("noise must be None or a floating-point torch.Tensor")
        target = (n, 1, out_h, out_w)
        try:
            ok = torch.broadcast_shapes(noise.shape, target) == torch.Size(target)
        except RuntimeError:
            ok = False
        if not ok:
            raise ValueError(f"noise must be broadcastable to [N, 1, H', W'] = {list(target)}, "
                             f"got shape {tuple(noise.shape)}")
    if bias is not None:
        _tensor(bias, "bias", 1)
        if bias.shape[0] != out_channels:
            raise ValueError(f"bias must have weight.shape[0] = {out_channels} elements, got {bias.shape[0]}")
    alpha, gain, clamp = resolve_activation(act, alpha, gain, clamp)
    return ModconvArgs(up, down, padding, alpha, gain, clamp, (out_h, out_w), up > 1 or down > 1)
