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
