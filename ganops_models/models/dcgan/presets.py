"""DCGAN presets (``--cfg``): the paper"s setup at 64 px, and a CPU-sized one."""
from typing import Dict

from ganops_models.training.presets import Preset
from ganops_models.training.simple_recipe import ema_kimg_for_beta


def _preset(resolution, batch, kimg, tick, snap, z_dim, ema_rampup=None, **extra):
    def values(_resolution, _world_size):
        return dict(resolution=(resolution, resolution), batch=batch, glr=2e-4, dlr=2e-4, z_dim=z_dim,
                    ema=ema_kimg_for_beta(batch), ema_rampup=ema_rampup, kimg=kimg, tick=tick, snap=snap, aug="noaug",
                    **extra)
    return values


PRESETS: Dict[str, Preset] = {
    "dcgan-64": Preset("dcgan", _preset(64, 128, 5000, 10, 20, 100, ngf=64, ndf=64),
                       "DCGAN paper setup at 64x64 (batch 128, z 100)"),
    "dcgan-lite": Preset("dcgan", _preset(32, 32, 30, 2, 5, 64, ema_rampup=0.05, ngf=16, ndf=16),
                         "small 32x32 DCGAN for a few CPU minutes"),
}
