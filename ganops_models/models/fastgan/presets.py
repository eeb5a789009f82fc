"""FastGAN presets (``--cfg``): the official code"s setup at 256 and 1024 px, and a CPU-sized one."""
from typing import Dict

from ganops_models.training.presets import Preset
from ganops_models.training.simple_recipe import ema_kimg_for_beta


def _preset(resolution, batch, kimg, tick, snap, z_dim=256, ema_rampup=None, **extra):
    def values(_resolution, _world_size):
        return dict(resolution=(resolution, resolution), batch=batch, glr=2e-4, dlr=2e-4, z_dim=z_dim,
                    ema=ema_kimg_for_beta(batch), ema_rampup=ema_rampup, kimg=kimg, tick=tick, snap=snap,
                    aug="diffaug", **extra)
    return values


PRESETS: Dict[str, Preset] = {
    "fastgan-256": Preset("fastgan", _preset(256, 8, 400, 4, 25, ngf=64, ndf=64, recon="lpips"),
                          "FastGAN paper setup at 256x256 (batch 8, 50k steps)"),
    "fastgan-1024": Preset("fastgan", _preset(1024, 8, 400, 4, 25, ngf=64, ndf=64, recon="lpips"),
                           "FastGAN paper setup at 1024x1024 (batch 8, 50k steps)"),
    "fastgan-lite": Preset("fastgan", _preset(64, 8, 2, 0.25, 4, z_dim=64, ema_rampup=0.05,
                                              ngf=8, ndf=8, recon="mse"),
                           "small 64x64 FastGAN for a few CPU minutes"),
}
