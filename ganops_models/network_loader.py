"""The one network loader shared by the user tools (generate, metrics, video, project, style_mixing, convert)
and by ``train --resume``.

``load_network(spec, device)`` accepts a ganops checkpoint (``checkpoint-*.pt``), a run folder (its newest
valid checkpoint) or ``latest`` (the newest run under ``outdir``), or an NVIDIA StyleGAN2 pickle (PyTorch or TensorFlow,
read safely by :mod:`ganops_models.formats.nvidia`) and returns a :class:`LoadedNetwork`
holding the ganops modules ``G``, ``D`` and ``G_ema``. On the CPU the networks compute in float32.

Seeds: the latent of seed ``s`` is ``np.random.RandomState(s).randn(1, z_dim)`` (NVIDIA's generate.py rule),
so a seed names the same picture in every tool and for every network format.
"""
import dataclasses
import os
import typing
from typing import List, Optional

import numpy as np
import torch

from ganops_models.errors import CheckpointError, OptionsError
from ganops_models.files import regular_file
from ganops_models.formats import nvidia
from ganops_models.formats.checkpoint import check_compatible, load_checkpoint, load_state, resolve_resume
from ganops_models.models.registry import RECIPES
from ganops_models.training import distributed
from ganops_models.training.recipe import DataInfo


@dataclasses.dataclass
class LoadedNetwork:
    """A network ready for the tools. ``G_ema`` maps (z [N, z_dim], c [N, c_dim]) to images in [-1, 1];
    ``kind`` is the model ('stylegan2', 'fastgan', 'dcgan', ...); ``source`` the file format
    ('ganops', 'nvidia-pytorch', 'nvidia-tf'); ``recipe`` is the training recipe for ganops checkpoints
    (None for pickles); ``checkpoint`` the ganops checkpoint dict (None for pickles)."""
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
    info: dict = dataclasses.field(default_factory=dict)   # format-specific extras (e.g. training_set_kwargs)

    @torch.no_grad()
    def sample(self, z: torch.Tensor, c: Optional[torch.Tensor] = None, truncation_psi: float = 1.0,
               noise_mode: str = "const", batch: int = 16) -> torch.Tensor:
        """EMA-generator images in [-1, 1], float32 on the CPU, for z [N, z_dim] and one-hot c [N, c_dim]
        (None when unconditional). ganops checkpoints sample through their recipe (any model)."""
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


def _check_option_types(options_cls, options: dict, path: str) -> None:
    """Each stored option has its declared type (a list for a tuple; None is allowed anywhere)."""
    types = {f.name: f.type for f in dataclasses.fields(options_cls)}
    extra = options.get("extra")
    if extra is not None and not isinstance(extra, dict):
        raise CheckpointError(f"checkpoint {path!r}: options['extra'] is a {type(extra).__name__}, expected a dict")
    for key, value in {**options, **(extra or {})}.items():
        if key in types and not _accepts(types[key], value):
            expected = getattr(types[key], "__name__", None) or str(types[key]).replace("typing.", "")
            raise CheckpointError(f"checkpoint {path!r}: option {key!r} is {value!r} ({type(value).__name__}), "
                                  f"expected {expected}")


def read_checkpoint(path: str):
    """(checkpoint dict, its recipe class) of a ganops checkpoint whose model is known and whose options
    have the right types (:class:`CheckpointError` naming the field otherwise): for the tools and for
    ``train --resume``, before any network is built."""
    ckpt = load_checkpoint(path)
    if ckpt["model"] not in RECIPES:
        raise CheckpointError(f"checkpoint {path!r} holds a {ckpt['model']!r} model, which ganops_models does not "
                              f"know (models: {', '.join(sorted(RECIPES))})")
    unknown = sorted(set(ckpt["data"]) - {f.name for f in dataclasses.fields(DataInfo)})
    if unknown:
        raise CheckpointError(f"checkpoint {path!r}: data has unknown entries {unknown}")
    recipe_cls = RECIPES[ckpt["model"]]
    _check_option_types(recipe_cls.Options, ckpt["options"], path)
    try:
        recipe_cls.Options.from_dict(ckpt["options"])
    except (OptionsError, TypeError) as e:
        raise CheckpointError(f"checkpoint {path!r}: {e}") from None
    return ckpt, recipe_cls


def _from_ganops_checkpoint(path: str, device) -> LoadedNetwork:
    ckpt, recipe_cls = read_checkpoint(path)
    device = torch.device(device)
    # float32 everywhere on the CPU (NVIDIA's force_fp32), as for pickles
    cpu = {"precision": "fp32"} if device.type == "cpu" else {}
    opts = recipe_cls.Options.from_dict({**ckpt["options"], "device": device.type, **cpu})
    data = DataInfo(**{**ckpt["data"], "resolution": tuple(ckpt["data"]["resolution"])})
    recipe = recipe_cls(opts, data, torch.device(device), distributed.DistInfo())
    check_compatible(ckpt, ckpt["model"], recipe.arch_spec(), path)   # e.g. an older layout of the model
    load_state(recipe, ckpt, path)
    G_ema = recipe.generator_for_eval() if ckpt["model"] != "stylegan2" else recipe.G_ema
    return LoadedNetwork(G=recipe.G, D=recipe.D, G_ema=G_ema, kind=ckpt["model"], source="ganops", path=path,
                         z_dim=int(getattr(recipe.G, "z_dim", 0) or recipe.latents(1, torch.Generator()).shape[1]),
                         c_dim=data.label_dim if opts.cond else 0, resolution=tuple(opts.resolution or data.resolution),
                         img_channels=data.num_channels, augment_p=recipe.augment_p, recipe=recipe, checkpoint=ckpt)


def load_network(spec: str, device="cpu", outdir: str = "runs", flag: str = "--network") -> LoadedNetwork:
    """Load any supported network file (see the module docstring); errors are :class:`CheckpointError`.
    A file starting like a pickle is read as an NVIDIA pickle (never executed), anything else as a
    ganops checkpoint."""
    path = resolve_network(spec, outdir, flag)
    if nvidia.is_pickle(path):
        return load_pickle(path, device)
    return _from_ganops_checkpoint(path, device)


__all__ = ["LoadedNetwork", "load_network", "load_pickle", "read_checkpoint", "resolve_network", "seed_latents"]
