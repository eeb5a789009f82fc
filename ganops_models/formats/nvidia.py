"""NVIDIA's StyleGAN2/StyleGAN3 network pickles as ganops_models networks, read without running their code.

Formats (told apart by content, see :func:`load_pickle`):

* StyleGAN2-ADA PyTorch snapshots (``network-snapshot-*.pkl``, also the StyleGAN2 networks of the
  StyleGAN3 repo): a dict with ``G``, ``D``, ``G_ema`` persistence records (constructor kwargs +
  module state), optional ``augment_pipe`` and ``training_set_kwargs``;
* StyleGAN2 TensorFlow pickles: a ``(G, D, Gs)`` tuple of ``dnnlib.tflib`` networks, converted by
  :mod:`ganops_models.formats.nvidia_tf` as NVIDIA's ``legacy.py`` does.

Each network is built from its own kwargs by the builder registered for its NVIDIA class
(:data:`BUILDERS`, keyed ``"<module>.<class>"``, e.g. ``training.networks.Generator``; the module
is recognised from the record's source text, see :func:`module_of`), and the weights are copied by
name (NVIDIA ``mapping.fc{i}`` -> ganops ``mapping.layers.{i}``, ``synthesis.b{r}`` ->
``synthesis.blocks.{log2 r - 2}``, D ``b{r}`` -> ``blocks.{log2(R / r)}``; everything else keeps its
name: ``const``, ``conv0/conv1/torgb/skip``, ``affine``, ``noise_const``/``noise_strength``,
``w_avg``, ``embed``, epilogue ``b4.{fromrgb,conv,fc,out}``). Any name or shape that does not fit,
or an option ganops' StyleGAN2 does not implement, is an error saying what differs.
Builders live with their models (:mod:`ganops_models.models.stylegan2.nvidia`,
:mod:`ganops_models.models.stylegan3.nvidia`) and plug in with :func:`register_builder` and
:func:`register_train_options`; this module knows no model.

Deliberate differences from NVIDIA's loader: nothing in the file is executed (see
:mod:`ganops_models.formats.safe_pickle`); on the CPU the networks compute in float32 everywhere (NVIDIA's
``force_fp32``; on a GPU the pickle's ``num_fp16_res`` highest resolutions use float16); memory-layout
options (``fp16_channels_last``, ``fused_modconv_default``) and Freeze-D's ``freeze_layers`` of the
run that wrote the pickle are ignored (they change no numbers at inference); a D minibatch-std
group of None (the whole batch) becomes ganops' 0.
"""
import re
from typing import Callable, Dict, Optional, Tuple

import torch

from ganops_models.formats.nvidia_tf import convert_discriminator, convert_generator
from ganops_models.formats.safe_pickle import PersistentRecord, TFNetworkRecord, safe_load
from ganops_models.errors import CheckpointError

Builder = Callable[[dict, Dict[str, torch.Tensor], torch.device], torch.nn.Module]
BUILDERS: Dict[str, Builder] = {}
# model kind -> (NVIDIA kwargs {'G': ..., 'D': ...}) -> training option values that rebuild those networks
TrainOptionsFn = Callable[[dict], dict]
TRAIN_OPTIONS: Dict[str, TrainOptionsFn] = {}

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


def register_train_options(kind: str, fn: TrainOptionsFn) -> None:
    """Use ``fn(nvidia_kwargs) -> option values`` to fine-tune pickles of model ``kind``."""
    TRAIN_OPTIONS[kind] = fn


def train_options(kwargs: dict, kind: str = "stylegan2") -> dict:
    """Training option values that rebuild the networks of ``kwargs`` ({'G': ..., 'D': ...} NVIDIA kwargs)
    in the recipe of ``kind`` (fine-tuning, conversion); what the recipe cannot express is an error."""
    if kind not in TRAIN_OPTIONS:
        raise CheckpointError(f"ganops_models cannot train {kind} networks from NVIDIA pickles")
    return TRAIN_OPTIONS[kind](kwargs)


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

def check_options(what: str, given: dict, spec: Dict[str, Tuple[object, Optional[tuple]]]) -> dict:
    """``given`` options of network part ``what`` against ``spec``: name -> (default, supported values
    or None for any); returns every option's value."""
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


def inference_precision(device: torch.device) -> str:
    return "fp16" if device.type == "cuda" else "fp32"


# --- weights -----------------------------------------------------------------------------------

def rename_weights(patterns):
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
    data = safe_load(path)
    try:
        return _networks(data, path, torch.device(device))
    except CheckpointError as e:
        if repr(path) in str(e):
            raise
        raise type(e)(f"{path!r}: {e}") from None


def _networks(data, path: str, device: torch.device) -> dict:
    if isinstance(data, tuple) and len(data) == 3 and all(isinstance(n, TFNetworkRecord) for n in data):
        (g_kw, g_state), (d_kw, d_state), (gs_kw, gs_state) = (convert_generator(data[0]),
                                                               convert_discriminator(data[1]),
                                                               convert_generator(data[2]))
        build_g, build_d = BUILDERS["training.networks.Generator"], BUILDERS["training.networks.Discriminator"]
        return dict(G=build_g(g_kw, g_state, device).eval().requires_grad_(False),
                    D=build_d(d_kw, d_state, device).eval().requires_grad_(False),
                    G_ema=build_g(gs_kw, gs_state, device).eval().requires_grad_(False),
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


__all__ = ["BUILDERS", "MODULE_MARKERS", "TRAIN_OPTIONS", "check_options", "inference_precision", "is_pickle",
           "load_nvidia_state", "module_of", "read_pickle", "record_kwargs", "register_builder",
           "register_train_options", "rename_weights", "train_options"]
