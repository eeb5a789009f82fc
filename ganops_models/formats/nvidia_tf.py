"""StyleGAN2 TensorFlow networks (``dnnlib.tflib`` pickles) as StyleGAN2-ADA PyTorch kwargs and
state dicts, converted the way NVIDIA's ``legacy.py`` converts them (no TensorFlow needed).

Conversions: dense weights are transposed ([in, out] -> [out, in]); conv weights go from
[kh, kw, in, out] to [out, in, kh, kw], flipped spatially for the G's up-sampling convs (Conv0_up,
Skip); modulation biases get +1 (TF adds the 1 at runtime); ``const`` and ``noise<i>`` drop their
leading 1-dims; ``ToRGB_lod*`` / ``FromRGB_lod*`` variables mean the 'orig' architecture.
Variables the PyTorch network does not have (e.g. ``lod``) are ignored, as in legacy.py; a missing
one is an error naming it. Unlike legacy.py, a TF generator stored with ``ToRGB_lod*`` layers
(under ``synthesis/``) is recognised as 'orig' too.
"""
import math
import re
from typing import Dict, Optional, Tuple

import numpy as np
import torch

from ganops_models.formats.limits import check_settings
from ganops_models.formats.safe_pickle import TFNetworkRecord
from ganops_models.errors import CheckpointError

_G_KWARGS = {"latent_size", "label_size", "dlatent_size", "resolution", "num_channels", "mapping_layers",
             "label_fmaps", "mapping_fmaps", "mapping_nonlinearity", "mapping_lrmul", "w_avg_beta", "fmap_base",
             "fmap_max", "num_fp16_res", "conv_clamp", "architecture", "resample_kernel", "use_noise",
             "nonlinearity", "truncation_psi", "truncation_cutoff", "style_mixing_prob", "structure"}
_D_KWARGS = {"label_size", "resolution", "num_channels", "architecture", "fmap_base", "fmap_max", "num_fp16_res",
             "conv_clamp", "mapping_fmaps", "nonlinearity", "resample_kernel", "freeze_layers", "mapping_layers",
             "mapping_lrmul", "mbstd_group_size", "mbstd_num_features", "structure"}


def _check_network(net: TFNetworkRecord, known: set, what: str) -> dict:
    if net.version < 4:
        raise CheckpointError(f"TensorFlow {what} has network version {net.version}; only StyleGAN2 "
                              f"networks (version >= 4) are supported")
    kwargs = net.static_kwargs
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise CheckpointError(f"TensorFlow {what} has options the converter does not know: {unknown}")
    return kwargs


def _check_sizes(kw: dict, what: str) -> None:
    """The TensorFlow network's sizes against :mod:`ganops_models.formats.limits` (before any use)."""
    base = kw.get("fmap_base", 16384)
    check_settings(what, {"resolution": kw.get("resolution", 1024), "img_channels": kw.get("num_channels", 3),
                          "z_dim": kw.get("latent_size"), "w_dim": kw.get("dlatent_size"),
                          "c_dim": kw.get("label_size"), "mapping_layers": kw.get("mapping_layers"),
                          "channel_base": base * 2 if isinstance(base, int) and not isinstance(base, bool) else base,
                          "channel_max": kw.get("fmap_max", 512)},
                   {"resolution": "resolution", "img_channels": "num_channels", "z_dim": "latent_size",
                    "w_dim": "dlatent_size", "c_dim": "label_size", "channel_base": "fmap_base (x2)",
                    "channel_max": "fmap_max"})


def _arg(kwargs, name, default, none=None):
    """kwargs[name], ``default`` when absent; an explicit None gives ``none`` (default: ``default``), as legacy.py."""
    value = kwargs.get(name, default)
    return value if value is not None else (default if none is None else none)


class _Vars:
    """TF variables by name; a missing one is an error that names it."""

    def __init__(self, variables: Dict[str, np.ndarray], what: str):
        self.variables, self.what = variables, what

    def __call__(self, name: str) -> np.ndarray:
        if name not in self.variables:
            raise CheckpointError(f"TensorFlow {self.what} lacks the variable {name!r}")
        return self.variables[name]


def _dense(v):
    return v.transpose()


def _conv(v, flip=False):
    return (v[::-1, ::-1] if flip else v).transpose(3, 2, 0, 1)


def _mapping(s: dict, v, c_dim: int, embed: str, fc: str, num_layers: int) -> None:
    """Label embedding (when conditional) and the dense mapping layers ``fc.format(i)``."""
    if c_dim > 0:
        s["mapping.embed.weight"] = _dense(v(f"{embed}/weight"))
        s["mapping.embed.bias"] = v(f"{embed}/bias")
    for i in range(num_layers):
        s[f"mapping.fc{i}.weight"] = _dense(v(f"{fc.format(i)}/weight"))
        s[f"mapping.fc{i}.bias"] = v(f"{fc.format(i)}/bias")


def _tensors(state: dict) -> Dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.array(v, dtype=np.float32, order="C")) for k, v in state.items()}


def _lod_architecture(variables: dict, resolution: int, scope: str, kind: str) -> Tuple[dict, Optional[str]]:
    """``<scope><kind>_lod<i>/x`` -> ``<scope><r>x<r>/<kind>/x`` (progressive-growing layout = 'orig')."""
    out, arch = dict(variables), None
    for name, value in variables.items():
        match = re.fullmatch(rf"{scope}{kind}_lod(\d+)/(.*)", name)
        if match:
            r = resolution // 2 ** int(match.group(1))
            out[f"{scope}{r}x{r}/{kind}/{match.group(2)}"] = value
            arch = "orig"
    return out, arch


def convert_generator(net: TFNetworkRecord) -> Tuple[dict, Dict[str, torch.Tensor]]:
    """(StyleGAN2-ADA ``Generator`` kwargs, state dict with its parameter names) of a TF G / Gs."""
    kw = _check_network(net, _G_KWARGS, "generator")
    _check_sizes(kw, "TensorFlow generator")
    res = _arg(kw, "resolution", 1024)
    variables, arch = _lod_architecture(net.variables(), res, "synthesis/", "ToRGB")
    kwargs = dict(
        z_dim=_arg(kw, "latent_size", 512), c_dim=_arg(kw, "label_size", 0), w_dim=_arg(kw, "dlatent_size", 512),
        img_resolution=res, img_channels=_arg(kw, "num_channels", 3),
        mapping_kwargs=dict(num_layers=_arg(kw, "mapping_layers", 8), embed_features=kw.get("label_fmaps"),
                            layer_features=kw.get("mapping_fmaps"),
                            activation=_arg(kw, "mapping_nonlinearity", "lrelu"),
                            lr_multiplier=_arg(kw, "mapping_lrmul", 0.01),
                            w_avg_beta=_arg(kw, "w_avg_beta", 0.995, none=1)),
        synthesis_kwargs=dict(channel_base=_arg(kw, "fmap_base", 16384) * 2, channel_max=_arg(kw, "fmap_max", 512),
                              num_fp16_res=_arg(kw, "num_fp16_res", 0), conv_clamp=kw.get("conv_clamp"),
                              architecture=arch or _arg(kw, "architecture", "skip"),
                              resample_filter=list(_arg(kw, "resample_kernel", [1, 3, 3, 1])),
                              use_noise=_arg(kw, "use_noise", True), activation=_arg(kw, "nonlinearity", "lrelu")))
    v = _Vars(variables, "generator")
    syn = kwargs["synthesis_kwargs"]
    s = {"mapping.w_avg": v("dlatent_avg")}
    _mapping(s, v, kwargs["c_dim"], "mapping/LabelEmbed", "mapping/Dense{}", kwargs["mapping_kwargs"]["num_layers"])

    def layer(dst, src, flip=False, noise=None):
        s[f"{dst}.weight"] = _conv(v(f"{src}/weight"), flip)
        s[f"{dst}.bias"] = v(f"{src}/bias")
        s[f"{dst}.affine.weight"] = _dense(v(f"{src}/mod_weight"))
        s[f"{dst}.affine.bias"] = v(f"{src}/mod_bias") + 1
        if noise is not None and syn["use_noise"]:
            s[f"{dst}.noise_const"] = v(f"synthesis/noise{noise}")[0, 0]
            s[f"{dst}.noise_strength"] = v(f"{src}/noise_strength")

    log2 = int(math.log2(res))
    for r in (2 ** i for i in range(2, log2 + 1)):
        b, t = f"synthesis.b{r}", f"synthesis/{r}x{r}"
        if r == 4:
            s[f"{b}.const"] = v(f"{t}/Const/const")[0]
            layer(f"{b}.conv1", f"{t}/Conv", noise=0)
        else:
            k = int(math.log2(r)) * 2
            layer(f"{b}.conv0", f"{t}/Conv0_up", flip=True, noise=k - 5)
            layer(f"{b}.conv1", f"{t}/Conv1", noise=k - 4)
            if syn["architecture"] == "resnet":
                s[f"{b}.skip.weight"] = _conv(v(f"{t}/Skip/weight"), flip=True)
        if r == res or syn["architecture"] == "skip":
            layer(f"{b}.torgb", f"{t}/ToRGB")
    return kwargs, _tensors(s)


def convert_discriminator(net: TFNetworkRecord) -> Tuple[dict, Dict[str, torch.Tensor]]:
    """(StyleGAN2-ADA ``Discriminator`` kwargs, state dict with its parameter names) of a TF D."""
    kw = _check_network(net, _D_KWARGS, "discriminator")
    _check_sizes(kw, "TensorFlow discriminator")
    res = _arg(kw, "resolution", 1024)
    variables, arch = _lod_architecture(net.variables(), res, "", "FromRGB")
    act = _arg(kw, "nonlinearity", "lrelu")
    kwargs = dict(
        c_dim=_arg(kw, "label_size", 0), img_resolution=res, img_channels=_arg(kw, "num_channels", 3),
        architecture=arch or _arg(kw, "architecture", "resnet"), channel_base=_arg(kw, "fmap_base", 16384) * 2,
        channel_max=_arg(kw, "fmap_max", 512), num_fp16_res=_arg(kw, "num_fp16_res", 0),
        conv_clamp=kw.get("conv_clamp"), cmap_dim=kw.get("mapping_fmaps"),
        block_kwargs=dict(activation=act, resample_filter=list(_arg(kw, "resample_kernel", [1, 3, 3, 1])),
                          freeze_layers=_arg(kw, "freeze_layers", 0)),
        mapping_kwargs=dict(num_layers=_arg(kw, "mapping_layers", 0), embed_features=kw.get("mapping_fmaps"),
                            layer_features=kw.get("mapping_fmaps"), activation=act,
                            lr_multiplier=_arg(kw, "mapping_lrmul", 0.1)),
        # legacy.py's default: None = the whole minibatch is one group
        epilogue_kwargs=dict(mbstd_group_size=kw.get("mbstd_group_size"),
                             mbstd_num_channels=_arg(kw, "mbstd_num_features", 1), activation=act))
    v = _Vars(variables, "discriminator")
    s = {}
    for r in (2 ** i for i in range(int(math.log2(res)), 2, -1)):
        t = f"{r}x{r}"
        if r == res or kwargs["architecture"] == "skip":
            s[f"b{r}.fromrgb.weight"] = _conv(v(f"{t}/FromRGB/weight"))
            s[f"b{r}.fromrgb.bias"] = v(f"{t}/FromRGB/bias")
        for i, name in ((0, "Conv0"), (1, "Conv1_down")):
            s[f"b{r}.conv{i}.weight"] = _conv(v(f"{t}/{name}/weight"))
            s[f"b{r}.conv{i}.bias"] = v(f"{t}/{name}/bias")
        if kwargs["architecture"] == "resnet":
            s[f"b{r}.skip.weight"] = _conv(v(f"{t}/Skip/weight"))
    if kwargs["architecture"] == "skip":
        s["b4.fromrgb.weight"] = _conv(v("4x4/FromRGB/weight"))
        s["b4.fromrgb.bias"] = v("4x4/FromRGB/bias")
    if kwargs["c_dim"] > 0:
        _mapping(s, v, kwargs["c_dim"], "LabelEmbed", "Mapping{}", kwargs["mapping_kwargs"]["num_layers"])
    s["b4.conv.weight"] = _conv(v("4x4/Conv/weight"))
    s["b4.conv.bias"] = v("4x4/Conv/bias")
    s["b4.fc.weight"] = _dense(v("4x4/Dense0/weight"))
    s["b4.fc.bias"] = v("4x4/Dense0/bias")
    s["b4.out.weight"] = _dense(v("Output/weight"))
    s["b4.out.bias"] = v("Output/bias")
    return kwargs, _tensors(s)
