"""The one network loader shared by the user tools (generate, metrics, video, project, style_mixing, convert)
and by ``train --resume``.

``load_network(spec, device)`` accepts a ganops checkpoint (``checkpoint-*.pt``), a run folder (its newest
valid checkpoint) or ``latest`` (the newest run under ``outdir``), a safetensors network (``*.safetensors``
written by ``python -m ganops_models.convert``), or an NVIDIA StyleGAN2/3 pickle (PyTorch or TensorFlow,
read safely by :mod:`ganops_models.formats.nvidia`) and returns a :class:`LoadedNetwork`
holding the ganops modules ``G``, ``D`` and ``G_ema``. On the CPU the networks compute in float32.

A safetensors network (:data:`SAFETENSORS_FORMAT`) holds the parameters and buffers of G, D and G_ema
as ``G.<name>``, ``D.<name>``, ``G_ema.<name>`` (shared buffers once, see
:mod:`ganops_models.formats.safetensors`) and, as metadata, what rebuilds them
(:data:`SAFETENSORS_METADATA`): ``format``, ``model`` (the recipe's name), ``options`` (JSON: the
model's training options, from which the recipe derives the networks' constructor arguments),
``data`` (JSON: resolution, channels, label count, name) and ``augment_p`` (JSON: ADA's p or null).
It is checked like a checkpoint (known model, option types, sizes within
:mod:`~ganops_models.formats.limits`), then the networks are built and the file's tensors must be
exactly theirs (names, shapes, dtypes) and finite. It holds no optimiser or training progress: it
can be sampled, measured and exported, not resumed.

Seeds: the latent of seed ``s`` is ``np.random.RandomState(s).randn(1, z_dim)`` (NVIDIA's generate.py rule),
so a seed names the same picture in every tool and for every network format.
"""
import dataclasses
import json
import os
import typing
from typing import Dict, List, Optional

import numpy as np
import torch

from ganops_models.errors import CheckpointError, OptionsError
from ganops_models.files import regular_file
from ganops_models.formats import nvidia
from ganops_models.formats import safetensors as safetensors_file
from ganops_models.formats.checkpoint import (check_compatible, check_network_record, load_checkpoint, load_state,
                                              resolve_resume)
from ganops_models.formats.safe_pickle import check_structure
from ganops_models.models.registry import RECIPES
from ganops_models.training import distributed
from ganops_models.training.recipe import DataInfo


@dataclasses.dataclass
class LoadedNetwork:
    """A network ready for the tools. ``G_ema`` maps (z [N, z_dim], c [N, c_dim]) to images in [-1, 1];
    ``kind`` is the model ('stylegan2', 'fastgan', 'dcgan', ...); ``source`` the file format
    ('ganops', 'safetensors', 'nvidia-pytorch', 'nvidia-tf'); ``recipe`` is the training recipe for ganops
    checkpoints and safetensors networks (None for pickles); ``checkpoint`` the ganops checkpoint dict
    (None for the other formats)."""
    G: torch.nn.Module
    D: Optional[torch.nn.Module]
    G_ema: torch.nn.Module
    kind: str
    source: str
    path: str
    z_dim: int
    c_dim: int
    resolution: tuple                      # (H, W)
    img_channels: int = 3
    augment_p: Optional[float] = None
    recipe: object = None
    checkpoint: Optional[dict] = None
    info: dict = dataclasses.field(default_factory=dict)   # format-specific extras (e.g. training_set_kwargs,
                                                           # the stored options of a ganops file)

    @torch.no_grad()
    def sample(self, z: torch.Tensor, c: Optional[torch.Tensor] = None, truncation_psi: float = 1.0,
               noise_mode: str = "const", batch: int = 16) -> torch.Tensor:
        """EMA-generator images in [-1, 1], float32 on the CPU, for z [N, z_dim] and one-hot c [N, c_dim]
        (None when unconditional). ganops checkpoints and safetensors networks sample through their recipe
        (any model)."""
        if self.recipe is not None:
            kwargs = {"noise_mode": noise_mode, "batch": batch}
            if truncation_psi != 1:
                kwargs["truncation_psi"] = truncation_psi
            return self.recipe.sample(z, c, **kwargs)
        c = c if c is not None else torch.zeros([z.shape[0], self.c_dim])
        device = next(self.G_ema.parameters()).device
        return torch.cat([self.G_ema(zb.to(device), cb.to(device), truncation_psi=truncation_psi,
                                     noise_mode=noise_mode).float().cpu()
                          for zb, cb in zip(z.split(batch), c.split(batch))])

    def describe(self) -> str:
        """'NVIDIA pickle X at 256x256, c_dim 0' for logs and messages."""
        kind = {"nvidia-pytorch": "NVIDIA pickle", "nvidia-tf": "NVIDIA TensorFlow pickle"}.get(self.source, self.source)
        h, w = self.resolution
        return f"{kind} {self.path} at {w}x{h}, c_dim {self.c_dim}"

    @property
    def has_w_space(self) -> bool:
        """True for style-based generators (mapping + synthesis, ``num_ws``, ``w_avg``)."""
        return all(hasattr(self.G_ema, a) for a in ("mapping", "synthesis", "num_ws"))


def resolve_network(spec: str, outdir: str = "runs", flag: str = "--network") -> str:
    """File path for ``spec``: a file, a run folder (newest valid checkpoint) or 'latest'."""
    if spec == "latest" or os.path.isdir(spec):
        return resolve_resume(spec, outdir, flag=flag)
    try:
        return regular_file(spec, flag)
    except (FileNotFoundError, ValueError) as e:
        raise CheckpointError(str(e)) from None


def seed_latents(seeds: List[int], z_dim: int) -> torch.Tensor:
    """[len(seeds), z_dim] float32: row i is ``np.random.RandomState(seeds[i]).randn(1, z_dim)``."""
    return torch.from_numpy(np.concatenate([np.random.RandomState(s).randn(1, z_dim) for s in seeds])).float()


def load_pickle(path: str, device="cpu"):
    """:class:`LoadedNetwork` for an NVIDIA pickle; ``info`` holds the
    NVIDIA kwargs and ``training_set_kwargs``."""
    nets = nvidia.read_pickle(path, device)
    G_ema = nets["G_ema"]
    return LoadedNetwork(G=nets["G"], D=nets["D"], G_ema=G_ema, kind=nets["kind"], source=nets["source"],
                         path=path, z_dim=G_ema.z_dim, c_dim=G_ema.c_dim, resolution=tuple(G_ema.resolution),
                         img_channels=G_ema.img_channels, augment_p=nets["augment_p"],
                         info={"nvidia_kwargs": nets["kwargs"], "training_set_kwargs": nets["training_set_kwargs"],
                               "file": os.path.basename(path)})


def _accepts(annotation, value) -> bool:
    """True when ``value`` (from a file) fits the option type ``annotation`` (None fits any)."""
    if value is None:
        return True
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Union:
        return any(_accepts(a, value) for a in args if a is not type(None))
    if origin is tuple:
        return isinstance(value, (list, tuple)) and len(value) == len(args) and all(
            _accepts(a, v) for a, v in zip(args, value))
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    return True


def _check_option_types(options_cls, options: dict, where: str) -> None:
    """Each stored option has its declared type (a list for a tuple; None is allowed anywhere)."""
    types = {f.name: f.type for f in dataclasses.fields(options_cls)}
    extra = options.get("extra")
    if extra is not None and not isinstance(extra, dict):
        raise CheckpointError(f"{where}: options['extra'] is a {type(extra).__name__}, expected a dict")
    for key, value in {**options, **(extra or {})}.items():
        if key in types and not _accepts(types[key], value):
            expected = getattr(types[key], "__name__", None) or str(types[key]).replace("typing.", "")
            raise CheckpointError(f"{where}: option {key!r} is {value!r} ({type(value).__name__}), "
                                  f"expected {expected}")


def check_record(model, options, data, where: str):
    """The recipe class of a network record read from a file (``model`` name, ``options`` and ``data``
    dicts), after checking that the model is known, the data entries are DataInfo's and the options
    have their declared types and sane network sizes; else a :class:`CheckpointError` naming the field
    (``where`` names the file)."""
    if model not in RECIPES:
        raise CheckpointError(f"{where} holds a {model!r} model, which ganops_models does not "
                              f"know (models: {', '.join(sorted(RECIPES))})")
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(DataInfo)})
    if unknown:
        raise CheckpointError(f"{where}: data has unknown entries {unknown}")
    recipe_cls = RECIPES[model]
    _check_option_types(recipe_cls.Options, options, where)
    try:
        recipe_cls.Options.from_dict(options)
    except (OptionsError, TypeError) as e:
        raise CheckpointError(f"{where}: {e}") from None
    check_network_record(options, data, where)
    return recipe_cls


def read_checkpoint(path: str):
    """(checkpoint dict, its recipe class) of a ganops checkpoint whose model is known and whose options
    have the right types (:class:`CheckpointError` naming the field otherwise): for the tools and for
    ``train --resume``, before any network is built."""
    ckpt = load_checkpoint(path)
    return ckpt, check_record(ckpt["model"], ckpt["options"], ckpt["data"], f"checkpoint {path!r}")


def _recipe_for(recipe_cls, options: dict, data: dict, device):
    """The recipe of stored ``options`` and ``data`` on ``device`` (float32 everywhere on the CPU, NVIDIA's
    force_fp32, as for pickles), its networks freshly initialised."""
    device = torch.device(device)
    cpu = {"precision": "fp32"} if device.type == "cpu" else {}
    opts = recipe_cls.Options.from_dict({**options, "device": device.type, **cpu})
    info = DataInfo(**{**data, "resolution": tuple(data["resolution"])})
    return recipe_cls(opts, info, device, distributed.DistInfo())


def _loaded(recipe, model: str, source: str, path: str, augment_p, options: dict, checkpoint=None) -> LoadedNetwork:
    """The :class:`LoadedNetwork` of a recipe built from a file; ``info['options']``: the file's options."""
    opts, data = recipe.opts, recipe.data
    G_ema = recipe.generator_for_eval() if model != "stylegan2" else recipe.G_ema
    return LoadedNetwork(G=recipe.G, D=recipe.D, G_ema=G_ema, kind=model, source=source, path=path,
                         z_dim=int(getattr(recipe.G, "z_dim", 0) or recipe.latents(1, torch.Generator()).shape[1]),
                         c_dim=data.label_dim if opts.cond else 0, resolution=tuple(opts.resolution or data.resolution),
                         img_channels=data.num_channels, augment_p=augment_p, recipe=recipe, checkpoint=checkpoint,
                         info={"options": options})


def _from_ganops_checkpoint(path: str, device) -> LoadedNetwork:
    ckpt, recipe_cls = read_checkpoint(path)
    recipe = _recipe_for(recipe_cls, ckpt["options"], ckpt["data"], device)
    check_compatible(ckpt, ckpt["model"], recipe.arch_spec(), path)   # e.g. an older layout of the model
    load_state(recipe, ckpt, path)
    return _loaded(recipe, ckpt["model"], "ganops", path, recipe.augment_p, ckpt["options"], ckpt)


# --- safetensors networks ------------------------------------------------------------------------

SAFETENSORS_FORMAT = "ganops-network-v1"
NETWORKS = ("G", "D", "G_ema")             # the modules a safetensors network holds, as "<module>.<state name>"
# metadata entry -> how it is stored: 'text' as is, 'json' JSON-encoded
SAFETENSORS_METADATA = {"format": "text", "model": "text", "options": "json", "data": "json", "augment_p": "json"}


def network_tensors(recipe) -> Dict[str, torch.Tensor]:
    """The tensors of a recipe's G, D and G_ema (parameters and buffers) under the names of a
    safetensors network: ``G.<name>``, ``D.<name>``, ``G_ema.<name>``."""
    return {f"{net}.{name}": t for net in NETWORKS for name, t in getattr(recipe, net).state_dict().items()}


def save_safetensors(path: str, recipe, model: str, options: dict, augment_p: Optional[float]) -> None:
    """Write the G, D and G_ema of ``recipe`` (a ``model`` recipe) to ``path`` as a safetensors network,
    with ``options`` (the options record to store) and ``augment_p`` (atomically)."""
    metadata = {"format": SAFETENSORS_FORMAT, "model": model, "options": json.dumps(options, sort_keys=True),
                "data": json.dumps(dataclasses.asdict(recipe.data)), "augment_p": json.dumps(augment_p)}
    safetensors_file.save(path, network_tensors(recipe), metadata)


def _metadata(metadata: Dict[str, str], path: str) -> dict:
    """The record of a safetensors network's metadata (see :data:`SAFETENSORS_METADATA`), strictly checked."""
    where = f"safetensors network {path!r}"
    missing = sorted(set(SAFETENSORS_METADATA) - set(metadata))
    extra = sorted(set(metadata) - set(SAFETENSORS_METADATA))
    if missing or extra:
        what = "; ".join(part for part in (f"missing {missing}" if missing else "",
                                           f"unknown {extra}" if extra else "") if part)
        raise CheckpointError(f"{where}: its metadata does not fit {SAFETENSORS_FORMAT} ({what}); write it with "
                              f"python -m ganops_models.convert --out X.safetensors")
    if metadata["format"] != SAFETENSORS_FORMAT:
        raise CheckpointError(f"{where}: format {metadata['format'][:80]!r}, expected {SAFETENSORS_FORMAT!r}")
    record = {}
    for key, kind in SAFETENSORS_METADATA.items():
        if kind == "text":
            record[key] = metadata[key]
            continue
        try:
            record[key] = json.loads(metadata[key])
        except (ValueError, RecursionError):
            raise CheckpointError(f"{where}: its metadata entry {key!r} is not JSON") from None
        check_structure(record[key], f"{where} metadata {key!r}")
    for key in ("options", "data"):
        if not isinstance(record[key], dict):
            raise CheckpointError(f"{where}: its metadata entry {key!r} is a JSON {type(record[key]).__name__}, "
                                  f"expected an object")
    p = record["augment_p"]
    if p is not None and (isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1):
        raise CheckpointError(f"{where}: augment_p is {p!r}, expected null or a number in [0, 1]")
    return record


def _check_tensors(tensors: Dict[str, torch.Tensor], expected: Dict[str, torch.Tensor], where: str) -> None:
    """The file's tensors must be exactly the network's: the same names, shapes and dtypes, finite floats."""
    problems = [f"missing {n}" for n in expected if n not in tensors]
    problems += [f"unexpected {n}" for n in tensors if n not in expected]
    for n, t in expected.items():
        if n in tensors and (tensors[n].shape != t.shape or tensors[n].dtype != t.dtype):
            problems.append(f"{n}: {str(tensors[n].dtype)[6:]} {list(tensors[n].shape)} in the file, "
                            f"{str(t.dtype)[6:]} {list(t.shape)} in the network")
    if problems:
        more = f" (and {len(problems) - 8} more)" if len(problems) > 8 else ""
        raise CheckpointError(f"{where}: its tensors do not fit the network built from its metadata: "
                              f"{'; '.join(problems[:8])}{more}")
    for n, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise CheckpointError(f"{where} holds non-finite weights (NaN or inf) in {n}")


def _from_safetensors(path: str, device) -> LoadedNetwork:
    tensors, metadata = safetensors_file.load(path)
    record = _metadata(metadata, path)
    where = f"safetensors network {path!r}"
    recipe_cls = check_record(record["model"], record["options"], record["data"], where)
    recipe = _recipe_for(recipe_cls, record["options"], record["data"], device)
    _check_tensors(tensors, network_tensors(recipe), where)
    for net in NETWORKS:
        prefix = net + "."
        getattr(recipe, net).load_state_dict({n[len(prefix):]: t for n, t in tensors.items() if n.startswith(prefix)})
    return _loaded(recipe, record["model"], "safetensors", path, record["augment_p"], record["options"])


def load_network(spec: str, device="cpu", outdir: str = "runs", flag: str = "--network") -> LoadedNetwork:
    """Load any supported network file (see the module docstring); errors are :class:`CheckpointError`.
    A file starting like a pickle is read as an NVIDIA pickle (never executed), a ``*.safetensors`` file
    (or one starting like it) as a safetensors network, anything else as a ganops checkpoint."""
    path = resolve_network(spec, outdir, flag)
    if nvidia.is_pickle(path):
        return load_pickle(path, device)
    if safetensors_file.is_safetensors(path):
        return _from_safetensors(path, device)
    return _from_ganops_checkpoint(path, device)


__all__ = ["NETWORKS", "SAFETENSORS_FORMAT", "SAFETENSORS_METADATA", "LoadedNetwork", "check_record", "load_network",
           "load_pickle", "network_tensors", "read_checkpoint", "resolve_network", "save_safetensors", "seed_latents"]
