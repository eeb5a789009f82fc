"""Training presets (``--cfg``): StyleGAN2-ADA's hyperparameters plus a tiny CPU configuration.

A preset is a function ``(resolution (H, W), world_size) -> dict`` of option values; the resolved
values are then overridden by any explicit command-line option. Other recipes (FastGAN, DCGAN)
register their own presets in :data:`PRESETS` with their model name.
"""
import dataclasses
from typing import Callable, Dict, Tuple


@dataclasses.dataclass(frozen=True)
class Preset:
    model: str                                           # key of training.recipes.RECIPES
    values: Callable[[Tuple[int, int], int], dict]       # (resolution, world_size) -> option values
    doc: str = ""


def _sg2(batch, mbstd, fmaps, lr, gamma, ema, ramp, map_layers, kimg=25000, **extra):
    """One row of StyleGAN2-ADA's cfg_specs table, as option values."""
    def values(resolution, world_size):
        return dict(batch=batch, mbstd_group=mbstd, cbase=int(fmaps * 32768), cmax=512, glr=lr, dlr=lr,
                    gamma=gamma, ema=ema, ema_rampup=ramp, map=map_layers, kimg=kimg, **extra)
    return values


def _auto(resolution, world_size):
    """StyleGAN2-ADA's 'auto' heuristics, from the (long side of the) resolution and GPU count."""
    res = max(resolution)
    batch = max(min(world_size * min(4096 // res, 32), 64), world_size)
    return dict(batch=batch, mbstd_group=min(batch // world_size, 4), cbase=32768 if res >= 512 else 16384,
                cmax=512, glr=0.002 if res >= 1024 else 0.0025, dlr=0.002 if res >= 1024 else 0.0025,
                gamma=0.0002 * res * res / batch, ema=batch * 10 / 32, ema_rampup=0.05, map=2, kimg=25000)


def _tiny(resolution, world_size):
    """Small networks for a short CPU demo run (the default on a CPU), at 32x32 (the built-in 64x64
    shapes are resized on the fly). No per-pixel noise: in a run this short the generator spends it on
    speckle instead of structure. Measured (issue #24, one thread on a shared 2-core machine): 20 kimg
    took 568 CPU-seconds (~28 per kimg); the 20 kimg grid has the data's colours, gradients and
    disc-like blobs but not yet clean squares and triangles; 6 kimg gave structureless blobs and
    doubling the learning rates collapsed the grid to one ring pattern."""
    return dict(batch=16, mbstd_group=4, cbase=512, cmax=32, glr=0.0025, dlr=0.0025, gamma=0.05, ema=1.0,
                ema_rampup=0.05, map=2, kimg=20, tick=1, snap=4, z_dim=64, w_dim=64, num_fp16_res=0,
                pl_weight=0.0, g_noise=False, resolution=(32, 32), workers=1)


PRESETS: Dict[str, Preset] = {
    "auto": Preset("stylegan2", _auto, "StyleGAN2-ADA 'auto': hyperparameters from resolution and GPU count"),
    "stylegan2": Preset("stylegan2", _sg2(32, 4, 1, 0.002, 10, 10, None, 8), "StyleGAN2 config F"),
    "paper256": Preset("stylegan2", _sg2(64, 8, 0.5, 0.0025, 1, 20, None, 8), "ADA paper, 256x256"),
    "paper512": Preset("stylegan2", _sg2(64, 8, 1, 0.0025, 0.5, 20, None, 8), "ADA paper, 512x512"),
    "paper1024": Preset("stylegan2", _sg2(32, 4, 1, 0.002, 2, 10, None, 8), "ADA paper, 1024x1024"),
    "cifar": Preset("stylegan2", _sg2(64, 32, 1, 0.0025, 0.01, 500, 0.05, 2, kimg=100000, pl_weight=0.0,
                                      style_mixing=0.0, d_arch="orig"), "ADA paper, CIFAR-10"),
    "tiny": Preset("stylegan2", _tiny, "tiny 32x32 StyleGAN2 for a few CPU minutes"),
}
