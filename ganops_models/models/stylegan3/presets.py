"""StyleGAN3 presets (``--cfg stylegan3-t`` and ``stylegan3-r``): NVIDIA stylegan3 train.py's values.

One default differs on purpose: ``--metrics`` is ``none`` where NVIDIA's train.py computes fid50k_full at
every snapshot. That metric needs the Inception weights, which NVIDIA's code downloads and ganops never
does (weights come from a file the user gives), and 50,000 generated images per snapshot;
``--metrics fid50k_full --inception FILE`` restores NVIDIA's behaviour.
"""
from typing import Dict

from ganops_models.training.presets import Preset


def _sg3(config: str):
    """NVIDIA stylegan3 train.py's values for configs T and R. NVIDIA requires --batch and --gamma; the
    defaults here are batch 32 (the paper's most common) and gamma = 0.0002 * res^2 / batch (the
    StyleGAN2-ADA 'auto' heuristic; NVIDIA's published runs use 2 at 256, 8 at 512, 32 at 1024)."""
    def values(resolution, world_size):
        batch = 32
        return dict(batch=batch, mbstd_group=4, cbase=32768, cmax=512, glr=0.0025, dlr=0.002,
                    gamma=0.0002 * max(resolution) ** 2 / batch, ema=batch * 10 / 32, ema_rampup=0.05, map=2,
                    kimg=25000, pl_weight=0.0, style_mixing=0.0, d_arch="resnet", num_fp16_res=4, conv_clamp=256,
                    config=config, blur=10.0 if config == "r" else 0.0)
    return values


PRESETS: Dict[str, Preset] = {
    "stylegan3-t": Preset("stylegan3", _sg3("t"), "StyleGAN3-T (translation equivariant), NVIDIA's defaults"),
    "stylegan3-r": Preset("stylegan3", _sg3("r"), "StyleGAN3-R (rotation equivariant: 1x1 convs, radial filters, "
                                                  "2x G channels, D blur), NVIDIA's defaults"),
}
