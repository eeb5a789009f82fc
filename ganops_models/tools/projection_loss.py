"""Distances between a synthesised image and the projector's target (both [1, C, H, W] in [-1, 1]).

* :class:`LPIPSDistance` (``--vgg PATH``): LPIPS-VGG16 as in NVIDIA's projector (which computes the same
  distance with its TorchScript ``vgg16.pt``); images larger than 256 pixels are area-downsampled to at
  most 256 first, as NVIDIA does. Grayscale images are repeated to RGB.
* :class:`WeightFreeDistance` (no weights given): the network's own discriminator features plus a
  multi-scale pixel term,
  ``d = sum_l mean_hw |n(D_l(x)) - n(D_l(y))|^2 + sum_s mean (pool_s(x) - pool_s(y))^2``
  where ``D_l`` are the outputs of D's blocks (every resolution down to 8), ``n`` divides by the
  per-pixel channel norm (as LPIPS) and ``pool_s`` is 2^s x 2^s average pooling for s = 0, 1, ... while the
  short side is >= 8. The pixel pyramid pulls colours and layout into place; D's features, trained
  to tell this network's pictures apart, add edges and textures. Without a discriminator (a network file
  that has none) only the pixel term is used.
"""
from typing import List, Optional

import torch
from torch import nn
from torch.nn import functional as F

from ganops_models.nn.lpips import LPIPS


def _unit(f: torch.Tensor) -> torch.Tensor:
    return f / (f.square().sum(1, keepdim=True).sqrt() + 1e-10)


def _at_most_256(img: torch.Tensor) -> torch.Tensor:
    h, w = img.shape[-2:]
    if max(h, w) <= 256:
        return img
    s = 256 / max(h, w)
    return F.interpolate(img, size=(round(h * s), round(w * s)), mode="area")


class LPIPSDistance(nn.Module):
    """LPIPS(x, target) summed over the batch."""

    def __init__(self, lpips: LPIPS, target: torch.Tensor):
        super().__init__()
        self.lpips = lpips
        self.register_buffer("target", self._prepare(target.detach()))

    @staticmethod
    def _prepare(img: torch.Tensor) -> torch.Tensor:
        return _at_most_256(img.expand(-1, 3, -1, -1) if img.shape[1] == 1 else img)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lpips(self._prepare(x), self.target.expand(x.shape[0], -1, -1, -1)).sum()


class WeightFreeDistance(nn.Module):
    """Discriminator features + pixel pyramid (module doc), summed over the batch."""

    def __init__(self, D: Optional[nn.Module], target: torch.Tensor):
        super().__init__()
        self.D = D.eval().requires_grad_(False) if D is not None and hasattr(D, "blocks") else None
        target = target.detach()
        self.register_buffer("target", target)
        self.target_feats = [_unit(f) for f in self._features(target)]

    def _features(self, img: torch.Tensor) -> List[torch.Tensor]:
        feats, x = [], None
        for block in (self.D.blocks if self.D is not None else []):
            x, img = block(x, img)
            feats.append(x.float())
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = x.new_zeros([])
        for f, t in zip(self._features(x), self.target_feats):
            total = total + (_unit(f) - t).square().sum(1).mean((1, 2)).sum()
        a, b = x, self.target.expand(x.shape[0], -1, -1, -1)
        while True:
            total = total + (a - b).square().mean((1, 2, 3)).sum()
            if min(a.shape[-2:]) < 16:
                break
            a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
        return total
