"""StyleGAN2 presets (``--cfg``): StyleGAN2-ADA's ``cfg_specs`` table, its 'auto' heuristics and a tiny
CPU configuration for the default demo run."""
from typing import Dict

from ganops_models.training.presets import Preset


def _sg2(batch, ref_gpus, mbstd, fmaps, lr, gamma, ema, ramp, map_layers, kimg=25000, **extra):
    """One row of StyleGAN2-ADA's cfg_specs table, as option values. ``batch_gpu`` (samples per
    round) is NVIDIA's ``mb // ref_gpus``, capped at the batch of one process when more processes
    share the batch than the row was made for (NVIDIA would then run no round at all)."""
    def values(resolution, world_size):
        batch_gpu = min(batch // ref_gpus, max(batch // world_size, 1))
        return dict(batch=batch, batch_gpu=batch_gpu, mbstd_group=mbstd, cbase=int(fmaps * 32768), cmax=512,
                    glr=lr, dlr=lr, gamma=gamma, ema=ema, ema_rampup=ramp, map=map_layers, kimg=kimg, **extra)
    return values


def _auto(resolution, world_size):
    """StyleGAN2-ADA's 'auto' heuristics, from the (long side of the) resolution and GPU count (one
    round per process: batch_gpu = batch // processes)."""
    res = max(resolution)
    batch = max(min(world_size * min(4096 // res, 32), 64), world_size)
    return dict(batch=batch, batch_gpu=batch // world_size, mbstd_group=min(batch // world_size, 4), cbase=32768 if res >= 512 else 16384,
                cmax=512, glr=0.002 if res >= 1024 else 0.0025, dlr=0.002 if res >= 1024 else 0.0025,
                gamma=0.0002 * res * res / batch, ema=batch * 10 / 32, ema_rampup=0.05, map=2, kimg=25000)


def _tiny(resolution, world_size):
    """Small networks for a short CPU demo run (the default on a CPU), at 32x32 (the built-in 64x64
    shapes are resized on the fly). No per-pixel noise: in a run this short the generator spends it on
    speckle instead of structure. Channels: cbase 256 (8 at 32x32, 16 at 16x16, 32 below). No
    augmentation (``--aug ada`` to turn it on): 25 kimg are 8 epochs of the 3,000 built-in images, too
    few for D to overfit, and once ADA's p leaves 0 its pipeline runs for the whole batch (+40% per kimg).
    Measured (issue #24, built-in data v2): on two idle cores 11.2 s per kimg (12.6 with ADA at p = 0,
    17-18 at p = 0.04); one thread each on a shared machine, cbase 256 trained 1.8x the images per
    second of cbase 512, and at equal time drew clearer shapes (cbase 512 at 20 kimg: discs and rounded
    blobs; cbase 256 from 25 kimg: one distinct disc, square or triangle per image on its gradient).
    Doubling the learning rates (on data v1) collapsed the grid to one pattern; a lower D learning
    rate (0.0015) or batch 8 gave no clearer shapes at 10 kimg."""
    return dict(batch=16, mbstd_group=4, cbase=256, cmax=32, glr=0.0025, dlr=0.0025, gamma=0.05, ema=1.0,
                ema_rampup=0.05, map=2, kimg=25, tick=1, snap=5, z_dim=64, w_dim=64, num_fp16_res=0,
                pl_weight=0.0, g_noise=False, resolution=(32, 32), workers=1, aug="noaug")


PRESETS: Dict[str, Preset] = {
    "auto": Preset("stylegan2", _auto, "StyleGAN2-ADA 'auto': hyperparameters from resolution and GPU count"),
    "stylegan2": Preset("stylegan2", _sg2(32, 8, 4, 1, 0.002, 10, 10, None, 8), "StyleGAN2 config F"),
    "paper256": Preset("stylegan2", _sg2(64, 8, 8, 0.5, 0.0025, 1, 20, None, 8), "ADA paper, 256x256"),
    "paper512": Preset("stylegan2", _sg2(64, 8, 8, 1, 0.0025, 0.5, 20, None, 8), "ADA paper, 512x512"),
    "paper1024": Preset("stylegan2", _sg2(32, 8, 4, 1, 0.002, 2, 10, None, 8), "ADA paper, 1024x1024"),
    "cifar": Preset("stylegan2", _sg2(64, 2, 32, 1, 0.0025, 0.01, 500, 0.05, 2, kimg=100000, pl_weight=0.0,
                                      style_mixing=0.0, d_arch="orig"), "ADA paper, CIFAR-10"),
    "tiny": Preset("stylegan2", _tiny, "tiny 32x32 StyleGAN2 for a few CPU minutes"),
}
