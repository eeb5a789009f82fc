"""DCGAN (Radford et al. 2016) generator and discriminator at 32, 64 and 128 pixels.

G: z [N, z_dim] -> 4x4 transposed conv, then (4x4 stride-2 transposed conv, BN, ReLU) doubling the
resolution, channels halving from ``ngf * R / 8`` at 4x4 to ``ngf`` at R/2, and a last transposed
conv to the image with tanh. D mirrors it: stride-2 4x4 convs with LeakyReLU(0.2) (BN on all but
the first) down to 4x4 and a 4x4 conv to one logit per image. Weights ~ N(0, 0.02), BN gains
~ N(1, 0.02) as in the paper. Activations (with the last layers' biases fused) go through
``ganops.bias_act``.
"""
import math

import torch
from torch import nn

import ganops.nn

from ganops_models.nn.activations import Act

RESOLUTIONS = (32, 64, 128)
LRELU_ALPHA = 0.2


def _check_resolution(resolution: int) -> int:
    if resolution not in RESOLUTIONS:
        raise ValueError(f"DCGAN resolution must be one of {RESOLUTIONS}, got {resolution!r}")
    return resolution


def init_weights(module: nn.Module) -> None:
    """DCGAN init: conv weights N(0, 0.02), BN weight N(1, 0.02) and bias 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class DCGANGenerator(nn.Module):
    """z [N, z_dim] -> image [N, C, R, R] in [-1, 1]."""

    def __init__(self, resolution: int = 64, z_dim: int = 100, ngf: int = 64, img_channels: int = 3):
        super().__init__()
        self.resolution = _check_resolution(resolution)
        self.z_dim, self.img_channels = z_dim, img_channels
        n_up = int(math.log2(resolution)) - 2          # stride-2 layers after the 4x4 start
        c = ngf * 2 ** (n_up - 1)
        layers = [nn.ConvTranspose2d(z_dim, c, 4, 1, 0, bias=False), nn.BatchNorm2d(c), Act("relu")]
        for _ in range(n_up - 1):
            layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c // 2), Act("relu")]
            c //= 2
        layers += [nn.ConvTranspose2d(c, img_channels, 4, 2, 1, bias=False),
                   ganops.nn.BiasAct(img_channels, "tanh", gain=1)]
        self.net = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must be [N, {self.z_dim}], got {tuple(z.shape)}")
        return self.net(z[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    """image [N, C, R, R] -> logits [N] (real if positive)."""

    def __init__(self, resolution: int = 64, ndf: int = 64, img_channels: int = 3):
        super().__init__()
        self.resolution = _check_resolution(resolution)
        self.img_channels = img_channels
        n_down = int(math.log2(resolution)) - 2
        layers = [nn.Conv2d(img_channels, ndf, 4, 2, 1, bias=False),
                  ganops.nn.BiasAct(ndf, "lrelu", LRELU_ALPHA, gain=1)]
        c = ndf
        for _ in range(n_down - 1):
            layers += [nn.Conv2d(c, c * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c * 2), Act("lrelu", LRELU_ALPHA)]
            c *= 2
        layers.append(nn.Conv2d(c, 1, 4, 1, 0))
        self.net = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        r = self.resolution
        if img.ndim != 4 or img.shape[1] != self.img_channels or img.shape[-2:] != (r, r):
            raise ValueError(f"img must be [N, {self.img_channels}, {r}, {r}], got {tuple(img.shape)}")
        return self.net(img).flatten()
