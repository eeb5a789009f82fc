"""Training options: one dataclass per model, resolved once, from layers of values, in one place.

:class:`TrainOptions` holds what every model has (data, length, hardware, batch, learning rates,
EMA, augmentation); a model extends it with its own fields in ``models/<name>/options.py`` and
names the class in its recipe (``Recipe.Options``). Every field is declared with :func:`option`:
default, help and command-line flags together, so the ``train`` command line is generated from the
dataclasses (:mod:`ganops_models.tools.train_cli`) and no default is restated anywhere else.
Checks sit on the class (:meth:`TrainOptions.check`, extended by each model).

:func:`resolve` builds the options of every kind of run from layers, lowest first, and records where
each value came from (``train -n`` prints it)::

    new run:      default < preset < command line
    fine-tuning:  default < preset < fine-tuning defaults < pickle < command line
    resumed run:  checkpoint < command line

then applies the rules by which some options follow others (:meth:`TrainOptions.derive`) and checks
the result. The record is written to ``options.json`` and stored in every checkpoint.
"""
import dataclasses
import json
import math
from typing import Any, Dict, List, Optional, Tuple, Type

from ganops_models.data.image import parse_resolution as data_resolution
from ganops_models.errors import DatasetError, OptionsError
from ganops_models.extras import require

NAN_POLICIES = ("stop", "rollback")
AUG_MODES = ("ada", "fixed", "noaug", "diffaug")
PRECISIONS = ("fp32", "fp16", "bf16")
CROP_CHOICES = ("center", "letterbox", "pad", "none")


def option(default, help: str, *, flags: Tuple[str, ...] = (), cli: bool = True, type=None, choices=None,
           metavar: Optional[str] = None, kind: str = "value"):
    """A dataclass field that is also a ``train`` flag: ``--<name with dashes>`` plus ``flags`` (aliases;
    the first one is the main spelling), parsed by ``type`` or ``kind`` ('value', 'bool' for NVIDIA's
    click booleans ``--x``/``--x=1``/``--x 0``, 'resolution', 'float_or_none'). ``cli=False``: set by
    presets, pickles and checkpoints only."""
    meta = dict(help=help, flags=flags, cli=cli, type=type, choices=choices, metavar=metavar, kind=kind)
    if isinstance(default, (list, dict, tuple)):
        return dataclasses.field(default_factory=lambda: default, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def redefault(name: str, default):
    """Every model's option ``name`` with another default (for a model's own options class)."""
    meta = TrainOptions.__dataclass_fields__[name].metadata
    if isinstance(default, (list, dict, tuple)):
        return dataclasses.field(default_factory=lambda: default, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def check_aug(opts, allowed) -> None:
    """Refuse an ``--aug`` mode the model does not train with."""
    if opts.aug not in allowed:
        raise OptionsError(f"--model {opts.model} supports --aug {'|'.join(allowed)}, got {opts.aug!r}")


@dataclasses.dataclass
class TrainOptions:
    """The options every model has."""
    # whether the model's recipe can run --cuda-graphs (StyleGAN2Options sets it; not a field)
    supports_cuda_graphs = False
    # what and where
    model: str = option("stylegan2", "model (default: the --cfg preset's, else stylegan2)")
    cfg: str = option("auto", "preset (default: the model's, e.g. tiny on a CPU and auto on a GPU for stylegan2)")
    data: Optional[str] = option(None, "image folder, zip or dataset_tool output (default: the built-in dataset)")
    outdir: str = option("runs", "where run directories are created")
    desc: Optional[str] = option(None, "run directory name suffix (default: derived from the options)")
    resolution: Optional[Tuple[int, int]] = option(None, "R or WxH; images are resized on the fly if needed "
                                                   "(default: the preset's, else the data's)", kind="resolution")
    mirror: bool = option(False, "add x-flipped copies of the data", kind="bool")
    crop: str = option("center", "fit of images of another aspect when resized on the fly: center crop, letterbox "
                       "(NVIDIA's wide), pad with the edge colour, none (stretch)", choices=CROP_CHOICES)
    cond: bool = option(False, "class-conditional, labels from dataset.json", kind="bool")
    exif_transpose: bool = option(True, "turn photos upright by their EXIF orientation, as image viewers show them; "
                                  "--exif-transpose=0 reads the stored pixels (as NVIDIA's dataset_tool)", kind="bool")
    subset: Optional[int] = option(None, "train on the first N images only, in path order (NVIDIA's picks N at "
                                   "random) (default: all)", type=int)
    # length and intervals
    kimg: float = option(25000, "training length in thousands of real images shown", type=float)
    tick: float = option(4.0, "kimg per tick (stats and log line)", type=float)
    snap: int = option(50, "ticks per snapshot (grid, checkpoint, metrics)", type=int)
    # hardware
    device: str = option("cuda", "cuda or cpu (default: cuda if available)", choices=("cuda", "cpu"))
    precision: Optional[str] = option(None, "dtype of the low-precision layers (default: fp16 on a GPU, fp32 on a "
                                      "CPU); fp32 also disables conv_clamp", choices=PRECISIONS)
    allow_tf32: bool = option(False, "allow TF32 in float32 matmuls and convolutions", kind="bool")
    nobench: bool = option(False, "disable cuDNN benchmarking", kind="bool")
    compile: bool = option(False, "torch.compile every phase of the training step (forwards, penalties, backwards)",
                           kind="bool")
    cuda_graphs: bool = option(False, "capture each phase of the training step in a CUDA graph and replay it "
                               "(StyleGAN2/3 on one CUDA GPU; see docs/training.md)", kind="bool")
    workers: int = option(2, "data loader worker processes", type=int)
    seed: int = option(0, "random seed", type=int)
    resume: Optional[str] = option(None, "checkpoint file, run directory, 'latest' (newest valid checkpoint in "
                                   "--outdir), or an NVIDIA StyleGAN2/3 .pkl to fine-tune (a new run with the pickle's "
                                   "architecture, ada_kimg 100, no EMA rampup)")
    nan_policy: str = option("stop", "when a loss, gradient or parameter turns non-finite: stop with a message naming "
                             "the last good checkpoint, or roll back to it with halved learning rates",
                             choices=NAN_POLICIES)
    metrics: str = option("none", "comma list, e.g. fid50k_full,kid50k_full,swd, or none (default: none; NVIDIA's "
                          "train.py defaults to fid50k_full, downloading Inception: ganops never downloads weights, "
                          "so pass --metrics fid50k_full --inception FILE for NVIDIA's behaviour)")
    inception: Optional[str] = option(None, "Inception weights file for FID/KID")
    # experiment tracking (training/tracking.py): where the TensorBoard scalars and grids go too; no effect on training
    wandb: Optional[str] = option(None, "also log the TensorBoard scalars and grids to this Weights & Biases project "
                                  "(rank 0; WANDB_MODE=offline: a local run only; needs ganops[wandb])",
                                  metavar="PROJECT")
    mlflow: Optional[str] = option(None, "also log them to an MLflow run at this tracking URI (e.g. http://host:5000, "
                                   "or file:./mlruns with MLFLOW_ALLOW_FILE_STORE=true; needs ganops[mlflow])",
                                   metavar="URI")
    grid: Tuple[int, int] = option((8, 8), "snapshot grid: columns, rows", cli=False)
    # hyperparameters
    batch: int = option(32, "total batch size over all processes", type=int)
    glr: float = option(0.0025, "G learning rate", type=float)
    dlr: float = option(0.0025, "D learning rate", type=float)
    ema: float = option(10.0, "G EMA half-life in kimg", flags=("--ema-kimg", "--ema"), type=float, metavar="KIMG")
    ema_rampup: Optional[float] = option(None, "G EMA ramp-up: half-life at most this x kimg so far, or 'none'",
                                         kind="float_or_none")
    z_dim: int = option(512, "latent size", cli=False)
    # augmentation
    aug: str = option("ada", "discriminator augmentation", choices=AUG_MODES)
    augpipe: str = option("bgc", "ADA augmentation preset (blit, geom, color, filter, noise, cutout, bg, bgc, ...)")
    p: Optional[float] = option(None, "initial (ada) or fixed augmentation probability (ada default: 0)", type=float)
    target: float = option(0.6, "ADA target for E[sign(D(reals))]", type=float)
    ada_kimg: float = option(500, "ADA: kimg for p to move from 0 to 1", type=float)
    ada_interval: int = option(4, "ADA: steps between p updates", cli=False)
    diffaug: str = option("color,translation,cutout", "DiffAugment policy (comma list of color, translation, "
                          "cutout) for --aug diffaug")

    # --- records ----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def model_name(cls) -> str:
        """The model these options are for (the ``model`` field's default)."""
        return next(f.default for f in dataclasses.fields(cls) if f.name == "model")

    @classmethod
    def field_names(cls) -> set:
        return {f.name for f in dataclasses.fields(cls)}

    @classmethod
    def from_dict(cls, d: dict) -> "TrainOptions":
        """Options from a record (``options.json``, a checkpoint). Records written before the options had
        one class per model keep model-specific values under ``extra`` and every model's fields at the
        top: the first are lifted, the others (which that model never read) dropped."""
        d = dict(d)
        d.update(d.pop("extra", None) or {})
        names = cls.field_names()
        unknown = sorted(set(d) - names - LEGACY_FIELDS)
        if unknown:
            raise OptionsError(f"unknown option(s) {unknown} in the options record of a {cls.model_name()} model")
        d = {k: v for k, v in d.items() if k in names}
        for key in ("resolution", "grid"):
            if d.get(key) is not None:
                d[key] = tuple(d[key])
        return cls(**d)

    # --- rules ------------------------------------------------------------------------------------
    def derive(self, given: Dict[str, Any], world_size: int, new_run: bool) -> Dict[str, str]:
        """Apply the rules by which options follow others, in place; ``given``: the command line's values.
        Returns {name: why} for each value set here."""
        why = {}
        if self.precision is None:
            self.precision = "fp16" if self.device == "cuda" else "fp32"
            why["precision"] = f"derived: the default for {self.device}"
        return why

    def check(self, world_size: int) -> None:
        """Cross-field checks, with messages that say what is expected (:class:`OptionsError`)."""
        if self.batch <= 0:
            raise OptionsError(f"--batch must be positive, got {self.batch}")
        if self.batch % world_size != 0:
            raise OptionsError(f"--batch {self.batch} is not divisible by the number of processes ({world_size})")
        if self.subset is not None and self.subset < 1:
            raise OptionsError(f"--subset must be a positive number of images, got {self.subset}")
        if self.resolution is not None:
            check_resolution(self.resolution)
        for name in ("kimg", "tick", "glr", "dlr", "ema"):
            if not getattr(self, name) > 0:
                raise OptionsError(f"--{name} must be positive, got {getattr(self, name)}")
        check_nonnegative(self, ("p", "ada_kimg"))
        if not 0 < self.target < 1:
            raise OptionsError(f"--target must be in (0, 1), got {self.target}")
        if self.snap < 1:
            raise OptionsError(f"--snap must be >= 1 tick, got {self.snap}")
        if self.aug == "fixed" and self.p is None:
            raise OptionsError("--aug fixed needs --p (the fixed augmentation probability, e.g. --p 0.2)")
        if self.aug in ("noaug", "diffaug") and self.p is not None:
            raise OptionsError("--p is only meaningful with --aug ada or fixed")
        if self.metrics != "none":
            from ganops_models.metrics import parse_metrics
            try:
                parse_metrics(self.metrics)
            except ValueError as e:
                raise OptionsError(f"--metrics: {e}") from None
        if self.wandb:
            require("wandb", "wandb", "--wandb")
        if self.mlflow:
            require("mlflow", "mlflow", "--mlflow")
        if self.workers < 0:
            raise OptionsError(f"--workers must be >= 0, got {self.workers}")
        if self.cuda_graphs:
            self._check_cuda_graphs(world_size)
        for f in dataclasses.fields(self):
            value, choices = getattr(self, f.name), f.metadata.get("choices")
            if choices and value is not None and value not in choices:
                raise OptionsError(f"--{f.name.replace('_', '-')} must be one of {', '.join(choices)}, got {value!r}")


    def _check_cuda_graphs(self, world_size: int) -> None:
        """``--cuda-graphs`` needs a model whose recipe captures its step, one process on a CUDA GPU, and
        no ``--compile``."""
        leave_out = "leave out --cuda-graphs (or pass --cuda-graphs=0 when resuming a run that used it)"
        if not self.supports_cuda_graphs:
            raise OptionsError(f"--cuda-graphs is supported by --model stylegan2 and stylegan3 only, not --model "
                               f"{self.model}; {leave_out}")
        if world_size > 1:
            raise OptionsError(f"--cuda-graphs captures the step of a single process; this run has {world_size} "
                               f"processes (--gpus / torchrun), whose gradient all-reduce is not captured; {leave_out}")
        if self.compile:
            raise OptionsError("--cuda-graphs and --compile cannot be combined: --cuda-graphs captures the eager step "
                               "and --compile's graphs are not captured (use one of them)")
        import torch
        if self.device != "cuda" or not torch.cuda.is_available():
            raise OptionsError("--cuda-graphs captures the training step in CUDA graphs and needs a CUDA GPU "
                               f"(--device cuda); this run is on {self.device}"
                               f"{'' if torch.cuda.is_available() else ' and no CUDA GPU is visible'}; {leave_out}")


# Fields of the single options record of earlier versions (every model's): a record may hold them.
LEGACY_FIELDS = {
    "batch_gpu", "num_fp16_res", "nhwc", "gamma", "map", "d_map", "mbstd_group", "cbase", "cmax", "w_dim",
    "conv_clamp", "pl_weight", "style_mixing", "r1_interval", "pl_interval", "g_arch", "g_noise", "d_arch", "freezed",
}


def check_nonnegative(opts, names) -> None:
    for name in names:
        value = getattr(opts, name)
        if value is not None and not (value >= 0 and math.isfinite(value)):
            raise OptionsError(f"--{name.replace('_', '-')} must be a finite number >= 0, got {value}")


def parse_resolution(text) -> Optional[Tuple[int, int]]:
    """'256' -> (256, 256); '256x128' -> (H=128, W=256) (written W x H, like the dataset tool); the
    trainer's limits (:func:`check_resolution`) apply on top of the dataset's parsing."""
    if text is None or isinstance(text, tuple):
        return text
    if isinstance(text, list):
        return tuple(text)
    try:
        res = data_resolution(str(text), what="--resolution")
    except DatasetError as e:
        raise OptionsError(str(e)) from None
    check_resolution(res)
    return res


def _pow2(n: int) -> bool:
    return n > 0 and (n & (n - 1)) == 0


def check_resolution(res: Tuple[int, int], what: str = "resolution") -> None:
    """Both sides powers of two in [16, 1024] (the short side may go down to 8 for wide images),
    aspect ratio at most 4."""
    h, w = res
    if not (_pow2(h) and _pow2(w)):
        raise OptionsError(f"{what} must be a power of two on both sides (e.g. 256 or 256x128), got {w}x{h}")
    if max(h, w) > 1024 or min(h, w) < 8 or max(h, w) < 16:
        raise OptionsError(f"{what} must be between 16 and 1024 pixels, got {w}x{h}")
    if max(h, w) // min(h, w) > 4:
        raise OptionsError(f"{what} aspect ratio must be at most 4, got {w}x{h}")


@dataclasses.dataclass
class Resolved:
    """Options and, for each, where its value came from ('default', 'preset paper256', 'command line', ...)."""
    options: TrainOptions
    sources: Dict[str, str]


Layer = Tuple[str, Dict[str, Any]]


def resolve(options_cls: Type[TrainOptions], layers: List[Layer], world_size: int, new_run: bool = True,
            given: Optional[Dict[str, Any]] = None) -> Resolved:
    """The options of one run: ``options_cls`` defaults, then each (source, values) layer in turn (a
    later layer wins), then :meth:`~TrainOptions.derive` and :meth:`~TrainOptions.check`. ``given``: the
    values the command line gave (for the rules that depend on what was given explicitly)."""
    names = options_cls.field_names()
    values: Dict[str, Any] = {}
    sources = {name: "default" for name in names}
    for source, layer in layers:
        layer = dict(layer)
        layer.update(layer.pop("extra", None) or {})
        unknown = sorted(set(layer) - names)
        if unknown and source.startswith("checkpoint"):
            unknown = sorted(set(unknown) - LEGACY_FIELDS)
            layer = {k: v for k, v in layer.items() if k in names}
        if unknown:
            flags = ", ".join("--" + k.replace("_", "-") for k in unknown)
            raise OptionsError(f"{flags} ({source}): --model {options_cls.model_name()} does not have "
                               f"{'this option' if len(unknown) == 1 else 'these options'}")
        for key, value in layer.items():
            values[key] = value
            sources[key] = source
    if values.get("resolution") is not None:
        values["resolution"] = parse_resolution(values["resolution"])
    if values.get("grid") is not None:
        values["grid"] = tuple(values["grid"])
    try:
        opts = options_cls(**values)
    except TypeError as e:
        raise OptionsError(f"options: {e}") from None
    sources.update(opts.derive(given or {}, world_size, new_run))
    opts.check(world_size)
    return Resolved(opts, {f.name: sources[f.name] for f in dataclasses.fields(opts)})


__all__ = ["AUG_MODES", "NAN_POLICIES", "PRECISIONS", "Resolved", "TrainOptions", "check_aug", "check_resolution", "option",
           "parse_resolution", "redefault", "resolve"]
