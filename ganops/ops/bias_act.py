"""Public bias_act: argument checks, backend dispatch.

    y = clamp(act(x + b broadcast along dim, alpha) * gain, -clamp, clamp)

Same contract as StyleGAN2-ADA's ``torch_utils.ops.bias_act``; the activations, their codes and
defaults are the table ``ganops.ref.activations.ACTIVATIONS``. Backends: 'ref' (plain PyTorch),
'triton' and 'cuda' (one fused pass; first and second order gradients through custom ops, see
``ganops.ops._bias_act_fast``).
"""
from typing import Optional

import torch

from .. import _registry
from ..ref import bias_act as _ref
from ..ref.activations import ACTIVATIONS
from ._bias_act_fast import KERNELS, NO_CLAMP
from ._numbers import is_finite

OP = "bias_act"


def _real(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be None or a real number, got {type(value).__name__}")
    value = float(value)
    if not is_finite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def resolve_activation(act, alpha, gain, clamp):
    """Checked (alpha, gain, clamp) with the activation's defaults for None (clamp None stays None)."""
    if not isinstance(act, str) or act not in ACTIVATIONS:
        raise ValueError(f"act must be one of {sorted(ACTIVATIONS)}, got {act!r}")
    alpha = ACTIVATIONS[act].alpha if alpha is None else _real(alpha, "alpha")
    gain = ACTIVATIONS[act].gain if gain is None else _real(gain, "gain")
    if clamp is not None:
        clamp = _real(clamp, "clamp")
        if clamp < 0:
            raise ValueError(f"clamp must be None (no clamping) or >= 0, got {clamp}")
    return alpha, gain, clamp


def _validate(x, b, dim, act, alpha, gain, clamp):
    """Checked arguments as (dim, alpha, gain, clamp) with defaults applied."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor (float16, bfloat16, float32, float64), got {x.dtype}")
    if x.ndim == 0:
        raise ValueError("x must have at least one dimension, got a 0-d tensor")
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise TypeError(f"dim must be an int, got {type(dim).__name__}")
    if not -x.ndim <= dim < x.ndim:
        raise ValueError(f"dim must be in [{-x.ndim}, {x.ndim - 1}] for x of shape {tuple(x.shape)}, got {dim}")
    dim = dim % x.ndim
    alpha, gain, clamp = resolve_activation(act, alpha, gain, clamp)
    if b is not None:
        if not isinstance(b, torch.Tensor):
            raise TypeError(f"b must be None or a torch.Tensor, got {type(b).__name__}")
        if b.ndim != 1 or b.shape[0] != x.shape[dim]:
            raise ValueError(f"b must be 1-D with x.shape[dim] = {x.shape[dim]} elements, "
                             f"got shape {tuple(b.shape)}")
        if b.device != x.device:
            raise ValueError(f"b must be on the same device as x ({x.device}), got {b.device}")
        if b.dtype != x.dtype:
            raise TypeError(f"b must have the dtype of x ({x.dtype}), got {b.dtype}; use b.to(x.dtype)")
    return dim, alpha, gain, clamp


def bias_act(x: torch.Tensor, b: Optional[torch.Tensor] = None, dim: int = 1, act: str = "linear",
             alpha: Optional[float] = None, gain: Optional[float] = None, clamp: Optional[float] = None,
             impl: Optional[str] = None) -> torch.Tensor:
    """Fused bias + activation + gain + clamp.

    x: float16/bfloat16/float32/float64 tensor of any rank (float64 on the reference only);
    b: None or 1-D with x.shape[dim] elements, same dtype and device; act: one of ``ACTIVATIONS``;
    alpha: lrelu slope (default 0.2); gain: default sqrt(2) for relu/lrelu/swish, else 1;
    clamp: None or >= 0 (gradient is zero where the output was clamped).
    Returns y with x's shape, dtype and memory format (contiguous or channels_last; other strided
    inputs are made dense first). Differentiable twice in x and b.
    """
    dim, alpha, gain, clamp = _validate(x, b, dim, act, alpha, gain, clamp)
    backend = _registry.choose(OP, impl, x)
    if backend == "ref":
        return _ref.bias_act(x, b, dim, act, alpha, gain, clamp)
    return KERNELS[backend]["bias_act"](x, b, dim, ACTIVATIONS[act].code, alpha, gain,
                                        NO_CLAMP if clamp is None else clamp)
