"""StyleGAN3 generator (Karras et al. 2021, "Alias-Free Generative Adversarial Networks"), configs T and R.

A port of NVIDIA's ``training/networks_stylegan3.py`` on ganops ops (``modulated_conv2d``,
``filtered_lrelu``); the discriminator is StyleGAN2's (:mod:`.stylegan2`). Parameter and buffer
names are NVIDIA's (``synthesis.input.*``, ``synthesis.L{i}_{size}_{channels}.*``,
``magnitude_ema``, ``up_filter``/``down_filter``, ``w_avg``) except the mapping layers, which are
ganops' ``mapping.layers.{i}`` (NVIDIA ``mapping.fc{i}``), so NVIDIA pickles map one to one.

Layer schedule (N = num_layers, K = num_critical, R = img_resolution), for i = 0..N:
  e_i = min(i / (N - K), 1);  cutoff f_c[i] = f_c0 (R/2 / f_c0)^e_i;  stopband f_t[i] = f_t0 (R/2 * 2^0.3 / f_t0)^e_i
  sampling rate s[i] = 2^ceil(log2(min(2 f_t[i], R)));  half width f_h[i] = max(f_t[i], s[i]/2) - f_c[i]
  size = s[i] + 2 margin (the last two: R);  channels = rint(min(channel_base/2 / f_c[i], channel_max)), last: img_channels
Layer i maps layer i-1's grid to its own: modulated conv (k x k, 'full' padding k-1; 1x1 ToRGB
without demodulation), then ``filtered_lrelu`` with an up filter (Kaiser-windowed sinc of
filter_size * up taps, cutoff f_c[i-1]) and a down filter (same design at f_c[i], or a Kaiser-windowed
jinc when ``use_radial_filters`` and the layer is not critically sampled: config R), at the
temporary rate max(s[i-1], s[i]) * lrelu_upsampling. The input of every layer is scaled by
1/sqrt(magnitude_ema) (EMA of its mean square, updated with ``update_emas``).

Generator: z [N, z_dim], c [N, c_dim] -> images [N, img_channels, R, R] float32.

Deliberate differences from NVIDIA: the modulated convolution is ganops' (StyleGAN2 demodulation,
which makes NVIDIA's extra pre-normalisation of weights and styles a no-op up to the 1e-8 epsilon;
the input gain scales x before the convolution instead of the weights after it, the same linear
map); ``update_emas`` is spelled ``update_w_avg`` in :meth:`Generator.forward` like ganops'
StyleGAN2 and updates only in training mode; layers flagged for fp16 compute in ``precision`` on a
GPU (float32 on the CPU, as NVIDIA).
"""
import math
from typing import Optional

import numpy as np
import scipy.signal
import scipy.special
import torch
from torch import nn

import ganops

from ganops_models.nn.layers import FullyConnectedLayer, MappingNetwork
from ganops_models.models.stylegan2.network import NOISE_MODES, _compute_dtype


def design_lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float,
                          radial: bool = False) -> Optional[torch.Tensor]:
    """None for 1 tap; else a float32 separable Kaiser-windowed sinc [numtaps] (``scipy.signal.firwin``)
    or, ``radial``, a 2-D jinc [numtaps, numtaps] times the outer product of a Kaiser window whose beta
    meets the attenuation of a ``width``-wide transition band, normalised to sum 1."""
    if numtaps == 1:
        return None
    if not radial:
        return torch.as_tensor(scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs),
                               dtype=torch.float32)
    x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(x, x))
    f = scipy.special.j1(2 * cutoff * (np.pi * r)) / (np.pi * r)
    beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2)))
    window = np.kaiser(numtaps, beta)
    f = f * np.outer(window, window)
    return torch.as_tensor(f / np.sum(f), dtype=torch.float32)


class LayerSchedule:
    """Per-layer cutoffs, stopbands, sampling rates, half widths, sizes and channels (module docstring)."""

    def __init__(self, img_resolution: int, img_channels: int, channel_base: int, channel_max: int,
                 num_layers: int, num_critical: int, first_cutoff: float, first_stopband: float,
                 last_stopband_rel: float, margin_size: int):
        last_cutoff = img_resolution / 2
        last_stopband = last_cutoff * last_stopband_rel
        exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
        self.cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
        self.stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
        self.sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(self.stopbands * 2, img_resolution))))
        self.half_widths = np.maximum(self.stopbands, self.sampling_rates / 2) - self.cutoffs
        self.sizes = self.sampling_rates + margin_size * 2
        self.sizes[-2:] = img_resolution
        self.channels = np.rint(np.minimum((channel_base / 2) / self.cutoffs, channel_max))
        self.channels[-1] = img_channels


class SynthesisInput(nn.Module):
    """w [N, w_dim] -> Fourier features [N, channels, size, size]: sin(2 pi (<freq, grid'> + phase)),
    the grid rotated/translated by the affine of w (and the user ``transform``), features mixed by a
    learned [channels, channels] matrix. Frequencies are drawn in a disc of radius ``bandwidth``."""

    def __init__(self, w_dim: int, channels: int, size: int, sampling_rate: float, bandwidth: float):
        super().__init__()
        self.w_dim, self.channels, self.size = w_dim, channels, int(size)
        self.sampling_rate, self.bandwidth = float(sampling_rate), float(bandwidth)
        freqs = torch.randn([channels, 2])
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs /= radii * radii.square().exp().pow(0.25)
        freqs *= bandwidth
        phases = torch.rand([channels]) - 0.5
        self.weight = nn.Parameter(torch.randn([channels, channels]))
        self.affine = FullyConnectedLayer(w_dim, 4)
        with torch.no_grad():
            self.affine.weight.zero_()
            self.affine.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))
        self.register_buffer("transform", torch.eye(3, 3))   # user inverse transform of the image
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", phases)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        n = w.shape[0]
        t = self.affine(w)                                    # (r_c, r_s, t_x, t_y)
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        eye = torch.eye(3, device=w.device).unsqueeze(0).repeat([n, 1, 1])
        m_r, m_t = eye.clone(), eye.clone()
        m_r[:, 0, 0], m_r[:, 0, 1], m_r[:, 1, 0], m_r[:, 1, 1] = t[:, 0], -t[:, 1], t[:, 1], t[:, 0]
        m_t[:, 0, 2], m_t[:, 1, 2] = -t[:, 2], -t[:, 3]
        transforms = m_r @ m_t @ self.transform.unsqueeze(0)
        freqs, phases = self.freqs.unsqueeze(0), self.phases.unsqueeze(0)
        phases = phases + (freqs @ transforms[:, :2, 2:]).squeeze(2)
        freqs = freqs @ transforms[:, :2, :2]
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth)
                      / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)
        theta = torch.eye(2, 3, device=w.device)
        theta[0, 0] = theta[1, 1] = 0.5 * self.size / self.sampling_rate
        grids = torch.nn.functional.affine_grid(theta.unsqueeze(0), [1, 1, self.size, self.size],
                                                align_corners=False)
        x = (grids.unsqueeze(3) @ freqs.permute(0, 2, 1).unsqueeze(1).unsqueeze(2)).squeeze(3)
        x = torch.sin((x + phases.unsqueeze(1).unsqueeze(2)) * (np.pi * 2))
        x = x * amplitudes.unsqueeze(1).unsqueeze(2)
        x = x @ (self.weight / np.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2)


class SynthesisLayer(nn.Module):
    """x [N, in_channels, in_size, in_size], w [N, w_dim] -> [N, out_channels, out_size, out_size]:
    modulated conv of x / sqrt(magnitude_ema), then filtered_lrelu (bias, up/down FIR, gain sqrt(2),
    slope 0.2, clamp; ToRGB: 1x1 conv without demodulation, linear, gain 1)."""

    def __init__(self, w_dim, is_torgb, is_critically_sampled, use_fp16, in_channels, out_channels, in_size,
                 out_size, in_sampling_rate, out_sampling_rate, in_cutoff, out_cutoff, in_half_width,
                 out_half_width, conv_kernel=3, filter_size=6, lrelu_upsampling=2, use_radial_filters=False,
                 conv_clamp=256, magnitude_ema_beta=0.999, dtype=torch.float16):
        super().__init__()
        self.w_dim, self.is_torgb, self.in_channels, self.out_channels = w_dim, is_torgb, in_channels, out_channels
        self.in_size, self.out_size = int(in_size), int(out_size)
        self.conv_kernel = 1 if is_torgb else conv_kernel
        self.conv_clamp, self.magnitude_ema_beta = conv_clamp, magnitude_ema_beta
        self.dtype = dtype if use_fp16 else torch.float32
        tmp_rate = max(in_sampling_rate, out_sampling_rate) * (1 if is_torgb else lrelu_upsampling)
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, self.conv_kernel, self.conv_kernel]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.register_buffer("magnitude_ema", torch.ones([]))
        self.up_factor = int(np.rint(tmp_rate / in_sampling_rate))
        self.down_factor = int(np.rint(tmp_rate / out_sampling_rate))
        if in_sampling_rate * self.up_factor != tmp_rate or out_sampling_rate * self.down_factor != tmp_rate:
            raise ValueError(f"sampling rates {in_sampling_rate} -> {out_sampling_rate} are not integer ratios "
                             f"of the temporary rate {tmp_rate}")
        up_taps = filter_size * self.up_factor if self.up_factor > 1 and not is_torgb else 1
        down_taps = filter_size * self.down_factor if self.down_factor > 1 and not is_torgb else 1
        self.register_buffer("up_filter", design_lowpass_filter(up_taps, in_cutoff, in_half_width * 2, tmp_rate))
        self.register_buffer("down_filter", design_lowpass_filter(
            down_taps, out_cutoff, out_half_width * 2, tmp_rate,
            radial=use_radial_filters and not is_critically_sampled))
        # output size before downsampling, minus the upsampled input and the filters' size reduction
        pad_total = ((self.out_size - 1) * self.down_factor + 1
                     - (self.in_size + self.conv_kernel - 1) * self.up_factor + up_taps + down_taps - 2)
        pad_lo = (pad_total + self.up_factor) // 2     # symmetric sample positions (paper, appendix C.3)
        self.padding = [pad_lo, pad_total - pad_lo, pad_lo, pad_total - pad_lo]

    def forward(self, x, w, force_fp32=False, update_emas=False):
        if update_emas and self.training:
            magnitude = x.detach().to(torch.float32).square().mean()
            self.magnitude_ema.copy_(magnitude.lerp(self.magnitude_ema, self.magnitude_ema_beta))
        input_gain = self.magnitude_ema.rsqrt()
        styles = self.affine(w)
        dtype = self.dtype if (x.device.type == "cuda" and not force_fp32) else torch.float32
        x = x.to(dtype)
        if self.is_torgb:
            styles = styles * (input_gain / math.sqrt(self.in_channels * self.conv_kernel ** 2))
        else:
            x = x * input_gain.to(dtype)
        x = ganops.modulated_conv2d(x, self.weight, styles, padding=self.conv_kernel - 1,
                                    demodulate=not self.is_torgb)
        return ganops.filtered_lrelu(x, self.up_filter, self.down_filter, self.bias.to(dtype), up=self.up_factor,
                                     down=self.down_factor, padding=self.padding,
                                     gain=1.0 if self.is_torgb else math.sqrt(2),
                                     slope=1.0 if self.is_torgb else 0.2, clamp=self.conv_clamp)


class SynthesisNetwork(nn.Module):
    """ws [N, num_layers + 2, w_dim] -> images [N, img_channels, R, R] float32 (times ``output_scale``)."""

    def __init__(self, w_dim, img_resolution, img_channels=3, channel_base=32768, channel_max=512, num_layers=14,
                 num_critical=2, first_cutoff=2, first_stopband=2 ** 2.1, last_stopband_rel=2 ** 0.3,
                 margin_size=10, output_scale=0.25, num_fp16_res=4, precision="fp16", **layer_kwargs):
        super().__init__()
        if img_resolution < 8 or img_resolution & (img_resolution - 1):
            raise ValueError(f"img_resolution must be a power of two >= 8, got {img_resolution}")
        if not 0 <= num_critical < num_layers:
            raise ValueError(f"need 0 <= num_critical < num_layers, got {num_critical} and {num_layers}")
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.resolution = (img_resolution, img_resolution)
        self.num_ws, self.output_scale = num_layers + 2, output_scale
        s = LayerSchedule(img_resolution, img_channels, channel_base, channel_max, num_layers, num_critical,
                          first_cutoff, first_stopband, last_stopband_rel, margin_size)
        self.input = SynthesisInput(w_dim, int(s.channels[0]), int(s.sizes[0]), s.sampling_rates[0], s.cutoffs[0])
        self.layer_names = []
        for idx in range(num_layers + 1):
            prev = max(idx - 1, 0)
            layer = SynthesisLayer(
                w_dim, is_torgb=(idx == num_layers), is_critically_sampled=(idx >= num_layers - num_critical),
                use_fp16=bool(s.sampling_rates[idx] * 2 ** num_fp16_res > img_resolution),
                in_channels=int(s.channels[prev]), out_channels=int(s.channels[idx]),
                in_size=int(s.sizes[prev]), out_size=int(s.sizes[idx]),
                in_sampling_rate=int(s.sampling_rates[prev]), out_sampling_rate=int(s.sampling_rates[idx]),
                in_cutoff=s.cutoffs[prev], out_cutoff=s.cutoffs[idx], in_half_width=s.half_widths[prev],
                out_half_width=s.half_widths[idx], dtype=_compute_dtype(precision), **layer_kwargs)
            name = f"L{idx}_{layer.out_size}_{layer.out_channels}"
            setattr(self, name, layer)
            self.layer_names.append(name)

    def forward(self, ws, noise_mode="random", force_fp32=False, update_emas=False):
        """``noise_mode`` is accepted for the StyleGAN2 interface; StyleGAN3 has no noise inputs."""
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"ws must be [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        ws = ws.to(torch.float32).unbind(dim=1)
        x = self.input(ws[0])
        for name, w in zip(self.layer_names, ws[1:]):
            x = getattr(self, name)(x, w, force_fp32=force_fp32, update_emas=update_emas)
        if self.output_scale != 1:
            x = x * self.output_scale
        return x.to(torch.float32)


class Generator(nn.Module):
    """z (+ c) -> mapping (2 layers, w_avg decay 0.998) -> ws -> synthesis -> images, with StyleGAN2's
    interface (``z_dim``, ``c_dim``, ``w_dim``, ``num_ws``, ``resolution``, ``img_channels``)."""

    def __init__(self, z_dim=512, c_dim=0, w_dim=512, img_resolution=256, img_channels=3, mapping_layers=2,
                 w_avg_beta=0.998, **synthesis_kwargs):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.img_channels = z_dim, c_dim, w_dim, img_channels
        self.synthesis = SynthesisNetwork(w_dim, img_resolution, img_channels, **synthesis_kwargs)
        self.resolution, self.num_ws = self.synthesis.resolution, self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, num_ws=self.num_ws, num_layers=mapping_layers,
                                      w_avg_beta=w_avg_beta)

    def forward(self, z, c=None, truncation_psi=1.0, truncation_cutoff=None, noise_mode="random",
                update_w_avg=False, force_fp32=False):
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_w_avg=update_w_avg)
        return self.synthesis(ws, noise_mode=noise_mode, force_fp32=force_fp32, update_emas=update_w_avg)
