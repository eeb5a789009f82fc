"""Reference per-sample sum of squares, the reduction behind R1, path-length and gradient penalties.

sum_squares(x, scale)[n] = scale * sum over all non-batch elements of x[n]^2, computed and returned
in float32 for fp16 / bf16 / fp32 inputs (float64 for float64). Differentiable to any order.
"""
import torch


def accumulate_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def sum_squares(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """x [N, ...] -> [N]: scale * sum(x[n]^2)."""
    flat = x.reshape(x.shape[0], -1).to(accumulate_dtype(x.dtype))
    return flat.square().sum(1) * scale
