"""Reference bias_act in plain differentiable PyTorch (any order of gradients).

    y = clamp(act(x + b broadcast along dim, alpha) * gain, -clamp, clamp)

fp16/bf16 inputs are computed in float32 and rounded once at the end; float32 and float64 stay in
their own precision. Arguments are already validated and defaulted by ``ganops.ops.bias_act``.
"""
from typing import Optional

import torch
import torch.nn.functional as F

SELU_LAMBDA = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717


def activation(v: torch.Tensor, act: str, alpha: float) -> torch.Tensor:
    """act(v) for the activations of bias_act (alpha is used by 'lrelu' only)."""
    if act == "linear":
        return v
    if act == "relu":
        return F.relu(v)
    if act == "lrelu":
        return F.leaky_relu(v, alpha)
    if act == "tanh":
        return torch.tanh(v)
    if act == "sigmoid":
        return torch.sigmoid(v)
    if act == "elu":
        return F.elu(v)
    if act == "selu":
        return F.selu(v)
    if act == "softplus":
        return F.softplus(v)
    if act == "swish":
        return v * torch.sigmoid(v)
    raise ValueError(f"act: unknown activation {act!r}")


def bias_act(x: torch.Tensor, b: Optional[torch.Tensor], dim: int, act: str, alpha: float, gain: float,
             clamp: Optional[float]) -> torch.Tensor:
    """Fused-op semantics, unfused: ``dim`` is non-negative, ``b`` is 1-D with x.shape[dim] elements."""
    compute = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    v = x.to(compute)
    if b is not None:
        v = v + b.to(compute).reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    y = activation(v, act, alpha)
    if gain != 1:
        y = y * gain
    if clamp is not None:
        y = y.clamp(-clamp, clamp)
    return y.to(x.dtype)
