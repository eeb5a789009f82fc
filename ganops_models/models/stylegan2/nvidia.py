"""NVIDIA StyleGAN2(-ADA) network records as ganops StyleGAN2 networks (builders registered in
:mod:`ganops_models.formats.nvidia`, which reads the pickle safely), and the training options that
rebuild them for fine-tuning.

Weights are copied by name (NVIDIA ``mapping.fc{i}`` -> ganops ``mapping.layers.{i}``,
``synthesis.b{r}`` -> ``synthesis.blocks.{log2 r - 2}``, D ``b{r}`` -> ``blocks.{log2(R / r)}``).
"""
from typing import Dict

import torch

from ganops_models.errors import CheckpointError
from ganops_models.formats.limits import check_settings
from ganops_models.formats.nvidia import (check_options, inference_precision, load_nvidia_state, register_builder,
                                          register_train_options, rename_weights)
from ganops_models.models.stylegan2.network import Discriminator, Generator

_FILTER = ([1, 3, 3, 1], ([1, 3, 3, 1],))
_LRELU = ("lrelu", ("lrelu",))


def stylegan2_generator_options(kwargs: dict) -> dict:
    """ganops ``Generator`` kwargs (without precision) for NVIDIA ``Generator`` kwargs (synthesis options
    under ``synthesis_kwargs`` as in StyleGAN2-ADA, or at the top level as in StyleGAN3's networks_stylegan2)."""
    names = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs")
    synthesis = {**(kwargs.get("synthesis_kwargs") or {}),
                 **{k: v for k, v in kwargs.items() if k not in names and k != "synthesis_kwargs"}}
    top = check_options("G", {k: v for k, v in kwargs.items() if k in names}, {k: (None, None) for k in names})
    w_dim = top["w_dim"]
    if not isinstance(top["mapping_kwargs"] or {}, dict) or not isinstance(synthesis, dict):
        raise CheckpointError("G: mapping_kwargs and synthesis_kwargs must be dicts")
    check_settings("G", {"resolution": top["img_resolution"], "img_channels": top["img_channels"],
                         "z_dim": top["z_dim"], "w_dim": w_dim, "c_dim": top["c_dim"],
                         "mapping_layers": (top["mapping_kwargs"] or {}).get("num_layers", 8),
                         "channel_base": synthesis.get("channel_base", 32768),
                         "channel_max": synthesis.get("channel_max", 512)},
                   {"resolution": "img_resolution", "mapping_layers": "mapping_kwargs.num_layers"})
    mapping = check_options("G mapping", top["mapping_kwargs"] or {}, {
        "num_layers": (8, None), "embed_features": (None, (None, w_dim)), "layer_features": (None, (None, w_dim)),
        "activation": _LRELU, "lr_multiplier": (0.01, (0.01,)), "w_avg_beta": (0.995, (0.995,))})
    syn = check_options("G synthesis", synthesis, {
        "channel_base": (32768, None), "channel_max": (512, None), "num_fp16_res": (0, None),
        "conv_clamp": (None, None), "architecture": ("skip", ("orig", "skip", "resnet")),
        "resample_filter": _FILTER, "use_noise": (True, None), "activation": _LRELU, "kernel_size": (3, (3,)),
        "fp16_channels_last": (False, None), "fused_modconv_default": (True, None)})
    return dict(z_dim=top["z_dim"], c_dim=top["c_dim"], w_dim=w_dim, resolution=top["img_resolution"],
                img_channels=top["img_channels"], mapping_layers=mapping["num_layers"],
                channel_base=syn["channel_base"], channel_max=syn["channel_max"], num_fp16_res=syn["num_fp16_res"],
                conv_clamp=syn["conv_clamp"], architecture=syn["architecture"], use_noise=bool(syn["use_noise"]))


def stylegan2_discriminator_options(kwargs: dict) -> dict:
    """ganops ``Discriminator`` kwargs (without precision) for NVIDIA ``Discriminator`` kwargs."""
    top = check_options("D", kwargs, {
        "c_dim": (0, None), "img_resolution": (None, None), "img_channels": (3, None),
        "architecture": ("resnet", ("orig", "skip", "resnet")), "channel_base": (32768, None),
        "channel_max": (512, None), "num_fp16_res": (0, None), "conv_clamp": (None, None), "cmap_dim": (None, None),
        "block_kwargs": ({}, None), "mapping_kwargs": ({}, None), "epilogue_kwargs": ({}, None)})
    for part in ("block_kwargs", "mapping_kwargs", "epilogue_kwargs"):
        if not isinstance(top[part] or {}, dict):
            raise CheckpointError(f"D: {part} must be a dict")
    check_settings("D", {"resolution": top["img_resolution"], "img_channels": top["img_channels"],
                         "c_dim": top["c_dim"], "w_dim": top["cmap_dim"], "channel_base": top["channel_base"],
                         "channel_max": top["channel_max"],
                         "mapping_layers": (top["mapping_kwargs"] or {}).get("num_layers", 8),
                         "mbstd_num_channels": (top["epilogue_kwargs"] or {}).get("mbstd_num_channels", 1)},
                   {"resolution": "img_resolution", "w_dim": "cmap_dim", "mapping_layers": "mapping_kwargs.num_layers",
                    "mbstd_num_channels": "epilogue_kwargs.mbstd_num_channels"})
    check_options("D blocks", top["block_kwargs"] or {}, {
        "activation": _LRELU, "resample_filter": _FILTER, "fp16_channels_last": (False, None),
        "freeze_layers": (0, None)})
    cmap = top["cmap_dim"] or min(top["channel_base"] // 4, top["channel_max"])
    mapping = check_options("D mapping", top["mapping_kwargs"] or {}, {
        "num_layers": (8, None), "embed_features": (None, (None, cmap)), "layer_features": (None, (None, cmap)),
        "activation": _LRELU, "lr_multiplier": (0.01, None)})
    if mapping["num_layers"] > 0 and mapping["lr_multiplier"] != 0.01:
        raise CheckpointError(f"D mapping: lr_multiplier={mapping['lr_multiplier']} is not supported by "
                              f"ganops_models' StyleGAN2 (it implements 0.01)")
    epi = check_options("D epilogue", top["epilogue_kwargs"] or {}, {
        "mbstd_group_size": (4, None), "mbstd_num_channels": (1, None), "activation": _LRELU})
    return dict(c_dim=top["c_dim"], resolution=top["img_resolution"], img_channels=top["img_channels"],
                architecture=top["architecture"], channel_base=top["channel_base"], channel_max=top["channel_max"],
                num_fp16_res=top["num_fp16_res"], conv_clamp=top["conv_clamp"], cmap_dim=top["cmap_dim"],
                mbstd_group_size=epi["mbstd_group_size"] or 0, mbstd_num_channels=epi["mbstd_num_channels"],
                mapping_layers=mapping["num_layers"])


def build_stylegan2_generator(kwargs: dict, state: Dict[str, torch.Tensor], device: torch.device) -> Generator:
    G = Generator(**stylegan2_generator_options(kwargs), precision=inference_precision(device))
    load_nvidia_state(G, state, rename_weights([(r"^mapping\.layers\.(\d+)\.", r"mapping.fc\1."),
                                         (r"^synthesis\.blocks\.(\d+)\.",
                                          lambda m: f"synthesis.b{4 << int(m.group(1))}.")]), "G")
    return G.to(device)


def build_stylegan2_discriminator(kwargs: dict, state: Dict[str, torch.Tensor],
                                  device: torch.device) -> Discriminator:
    D = Discriminator(**stylegan2_discriminator_options(kwargs), precision=inference_precision(device))
    top = min(D.resolution)
    load_nvidia_state(D, state, rename_weights([(r"^mapping\.layers\.(\d+)\.", r"mapping.fc\1."),
                                         (r"^blocks\.(\d+)\.", lambda m: f"b{top >> int(m.group(1))}.")]), "D")
    return D.to(device)





def train_options(kwargs: dict) -> dict:
    """Option values that rebuild the networks of ``kwargs`` ({'G': ..., 'D': ...} NVIDIA kwargs) in the
    StyleGAN2 recipe (fine-tuning, conversion); what the recipe cannot express is an error."""
    g = stylegan2_generator_options(kwargs["G"])
    d = stylegan2_discriminator_options(kwargs["D"])
    for name in ("channel_base", "channel_max", "num_fp16_res", "conv_clamp", "resolution", "c_dim", "img_channels"):
        if g[name] != d[name]:
            raise CheckpointError(f"G and D differ in {name} ({g[name]!r} vs {d[name]!r}); the StyleGAN2 recipe "
                                  f"builds both from one value")
    if d["c_dim"] > 0 and d["cmap_dim"] not in (None, min(d["channel_base"] // 4, d["channel_max"])):
        raise CheckpointError(f"this conditional D's cmap_dim {d['cmap_dim']} cannot be trained by the StyleGAN2 "
                              f"recipe, which uses the default (channels at 4x4)")
    return dict(model="stylegan2", resolution=(g["resolution"], g["resolution"]), cond=g["c_dim"] > 0, z_dim=g["z_dim"],
                w_dim=g["w_dim"], map=g["mapping_layers"], d_map=d["mapping_layers"] if d["c_dim"] > 0 else 8,
                cbase=g["channel_base"], cmax=g["channel_max"],
                g_arch=g["architecture"], d_arch=d["architecture"], g_noise=g["use_noise"],
                num_fp16_res=g["num_fp16_res"], conv_clamp=g["conv_clamp"])


for _module in ("training.networks", "training.networks_stylegan2"):
    register_builder(f"{_module}.Generator", build_stylegan2_generator)
    register_builder(f"{_module}.Discriminator", build_stylegan2_discriminator)
register_train_options("stylegan2", train_options)
