"""NVIDIA StyleGAN3 generator records (``training.networks_stylegan3.Generator``) as ganops networks.

Registered in :data:`ganops_models.formats.nvidia.BUILDERS`, so StyleGAN3-T/-R ``network-snapshot-*.pkl``
files load through the same safe unpickler as StyleGAN2's (their D is a
``training.networks_stylegan2.Discriminator``, already handled there). Weights keep NVIDIA's names
except ``mapping.fc{i}`` -> ``mapping.layers.{i}``; options ganops' StyleGAN3 does not implement
(a mapping lr multiplier other than 0.01) are errors. Freeze-M/-E flags of the run that wrote the
pickle are ignored (they change no numbers).
"""
from typing import Dict

import torch

from ganops_models.models.stylegan3.network import Generator
from ganops_models.formats.nvidia import (check_options, inference_precision, load_nvidia_state, register_builder,
                                          register_train_options, rename_weights)
from ganops_models.models.stylegan2.nvidia import stylegan2_discriminator_options
from ganops_models.errors import CheckpointError
from ganops_models.formats.limits import check_settings

SYNTHESIS_DEFAULTS = {
    "channel_base": 32768, "channel_max": 512, "num_layers": 14, "num_critical": 2, "first_cutoff": 2,
    "first_stopband": 2 ** 2.1, "last_stopband_rel": 2 ** 0.3, "margin_size": 10, "output_scale": 0.25,
    "num_fp16_res": 4, "conv_kernel": 3, "filter_size": 6, "lrelu_upsampling": 2, "use_radial_filters": False,
    "conv_clamp": 256, "magnitude_ema_beta": 0.999}


def stylegan3_generator_options(kwargs: dict) -> dict:
    """ganops StyleGAN3 ``Generator`` kwargs (without precision) for NVIDIA's StyleGAN3 ``Generator`` kwargs."""
    names = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs")
    top = check_options("StyleGAN3 G", {k: v for k, v in kwargs.items() if k in names}, {k: (None, None) for k in names})
    missing = [k for k in names[:5] if top[k] is None]
    if missing:
        raise CheckpointError(f"StyleGAN3 G: the record lacks the options {missing}")
    if not isinstance(top["mapping_kwargs"] or {}, dict):
        raise CheckpointError("StyleGAN3 G: mapping_kwargs must be a dict")
    synth = {k: kwargs.get(k, SYNTHESIS_DEFAULTS[k]) for k in ("channel_base", "channel_max", "num_layers",
                                                              "margin_size", "filter_size", "conv_kernel")}
    check_settings("StyleGAN3 G", {"resolution": top["img_resolution"], "img_channels": top["img_channels"],
                                   "z_dim": top["z_dim"], "w_dim": top["w_dim"], "c_dim": top["c_dim"],
                                   "mapping_layers": (top["mapping_kwargs"] or {}).get("num_layers", 2),
                                   "synthesis_layers": synth.pop("num_layers"), **synth},
                   {"resolution": "img_resolution", "mapping_layers": "mapping_kwargs.num_layers",
                    "synthesis_layers": "num_layers"})
    mapping = check_options("StyleGAN3 G mapping", top["mapping_kwargs"] or {}, {
        "num_layers": (2, None), "lr_multiplier": (0.01, (0.01,)), "w_avg_beta": (0.998, None),
        "freeze_layers": (0, None), "freeze_embed": (False, None)})
    synthesis = check_options("StyleGAN3 G synthesis", {k: v for k, v in kwargs.items() if k not in names},
                         {k: (v, None) for k, v in SYNTHESIS_DEFAULTS.items()})
    return dict(z_dim=top["z_dim"], c_dim=top["c_dim"], w_dim=top["w_dim"], img_resolution=top["img_resolution"],
                img_channels=top["img_channels"], mapping_layers=mapping["num_layers"],
                w_avg_beta=mapping["w_avg_beta"], **synthesis)


def build_stylegan3_generator(kwargs: dict, state: Dict[str, torch.Tensor], device: torch.device) -> Generator:
    G = Generator(**stylegan3_generator_options(kwargs), precision=inference_precision(device))
    load_nvidia_state(G, state, rename_weights([(r"^mapping\.layers\.(\d+)\.", r"mapping.fc\1.")]), "StyleGAN3 G")
    return G.to(device)


register_builder("training.networks_stylegan3.Generator", build_stylegan3_generator)


def train_options(kwargs: dict) -> dict:
    """TrainOptions values that rebuild the networks of ``kwargs`` ({'G': StyleGAN3 G kwargs, 'D': StyleGAN2 D
    kwargs}) in the StyleGAN3 recipe; what the recipe cannot express is an error."""
    g = stylegan3_generator_options(kwargs["G"])
    d = stylegan2_discriminator_options(kwargs["D"])
    config = {(3, False): "t", (1, True): "r"}.get((g["conv_kernel"], bool(g["use_radial_filters"])))
    if config is None:
        raise CheckpointError(f"StyleGAN3 G with conv_kernel={g['conv_kernel']} and use_radial_filters="
                              f"{g['use_radial_filters']} is neither config T (3, False) nor R (1, True), the two "
                              f"the StyleGAN3 recipe trains")
    mult = 2 if config == "r" else 1
    fixed = [k for k in ("num_layers", "num_critical", "first_cutoff", "first_stopband", "last_stopband_rel",
                         "margin_size", "output_scale", "filter_size", "lrelu_upsampling") if g[k] != SYNTHESIS_DEFAULTS[k]]
    pairs = {"channel_base": (g["channel_base"], mult * d["channel_base"]),
             "channel_max": (g["channel_max"], mult * d["channel_max"]),
             "num_fp16_res": (g["num_fp16_res"], d["num_fp16_res"]), "conv_clamp": (g["conv_clamp"], d["conv_clamp"]),
             "resolution": (g["img_resolution"], d["resolution"]), "c_dim": (g["c_dim"], d["c_dim"]),
             "img_channels": (g["img_channels"], d["img_channels"])}
    differ = [f"{k} ({a!r} vs {b!r})" for k, (a, b) in pairs.items() if a != b]
    if fixed or differ or g["w_avg_beta"] != 0.998:
        raise CheckpointError("the StyleGAN3 recipe cannot train this pickle's networks: "
                              + "; ".join([f"G {k}={g[k]!r} is not NVIDIA's default" for k in fixed]
                                          + [f"G and D (x{mult} channels for R) differ in {k}" for k in differ]
                                          + ([f"w_avg_beta {g['w_avg_beta']}"] if g["w_avg_beta"] != 0.998 else [])))
    return dict(model="stylegan3", resolution=(g["img_resolution"],) * 2, cond=g["c_dim"] > 0, z_dim=g["z_dim"],
                w_dim=g["w_dim"], map=g["mapping_layers"], d_map=d["mapping_layers"] if d["c_dim"] > 0 else 8,
                cbase=d["channel_base"], cmax=d["channel_max"], d_arch=d["architecture"],
                num_fp16_res=g["num_fp16_res"], conv_clamp=g["conv_clamp"], config=config)


register_train_options("stylegan3", train_options)
