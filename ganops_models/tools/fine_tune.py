"""Options of a run that fine-tunes an NVIDIA pickle (``train --resume X.pkl``).

The run is new (kimg 0); its G, D and G_ema are the pickle's, with the pickle's architecture
(resolution, channels, mapping depth, architectures, fp16 layers, conv clamp, noise, conditioning)
and NVIDIA's transfer-learning defaults (``ada_kimg=100``, no EMA rampup and, for StyleGAN3, no D
blur, as its train.py sets them when resuming); the ADA p starts at the pickle's ``augment_pipe.p``
when it has one. Explicit options that contradict the pickle's architecture are refused.
"""
from ganops_models.errors import OptionsError
from ganops_models.formats.nvidia import train_options
from ganops_models.models.registry import PRESETS
from ganops_models.network_loader import LoadedNetwork
from ganops_models.training.options import parse_resolution

TRANSFER_DEFAULTS = {"ada_kimg": 100, "ema_rampup": None}


def _same(key, a, b) -> bool:
    if key == "resolution":
        return tuple(parse_resolution(a)) == tuple(b)
    return a == b


def transfer_cli(cli: dict, net: LoadedNetwork, world_size: int) -> dict:
    """Command-line values for resolving the options of a run fine-tuning ``net`` (its resolution, and
    ADA from the p of its augment pipe unless --aug says otherwise); explicit or preset values that contradict its architecture are refused."""
    arch = train_options(net.info["nvidia_kwargs"], net.kind)
    source = net.describe()
    for key, value in arch.items():
        if key in cli and key != "extra" and not _same(key, cli[key], value):
            raise OptionsError(f"--{key.replace('_', '-')} {cli[key]}: the network to fine-tune ({source}) "
                               f"has {key} {value}; leave the option out")
    if "cfg" in cli:
        preset = PRESETS[cli["cfg"]]
        preset_values = preset.values(tuple(arch["resolution"]), world_size)
        clash = {k: v for k, v in preset_values.items() if k in arch and k != "extra" and not _same(k, v, arch[k])}
        config = preset_values.get("extra", {}).get("config")
        if config != arch.get("extra", {}).get("config"):
            clash["config"] = config
            arch["config"] = arch.get("extra", {}).get("config")
        if preset.model != net.kind or clash:
            what = ", ".join(f"{k} {v} (the pickle has {arch[k]})" for k, v in clash.items()) or f"model {preset.model}"
            raise OptionsError(f"--cfg {cli['cfg']} sets {what}, which contradicts the network to fine-tune "
                               f"({source}); choose a matching preset or leave --cfg out")
    out = {**cli, "model": net.kind, "resolution": arch["resolution"]}
    if "extra" in arch:
        out["extra"] = {**cli.get("extra", {}), **arch["extra"]}
    if net.kind == "stylegan3" and "cfg" not in cli:
        out["cfg"] = f"stylegan3-{arch['extra']['config']}"       # the preset of the pickle's config
    if net.augment_p is not None:
        # NVIDIA fine-tunes with ADA from the pickle's p, also where the preset (e.g. the CPU demo's
        # tiny) trains without augmentation; an explicit --aug noaug/diffaug drops the p.
        out.setdefault("aug", "ada")
        if "p" not in cli and out["aug"] in ("ada", "fixed"):
            out["p"] = net.augment_p
    return out


def apply_transfer(opts, cli: dict, net: LoadedNetwork) -> None:
    """Give resolved options the pickle's architecture and, where ``cli`` is silent, the transfer defaults."""
    for key, value in train_options(net.info["nvidia_kwargs"], net.kind).items():
        setattr(opts, key, {**opts.extra, **value} if key == "extra" else value)
    for key, value in TRANSFER_DEFAULTS.items():
        if key not in cli:
            setattr(opts, key, value)
    if net.kind == "stylegan3" and "blur" not in cli.get("extra", {}):
        opts.extra = {**opts.extra, "blur": 0.0}        # NVIDIA's train.py: no blur ramp when resuming
    opts.resume = net.path


def check_data(net: LoadedNetwork, label_dim: int, num_channels: int) -> None:
    """The dataset must have the pickle's image channels and (for a conditional network) its classes."""
    if num_channels != net.img_channels:
        raise OptionsError(f"the data has {num_channels} channel(s) but {net.describe()} makes {net.img_channels}")
    if net.c_dim > 0 and label_dim != net.c_dim:
        raise OptionsError(f"{net.describe()} is conditional on {net.c_dim} classes but the data has "
                           f"{label_dim} label(s); use a dataset.json with {net.c_dim} classes")
