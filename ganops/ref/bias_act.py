"""Reference bias_act in plain differentiable PyTorch (any order of gradients).

    y = clamp(act(x + b broadcast along dim, alpha) * gain, -clamp, clamp)

act is one of ``ganops.ref.activations.ACTIVATIONS``. fp16/bf16 inputs are computed in float32 and
rounded once at the end; float32 and float64 stay in their own precision. Arguments are already
validated and defaulted by ``ganops.ops.bias_act``.
"""
from typing import Optional

import torch

from .activations import ACTIVATIONS


def bias_act(x: torch.Tensor, b: Optional[torch.Tensor], dim: int, act: str, alpha: float, gain: float,
             clamp: Optional[float]) -> torch.Tensor:
    """Fused-op semantics, unfused: ``dim`` is non-negative, ``b`` is 1-D with x.shape[dim] elements."""
    compute = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    v = x.to(compute)
    if b is not None:
        v = v + b.to(compute).reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    y = ACTIVATIONS[act].fn(v, alpha)
    if gain != 1:
        y = y * gain
    if clamp is not None:
        y = y.clamp(-clamp, clamp)
    return y.to(x.dtype)
