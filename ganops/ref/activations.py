"""The activation table of bias_act: the one place that names the activations.

Each entry gives the name, the integer code the fused kernels receive (the Triton kernels' ``act``
argument and the ``Act`` enum of csrc/cuda/bias_act.h; tests/test_activation_table.py checks both
against this table), the default alpha and gain, whether the second derivative is zero everywhere
(piecewise-linear activations: no second-order term in the backward) and the reference function
``fn(v, alpha)`` in differentiable PyTorch.
"""
import math
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F


class Activation(NamedTuple):
    name: str
    code: int
    alpha: float                   # default alpha (used by lrelu only)
    gain: float                    # default gain
    zero_second_derivative: bool   # act'' == 0 wherever it exists
    fn: Callable[[torch.Tensor, float], torch.Tensor]


_TABLE = (
    ("linear", 0.0, 1.0, True, lambda v, a: v),
    ("relu", 0.0, math.sqrt(2), True, lambda v, a: F.relu(v)),
    ("lrelu", 0.2, math.sqrt(2), True, lambda v, a: F.leaky_relu(v, a)),
    ("tanh", 0.0, 1.0, False, lambda v, a: torch.tanh(v)),
    ("sigmoid", 0.0, 1.0, False, lambda v, a: torch.sigmoid(v)),
    ("elu", 0.0, 1.0, False, lambda v, a: F.elu(v)),
    ("selu", 0.0, 1.0, False, lambda v, a: F.selu(v)),
    ("softplus", 0.0, 1.0, False, lambda v, a: F.softplus(v)),
    ("swish", 0.0, math.sqrt(2), False, lambda v, a: v * torch.sigmoid(v)),
)

# name -> Activation, in code order
ACTIVATIONS = {name: Activation(name, code, *rest) for code, (name, *rest) in enumerate(_TABLE)}
