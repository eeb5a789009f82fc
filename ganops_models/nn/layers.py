"""Building blocks shared by the models: StyleGAN2's equalised-learning-rate layers on ganops ops, and
the choice of BatchNorm statistics when sampling.

Weights are stored at unit variance and scaled at runtime by ``1/sqrt(fan_in)`` (times the lr
multiplier for the mapping network), so Adam sees the same effective learning rate for every layer.
All convolutions, resampling and activations go through ganops (``conv2d_resample``,
``modulated_conv2d``, ``upsample2d``/``downsample2d``, ``bias_act``).
"""
import contextlib
import math
from typing import Optional

import torch
from torch import nn

import ganops


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """x / sqrt(mean(x^2) + eps) along ``dim``."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


class FullyConnectedLayer(nn.Module):
    """y = bias_act(x @ (w * lr_mul / sqrt(in)).T, b * lr_mul, act)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: str = "linear",
                 lr_multiplier: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.in_features, self.out_features, self.activation = in_features, out_features, activation
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return ganops.bias_act(x.matmul(w.t()), b, act=self.activation)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, activation={self.activation}"


class Conv2dLayer(nn.Module):
    """Equalised-lr convolution with optional 2x up/down FIR resampling, bias, activation and clamp:
    y = bias_act(conv2d_resample(x, w / sqrt(in*k*k), f, up, down), b, act, gain, clamp)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: str = "linear", up: int = 1, down: int = 1, resample_filter=(1, 3, 3, 1),
                 conv_clamp: Optional[float] = None, channels_last: bool = False):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.activation, self.up, self.down, self.conv_clamp = activation, up, down, conv_clamp
        self.register_buffer("resample_filter", ganops.setup_filter(list(resample_filter)))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)
        self.act_gain = _default_gain(activation)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size])
                                   .to(memory_format=memory_format))
        self.bias = nn.Parameter(torch.zeros([out_channels])) if bias else None

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        w = (self.weight * self.weight_gain).to(x.dtype)   # scaled in float32, as NVIDIA's Conv2dLayer
        b = self.bias.to(x.dtype) if self.bias is not None else None
        x = ganops.conv2d_resample(x, w, f=self.resample_filter, up=self.up, down=self.down,
                                   padding=self.padding, flip_weight=(self.up == 1))
        act_gain = self.act_gain * gain
        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return ganops.bias_act(x, b, act=self.activation, gain=act_gain, clamp=act_clamp)

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
                f"activation={self.activation}, up={self.up}, down={self.down}")


def _default_gain(activation: str) -> float:
    return math.sqrt(2) if activation in ("relu", "lrelu", "swish") else 1.0


class MappingNetwork(nn.Module):
    """z [N, z_dim] (+ one-hot c [N, c_dim]) -> w broadcast to [N, num_ws, w_dim].

    z and the label embedding are each normalised to unit second moment; ``num_layers`` lrelu FC
    layers with lr multiplier 0.01; ``w_avg`` (EMA of w, decay ``w_avg_beta``) is updated when
    ``update_w_avg`` in training mode and used for truncation: w' = lerp(w_avg, w, psi) on the first
    ``truncation_cutoff`` layers (all when None)."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: Optional[int], num_layers: int = 8,
                 activation: str = "lrelu", lr_multiplier: float = 0.01, w_avg_beta: Optional[float] = 0.995):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers, self.w_avg_beta = num_layers, w_avg_beta
        embed_features = w_dim if c_dim > 0 else 0
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        features = [z_dim + embed_features] + [w_dim] * num_layers
        self.layers = nn.ModuleList(FullyConnectedLayer(features[i], features[i + 1], activation=activation,
                                                        lr_multiplier=lr_multiplier) for i in range(num_layers))
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z: Optional[torch.Tensor], c: Optional[torch.Tensor], truncation_psi: float = 1.0,
                truncation_cutoff: Optional[int] = None, update_w_avg: bool = False) -> torch.Tensor:
        parts = []
        if self.z_dim > 0:
            parts.append(normalize_2nd_moment(z.to(torch.float32)))
        if self.c_dim > 0:
            parts.append(normalize_2nd_moment(self.embed(c.to(torch.float32))))
        x = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        for layer in self.layers:
            x = layer(x)
        if update_w_avg and self.training and self.w_avg_beta is not None and self.num_ws is not None:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is None:
            return x
        x = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            head = self.w_avg.lerp(x[:, :cutoff], truncation_psi)
            x = torch.cat([head, x[:, cutoff:]], dim=1)
        return x


@contextlib.contextmanager
def batch_norm_statistics(module: torch.nn.Module, batch: bool):
    """Within the block the BatchNorm layers of ``module`` normalise with the statistics of each batch
    (``batch``: as in training mode; their running statistics and counters are left exactly as they
    were) or with their running statistics (eval mode). Other layers keep their mode."""
    norms = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    saved = [(m.training, {k: b.clone() for k, b in m.named_buffers(recurse=False)}) for m in norms]
    for m in norms:
        m.train(batch)
    try:
        yield
    finally:
        for m, (training, buffers) in zip(norms, saved):
            m.train(training)
            for k, b in buffers.items():
                getattr(m, k).copy_(b)
