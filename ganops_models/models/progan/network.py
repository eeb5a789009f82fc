"""ProGAN (Karras et al. 2018, NVIDIA progressive_growing_of_gans) generator and discriminator.

Channels at resolution ``r``: ``min(cbase // r, cmax)`` (NVIDIA's ``nf(log2(r) - 1)`` with
fmap_base 8192 is cbase 16384, cmax 512). Every layer has an equalised learning rate: weights
~ N(0, 1) scaled at runtime by ``gain / sqrt(fan_in)`` (gain sqrt(2), 1 for to_rgb and the last
dense layer, sqrt(2)/4 for the latent dense layer), biases 0; leaky ReLU 0.2 without extra gain
(ganops ``bias_act``), pixel norm after every generator layer. Nearest 2x upsampling and 2x2
average pooling are ``ganops.upsample2d`` / ``downsample2d`` with the box filter [1, 1].

G: pixel-normalised z -> dense to 4x4 -> conv3x3 -> per resolution (upsample, conv3x3, conv3x3) ->
to_rgb (1x1, linear). While a resolution fades in (``alpha`` < 1) the output is
``lerp(upsample(to_rgb_prev(x_prev)), to_rgb(x), alpha)``. D mirrors it: from_rgb (1x1, lrelu), per
resolution (conv3x3 + lrelu, conv3x3 pooled before bias + lrelu: NVIDIA's fused ``Conv1_down``), the new block faded in as
``lerp(from_rgb_prev(avgpool(img)), block(from_rgb(img)), alpha)``; at 4x4 minibatch stddev, conv3x3,
dense, dense to one score.

Deliberate difference: NVIDIA always runs both networks at the final resolution (low-resolution
images nearest-upsampled). Here D and the training forward of G run at the current resolution; this
is the same function (average pooling undoes nearest upsampling) at a fraction of the cost. G's default
forward returns the final size (nearest-upsampled), as NVIDIA's, for grids and tools. G holds the
current phase as buffers (NVIDIA's ``lod`` variable), so its EMA copy and checkpoints carry it.
"""
import math

import torch
from torch import nn

import ganops

from ganops_models.nn.layers import normalize_2nd_moment
from ganops_models.models.stylegan2.network import MinibatchStdLayer

LRELU_ALPHA = 0.2
HE_GAIN = math.sqrt(2)


def check_resolution(resolution: int, start_res: int = 4) -> int:
    if resolution < start_res or resolution & (resolution - 1):
        raise ValueError(f"ProGAN resolution must be a power of two >= {start_res}, got {resolution!r}")
    return resolution


def channels(resolution: int, cbase: int, cmax: int) -> int:
    return max(min(cbase // resolution, cmax), 1)


def _box_filter():
    return ganops.setup_filter([1, 1])


def upsample_nearest(x: torch.Tensor, factor: int, f: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour upsampling by a power of two (repeated 2x box-filter upsampling)."""
    while factor > 1:
        x, factor = ganops.upsample2d(x, f.to(x.device)), factor // 2
    return x


def downsample_avg(x: torch.Tensor, factor: int, f: torch.Tensor) -> torch.Tensor:
    """Average pooling by a power of two (repeated 2x2 averages)."""
    while factor > 1:
        x, factor = ganops.downsample2d(x, f.to(x.device)), factor // 2
    return x


class EqualizedDense(nn.Module):
    """y = bias_act(x @ (w * gain / sqrt(in)).T, b, act) with w ~ N(0, 1)."""

    def __init__(self, in_features: int, out_features: int, gain: float = HE_GAIN, activation: str = "lrelu",
                 bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn([out_features, in_features]))
        self.bias = nn.Parameter(torch.zeros([out_features])) if bias else None
        self.weight_gain, self.activation = gain / math.sqrt(in_features), activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.matmul((self.weight * self.weight_gain).to(x.dtype).t())
        if self.bias is None:
            return x
        return ganops.bias_act(x, self.bias.to(x.dtype), act=self.activation, alpha=LRELU_ALPHA, gain=1)


class EqualizedConv(nn.Module):
    """y = bias_act(pool(conv2d(x, w * gain / sqrt(in * k * k), same padding)), b, act) with w ~ N(0, 1);
    ``pool`` is 2x2 average pooling when ``down`` (NVIDIA's fused ``conv2d_downscale2d``: the 3x3 kernel
    padded to 4x4, averaged over its four shifts, stride 2 — the same as pooling the convolution,
    before the bias and the activation), else nothing."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, gain: float = HE_GAIN,
                 activation: str = "lrelu", down: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain, self.activation, self.down = gain / math.sqrt(in_channels * kernel_size ** 2), activation, down
        if down:
            self.register_buffer("down_filter", _box_filter(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = (self.weight * self.weight_gain).to(x.dtype)
        x = ganops.conv2d_resample(x, w, padding=self.weight.shape[-1] // 2)
        if self.down:
            x = downsample_avg(x, 2, self.down_filter)
        return ganops.bias_act(x, self.bias.to(x.dtype), act=self.activation, alpha=LRELU_ALPHA, gain=1)


class GeneratorBlock(nn.Module):
    """[N, in, r/2, r/2] -> [N, out, r, r]: nearest 2x, (conv3x3, lrelu, pixel norm) twice."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv0 = EqualizedConv(in_channels, out_channels, 3)
        self.conv1 = EqualizedConv(out_channels, out_channels, 3)
        self.register_buffer("up_filter", _box_filter(), persistent=False)

    def forward(self, x):
        x = upsample_nearest(x, 2, self.up_filter)
        return normalize_2nd_moment(self.conv1(normalize_2nd_moment(self.conv0(x))))


class ProGANGenerator(nn.Module):
    """z [N, z_dim] -> images [N, C, R, R] (final size) or, with ``final_size=False``, at the current
    phase resolution. The phase is set with :meth:`set_phase`."""

    def __init__(self, resolution: int, z_dim: int = 512, img_channels: int = 3, cbase: int = 16384,
                 cmax: int = 512, start_res: int = 4):
        super().__init__()
        self.resolution, self.start_res = check_resolution(resolution, start_res), check_resolution(start_res)
        self.z_dim, self.img_channels = z_dim, img_channels
        self.resolutions = [start_res << i for i in range(int(math.log2(resolution // start_res)) + 1)]
        c0 = channels(start_res, cbase, cmax)
        self.dense = EqualizedDense(z_dim, c0 * start_res ** 2, gain=HE_GAIN / 4, bias=False)
        self.dense_bias = nn.Parameter(torch.zeros([c0]))
        self.conv = EqualizedConv(c0, c0, 3)
        self.blocks = nn.ModuleDict({str(r): GeneratorBlock(channels(r // 2, cbase, cmax), channels(r, cbase, cmax))
                                     for r in self.resolutions[1:]})
        self.to_rgb = nn.ModuleDict({str(r): EqualizedConv(channels(r, cbase, cmax), img_channels, 1, gain=1,
                                                           activation="linear") for r in self.resolutions})
        self.register_buffer("up_filter", _box_filter(), persistent=False)
        self.register_buffer("phase_resolution", torch.tensor(start_res))
        self.register_buffer("phase_alpha", torch.tensor(1.0))
        # Host copy of the phase buffers (forward picks layers by it, so it never reads the device);
        # kept equal to them by set_phase and by loading a state dict.
        self.phase = (start_res, 1.0)
        self.register_load_state_dict_post_hook(ProGANGenerator._phase_from_buffers)

    def set_phase(self, resolution: int, alpha: float) -> None:
        if resolution not in self.resolutions or not 0 <= alpha <= 1:
            raise ValueError(f"phase must have a resolution in {self.resolutions} and alpha in [0, 1], "
                             f"got {resolution}, {alpha}")
        self.phase_resolution.fill_(resolution)
        self.phase_alpha.fill_(alpha)
        self.phase = (int(resolution), float(alpha))

    @staticmethod
    def _phase_from_buffers(module: "ProGANGenerator", incompatible_keys) -> None:
        """After load_state_dict: refresh the host copy from the loaded buffers (one read, at load time)."""
        module.phase = (int(module.phase_resolution), float(module.phase_alpha))

    def forward(self, z: torch.Tensor, final_size: bool = True) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must be [N, {self.z_dim}], got {tuple(z.shape)}")
        res, alpha = self.phase
        x = self.dense(normalize_2nd_moment(z.float())).reshape(z.shape[0], -1, self.start_res, self.start_res)
        x = normalize_2nd_moment(ganops.bias_act(x, self.dense_bias.to(x.dtype), act="lrelu", alpha=LRELU_ALPHA,
                                                 gain=1))
        x = normalize_2nd_moment(self.conv(x))
        prev = None
        for r in self.resolutions[1:self.resolutions.index(res) + 1]:
            prev = x
            x = self.blocks[str(r)](x)
        img = self.to_rgb[str(res)](x)
        if alpha < 1 and prev is not None:
            img = torch.lerp(upsample_nearest(self.to_rgb[str(res // 2)](prev), 2, self.up_filter), img, alpha)
        return upsample_nearest(img, self.resolution // res, self.up_filter) if final_size else img


class DiscriminatorBlock(nn.Module):
    """[N, in, r, r] -> [N, out, r/2, r/2]: conv3x3 + lrelu, then conv3x3 pooled 2x2 before its bias and
    lrelu (NVIDIA's D with ``fused_scale=True``, its default: ``Conv1_down``)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv0 = EqualizedConv(in_channels, in_channels, 3)
        self.conv1 = EqualizedConv(in_channels, out_channels, 3, down=True)

    def forward(self, x):
        return self.conv1(self.conv0(x))


class ProGANDiscriminator(nn.Module):
    """images [N, C, r, r] at any grown resolution r -> scores [N]; ``alpha`` fades in r's block."""

    def __init__(self, resolution: int, img_channels: int = 3, cbase: int = 16384, cmax: int = 512,
                 mbstd_group: int = 4, start_res: int = 4):
        super().__init__()
        self.resolution, self.start_res = check_resolution(resolution, start_res), check_resolution(start_res)
        self.img_channels = img_channels
        self.resolutions = [start_res << i for i in range(int(math.log2(resolution // start_res)) + 1)]
        self.from_rgb = nn.ModuleDict({str(r): EqualizedConv(img_channels, channels(r, cbase, cmax), 1)
                                       for r in self.resolutions})
        self.blocks = nn.ModuleDict({str(r): DiscriminatorBlock(channels(r, cbase, cmax), channels(r // 2, cbase, cmax))
                                     for r in self.resolutions[1:]})
        c0 = channels(start_res, cbase, cmax)
        self.mbstd = MinibatchStdLayer(mbstd_group, 1) if mbstd_group > 0 else None
        self.conv = EqualizedConv(c0 + (1 if mbstd_group > 0 else 0), c0, 3)
        self.dense = EqualizedDense(c0 * start_res ** 2, c0)
        self.out = EqualizedDense(c0, 1, gain=1, activation="linear")
        self.register_buffer("down_filter", _box_filter(), persistent=False)

    def forward(self, img: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
        size = img.shape[-1]
        # res: a Python int (it names the blocks) also when torch.compile(dynamic=True) makes size symbolic
        res = next((r for r in self.resolutions if r == size), None)
        if img.ndim != 4 or img.shape[1] != self.img_channels or img.shape[-2] != size or res is None:
            raise ValueError(f"img must be [N, {self.img_channels}, r, r] with r in {self.resolutions}, "
                             f"got {tuple(img.shape)}")
        x = self.from_rgb[str(res)](img)
        if res > self.start_res:
            x = self.blocks[str(res)](x)
            if alpha < 1:
                x = torch.lerp(self.from_rgb[str(res // 2)](downsample_avg(img, 2, self.down_filter)), x, alpha)
        for r in reversed(self.resolutions[1:self.resolutions.index(res)]):
            x = self.blocks[str(r)](x)
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        return self.out(self.dense(x.flatten(1))).flatten()
