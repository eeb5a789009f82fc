"""NVIDIA StyleGAN3 generator records (``training.networks_stylegan3.Generator``) as ganops networks.

Registered in :data:`ganops_models.pretrained.BUILDERS`, so StyleGAN3-T/-R ``network-snapshot-*.pkl``
files load through the same safe unpickler as StyleGAN2's (their D is a
``training.networks_stylegan2.Discriminator``, already handled there). Weights keep NVIDIA's names
except ``mapping.fc{i}`` -> ``mapping.layers.{i}``; options ganops' StyleGAN3 does not implement
(a mapping lr multiplier other than 0.01) are errors. Freeze-M/-E flags of the run that wrote the
pickle are ignored (they change no numbers).
"""
from typing import Dict

import torch

from .networks.stylegan3 import Generator
from .pretrained import _options, _precision, _rename, load_nvidia_state, register_builder

SYNTHESIS_DEFAULTS = {
    "channel_base": 32768, "channel_max": 512, "num_layers": 14, "num_critical": 2, "first_cutoff": 2,
    "first_stopband": 2 ** 2.1, "last_stopband_rel": 2 ** 0.3, "margin_size": 10, "output_scale": 0.25,
    "num_fp16_res": 4, "conv_kernel": 3, "filter_size": 6, "lrelu_upsampling": 2, "use_radial_filters": False,
    "conv_clamp": 256, "magnitude_ema_beta": 0.999}


def stylegan3_generator_options(kwargs: dict) -> dict:
    """ganops StyleGAN3 ``Generator`` kwargs (without precision) for NVIDIA's StyleGAN3 ``Generator`` kwargs."""
    names = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs")
    top = _options("StyleGAN3 G", {k: v for k, v in kwargs.items() if k in names}, {k: (None, None) for k in names})
    mapping = _options("StyleGAN3 G mapping", top["mapping_kwargs"] or {}, {
        "num_layers": (2, None), "lr_multiplier": (0.01, (0.01,)), "w_avg_beta": (0.998, None),
        "freeze_layers": (0, None), "freeze_embed": (False, None)})
    synthesis = _options("StyleGAN3 G synthesis", {k: v for k, v in kwargs.items() if k not in names},
                         {k: (v, None) for k, v in SYNTHESIS_DEFAULTS.items()})
    return dict(z_dim=top["z_dim"], c_dim=top["c_dim"], w_dim=top["w_dim"], img_resolution=top["img_resolution"],
                img_channels=top["img_channels"], mapping_layers=mapping["num_layers"],
                w_avg_beta=mapping["w_avg_beta"], **synthesis)


def build_stylegan3_generator(kwargs: dict, state: Dict[str, torch.Tensor], device: torch.device) -> Generator:
    G = Generator(**stylegan3_generator_options(kwargs), precision=_precision(device))
    load_nvidia_state(G, state, _rename([(r"^mapping\.layers\.(\d+)\.", r"mapping.fc\1.")]), "StyleGAN3 G")
    return G.to(device)


register_builder("training.networks_stylegan3.Generator", build_stylegan3_generator)
