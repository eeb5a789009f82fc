"""ganops.sum_squares: the per-sample sum of squares behind every gradient penalty, on three backends.

sum_squares(x, scale)[n] = scale * sum over all non-batch elements of x[n]^2, one fused pass over x;
its backward 2 * scale * grad[n] * x is a second fused pass (a custom op whose own backward is
differentiable, so penalties can be differentiated again). Output is float32 (float64 for float64 x).

Backends: 'cuda' (csrc/cuda/penalties.*), 'triton' (ganops/triton_kernels/penalties.py), 'ref'
(ganops/ref/sum_squares.py).
Contiguous and channels_last inputs are read in place; other layouts are made contiguous first.
"""
from typing import Optional

import torch

from .. import _registry
from ..ref import sum_squares as _ref
from ._sum_squares_fast import KERNELS

_FAMILY = "sum_squares"
_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def sum_squares(x: torch.Tensor, scale: float = 1.0, impl: Optional[str] = None) -> torch.Tensor:
    """x [N, ...] (fp16 / bf16 / fp32 / fp64) -> [N] = scale * sum(x[n]^2), float32 (float64 for fp64).

    Differentiable to any order. ``impl``: None | 'cuda' | 'triton' | 'ref'.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"sum_squares: x must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"sum_squares: x must be float16, bfloat16, float32 or float64, got {x.dtype}")
    if x.dim() < 1:
        raise ValueError("sum_squares: x must have a batch dimension [N, ...], got a 0-d tensor")
    if isinstance(scale, bool) or not isinstance(scale, (int, float)):
        raise TypeError(f"sum_squares: scale must be a Python number, got {type(scale).__name__}")
    backend = _registry.choose(_FAMILY, impl, x)
    if backend == "ref":
        return _ref.sum_squares(x, float(scale))
    return KERNELS[backend]["sum_squares"](x, float(scale))
