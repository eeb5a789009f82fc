"""Benchmark shapes taken from real models, defined once for every suite.

GPU shapes are the real layer sizes; on a CPU-only machine the suites use the ``CPU_*`` shapes so the
whole suite finishes in a few minutes.
"""
# Feature-map channels per resolution (StyleGAN2-ADA: min(cbase // res, cmax)).
PAPER256_CHANNELS = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64}      # cbase 16384
PAPER1024_CHANNELS = {4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256, 256: 128,
                      512: 64, 1024: 32}                                                  # cbase 32768
# FastGAN generator at 256 px (ngf 64, the paper's multipliers).
FASTGAN256_CHANNELS = {4: 1024, 8: 512, 16: 256, 32: 128, 64: 128, 128: 64, 256: 32}

BATCH = 32

# bias_act: activations after the convolutions of the highest-resolution StyleGAN2 blocks.
BIAS_ACT_SHAPES = [(32, 512, 64, 64), (32, 256, 128, 128), (32, 128, 256, 256)]
BIAS_ACT_256MB_FP16 = (64, 128, 128, 128)            # 2^27 elements = 256 MiB in fp16
CPU_BIAS_ACT_SHAPES = [(2, 32, 16, 16)]

# upfirdn2d: (C, H) pairs of StyleGAN2 resampling, batch 32, and ADA's 12-tap filter at 256 px.
RESAMPLE_CH = [(512, 8), (512, 32), (256, 128), (128, 256)]
ADA_FILTER_SHAPE = (32, 3, 256, 256)
CPU_RESAMPLE_CH = [(8, 16)]


def synthesis_layers(channels=PAPER256_CHANNELS, batch=BATCH, img_channels=3):
    """Every modulated-conv layer of a StyleGAN2 'skip' synthesis network.

    Returns dicts with name, batch, in_ch, out_ch, in_res (input H = W), k, up.
    """
    layers = []
    resolutions = sorted(channels)
    for res in resolutions:
        out_ch = channels[res]
        if res == resolutions[0]:
            layers.append(dict(name=f"b{res}.conv1", batch=batch, in_ch=out_ch, out_ch=out_ch, in_res=res, k=3, up=1))
        else:
            in_ch = channels[res // 2]
            layers.append(dict(name=f"b{res}.conv0", batch=batch, in_ch=in_ch, out_ch=out_ch, in_res=res // 2, k=3, up=2))
            layers.append(dict(name=f"b{res}.conv1", batch=batch, in_ch=out_ch, out_ch=out_ch, in_res=res, k=3, up=1))
        layers.append(dict(name=f"b{res}.torgb", batch=batch, in_ch=out_ch, out_ch=img_channels, in_res=res, k=1, up=1))
    return layers


CPU_SYNTHESIS_CHANNELS = {4: 16, 8: 16, 16: 8}


def stylegan3_layers(resolution, channel_base=32768, channel_max=512, radial=False, batch=BATCH):
    """The filtered_lrelu call of every SynthesisLayer of NVIDIA's StyleGAN3 generator (the schedule of
    networks_stylegan3.SynthesisNetwork: 14 layers + ToRGB, 2 critically sampled, first cutoff 2,
    first stopband 2**2.1, last stopband 2**0.3 x cutoff, margin 10, filter_size 6, lrelu upsampling 2,
    3x3 convolutions, ToRGB 1x1 with gain 1 and slope 1). StyleGAN3-T: channel_base 32768, channel_max
    512; -R: 65536, 1024 and radial down filters outside the critically sampled layers.

    Returns dicts with name, shape (the op's input [N, C, H, W]), up, down, up_taps, down_taps, padding
    (x0, x1, y0, y1), radial, fp16, gain, slope.
    """
    import numpy as np

    num_layers, num_critical = 14, 2
    last_cutoff = resolution / 2
    exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
    cutoffs = 2 * (last_cutoff / 2) ** exponents
    stopbands = 2 ** 2.1 * (last_cutoff * 2 ** 0.3 / 2 ** 2.1) ** exponents
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, resolution))))
    sizes = rates + 20
    sizes[-2:] = resolution
    channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
    channels[-1] = 3
    layers = []
    for idx in range(num_layers + 1):
        prev, torgb = max(idx - 1, 0), idx == num_layers
        tmp_rate = max(rates[prev], rates[idx]) * (1 if torgb else 2)
        up, down = int(round(tmp_rate / rates[prev])), int(round(tmp_rate / rates[idx]))
        up_taps = 6 * up if up > 1 and not torgb else 1
        down_taps = 6 * down if down > 1 and not torgb else 1
        in_size = int(sizes[prev]) + (0 if torgb else 2)  # after the 3x3 convolution's padding
        pad_total = (int(sizes[idx]) - 1) * down + 1 - in_size * up + up_taps + down_taps - 2
        pad_lo = (pad_total + up) // 2
        pad = (pad_lo, pad_total - pad_lo)
        layers.append(dict(
            name=f"L{idx}_{int(sizes[idx])}_{int(channels[idx])}", shape=(batch, int(channels[idx]), in_size, in_size),
            up=up, down=down, up_taps=up_taps, down_taps=down_taps, padding=pad + pad,
            radial=radial and idx < num_layers - num_critical, fp16=rates[idx] * 2 ** 4 > resolution,
            gain=1.0 if torgb else 2 ** 0.5, slope=1.0 if torgb else 0.2))
    return layers
