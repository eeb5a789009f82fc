"""rosinality's fused_act: leaky ReLU of (input + bias along dim 1), times scale.

Unlike the original, whose CPU path ignores ``negative_slope``, the slope is honoured on every device.
"""
import torch

from ...ops.bias_act import bias_act


def fused_leaky_relu(input, bias=None, negative_slope=0.2, scale=2 ** 0.5):
    """out = leaky_relu(input + bias.view(1, C, 1, ...), negative_slope) * scale."""
    if bias is not None and bias.dtype != input.dtype:
        bias = bias.to(input.dtype)
    return bias_act(input, bias, dim=1, act="lrelu", alpha=negative_slope, gain=scale)


class FusedLeakyReLU(torch.nn.Module):
    """Learned per-channel bias + leaky ReLU + scale; parameter name ``bias`` as in the original."""

    def __init__(self, channel, bias=True, negative_slope=0.2, scale=2 ** 0.5):
        super().__init__()
        self.bias = torch.nn.Parameter(torch.zeros(channel)) if bias else None
        self.negative_slope = negative_slope
        self.scale = scale

    def forward(self, input):
        return fused_leaky_relu(input, self.bias, self.negative_slope, self.scale)
