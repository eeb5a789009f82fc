"""Training options: one flat, JSON-serialisable record resolved from the CLI and a preset.

Resolution order: recipe defaults < preset (``--cfg``) < explicit command-line values. The resolved
record is written to ``options.json`` in the run directory and stored in every checkpoint.
"""
import dataclasses
import json
import math
from typing import Any, Dict, Optional, Tuple

from ganops_models.errors import DatasetError
from ganops_models.data.image import parse_resolution as data_resolution
from ganops_models.training.presets import Preset
from ganops_models.errors import OptionsError


NAN_POLICIES = ("stop", "rollback")


@dataclasses.dataclass
class TrainOptions:
    # what and where
    model: str = "stylegan2"
    cfg: str = "auto"
    data: Optional[str] = None             # None: the built-in dataset
    outdir: str = "runs"
    desc: Optional[str] = None
    resolution: Optional[Tuple[int, int]] = None   # (H, W); None: the dataset's own
    mirror: bool = False
    crop: str = "center"                   # how images of another aspect are fitted: data.CROP_MODES
    cond: bool = False                     # class-conditioning from dataset labels
    # length and intervals
    kimg: float = 25000
    tick: float = 4.0                      # kimg per tick (log line, stats)
    snap: int = 50                         # ticks per snapshot (grid, checkpoint, metrics)
    # hardware
    device: str = "cuda"
    precision: str = "fp16"                # dtype of the highest-resolution blocks: fp32|fp16|bf16
    num_fp16_res: int = 4                  # how many of the highest resolutions use `precision`
    nhwc: bool = False                     # channels_last for the low-precision blocks (NVIDIA's --nhwc)
    allow_tf32: bool = False               # TF32 for float32 matmuls and convolutions (NVIDIA's --allow-tf32)
    nobench: bool = False                  # disable cudnn.benchmark (NVIDIA's --nobench)
    compile: bool = False
    workers: int = 2
    seed: int = 0
    resume: Optional[str] = None
    subset: Optional[int] = None           # train on the first N images (None: all)
    nan_policy: str = "stop"               # divergence guard: stop | rollback (see training.guard)
    metrics: str = "none"                  # metric names for ganops_models.metrics, evaluated at snapshots
    inception: Optional[str] = None        # Inception weights for FID/KID (else GANOPS_INCEPTION / torch hub cache)
    grid: Tuple[int, int] = (8, 8)         # snapshot grid: columns, rows
    # hyperparameters
    batch: int = 32
    batch_gpu: Optional[int] = None        # samples per round (gradient accumulation); None: batch // processes
    glr: float = 0.0025
    dlr: float = 0.0025
    gamma: float = 1.0
    ema: float = 10.0                      # G EMA half-life in kimg
    ema_rampup: Optional[float] = None
    map: int = 8
    d_map: int = 8                         # depth of a conditional D's label mapping (0 in networks from TF)
    mbstd_group: int = 4
    cbase: int = 32768
    cmax: int = 512
    z_dim: int = 512
    w_dim: int = 512
    conv_clamp: Optional[float] = 256
    pl_weight: float = 2.0
    style_mixing: float = 0.9
    r1_interval: int = 16
    pl_interval: int = 4
    g_arch: str = "skip"
    g_noise: bool = True                   # per-pixel noise inputs in the synthesis layers
    d_arch: str = "resnet"
    freezed: int = 0                       # Freeze-D: D layers (from the image side) that get no updates
    # augmentation
    aug: str = "ada"
    augpipe: str = "bgc"
    p: Optional[float] = None              # ada: initial p (default 0); fixed: required
    target: float = 0.6
    ada_kimg: float = 500
    ada_interval: int = 4
    # recipe-specific options (see Recipe.cli_options)
    extra: Dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, d: dict) -> "TrainOptions":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise OptionsError(f"unknown option(s) {unknown} in options record")
        d = dict(d)
        for key in ("resolution", "grid"):
            if d.get(key) is not None:
                d[key] = tuple(d[key])
        return cls(**d)


def parse_resolution(text) -> Optional[Tuple[int, int]]:
    """'256' -> (256, 256); '256x128' -> (H=128, W=256) (written W x H, like the dataset tool); the
    trainer's limits (:func:`check_resolution`) apply on top of the dataset's parsing."""
    if text is None or isinstance(text, tuple):
        return text
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


def resolve(presets: Dict[str, Preset], cli: Dict[str, Any], dataset_resolution: Tuple[int, int], world_size: int,
            recipe_defaults: Optional[dict] = None) -> TrainOptions:
    """Options from explicit CLI values (``None`` = not given), the preset ``cli['cfg']`` of ``presets``
    and recipe defaults."""
    cfg = cli["cfg"]
    if cfg not in presets:
        raise OptionsError(f"--cfg must be one of {sorted(presets)}, got {cfg!r}")
    preset = presets[cfg]
    if cli.get("model") not in (None, preset.model):
        raise OptionsError(f"--cfg {cfg} is a preset for --model {preset.model}, not {cli['model']}")
    resolution = parse_resolution(cli.get("resolution"))
    layers = (recipe_defaults or {}, preset.values(resolution or dataset_resolution, world_size),
              {k: v for k, v in cli.items() if v is not None})
    values = {}
    for layer in layers:
        extra = {**values.get("extra", {}), **layer.get("extra", {})}
        values.update(layer)
        values["extra"] = extra
    values["model"] = preset.model
    if "resolution" in values:
        values["resolution"] = parse_resolution(values["resolution"])
    apply_derived(values, cli, world_size)
    opts = TrainOptions.from_dict(values)
    validate(opts, world_size)
    return opts


def apply_derived(values: Dict[str, Any], cli: Dict[str, Any], world_size: int, new_run: bool = True) -> None:
    """NVIDIA train.py's rules for options that follow others, applied to ``values`` in place:
    an explicit ``--batch`` without ``--batch-gpu`` makes one round per process (batch_gpu = batch //
    processes, as ``--batch`` does there); precision fp32 (``--fp32``) also drops conv_clamp. A resumed
    run (``new_run=False``) keeps its stored conv_clamp unless the command line sets the precision.
    ``--ema-rampup none`` becomes None."""
    if values.get("ema_rampup") == "none":    # '--ema-rampup none'
        values["ema_rampup"] = None
    if cli.get("batch") is not None and cli.get("batch_gpu") is None:
        values["batch_gpu"] = None
    if values.get("batch_gpu") is None and values.get("batch"):
        values["batch_gpu"] = values["batch"] // world_size
    if values.get("precision") == "fp32" and (new_run or cli.get("precision") is not None):
        values["conv_clamp"] = None


def validate(opts: TrainOptions, world_size: int) -> None:
    """Cross-field checks, with messages that say what is expected."""
    if opts.batch <= 0:
        raise OptionsError(f"--batch must be positive, got {opts.batch}")
    if opts.batch % world_size != 0:
        raise OptionsError(f"--batch {opts.batch} is not divisible by the number of processes ({world_size})")
    per_process = opts.batch // world_size
    if opts.batch_gpu is not None and not (opts.batch_gpu >= 1 and per_process % opts.batch_gpu == 0):
        raise OptionsError(f"--batch-gpu {opts.batch_gpu} must divide the batch of each process "
                           f"(--batch {opts.batch} / {world_size} process(es) = {per_process})")
    if opts.subset is not None and opts.subset < 1:
        raise OptionsError(f"--subset must be a positive number of images, got {opts.subset}")
    if opts.nan_policy not in NAN_POLICIES:
        raise OptionsError(f"--nan-policy must be one of {', '.join(NAN_POLICIES)}, got {opts.nan_policy!r}")
    if opts.resolution is not None:
        check_resolution(opts.resolution)
    for name in ("kimg", "tick", "glr", "dlr", "ema"):
        if not getattr(opts, name) > 0:
            raise OptionsError(f"--{name} must be positive, got {getattr(opts, name)}")
    for name in ("gamma", "pl_weight", "p", "ada_kimg"):
        value = getattr(opts, name)
        if value is None:
            continue
        if not (value >= 0 and math.isfinite(value)):
            raise OptionsError(f"--{name.replace('_', '-')} must be a finite number >= 0, got {value}")
    if not 0 <= opts.style_mixing <= 1:
        raise OptionsError(f"style mixing probability must be in [0, 1], got {opts.style_mixing}")
    if not 0 < opts.target < 1:
        raise OptionsError(f"--target must be in (0, 1), got {opts.target}")
    if opts.freezed < 0:
        raise OptionsError(f"--freezed must be >= 0 (D layers to freeze), got {opts.freezed}")
    if opts.snap < 1:
        raise OptionsError(f"--snap must be >= 1 tick, got {opts.snap}")
    if opts.precision not in ("fp32", "fp16", "bf16"):
        raise OptionsError(f"--precision must be fp32, fp16 or bf16, got {opts.precision!r}")
    if opts.aug not in ("ada", "fixed", "noaug", "diffaug"):
        raise OptionsError(f"--aug must be ada, fixed, noaug or diffaug, got {opts.aug!r}")
    if opts.aug == "fixed" and opts.p is None:
        raise OptionsError("--aug fixed needs --p (the fixed augmentation probability, e.g. --p 0.2)")
    if opts.aug == "noaug" and opts.p is not None:
        raise OptionsError("--p is only meaningful with --aug ada or fixed")
    if opts.device.split(":")[0] not in ("cpu", "cuda"):
        raise OptionsError(f"--device must be cpu or cuda, got {opts.device!r}")
    if opts.r1_interval < 0 or opts.pl_interval < 0:
        raise OptionsError("regularisation intervals must be >= 0 (0: regularise in every main step)")
    if opts.mbstd_group < 0 or opts.map < 1 or opts.cbase < 1 or opts.cmax < 1:
        raise OptionsError("--mbstd-group must be >= 0 and --map, --cbase, --cmax >= 1")
    if opts.metrics != "none":
        from ganops_models.metrics import parse_metrics
        try:
            parse_metrics(opts.metrics)
        except ValueError as e:
            raise OptionsError(f"--metrics: {e}") from None
    if opts.workers < 0:
        raise OptionsError(f"--workers must be >= 0, got {opts.workers}")
