"""FastGAN generator and discriminator (Liu et al. 2021, "Towards Faster and Stabilized GAN
Training for High-fidelity Few-shot Image Synthesis"), for square resolutions 64 to 1024.

At 256, 512 and 1024 the layers, channel counts and parameter counts are those of the official
code (odegeasslbc/FastGAN-pytorch ``models.py``): with ngf = ndf = 64, z_dim = 256 G has
29,127,846 / 29,174,392 / 29,176,512 and D 11,526,160 / 11,526,496 / 11,528,192 parameters.
G uses the table ``G_NFC_MULT``, D its own ``D_NFC_MULT`` (wider at low resolution), the decoders
a fixed base width of 32. G's outputs are bias-free convs; like the official code, G applies tanh
to both outputs only at R = 1024 (at 64..512 they are unbounded, to be read as [-1, 1] images).

Conventions for every resolution R (the official code only covers R >= 256; these rules reduce to
it there):
  * auxiliary resolution ``S = min(128, R // 2)``: G's second output, D's second head's input and
    the size of D's reconstructions;
  * G's SLE pairs ``4->64, 8->128, 16->256, 32->512``, kept when the target exists (R >= target);
  * D reduces its input to ``min(R, 256)`` (stride-2 convs above 256, a 3x3 conv otherwise), then
    DownBlockComp down to 8x8; D's SLE pairs ``r -> r/8`` for r in 256, 128, 64 when r <= min(R, 256);
  * D's channels at spatial size s are ``nfc[2 s]`` on the big path and ``nfc[4 s]`` on the small path,
    with D's own table ``nfc = channels(ndf, D_NFC_MULT)``.
"""
import math
from typing import Optional, Tuple

import torch
from torch import nn

import ganops

from ganops_models.models.fastgan.blocks import (D_NFC_MULT, DownBlock, DownBlockComp, InitLayer, SimpleDecoder, SLE, UpBlock,
                             batch_norm, channels, lrelu, sn_conv)

RESOLUTIONS = (64, 128, 256, 512, 1024)
G_SLE_PAIRS = ((4, 64), (8, 128), (16, 256), (32, 512))
D_SLE_SOURCES = (256, 128, 64)
TANH_RESOLUTION = 1024      # the official G applies tanh to its outputs only at this resolution


def _check_resolution(resolution: int) -> int:
    if resolution not in RESOLUTIONS:
        raise ValueError(f"FastGAN resolution must be one of {RESOLUTIONS}, got {resolution!r}")
    return resolution


def aux_resolution(resolution: int) -> int:
    """Resolution of the auxiliary (small) image: min(128, R / 2)."""
    return min(128, _check_resolution(resolution) // 2)


def resize_down(x: torch.Tensor, size: int) -> torch.Tensor:
    """Area downsampling of a square power-of-two batch to ``size`` (box filter, ganops.downsample2d)."""
    factor = x.shape[-1] // size
    if factor == 1:
        return x
    if factor * size != x.shape[-1] or factor & (factor - 1):
        raise ValueError(f"resize_down: cannot reduce {x.shape[-1]} to {size} by a power-of-two factor")
    box = torch.full((factor,), 1.0 / factor, device=x.device)  # separable, normalised: no setup_filter
    return ganops.downsample2d(x, box, down=factor)                # data-dependent checks under torch.compile


def crop_quadrant(x: torch.Tensor, part: int) -> torch.Tensor:
    """Quadrant ``part`` of x (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right)."""
    if part not in (0, 1, 2, 3):
        raise ValueError(f"part must be 0, 1, 2 or 3, got {part!r}")
    h, w = x.shape[-2] // 2, x.shape[-1] // 2
    r, c = divmod(part, 2)
    return x[..., r * h:(r + 1) * h, c * w:(c + 1) * w]


class FastGANGenerator(nn.Module):
    """z [N, z_dim] -> (image [N, C, R, R], aux image [N, C, S, S]); tanh-bounded at R = 1024 only.

    Up blocks alternate 'comp' (two convs + noise injection) at 8, 32, 128, 512 and plain at
    16, 64, 256, 1024; SLE gates the 64/128/256/512 maps from the 4/8/16/32 maps.
    """

    def __init__(self, resolution: int = 256, z_dim: int = 256, ngf: int = 64, img_channels: int = 3,
                 antialias: bool = False):
        super().__init__()
        self.resolution = _check_resolution(resolution)
        self.aux_resolution = aux_resolution(resolution)
        self.z_dim, self.img_channels = z_dim, img_channels
        nfc = channels(ngf)
        self.init = InitLayer(z_dim, nfc[4])
        self.ups = nn.ModuleDict()
        r = 8
        while r <= resolution:
            self.ups[str(r)] = UpBlock(nfc[r // 2], nfc[r], comp=int(math.log2(r)) % 2 == 1, antialias=antialias)
            r *= 2
        self.sle = nn.ModuleDict({str(dst): SLE(nfc[src], nfc[dst]) for src, dst in G_SLE_PAIRS if dst <= resolution})
        self.to_big = sn_conv(nfc[resolution], img_channels, 3, 1, 1)
        self.to_aux = sn_conv(nfc[self.aux_resolution], img_channels, 1)
        self.tanh_outputs = resolution == TANH_RESOLUTION

    def forward(self, z: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must be [N, {self.z_dim}], got {tuple(z.shape)}")
        feats = {4: self.init(z)}
        x = feats[4]
        for key, block in self.ups.items():
            r = int(key)
            x = block(x)
            if key in self.sle:
                x = self.sle[key](feats[r // 16], x)
            feats[r] = x
        img, aux = self.to_big(x), self.to_aux(feats[self.aux_resolution])
        if self.tanh_outputs:
            img, aux = ganops.bias_act(img, act="tanh", gain=1), ganops.bias_act(aux, act="tanh", gain=1)
        return img, aux


class FastGANDiscriminator(nn.Module):
    """D(image [N, C, R, R], aux [N, C, S, S] or None, part=None) -> logits [N, 50]
    (5x5 hinge logits of the big head, then 5x5 of the small head).

    ``aux=None`` uses the area-downsampled image. With ``part`` in 0..3 (real images only) it
    also returns the reconstructions ``(rec_big, rec_small, rec_part)``, each [N, C, S, S], of the
    whole image from the big path's 8x8 features, of the aux image from the small path's 8x8
    features and of quadrant ``part`` from that quadrant of the big path's 16x16 features.
    """

    def __init__(self, resolution: int = 256, ndf: int = 64, img_channels: int = 3, antialias: bool = False):
        super().__init__()
        self.resolution = _check_resolution(resolution)
        self.aux_resolution = s_res = aux_resolution(resolution)
        self.img_channels = img_channels
        nfc = channels(ndf, D_NFC_MULT)
        big = lambda s: nfc[2 * s]      # noqa: E731  (channels of the big path at spatial size s)
        small = lambda s: nfc[4 * s]    # noqa: E731  (channels of the small path at spatial size s)
        top = min(resolution, 256)
        if resolution <= 256:
            from_big = [sn_conv(img_channels, big(top), 3, 1, 1), lrelu()]
        else:
            from_big, s, c = [], resolution, img_channels
            while s > 256:
                s //= 2
                from_big += [sn_conv(c, big(s), 4, 2, 1)] + ([batch_norm(big(s))] if from_big else []) + [lrelu()]
                c = big(s)
        self.from_big = nn.Sequential(*from_big)
        self.downs = nn.ModuleDict()
        s = top
        while s > 8:
            self.downs[str(s // 2)] = DownBlockComp(big(s), big(s // 2), antialias)
            s //= 2
        self.sle = nn.ModuleDict({str(src // 8): SLE(big(src), big(src // 8)) for src in D_SLE_SOURCES if src <= top})
        self.rf_big = nn.Sequential(sn_conv(big(8), nfc[8], 1), batch_norm(nfc[8]), lrelu(), sn_conv(nfc[8], 1, 4))
        from_small, s = [sn_conv(img_channels, small(s_res // 2), 4, 2, 1), lrelu()], s_res // 2
        while s > 8:
            from_small.append(DownBlock(small(s), small(s // 2), antialias))
            s //= 2
        self.from_small = nn.Sequential(*from_small)
        self.rf_small = sn_conv(small(8), 1, 4)
        self.decoder_big = SimpleDecoder(big(8), s_res, img_channels, antialias)
        self.decoder_part = SimpleDecoder(big(16), s_res, img_channels, antialias)
        self.decoder_small = SimpleDecoder(small(8), s_res, img_channels, antialias)

    def _check(self, x: torch.Tensor, res: int, name: str):
        if x.ndim != 4 or x.shape[1] != self.img_channels or x.shape[-2:] != (res, res):
            raise ValueError(f"{name} must be [N, {self.img_channels}, {res}, {res}], got {tuple(x.shape)}")

    def forward(self, img: torch.Tensor, aux: Optional[torch.Tensor] = None, part: Optional[int] = None):
        self._check(img, self.resolution, "img")
        if aux is None:
            aux = resize_down(img, self.aux_resolution)
        self._check(aux, self.aux_resolution, "aux")
        feats = {}
        x = self.from_big(img)
        feats[x.shape[-1]] = x
        for key, block in self.downs.items():
            r = int(key)
            x = block(x)
            if key in self.sle:
                x = self.sle[key](feats[r * 8], x)
            feats[r] = x
        feat_small = self.from_small(aux)
        logits = torch.cat([self.rf_big(x).flatten(1), self.rf_small(feat_small).flatten(1)], dim=1)
        if part is None:
            return logits
        recs = (self.decoder_big(x), self.decoder_small(feat_small),
                self.decoder_part(crop_quadrant(feats[16], part)))
        return logits, recs
