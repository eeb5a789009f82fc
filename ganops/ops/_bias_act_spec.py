"""Activation table of bias_act shared by the op, the kernels and the autograd wiring.

Kernels receive the activation as an integer code and ``clamp < 0`` as "no clamp".
"""
import math

import torch

# name -> (default alpha, default gain)
ACTIVATIONS = {
    "linear": (0.0, 1.0),
    "relu": (0.0, math.sqrt(2)),
    "lrelu": (0.2, math.sqrt(2)),
    "tanh": (0.0, 1.0),
    "sigmoid": (0.0, 1.0),
    "elu": (0.0, 1.0),
    "selu": (0.0, 1.0),
    "softplus": (0.0, 1.0),
    "swish": (0.0, math.sqrt(2)),
}
ACT_CODES = {name: code for code, name in enumerate(ACTIVATIONS)}
LINEAR, RELU, LRELU, TANH, SIGMOID, ELU, SELU, SOFTPLUS, SWISH = range(len(ACTIVATIONS))
NO_CLAMP = -1.0

def _real(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be None or a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def resolve_activation(act, alpha, gain, clamp):
    """Checked (alpha, gain, clamp) with the activation's defaults for None (clamp None stays None)."""
    if not isinstance(act, str) or act not in ACTIVATIONS:
        raise ValueError(f"act must be one of {sorted(ACTIVATIONS)}, got {act!r}")
    default_alpha, default_gain = ACTIVATIONS[act]
    alpha = default_alpha if alpha is None else _real(alpha, "alpha")
    gain = default_gain if gain is None else _real(gain, "gain")
    if clamp is not None:
        clamp = _real(clamp, "clamp")
        if clamp < 0:
            raise ValueError(f"clamp must be None (no clamping) or >= 0, got {clamp}")
    return alpha, gain, clamp


# Activations whose derivative is piecewise constant: no second-order term.
_ZERO_SECOND_DERIVATIVE = (LINEAR, RELU, LRELU)


def has_second_derivative(act: int) -> bool:
    return act not in _ZERO_SECOND_DERIVATIVE


def saves_output(act: int, alpha: float, gain: float, clamp: float, dtype: torch.dtype) -> bool:
    """Whether the backward can work from y (the output) instead of x.

    y determines act'(x + b) when act is invertible from its output (all but swish), gain > 0 and,
    for lrelu, alpha >= 0. With clamping the mask |y| < clamp is exact only when y is stored in the
    compute precision (float32); fp16/bf16 rounding could turn an unclamped value into +-clamp.
    """
    if act == SWISH or gain <= 0 or (act == LRELU and alpha < 0):
        return False
    return clamp < 0 or dtype == torch.float32
