"""NVIDIA's StyleGAN2 network pickles as ganops_models networks, read without running their code.

Formats (told apart by content, see :func:`load_pickle`):

* StyleGAN2-ADA PyTorch snapshots (``network-snapshot-*.pkl``, also the StyleGAN2 networks of the
  StyleGAN3 repo): a dict with ``G``, ``D``, ``G_ema`` persistence records (constructor kwargs +
  module state), optional ``augment_pipe`` and ``training_set_kwargs``;
* StyleGAN2 TensorFlow pickles: a ``(G, D, Gs)`` tuple of ``dnnlib.tflib`` networks, converted by
  :mod:`ganops_models.pretrained_tf` as NVIDIA's ``legacy.py`` does.

Each network is built from its own kwargs by the builder registered for its NVIDIA class
(:data:`BUILDERS`, keyed ``"<module>.<class>"``, e.g. ``training.networks.Generator``; the module
is recognised from the record's source text, see :func:`module_of`), and the weights are copied by
name (NVIDIA ``mapping.fc{i}`` -> ganops ``mapping.layers.{i}``, ``synthesis.b{r}`` ->
``synthesis.blocks.{log2 r - 2}``, D ``b{r}`` -> ``blocks.{log2(R / r)}``; everything else keeps its
name: ``const``, ``conv0/conv1/torgb/skip``, ``affine``, ``noise_const``/``noise_strength``,
``w_avg``, ``embed``, epilogue ``b4.{fromrgb,conv,fc,out}``). Any name or shape that does not fit,
or an option ganops' StyleGAN2 does not implement, is an error saying what differs.
Other networks plug in with :func:`register_builder` (StyleGAN3: :mod:`ganops_models.pretrained_stylegan3`).

Deliberate differences from NVIDIA's loader: nothing in the file is executed (see
:mod:`ganops_models.safe_pickle`); on the CPU the networks compute in float32 everywhere (NVIDIA's
``force_fp32``; on a GPU the pickle's ``num_fp16_res`` highest resolutions use float16); memory-layout
options (``fp16_channels_last``, ``fused_modconv_default``) and Freeze-D's ``freeze_layers`` of the
run that wrote the pickle are ignored (they change no numbers at inference); a D minibatch-std
group of None (the whole batch) becomes ganops' 0.
"""
import os
import re
from typing import Callable, Dict, Optional, Tuple

import torch

from .networks.stylegan2 import Discriminator, Generator
from .pretrained_tf import convert_discriminator, convert_generator
from .safe_pickle import PersistentRecord, TFNetworkRecord, safe_load
from .training.checkpoint import CheckpointError

Builder = Callable[[dict, Dict[str, torch.Tensor], torch.device], torch.nn.Module]
BUILDERS: Dict[str, Builder] = {}

# (module, a line only its source has), most specific first: the records store the module's
# source text but not its name.
MODULE_MARKERS = [
    ("training.networks_stylegan3", "class SynthesisInput("),
    ("training.networks_stylegan2", "fused_modconv_default"),
    ("training.networks", "class SynthesisNetwork("),
    ("training.augment", "class AugmentPipe("),
]


def register_builder(class_id: str, builder: Builder) -> None:
    """Use ``builder(kwargs, nvidia_state_dict, device) -> module`` for records of ``class_id``."""
    BUILDERS[class_id] = builder


def module_of(record: PersistentRecord) -> str:
    """NVIDIA module that defined the record's class, recognised from its source text."""
    for module, marker in MODULE_MARKERS:
        if marker in record.module_src:
            return module
    return "unknown"


def is_pickle(path: str) -> bool:
    """True when the file starts like a binary pickle (protocol 2+), not like a zip (torch.save)."""
    with open(path, "rb") as f:
        head = f.read(2)
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


# --- option checks -----------------------------------------------------------------------------

def _options(what: str, given: dict, spec: Dict[str, Tuple[object, Optional[tuple]]]) -> dict:
    """``spec``: name -> (default, supported values or None for any); returns every option's value."""
    unknown = sorted(set(given) - set(spec))
    if unknown:
        raise CheckpointError(f"{what}: options {unknown} are not known to ganops_models' StyleGAN2")
    out = {}
    for name, (default, supported) in spec.items():
        value = given.get(name, default)
        if supported is not None and value not in supported:
            raise CheckpointError(f"{what}: {name}={value!r} is not supported by ganops_models' StyleGAN2 "
                                  f"(it implements {' or '.join(repr(s) for s in supported)})")
        out[name] = value
    return out


_FILTER = ([1, 3, 3, 1], ([1, 3, 3, 1],))
_LRELU = ("lrelu", ("lrelu",))


def _precision(device: torch.device) -> str:
    return "fp16" if device.type == "cuda" else "fp32"


# --- weights -----------------------------------------------------------------------------------

def _rename(patterns):
    def rename(name: str) -> str:
        for pattern, repl in patterns:
            name = re.sub(pattern, repl, name)
        return name
    return rename


def load_nvidia_state(module: torch.nn.Module, state: Dict[str, torch.Tensor], to_nvidia: Callable[[str], str],
                      what: str) -> None:
    """Copy ``state`` (NVIDIA names) into ``module``; resample filters are derived from the kwargs
    and skipped. Missing, unexpected or mis-shaped entries raise one error listing them."""
    own = {k: v for k, v in module.state_dict().items() if not k.endswith("resample_filter")}
    names = {to_nvidia(k): k for k in own}
    given = {k: v for k, v in state.items() if not k.endswith("resample_filter")}
    problems = [f"missing {n}" for n in names if n not in given]
    problems += [f"unexpected {n}" for n in given if n not in names]
    problems += [f"{n}: shape {list(given[n].shape)} in the file, {list(own[k].shape)} in ganops"
                 for n, k in names.items() if n in given and given[n].shape != own[k].shape]
    if problems:
        more = f" (and {len(problems) - 8} more)" if len(problems) > 8 else ""
        raise CheckpointError(f"{what}: the weights do not fit the network built from its options: "
                              f"{'; '.join(problems[:8])}{more}")
    with torch.no_grad():
        for n, k in names.items():
            own[k].copy_(given[n].to(own[k].dtype))


# --- StyleGAN2 builders ------------------------------------------------------------------------

def stylegan2_generator_options(kwargs: dict) -> dict:
    """ganops ``Generator`` kwargs (without precision) for NVIDIA ``Generator`` kwargs (synthesis options
    under ``synthesis_kwargs`` as in StyleGAN2-ADA, or at the top level as in StyleGAN3's networks_stylegan2)."""
    names = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs")
    synthesis = {**(kwargs.get("synthesis_kwargs") or {}),
                 **{k: v for k, v in kwargs.items() if k not in names and k != "synthesis_kwargs"}}
    top = _options("G", {k: v for k, v in kwargs.items() if k in names}, {k: (None, None) for k in names})
    w_dim = top["w_dim"]
    mapping = _options("G mapping", top["mapping_kwargs"] or {}, {
        "num_layers": (8, None), "embed_features": (None, (None, w_dim)), "layer_features": (None, (None, w_dim)),
        "activation": _LRELU, "lr_multiplier": (0.01, (0.01,)), "w_avg_beta": (0.995, (0.995,))})
    syn = _options("G synthesis", synthesis, {
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
    top = _options("D", kwargs, {
        "c_dim": (0, None), "img_resolution": (None, None), "img_channels": (3, None),
        "architecture": ("resnet", ("orig", "skip", "resnet")), "channel_base": (32768, None),
        "channel_max": (512, None), "num_fp16_res": (0, None), "conv_clamp": (None, None), "cmap_dim": (None, None),
        "block_kwargs": ({}, None), "mapping_kwargs": ({}, None), "epilogue_kwargs": ({}, None)})
    _options("D blocks", top["block_kwargs"] or {}, {
        "activation": _LRELU, "resample_filter": _FILTER, "fp16_channels_last": (False, None),
        "freeze_layers": (0, None)})
    cmap = top["cmap_dim"] or min(top["channel_base"] // 4, top["channel_max"])
    mapping = _options("D mapping", top["mapping_kwargs"] or {}, {
        "num_layers": (8, None), "embed_features": (None, (None, cmap)), "layer_features": (None, (None, cmap)),
        "activation": _LRELU, "lr_multiplier": (0.01, None)})
    if mapping["num_layers"] > 0 and mapping["lr_multiplier"] != 0.01:
        raise CheckpointError(f"D mapping: lr_multiplier={mapping['lr_multiplier']} is not supported by "
                              f"ganops_models' StyleGAN2 (it implements 0.01)")
    epi = _options("D epilogue", top["epilogue_kwargs"] or {}, {
        "mbstd_group_size": (4, None), "mbstd_num_channels": (1, None), "activation": _LRELU})
    return dict(c_dim=top["c_dim"], resolution=top["img_resolution"], img_channels=top["img_channels"],
                architecture=top["architecture"], channel_base=top["channel_base"], channel_max=top["channel_max"],
                num_fp16_res=top["num_fp16_res"], conv_clamp=top["conv_clamp"], cmap_dim=top["cmap_dim"],
                mbstd_group_size=epi["mbstd_group_size"] or 0, mbstd_num_channels=epi["mbstd_num_channels"],
                mapping_layers=mapping["num_layers"])


def build_stylegan2_generator(kwargs: dict, state: Dict[str, torch.Tensor], device: torch.device) -> Generator:
    G = Generator(**stylegan2_generator_options(kwargs), precision=_precision(device))
    load_nvidia_state(G, state, _rename([(r"^mapping\.layers\.(\d+)\.", r"mapping.fc\1."),
                                         (r"^synthesis\.blocks\.(\d+)\.",
                                          lambda m: f"synthesis.b{4 << int(m.group(1))}.")]), "G")
    return G.to(device)


def build_stylegan2_discriminator(kwargs: dict, state: Dict[str, torch.Tensor],
                                  device: torch.device) -> Discriminator:
    D = Discriminator(**stylegan2_discriminator_options(kwargs), precision=_precision(device))
    top = min(D.resolution)
    load_nvidia_state(D, state, _rename([(r"^mapping\.layers\.(\d+)\.", r"mapping.fc\1."),
                                         (r"^blocks\.(\d+)\.", lambda m: f"b{top >> int(m.group(1))}.")]), "D")
    return D.to(device)


for _module in ("training.networks", "training.networks_stylegan2"):
    register_builder(f"{_module}.Generator", build_stylegan2_generator)
    register_builder(f"{_module}.Discriminator", build_stylegan2_discriminator)


# --- whole files -------------------------------------------------------------------------------

# Constructor defaults that differ from StyleGAN2-ADA's: the StyleGAN3 repo's networks_stylegan2 G and D
# default to 4 fp16 resolutions and conv_clamp 256, which its train.py leaves out of the kwargs.
MODULE_DEFAULTS = {"training.networks_stylegan2": {"num_fp16_res": 4, "conv_clamp": 256}}


def record_kwargs(record) -> dict:
    """The record's constructor kwargs with its module's defaults (:data:`MODULE_DEFAULTS`) filled in."""
    return {**MODULE_DEFAULTS.get(module_of(record), {}), **record.init_kwargs}


def _build(record, key: str, device: torch.device) -> torch.nn.Module:
    if not isinstance(record, PersistentRecord):
        raise CheckpointError(f"{key!r} in the pickle is not a network record ({type(record).__name__})")
    class_id = f"{module_of(record)}.{record.class_name}"
    if class_id not in BUILDERS:
        raise CheckpointError(f"{key!r} is a {class_id} network, which ganops_models cannot load "
                              f"(supported: {', '.join(sorted(BUILDERS))})")
    module = BUILDERS[class_id](record_kwargs(record), record.state_dict(), device)
    return module.eval().requires_grad_(False)


def _augment_p(record) -> Optional[float]:
    if not isinstance(record, PersistentRecord):
        return None
    p = record.state_dict().get("p")
    return float(p) if p is not None and p.numel() == 1 else None


def read_pickle(path: str, device="cpu") -> dict:
    """The networks of an NVIDIA pickle: {'G', 'D', 'G_ema' (ganops modules, eval, no grad), 'source'
    ('nvidia-pytorch' | 'nvidia-tf'), 'kind' ('stylegan2' | 'stylegan3'), 'kwargs' (NVIDIA kwargs of G and D), 'augment_p', 'training_set_kwargs'}."""
    device = torch.device(device)
    data = safe_load(path)
    if isinstance(data, tuple) and len(data) == 3 and all(isinstance(n, TFNetworkRecord) for n in data):
        (g_kw, g_state), (d_kw, d_state), (gs_kw, gs_state) = (convert_generator(data[0]),
                                                               convert_discriminator(data[1]),
                                                               convert_generator(data[2]))
        return dict(G=build_stylegan2_generator(g_kw, g_state, device).eval().requires_grad_(False),
                    D=build_stylegan2_discriminator(d_kw, d_state, device).eval().requires_grad_(False),
                    G_ema=build_stylegan2_generator(gs_kw, gs_state, device).eval().requires_grad_(False),
                    source="nvidia-tf", kind="stylegan2", kwargs={"G": gs_kw, "D": d_kw}, augment_p=None, training_set_kwargs=None)
    if isinstance(data, dict) and all(k in data for k in ("G", "D", "G_ema")):
        nets = {k: _build(data[k], k, device) for k in ("G", "D", "G_ema")}
        tsk = data.get("training_set_kwargs")
        kind = "stylegan3" if module_of(data["G_ema"]) == "training.networks_stylegan3" else "stylegan2"
        return dict(**nets, source="nvidia-pytorch", kind=kind,
                    kwargs={"G": record_kwargs(data["G_ema"]), "D": record_kwargs(data["D"])},
                    augment_p=_augment_p(data.get("augment_pipe")),
                    training_set_kwargs=dict(tsk) if isinstance(tsk, dict) else None)
    raise CheckpointError(f"{path!r} is a pickle but not an NVIDIA StyleGAN2 network pickle (expected a dict with "
                          f"'G', 'D', 'G_ema' or a TensorFlow (G, D, Gs) tuple, got {type(data).__name__})")


def train_options(kwargs: dict, kind: str = "stylegan2") -> dict:
    """TrainOptions values that rebuild the networks of ``kwargs`` ({'G': ..., 'D': ...} NVIDIA kwargs)
    in the StyleGAN2 (or, ``kind`` 'stylegan3', StyleGAN3) recipe (fine-tuning, conversion); what the
    recipe cannot express is an error."""
    if kind == "stylegan3":
        return pretrained_stylegan3.train_options(kwargs)
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


def load_pickle(path: str, device="cpu"):
    """:class:`~ganops_models.network_loader.LoadedNetwork` for an NVIDIA pickle; ``info`` holds the
    NVIDIA kwargs and ``training_set_kwargs``."""
    from .network_loader import LoadedNetwork
    nets = read_pickle(path, device)
    G_ema = nets["G_ema"]
    return LoadedNetwork(G=nets["G"], D=nets["D"], G_ema=G_ema, kind=nets["kind"], source=nets["source"],
                         path=path, z_dim=G_ema.z_dim, c_dim=G_ema.c_dim, resolution=tuple(G_ema.resolution),
                         img_channels=G_ema.img_channels, augment_p=nets["augment_p"],
                         info={"nvidia_kwargs": nets["kwargs"], "training_set_kwargs": nets["training_set_kwargs"],
                               "file": os.path.basename(path)})


def describe(net) -> str:
    """'NVIDIA PyTorch pickle X at 256x256, c_dim 0' for logs."""
    kind = {"nvidia-pytorch": "NVIDIA pickle", "nvidia-tf": "NVIDIA TensorFlow pickle"}.get(net.source, net.source)
    h, w = net.resolution
    return f"{kind} {net.path} at {w}x{h}, c_dim {net.c_dim}"


from . import pretrained_stylegan3  # noqa: E402,F401  (registers the StyleGAN3 builder)

__all__ = ["BUILDERS", "MODULE_MARKERS", "build_stylegan2_discriminator", "build_stylegan2_generator", "describe",
           "is_pickle", "load_nvidia_state", "load_pickle", "module_of", "read_pickle", "register_builder",
           "train_options"]
