"""The option layers of a run that fine-tunes an NVIDIA pickle (``train --resume X.pkl``).

The run is new (kimg 0); its G, D and G_ema are the pickle's, with the pickle's architecture
(resolution, channels, mapping depth, architectures, fp16 layers, conv clamp, noise, conditioning)
and NVIDIA's transfer-learning defaults (``ada_kimg=100``, no EMA rampup and, for StyleGAN3, no D
blur, as its train.py sets them when resuming); the ADA p starts at the pickle's ``augment_pipe.p``
when it has one. Options given on the command line or set by an explicit ``--cfg`` that contradict
the pickle's architecture are refused.
"""
from typing import Dict, List, Optional

from ganops_models.errors import OptionsError
from ganops_models.formats.nvidia import train_options
from ganops_models.network_loader import LoadedNetwork
from ganops_models.training.options import Layer, parse_resolution
from ganops_models.training.presets import Preset

TRANSFER_DEFAULTS = {"ada_kimg": 100, "ema_rampup": None}


def _same(key, a, b) -> bool:
    if key == "resolution":
        return tuple(parse_resolution(a)) == tuple(b)
    return a == b


def architecture(net: LoadedNetwork) -> dict:
    """Option values that rebuild ``net``'s networks (model, resolution, channels, ...)."""
    return train_options(net.info["nvidia_kwargs"], net.kind)


def default_cfg(arch: dict) -> Optional[str]:
    """The preset of a pickle without ``--cfg``: StyleGAN3's of its config, else none (the model's default)."""
    return f"stylegan3-{arch['config']}" if arch["model"] == "stylegan3" else None


def check_preset(cfg: str, preset: Preset, net: LoadedNetwork, arch: dict, world_size: int) -> None:
    """An explicit ``--cfg`` must be a preset of the pickle's model that keeps its architecture ``arch``."""
    values = preset.values(tuple(arch["resolution"]), world_size)
    clash = {k: v for k, v in values.items() if k in arch and not _same(k, v, arch[k])}
    if preset.model != net.kind or clash:
        what = ", ".join(f"{k} {v} (the pickle has {arch[k]})" for k, v in clash.items()) or f"model {preset.model}"
        raise OptionsError(f"--cfg {cfg} sets {what}, which contradicts the network to fine-tune "
                           f"({net.describe()}); choose a matching preset or leave --cfg out")


def layers(net: LoadedNetwork, arch: dict, given: Dict) -> List[Layer]:
    """The layers between the preset and the command line: the fine-tuning defaults, then the pickle's
    architecture ``arch``, ADA state and path."""
    for key, value in arch.items():
        if key in given and not _same(key, given[key], value):
            raise OptionsError(f"--{key.replace('_', '-')} {given[key]}: the network to fine-tune ({net.describe()}) "
                               f"has {key} {value}; leave the option out")
    defaults = dict(TRANSFER_DEFAULTS, **({"blur": 0.0} if net.kind == "stylegan3" else {}))
    pickle = dict(arch, resume=net.path)
    if net.augment_p is not None:
        # NVIDIA fine-tunes with ADA from the pickle's p, also where the preset (e.g. the CPU demo's
        # tiny) trains without augmentation; an explicit --aug noaug/diffaug drops the p.
        pickle["aug"] = "ada"
        if given.get("aug", "ada") in ("ada", "fixed"):
            pickle["p"] = net.augment_p
    return [("fine-tuning defaults", defaults), (f"pickle {net.path}", pickle)]


def check_data(net: LoadedNetwork, label_dim: int, num_channels: int) -> None:
    """The dataset must have the pickle's image channels and (for a conditional network) its classes."""
    if num_channels != net.img_channels:
        raise OptionsError(f"the data has {num_channels} channel(s) but {net.describe()} makes {net.img_channels}")
    if net.c_dim > 0 and label_dim != net.c_dim:
        raise OptionsError(f"{net.describe()} is conditional on {net.c_dim} classes but the data has "
                           f"{label_dim} label(s); use a dataset.json with {net.c_dim} classes")
