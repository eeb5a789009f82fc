"""Building blocks of FastGAN (Liu et al. 2021): spectral-norm convs, GLU up blocks, down blocks,
Skip-Layer Excitation and the discriminator's reconstruction decoder.

Initialisation is the official ``weights_init``: conv weights ~ N(0, 0.02) (drawn before spectral
norm wraps them, so its power iteration starts from the final weights), BatchNorm gamma ~ N(1, 0.02)
and beta = 0. No layer has a bias except BatchNorm's beta.

Activations go through ``ganops.bias_act`` (gain 1, FastGAN's plain activations) and 2x resampling
through ``ganops.upsample2d`` / ``ganops.downsample2d``: with ``antialias=False`` the filters are the
box ``[1, 1]`` (exactly nearest-neighbour upsampling / 2x2 average pooling, FastGAN's choice); with
``antialias=True`` the binomial ``[1, 3, 3, 1]`` (StyleGAN2's low-pass).
"""
import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

import ganops

from ganops_models.nn.activations import Act

# Channel multipliers (the official nfc_multi tables); channels = int(mult * width). The generator
# and the decoders use G_NFC_MULT (keyed by output resolution), the discriminator D_NFC_MULT (keyed
# as the official code keys it: twice the spatial size on the big path, four times on the small one).
G_NFC_MULT = {4: 16, 8: 8, 16: 4, 32: 2, 64: 2, 128: 1, 256: 0.5, 512: 0.25, 1024: 0.125}
D_NFC_MULT = {4: 16, 8: 16, 16: 8, 32: 4, 64: 2, 128: 1, 256: 0.5, 512: 0.25, 1024: 0.125}
DECODER_WIDTH = 32          # the official decoders' fixed base width (independent of ndf)
LRELU_ALPHA = 0.2
INIT_STD = 0.02


def channels(width: int, mult: dict = G_NFC_MULT) -> dict:
    """An nfc table: resolution -> channel count ``max(1, int(mult[r] * width))``."""
    return {r: max(1, int(m * width)) for r, m in mult.items()}


def sn_conv(cin: int, cout: int, k: int, stride: int = 1, padding: int = 0) -> nn.Module:
    """Bias-free spectral-normalised Conv2d, weight ~ N(0, 0.02)."""
    return _init_sn(nn.Conv2d(cin, cout, k, stride, padding, bias=False))


def sn_conv_transpose(cin: int, cout: int, k: int) -> nn.Module:
    """Bias-free spectral-normalised ConvTranspose2d (stride 1, no padding), weight ~ N(0, 0.02)."""
    return _init_sn(nn.ConvTranspose2d(cin, cout, k, 1, 0, bias=False))


def _init_sn(conv: nn.Module) -> nn.Module:
    nn.init.normal_(conv.weight, 0.0, INIT_STD)
    return spectral_norm(conv)


def batch_norm(c: int) -> nn.BatchNorm2d:
    """BatchNorm2d with gamma ~ N(1, 0.02), beta = 0."""
    bn = nn.BatchNorm2d(c)
    nn.init.normal_(bn.weight, 1.0, INIT_STD)
    nn.init.zeros_(bn.bias)
    return bn


def resample_filter(antialias: bool) -> torch.Tensor:
    return ganops.setup_filter([1, 3, 3, 1] if antialias else [1, 1])


def lrelu() -> Act:
    return Act("lrelu", LRELU_ALPHA)


class GLU(nn.Module):
    """Gated linear unit over channels: ``a * sigmoid(b)`` with ``[a, b] = x.chunk(2, dim=1)``."""

    def forward(self, x):
        a, b = x.chunk(2, dim=1)
        return a * ganops.bias_act(b, act="sigmoid", gain=1)


class Up2(nn.Module):
    """2x upsampling via ganops.upsample2d (box filter = nearest neighbour, or binomial)."""

    def __init__(self, antialias: bool = False):
        super().__init__()
        self.register_buffer("f", resample_filter(antialias), persistent=False)

    def forward(self, x):
        return ganops.upsample2d(x, self.f, up=2)


class Down2(nn.Module):
    """2x downsampling via ganops.downsample2d (box filter = 2x2 average pooling, or binomial)."""

    def __init__(self, antialias: bool = False):
        super().__init__()
        self.register_buffer("f", resample_filter(antialias), persistent=False)

    def forward(self, x):
        return ganops.downsample2d(x, self.f, down=2)


class NoiseInjection(nn.Module):
    """``x + w * n`` with one learned scalar ``w`` (starts at 0) and fresh ``n ~ N(0, 1)`` [N, 1, H, W];
    identity while ``noise_enabled`` is False (noise-free sampling)."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.noise_enabled = True

    def forward(self, x):
        if not self.noise_enabled:
            return x
        n, _, h, w = x.shape
        return x + self.weight * torch.randn(n, 1, h, w, device=x.device, dtype=x.dtype)


class InitLayer(nn.Module):
    """z [N, z_dim] -> [N, C, 4, 4]: 4x4 transposed conv, batch norm, GLU."""

    def __init__(self, z_dim: int, cout: int):
        super().__init__()
        self.net = nn.Sequential(sn_conv_transpose(z_dim, cout * 2, 4), batch_norm(cout * 2), GLU())

    def forward(self, z):
        return self.net(z.view(z.shape[0], -1, 1, 1))


class UpBlock(nn.Module):
    """Upsample x2, 3x3 conv, BN, GLU; the 'comp' variant adds noise injection after each conv
    and a second conv/noise/BN/GLU stage."""

    def __init__(self, cin: int, cout: int, comp: bool, antialias: bool = False):
        super().__init__()
        layers = [Up2(antialias), sn_conv(cin, cout * 2, 3, 1, 1)]
        if comp:
            layers.append(NoiseInjection())
        layers += [batch_norm(cout * 2), GLU()]
        if comp:
            layers += [sn_conv(cout, cout * 2, 3, 1, 1), NoiseInjection(), batch_norm(cout * 2), GLU()]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class SLE(nn.Module):
    """Skip-Layer Excitation: ``big * sigmoid(conv1x1(swish(conv4x4(avgpool4x4(small)))))``,
    a per-channel gate for a high-resolution map computed from a low-resolution one."""

    def __init__(self, c_small: int, c_big: int):
        super().__init__()
        self.conv4 = sn_conv(c_small, c_big, 4)
        self.swish = Act("swish")
        self.conv1 = sn_conv(c_big, c_big, 1)
        self.sigmoid = Act("sigmoid")

    def gate(self, small):
        """[N, c_small, h, w] -> [N, c_big, 1, 1] in (0, 1)."""
        s = nn.functional.adaptive_avg_pool2d(small, 4)
        return self.sigmoid(self.conv1(self.swish(self.conv4(s))))

    def forward(self, small, big):
        return big * self.gate(small)


class DownBlock(nn.Module):
    """4x4 stride-2 conv, BN, LeakyReLU(0.2)."""

    def __init__(self, cin: int, cout: int, antialias: bool = False):
        super().__init__()
        self.net = nn.Sequential(*_strided_conv(cin, cout, antialias), batch_norm(cout), lrelu())

    def forward(self, x):
        return self.net(x)


def _strided_conv(cin: int, cout: int, antialias: bool):
    """4x4 stride-2 conv (H -> H/2); with antialias, low-pass filtered first (ganops.filter2d)."""
    conv = [sn_conv(cin, cout, 4, 2, 1)]
    return ([Blur()] + conv) if antialias else conv


class Blur(nn.Module):
    """Same-size low-pass ``ganops.filter2d`` with the [1, 3, 3, 1] filter (pads 2 before, 1 after
    per axis), so a following 4x4/stride-2/pad-1 conv sees an anti-aliased input."""

    def __init__(self):
        super().__init__()
        self.register_buffer("f", resample_filter(True), persistent=False)

    def forward(self, x):
        return ganops.filter2d(x, self.f)


class DownBlockComp(nn.Module):
    """Average of a strided-conv path (4x4 s2 conv, BN, lrelu, 3x3 conv, BN, lrelu) and a
    pooled path (2x downsample, 1x1 conv, BN, lrelu)."""

    def __init__(self, cin: int, cout: int, antialias: bool = False):
        super().__init__()
        self.main = nn.Sequential(*_strided_conv(cin, cout, antialias), batch_norm(cout), lrelu(),
                                  sn_conv(cout, cout, 3, 1, 1), batch_norm(cout), lrelu())
        self.direct = nn.Sequential(Down2(antialias), sn_conv(cin, cout, 1), batch_norm(cout), lrelu())

    def forward(self, x):
        return (self.main(x) + self.direct(x)) / 2


class SimpleDecoder(nn.Module):
    """Self-supervision decoder of D: [N, C, h, w] features, average-pooled to 8x8 ->
    [N, img_channels, out_res, out_res] in (-1, 1) through (Up2, 3x3 conv, BN, GLU) blocks with
    ``channels(32)[r]`` channels at resolution r (the official fixed widths 128/64/64/32 for
    16/32/64/128), then a bias-free 3x3 conv and tanh."""

    def __init__(self, cin: int, out_res: int, img_channels: int = 3, antialias: bool = False):
        super().__init__()
        if out_res < 16 or out_res & (out_res - 1):
            raise ValueError(f"SimpleDecoder: out_res must be a power of two >= 16, got {out_res}")
        nfc = channels(DECODER_WIDTH)
        blocks, c, r = [], cin, 8
        while r < out_res:
            r *= 2
            blocks.append(UpBlock(c, nfc[r], comp=False, antialias=antialias))
            c = nfc[r]
        self.blocks = nn.Sequential(*blocks)
        self.to_rgb = sn_conv(c, img_channels, 3, 1, 1)
        self.tanh = Act("tanh")

    def forward(self, feat):
        x = nn.functional.adaptive_avg_pool2d(feat, 8)
        return self.tanh(self.to_rgb(self.blocks(x)))
