"""torch.nn modules built on the ganops ops."""
from typing import Optional

import torch

from .ops.bias_act import ACTIVATIONS, bias_act


class BiasAct(torch.nn.Module):
    """Learned per-channel bias followed by bias_act.

    forward(x) = bias_act(x, bias.to(x.dtype) * lr_multiplier, dim, act, alpha, gain, clamp, impl).
    The parameter starts at ``bias_init`` (as in StyleGAN2-ADA, the effective bias is scaled by
    ``lr_multiplier``, which scales its learning rate by the same factor).
    """

    def __init__(self, channels: int, act: str = "linear", alpha: Optional[float] = None,
                 gain: Optional[float] = None, clamp: Optional[float] = None, bias_init: float = 0.0,
                 lr_multiplier: float = 1.0, dim: int = 1, impl: Optional[str] = None):
        super().__init__()
        if isinstance(channels, bool) or not isinstance(channels, int) or channels <= 0:
            raise ValueError(f"channels must be a positive int, got {channels!r}")
        if act not in ACTIVATIONS:
            raise ValueError(f"act must be one of {sorted(ACTIVATIONS)}, got {act!r}")
        self.act, self.alpha, self.gain, self.clamp = act, alpha, gain, clamp
        self.lr_multiplier = float(lr_multiplier)
        self.dim, self.impl = dim, impl
        self.bias = torch.nn.Parameter(torch.full([channels], float(bias_init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.bias.to(x.dtype)
        if self.lr_multiplier != 1:
            b = b * self.lr_multiplier
        return bias_act(x, b, self.dim, self.act, self.alpha, self.gain, self.clamp, self.impl)

    def extra_repr(self) -> str:
        return (f"channels={self.bias.shape[0]}, act={self.act!r}, alpha={self.alpha}, gain={self.gain}, "
                f"clamp={self.clamp}, lr_multiplier={self.lr_multiplier}, dim={self.dim}")
