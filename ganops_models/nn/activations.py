"""Parameter-free activation module on ``ganops.bias_act`` with FastGAN/DCGAN's unit gain
(biased activations use ``ganops.nn.BiasAct``)."""
from torch import nn

import ganops


class Act(nn.Module):
    """``ganops.bias_act(x, act=act, alpha=alpha, gain=1)``: e.g. plain ReLU, LeakyReLU(0.2), swish."""

    def __init__(self, act: str, alpha=None):
        super().__init__()
        self.act, self.alpha = act, alpha

    def forward(self, x):
        return ganops.bias_act(x, act=self.act, alpha=self.alpha, gain=1)

    def extra_repr(self):
        return f"act={self.act!r}, alpha={self.alpha}"
