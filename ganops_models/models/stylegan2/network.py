"""StyleGAN2 generator and discriminator (Karras et al. 2020, with ADA's configuration options).

Resolutions are (H, W) pairs of powers of two; non-square images start from a learned constant of
(4*H/m, 4*W/m) with m = min(H, W), and every block doubles both sides, so a block is named by its
short-side resolution r in 4..m (channels min(channel_base // r, channel_max)). The
``num_fp16_res`` highest block resolutions compute in ``dtype`` (float16 with StyleGAN2's
conv_clamp, or bfloat16), optionally channels_last; everything else is float32.

Generator: z [N, z_dim], c [N, c_dim] -> images [N, img_channels, H, W] float32 (roughly [-1, 1]).
Discriminator: images [N, img_channels, H, W], c -> logits [N, 1] float32.
"""
import math
from typing import Tuple

import torch
from torch import nn

import ganops

from ganops_models.nn.layers import Conv2dLayer, FullyConnectedLayer, MappingNetwork

G_ARCHS = ("orig", "skip", "resnet")
D_ARCHS = ("orig", "skip", "resnet")
NOISE_MODES = ("random", "const", "none")


def _check_resolution(resolution) -> Tuple[int, int]:
    if isinstance(resolution, int):
        resolution = (resolution, resolution)
    h, w = (int(v) for v in resolution)
    pow2 = lambda n: n >= 8 and (n & (n - 1)) == 0  # noqa: E731
    if not (pow2(h) and pow2(w)) or max(h, w) // min(h, w) > 4:
        raise ValueError(f"resolution must be (H, W) powers of two >= 8 with aspect ratio <= 4, got {resolution}")
    return h, w


class _Geometry:
    """Block resolutions and channel counts shared by G and D."""

    def __init__(self, resolution, channel_base: int, channel_max: int, num_fp16_res: int):
        self.resolution = _check_resolution(resolution)
        h, w = self.resolution
        m = min(h, w)
        self.base = (4 * h // m, 4 * w // m)
        self.log2 = m.bit_length() - 1
        self.block_resolutions = [2 ** i for i in range(2, self.log2 + 1)]
        self.channels = {r: min(channel_base // r, channel_max) for r in self.block_resolutions}
        self.fp16_resolution = max(2 ** (self.log2 + 1 - num_fp16_res), 8) if num_fp16_res > 0 else m * 2

    def size(self, r: int) -> Tuple[int, int]:
        return (self.base[0] * r // 4, self.base[1] * r // 4)


def _compute_dtype(precision: str) -> torch.dtype:
    dtypes = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if precision not in dtypes:
        raise ValueError(f"precision must be one of {sorted(dtypes)}, got {precision!r}")
    return dtypes[precision]


# --- generator -----------------------------------------------------------------------------------

class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally 2x up), demodulated, + per-pixel noise, bias, lrelu, clamp:
    one ``ganops.modulated_conv2d`` call."""

    def __init__(self, in_channels, out_channels, w_dim, size, kernel_size=3, up=1, use_noise=True,
                 activation="lrelu", resample_filter=None, conv_clamp=None, channels_last=False):
        super().__init__()
        self.up, self.activation, self.conv_clamp, self.use_noise = up, activation, conv_clamp, use_noise
        self.padding = kernel_size // 2
        self.act_gain = math.sqrt(2) if activation in ("relu", "lrelu", "swish") else 1.0
        self.register_buffer("resample_filter", resample_filter)
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size])
                                   .to(memory_format=memory_format))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        if use_noise:
            self.register_buffer("noise_const", torch.randn(list(size)))
            self.noise_strength = nn.Parameter(torch.zeros([]))

    def forward(self, x, w, noise_mode="random", gain=1.0):
        styles = self.affine(w)
        noise = None
        if self.use_noise and noise_mode == "random":
            h, wd = x.shape[2] * self.up, x.shape[3] * self.up
            noise = torch.randn([x.shape[0], 1, h, wd], device=x.device, dtype=torch.float32) * self.noise_strength
        elif self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return ganops.modulated_conv2d(x, self.weight, styles, noise=noise, up=self.up, padding=self.padding,
                                       resample_filter=self.resample_filter, demodulate=True,
                                       flip_weight=(self.up == 1), bias=self.bias, act=self.activation,
                                       gain=self.act_gain * gain, clamp=clamp)


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv without demodulation + bias (+ clamp): features -> image channels."""

    def __init__(self, in_channels, out_channels, w_dim, conv_clamp=None, channels_last=False):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, 1, 1]).to(memory_format=memory_format))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x, w):
        styles = self.affine(w) * self.weight_gain
        return ganops.modulated_conv2d(x, self.weight, styles, demodulate=False, padding=0, bias=self.bias,
                                       clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution of the synthesis network: (const or 2x-up conv) + conv (+ ToRGB), with the
    'orig' / 'skip' (image summed over ToRGB outputs) / 'resnet' (residual 1x1 skip) architecture."""

    def __init__(self, in_channels, out_channels, w_dim, size, img_channels, is_last, architecture="skip",
                 resample_filter=(1, 3, 3, 1), conv_clamp=None, dtype=None, channels_last=False,
                 use_noise=True):
        super().__init__()
        self.in_channels, self.is_last, self.architecture = in_channels, is_last, architecture
        self.dtype = dtype  # None: float32
        self.channels_last = channels_last and dtype is not None
        self.register_buffer("resample_filter", ganops.setup_filter(list(resample_filter)))
        layer_kw = dict(resample_filter=self.resample_filter, conv_clamp=conv_clamp,
                        channels_last=self.channels_last, use_noise=use_noise)
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, *size]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, size, up=2, **layer_kw)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, size, **layer_kw)
        self.num_conv = 1 if in_channels == 0 else 2
        self.num_torgb = 1 if (is_last or architecture == "skip") else 0
        if self.num_torgb:
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp,
                                    channels_last=self.channels_last)
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                                    resample_filter=resample_filter, channels_last=self.channels_last)

    def forward(self, x, img, ws, force_fp32=False, noise_mode="random"):
        ws = ws.unbind(1)
        dtype = self.dtype if (self.dtype is not None and not force_fp32) else torch.float32
        memory_format = torch.channels_last if (self.channels_last and not force_fp32) else torch.contiguous_format
        if self.in_channels == 0:
            x = self.const.to(dtype=dtype).unsqueeze(0).repeat(ws[0].shape[0], 1, 1, 1)
            x = x.to(memory_format=memory_format)
            x = self.conv1(x, ws[0], noise_mode=noise_mode)
        else:
            x = x.to(dtype=dtype, memory_format=memory_format)
            if self.architecture == "resnet":
                y = self.skip(x, gain=math.sqrt(0.5))
                x = self.conv0(x, ws[0], noise_mode=noise_mode)
                x = self.conv1(x, ws[1], noise_mode=noise_mode, gain=math.sqrt(0.5))
                x = y.add(x)
            else:
                x = self.conv0(x, ws[0], noise_mode=noise_mode)
                x = self.conv1(x, ws[1], noise_mode=noise_mode)
        if img is not None:
            img = ganops.upsample2d(img, self.resample_filter)
        if self.num_torgb:
            y = self.torgb(x, ws[self.num_conv]).to(dtype=torch.float32, memory_format=torch.contiguous_format)
            img = img.add(y) if img is not None else y
        return x, img


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> images [N, img_channels, H, W] float32."""

    def __init__(self, w_dim, resolution, img_channels=3, channel_base=32768, channel_max=512, num_fp16_res=0,
                 precision="fp16", architecture="skip", conv_clamp=None, channels_last=False, use_noise=True):
        super().__init__()
        if architecture not in G_ARCHS:
            raise ValueError(f"architecture must be one of {G_ARCHS}, got {architecture!r}")
        geo = _Geometry(resolution, channel_base, channel_max, num_fp16_res)
        self.resolution, self.img_channels, self.w_dim = geo.resolution, img_channels, w_dim
        self.block_resolutions = geo.block_resolutions
        dtype = _compute_dtype(precision)
        self.blocks = nn.ModuleList()
        self.num_ws = 0
        for r in geo.block_resolutions:
            in_ch = geo.channels[r // 2] if r > 4 else 0
            use_low = r >= geo.fp16_resolution and dtype != torch.float32
            block = SynthesisBlock(in_ch, geo.channels[r], w_dim, geo.size(r), img_channels,
                                   is_last=(r == geo.block_resolutions[-1]), architecture=architecture,
                                   conv_clamp=conv_clamp, dtype=dtype if use_low else None,
                                   channels_last=channels_last, use_noise=use_noise)
            self.blocks.append(block)
            self.num_ws += block.num_conv
        self.num_ws += self.blocks[-1].num_torgb

    def forward(self, ws, force_fp32=False, noise_mode="random"):
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"ws must be [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        ws = ws.to(torch.float32)
        x = img = None
        w_idx = 0
        for block in self.blocks:
            block_ws = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            x, img = block(x, img, block_ws, force_fp32=force_fp32, noise_mode=noise_mode)
            w_idx += block.num_conv
        return img


class Generator(nn.Module):
    """z (+ c) -> mapping -> ws -> synthesis -> images. ``z_dim``/``c_dim``/``w_dim``/``num_ws``/
    ``resolution``/``img_channels`` are attributes."""

    def __init__(self, z_dim=512, c_dim=0, w_dim=512, resolution=(256, 256), img_channels=3, mapping_layers=8,
                 **synthesis_kwargs):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.img_channels = z_dim, c_dim, w_dim, img_channels
        self.synthesis = SynthesisNetwork(w_dim, resolution, img_channels, **synthesis_kwargs)
        self.resolution, self.num_ws = self.synthesis.resolution, self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, num_ws=self.num_ws, num_layers=mapping_layers)

    def forward(self, z, c=None, truncation_psi=1.0, truncation_cutoff=None, noise_mode="random",
                update_w_avg=False, force_fp32=False):
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_w_avg=update_w_avg)
        return self.synthesis(ws, noise_mode=noise_mode, force_fp32=force_fp32)


# --- discriminator -------------------------------------------------------------------------------

class DiscriminatorBlock(nn.Module):
    """One resolution of D: (FromRGB) + conv + 2x-down conv, 'orig' / 'skip' (image pyramid fed to
    every block) / 'resnet' (residual 1x1 down skip, outputs scaled by sqrt(0.5))."""

    def __init__(self, in_channels, tmp_channels, out_channels, img_channels, architecture="resnet",
                 resample_filter=(1, 3, 3, 1), conv_clamp=None, dtype=None, channels_last=False):
        super().__init__()
        self.in_channels, self.architecture = in_channels, architecture
        self.dtype = dtype
        self.channels_last = channels_last and dtype is not None
        self.register_buffer("resample_filter", ganops.setup_filter(list(resample_filter)))
        kw = dict(conv_clamp=conv_clamp, channels_last=self.channels_last)
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, 1, activation="lrelu", **kw)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, activation="lrelu", **kw)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, 3, activation="lrelu", down=2,
                                 resample_filter=resample_filter, **kw)
        if architecture == "resnet":
            self.skip = Conv2dLayer(tmp_channels, out_channels, 1, bias=False, down=2,
                                    resample_filter=resample_filter, channels_last=self.channels_last)

    def forward(self, x, img, force_fp32=False):
        dtype = self.dtype if (self.dtype is not None and not force_fp32) else torch.float32
        memory_format = torch.channels_last if (self.channels_last and not force_fp32) else torch.contiguous_format
        if x is not None:
            x = x.to(dtype=dtype, memory_format=memory_format)
        if self.in_channels == 0 or self.architecture == "skip":
            img = img.to(dtype=dtype, memory_format=memory_format)
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = ganops.downsample2d(img, self.resample_filter) if self.architecture == "skip" else None
        if self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x)
            x = self.conv1(x, gain=math.sqrt(0.5))
            x = y.add(x)
        else:
            x = self.conv1(self.conv0(x))
        return x, img


class MinibatchStdLayer(nn.Module):
    """Appends ``num_channels`` feature maps holding the std over groups of ``group_size`` samples
    (averaged over channels and pixels). The group is gcd(group_size, N) so any batch works; sample i
    belongs to group i mod (N / group), as NVIDIA's reshape to [group, N / group, ...] puts it
    (``group_size`` 0: one group of N).

    The group statistics are computed with an [N, N] same-group mask (a matmul over the batch) instead
    of a reshape by the group, so no shape depends on gcd(group_size, N): one compiled graph serves
    every batch size (``torch.compile(D, dynamic=True)``). The two matmuls run in float64, so TF32
    matmuls (``torch.set_float32_matmul_precision('high')``) cannot coarsen the statistic."""

    def __init__(self, group_size: int, num_channels: int = 1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x):
        n, c, h, w = x.shape
        f = self.num_channels
        index = torch.arange(n, device=x.device)
        size = index.new_full((), n)                                # N as a tensor: no guard on its value
        group = torch.gcd(size, torch.full_like(size, self.group_size)) if self.group_size > 0 else size
        member = index % (size // group)                            # which group sample i is in
        mask = (member[:, None] == member[None, :]).double() / group.double()   # [N, N] averaging matrix
        y = x.double().reshape(n, -1)
        y = y - mask @ y                                            # deviation from the group mean
        y = mask @ y.square()                                       # group variance
        y = (y.float() + 1e-8).sqrt().reshape(n, f, -1).mean(dim=2)  # [N, F], float32 as NVIDIA's
        y = y.reshape(n, f, 1, 1).expand(n, f, h, w)
        return torch.cat([x, y.to(x.dtype)], dim=1)


class DiscriminatorEpilogue(nn.Module):
    """Last block at the base size: (FromRGB), minibatch std, conv, FC, output FC (or projection on
    the label embedding ``cmap``: logits = sum(x * cmap) / sqrt(cmap_dim))."""

    def __init__(self, in_channels, cmap_dim, size, img_channels, architecture="resnet", mbstd_group_size=4,
                 mbstd_num_channels=1, conv_clamp=None):
        super().__init__()
        self.architecture, self.cmap_dim = architecture, cmap_dim
        if architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, in_channels, 1, activation="lrelu")
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, 3, activation="lrelu",
                                conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * size[0] * size[1], in_channels, activation="lrelu")
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x, img, cmap):
        x = x.to(dtype=torch.float32, memory_format=torch.contiguous_format)
        if self.architecture == "skip":
            x = x + self.fromrgb(img.to(dtype=torch.float32, memory_format=torch.contiguous_format))
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.out(self.fc(x.flatten(1)))
        if self.cmap_dim > 0:
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / math.sqrt(self.cmap_dim))
        return x


class Discriminator(nn.Module):
    """images [N, img_channels, H, W] (+ one-hot c [N, c_dim]) -> logits [N, 1] float32.
    ``mbstd_group_size`` 0 = the whole minibatch is one group; ``mapping_layers``: depth of the label
    mapping of a conditional D (8 in StyleGAN2-ADA, 0 in networks converted from TensorFlow)."""

    def __init__(self, c_dim=0, resolution=(256, 256), img_channels=3, architecture="resnet", channel_base=32768,
                 channel_max=512, num_fp16_res=0, precision="fp16", conv_clamp=None, channels_last=False,
                 mbstd_group_size=4, mbstd_num_channels=1, cmap_dim=None, mapping_layers=8):
        super().__init__()
        if architecture not in D_ARCHS:
            raise ValueError(f"architecture must be one of {D_ARCHS}, got {architecture!r}")
        geo = _Geometry(resolution, channel_base, channel_max, num_fp16_res)
        self.c_dim, self.resolution, self.img_channels = c_dim, geo.resolution, img_channels
        dtype = _compute_dtype(precision)
        block_resolutions = geo.block_resolutions[::-1][:-1]   # m, m/2, ..., 8
        self.blocks = nn.ModuleList()
        for r in block_resolutions:
            in_ch = geo.channels[r] if r < geo.block_resolutions[-1] else 0
            use_low = r >= geo.fp16_resolution and dtype != torch.float32
            self.blocks.append(DiscriminatorBlock(in_ch, geo.channels[r], geo.channels[r // 2], img_channels,
                                                  architecture=architecture, conv_clamp=conv_clamp,
                                                  dtype=dtype if use_low else None, channels_last=channels_last))
        if cmap_dim is None:
            cmap_dim = geo.channels[4]
        self.cmap_dim = cmap_dim if c_dim > 0 else 0
        if c_dim > 0:
            self.mapping = MappingNetwork(z_dim=0, c_dim=c_dim, w_dim=self.cmap_dim, num_ws=None, w_avg_beta=None,
                                          num_layers=mapping_layers)
        self.b4 = DiscriminatorEpilogue(geo.channels[4], self.cmap_dim, geo.size(4), img_channels,
                                        architecture=architecture, mbstd_group_size=mbstd_group_size,
                                        mbstd_num_channels=mbstd_num_channels, conv_clamp=conv_clamp)

    def forward(self, img, c=None, force_fp32=False):
        if img.ndim != 4 or img.shape[1] != self.img_channels or tuple(img.shape[2:]) != self.resolution:
            raise ValueError(f"img must be [N, {self.img_channels}, {self.resolution[0]}, {self.resolution[1]}], "
                             f"got {list(img.shape)}")
        x = None
        for block in self.blocks:
            x, img = block(x, img, force_fp32=force_fp32)
        cmap = self.mapping(None, c) if self.c_dim > 0 else None
        return self.b4(x, img, cmap)


def frozen_d_parameters(D: Discriminator, num_layers: int) -> list:
    """Parameters of D's first ``num_layers`` layers counted from the image side, as StyleGAN2-ADA's
    Freeze-D counts them: per block fromrgb (when present), conv0, conv1, skip (when present); the
    epilogue (b4) is never frozen."""
    params, index = [], 0
    for block in D.blocks:
        for name in ("fromrgb", "conv0", "conv1", "skip"):
            layer = getattr(block, name, None)
            if layer is not None:
                if index < num_layers:
                    params.extend(layer.parameters())
                index += 1
    return params
