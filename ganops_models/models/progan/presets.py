"""ProGAN presets (``--cfg``): the official code's ``preset-v1-1gpu`` (the paper's setup) and a CPU-sized one.

``progan`` is that preset as a whole (config.py of tkarras/progressive_growing_of_gans): minibatch 16, at
256/512/1024 px 14/6/3, 800 kimg per stable and per fade-in phase, 19,000 kimg in all, minibatch-stddev
group 16; with the code's defaults for the rest (lr 0.001, WGAN-GP lambda 10, drift 0.001, no mirror).
"""
from typing import Dict

from ganops_models.training.presets import Preset
from ganops_models.training.simple_recipe import ema_kimg_for_beta


def _preset(resolution, batch, kimg, tick, snap, z_dim, cbase, cmax, mbstd_group, **extra):
    def values(dataset_resolution, _world_size):
        fixed = dict(resolution=resolution) if resolution else {}
        return dict(**fixed, batch=batch, glr=0.001, dlr=0.001, z_dim=z_dim, cbase=cbase, cmax=cmax,
                    mbstd_group=mbstd_group, gamma=10.0, ema=ema_kimg_for_beta(batch), ema_rampup=None, kimg=kimg,
                    tick=tick, snap=snap, aug="noaug", precision="fp32", **extra)
    return values


PRESETS: Dict[str, Preset] = {
    "progan": Preset("progan", _preset(None, 16, 19000, 4, 50, 512, 16384, 512, 16, lod_kimg=800.0,
                                       batch_per_res="256:14,512:6,1024:3"),
                     "ProGAN's official preset-v1-1gpu, the paper's (batch 16, 800 kimg per phase, WGAN-GP)"),
    "progan-lite": Preset("progan", _preset((32, 32), 16, 1.0, 0.128, 2, 32, 256, 32, 4,
                                            lod_kimg=0.128, batch_per_res="32:8"),
                          "small 4->32 ProGAN for a few CPU minutes"),
}
