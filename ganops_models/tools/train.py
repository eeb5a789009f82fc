"""Train a GAN: ``python -m ganops_models.train [options]`` (``--gpus N``, or ``torchrun
--nproc_per_node=N -m ganops_models.train ...``, for several GPUs or CPU processes).

With no arguments it trains the tiny StyleGAN2 preset on the built-in dataset (a few minutes on a
CPU) or the 'auto' preset on a GPU. Outputs go to ``<outdir>/<NNNNN>-<desc>/``: options.json,
log.txt, stats.jsonl, TensorBoard events, reals.png, fakes<kimg>.png, checkpoint-<kimg>.pt
(and metrics.jsonl / metrics.png with --metrics). Invalid options, data or resume checkpoints are
reported before anything is trained (exit status 2); ``--dry-run`` prints the resolved options and
exits. A run that diverges (non-finite losses, gradients or weights) stops with exit status 3 and
names its last good checkpoint (``--nan-policy rollback`` restarts from it with lower learning rates).
NVIDIA's train.py flags work as there (``--mirror=1``, ``--fp32``, ``-n``, ``--batch-gpu``, ...).
"""
import argparse
import json
import os
import re
import sys

import torch

from ganops_models.data import open_dataset
from ganops_models.errors import CheckpointError, DatasetError, DivergenceError, OptionsError
from ganops_models.formats import checkpoint as ckpt_lib
from ganops_models.formats import nvidia
from ganops_models.models.registry import PRESETS, RECIPES, get_recipe
from ganops_models.network_loader import load_network
from ganops_models.tools import fine_tune
from ganops_models.tools.cli import ArgumentParser
from ganops_models.training import distributed, launcher
from ganops_models.training.guide import last_grid, next_steps
from ganops_models.training.loop import open_training_data, training_loop
from ganops_models.training.options import (NAN_POLICIES, TrainOptions, apply_derived, parse_resolution, resolve,
                                            validate)



def build_parser() -> argparse.ArgumentParser:
    presets = "\n".join(f"  {name:<14} {preset.model:<10} {preset.doc}" for name, preset in sorted(PRESETS.items()))
    p = ArgumentParser(
        prog="python -m ganops_models.train", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Options left out take their value from the --cfg preset (then the model's defaults).\n"
               f"Presets (--cfg, model, what):\n{presets}")
    a = p.add_argument
    a("--data", help="image folder, zip or dataset_tool output (default: the built-in dataset)")
    a("--outdir", default="runs", help="where run directories are created (default: runs)")
    a("--desc", help="run directory name suffix (default: derived from the options)")
    a("--model", choices=sorted(RECIPES), help="model (default: the --cfg preset's, else stylegan2)")
    a("--cfg", choices=sorted(PRESETS), help="preset (default: tiny on CPU, auto on GPU)")
    a("--kimg", type=float, help="training length in thousands of real images shown")
    a("--tick", type=float, help="kimg per tick (stats and log line)")
    a("--snap", type=int, help="ticks per snapshot (grid, checkpoint, metrics)")
    a("--batch", type=int, help="total batch size over all processes")
    a("--batch-gpu", type=int, help="samples per round: each process accumulates its share of the batch in "
      "rounds of this size (default: the preset's, 4 for stylegan2/paper1024, 8 for paper256/512, 32 for "
      "cifar; with an explicit --batch or other presets: batch // processes)")
    a("--gpus", type=int, help="processes to start on this machine, one per GPU (default: 1, or torchrun's)")
    a("--resume", help="checkpoint file, run directory, 'latest' (newest valid checkpoint in --outdir), or an "
      "NVIDIA StyleGAN2(-ADA) .pkl to fine-tune (a new run with the pickle's architecture, ada_kimg 100, "
      "no EMA rampup)")
    a("--seed", type=int, help="random seed")
    a("--device", choices=["cuda", "cpu"], help="default: cuda if available")
    a("--precision", choices=["fp32", "fp16", "bf16"], help="dtype of the highest-resolution blocks "
      "(default fp16 on GPU, fp32 on CPU; fp32 for --model fastgan); fp32 also disables conv_clamp")
    bool_option(p, "--fp32", help="same as --precision fp32 (default: false)")
    bool_option(p, "--nhwc", help="channels_last memory format for the low-precision blocks (default: false)")
    bool_option(p, "--allow-tf32", help="allow TF32 in float32 matmuls and convolutions (default: false)")
    bool_option(p, "--nobench", help="disable cuDNN benchmarking (default: false)")
    bool_option(p, "--compile", help="torch.compile the forward passes (default: false)")
    a("--workers", type=int, help="data loader worker processes")
    a("--aug", choices=["ada", "fixed", "noaug", "diffaug"], help="discriminator augmentation")
    a("--augpipe", help="ADA augmentation preset (blit, geom, color, filter, noise, cutout, bg, bgc, ...)")
    a("--p", type=float, help="initial (ada) or fixed augmentation probability")
    a("--target", type=float, help="ADA target for E[sign(D(reals))]")
    a("--ada-kimg", type=float, help="ADA: kimg for p to move from 0 to 1")
    bool_option(p, "--mirror", help="add x-flipped copies of the data (default: the preset's; on for --model "
                "fastgan, else false)")
    bool_option(p, "--cond", help="class-conditional, labels from dataset.json (default: false)")
    a("--subset", type=int, help="train on the first N images only, in path order (NVIDIA's picks N at "
      "random) (default: all)")
    a("--resolution", help="R or WxH; images are resized on the fly if needed")
    a("--crop", choices=["center", "letterbox", "pad", "none"], help="fit of images of another aspect when resized "
      "on the fly: center crop, letterbox (NVIDIA's wide), pad with the edge colour, none (stretch) (default: center)")
    a("--metrics", help="comma list, e.g. fid50k_full,kid50k_full,swd, or none")
    a("--inception", help="Inception weights file for FID/KID")
    a("--gamma", type=float, help="R1 weight")
    a("--glr", type=float, help="G learning rate (default: the preset's, 0.0025; 0.002 for stylegan2, paper1024, "
      "auto at 1024 px)")
    a("--dlr", type=float, help="D learning rate (default: as --glr)")
    a("--map-depth", "--map", dest="map", type=int, metavar="N", help="mapping network depth (default: the "
      "preset's, 8; 2 for auto, cifar, tiny)")
    a("--mbstd-group", type=int, help="minibatch-std group size (default: the preset's, 4; 8 for paper256/512, "
      "32 for cifar)")
    a("--cbase", type=int, help="channel base, channels at res r: min(cbase / r, cmax) (default: the preset's, "
      "32768; 16384 for paper256 and auto below 512 px; less for tiny)")
    a("--cmax", type=int, help="maximum channels (default: the preset's, 512; less for tiny)")
    a("--pl-weight", type=float, help="path-length regularisation weight (default: preset's, 2; 0 for cifar, tiny)")
    a("--style-mixing", type=float, help="style-mixing probability (default: preset's, 0.9; 0 for cifar)")
    a("--r1-interval", type=int, help="R1 every N steps, lazily (default: 16; 0: in every D step)")
    a("--pl-interval", type=int, help="path length every N steps, lazily (default: 4; 0: in every G step)")
    a("--ema-kimg", "--ema", dest="ema", type=float, metavar="KIMG", help="G EMA half-life in kimg (default: preset's)")
    a("--ema-rampup", type=optional_float, help="G EMA ramp-up: half-life at most this x kimg so far, or "
      "'none' (default: preset's, 0.05 for auto/cifar/tiny, none for the others)")
    a("--nan-policy", choices=NAN_POLICIES, help="when a loss, gradient or parameter turns non-finite: stop with "
      "a message naming the last good checkpoint, or roll back to it with halved learning rates (default: stop)")
    a("-n", "--dry-run", action="store_true", help="print the resolved options and exit")
    a("--freezed", type=int, help="Freeze-D: the first N discriminator layers (from the image side) get no updates "
      "(default: 0)")
    for recipe in RECIPES.values():
        for name, kwargs in recipe.cli_options.items():
            if f"--{name}" not in p._option_string_actions:
                dest = name.replace("-", "_")
                if kwargs.get("action") is None and "choices" not in kwargs:
                    kwargs = {"metavar": dest.upper(), **kwargs}
                a(f"--{name}", dest=f"extra__{dest}", default=None, **kwargs)
    return p


def parse_bool(text: str) -> bool:
    """click's BOOL: 1/true/t/yes/y/on or 0/false/f/no/n/off (any case)."""
    value = str(text).strip().lower()
    if value in ("1", "true", "t", "yes", "y", "on"):
        return True
    if value in ("0", "false", "f", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (1/0, true/false, yes/no), got {text!r}")


def bool_option(parser: argparse.ArgumentParser, name: str, help: str) -> None:
    """``--name`` (true), ``--name=1|0|true|false`` or ``--name BOOL``, as NVIDIA's click options."""
    parser.add_argument(name, nargs="?", const=True, default=None, type=parse_bool, metavar="BOOL", help=help)


def optional_float(text: str):
    """A number, or 'none' (kept as the string 'none'; the options turn it into None)."""
    if str(text).strip().lower() == "none":
        return "none"
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'none', got {text!r}") from None


_NOT_OPTIONS = ("gpus", "dry_run", "fp32")   # launcher switches, not training options


def _cli_values(args) -> dict:
    """Explicitly given options (None = not given); recipe options gathered under 'extra'; --fp32
    becomes --precision fp32."""
    if args.fp32 and args.precision not in (None, "fp32"):
        raise OptionsError(f"--fp32 conflicts with --precision {args.precision}; give one of them")
    values = {k: v for k, v in vars(args).items()
              if v is not None and not k.startswith("extra__") and k not in _NOT_OPTIONS}
    if args.fp32:
        values["precision"] = "fp32"
    extra = {k[len("extra__"):]: v for k, v in vars(args).items() if k.startswith("extra__") and v is not None}
    if extra:
        values["extra"] = extra
    return values


def _device(args, dist: distributed.DistInfo) -> torch.device:
    kind = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise OptionsError("--device cuda: no CUDA GPU is available (use --device cpu)")
        if dist.local_rank >= torch.cuda.device_count():
            raise OptionsError(f"local rank {dist.local_rank} has no GPU ({torch.cuda.device_count()} visible)")
        torch.cuda.set_device(dist.local_rank)
        return torch.device("cuda", dist.local_rank)
    return torch.device("cpu")


def _new_run_dir(outdir: str, desc: str) -> str:
    existing = [int(m.group(1)) for e in (os.listdir(outdir) if os.path.isdir(outdir) else [])
                if (m := re.match(r"^(\d{5})-", e))]
    return os.path.join(outdir, f"{max(existing, default=-1) + 1:05d}-{desc}")


def _describe(opts: TrainOptions, data_name: str, world_size: int) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", data_name)[:40]
    return opts.desc or f"{name}-{opts.cfg}-{opts.model}-n{world_size}-batch{opts.batch}-{opts.aug}"


def _resume_options(cli: dict, resume: dict, path: str, device: torch.device, world_size: int) -> TrainOptions:
    """The checkpoint's options with the explicitly given ones applied (architecture changes are
    caught later by comparing arch specs)."""
    base = dict(resume["options"])
    if cli.get("model", base["model"]) != base["model"]:
        raise CheckpointError(f"--resume {path}: the checkpoint holds a {base['model']!r} model, not {cli['model']!r}")
    if cli.get("cfg", base["cfg"]) != base["cfg"]:
        raise OptionsError(f"--cfg {cli['cfg']}: a resumed run keeps its preset ({base['cfg']}); "
                           f"override single options instead")
    if cli.get("freezed", base.get("freezed", 0)) != base.get("freezed", 0):
        raise OptionsError(f"--freezed {cli['freezed']}: a resumed run keeps its Freeze-D setting "
                           f"({base.get('freezed', 0)})")
    if "resolution" in cli:
        cli["resolution"] = parse_resolution(cli["resolution"])
    extra = {**base.get("extra", {}), **cli.pop("extra", {})}
    base.update(cli)
    base.update(extra=extra, device=device.type, resume=path)
    apply_derived(base, cli, world_size, new_run=False)
    opts = TrainOptions.from_dict(base)
    validate(opts, world_size)
    return opts


def _new_options(cli: dict, device: torch.device, world_size: int, opened) -> TrainOptions:
    """Options from the preset (default per model and device) and the explicitly given values; the
    resolution defaults to the dataset's own (``opened``: the data, opened at --resolution or its own)."""
    model = cli.get("model") or (PRESETS[cli["cfg"]].model if "cfg" in cli else "stylegan2")
    recipe = get_recipe(model)
    cli.setdefault("cfg", recipe.default_cfg.get(device.type))
    if cli["cfg"] is None:
        raise OptionsError(f"--model {model} has no default preset on {device.type}; pass --cfg")
    cli["device"] = device.type
    cli.setdefault("precision", recipe.defaults.get("precision", "fp16" if device.type == "cuda" else "fp32"))
    if "resolution" not in cli:
        native = opened.resolution
        cli["resolution"] = PRESETS[cli["cfg"]].values(tuple(native), world_size).get("resolution", tuple(native))
    resolution = parse_resolution(cli["resolution"])
    return resolve(PRESETS, cli, resolution, world_size, recipe_defaults=recipe.defaults)


# Options only the style-based recipes (StyleGAN2 and its StyleGAN3 subclass) read: refused for the other
# models rather than ignored.
_STYLEGAN2_ONLY = ("batch_gpu", "pl_weight", "style_mixing", "r1_interval", "pl_interval", "nhwc")
_STYLE_MODELS = ("stylegan2", "stylegan3")


def _check_model_options(cli: dict, model: str) -> None:
    given = [name for name in _STYLEGAN2_ONLY if name in cli]
    if model not in _STYLE_MODELS and given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise OptionsError(f"{flags}: only --model stylegan2 has this; --model {model} does not use it")


def prepare(args, dist: distributed.DistInfo, device: torch.device):
    """Options, resume checkpoint, dataset and run directory; every check happens here."""
    cli = _cli_values(args)
    given = dict(cli)
    cli.pop("resume", None)
    resume = run_dir = init = None
    if args.resume is not None and os.path.isfile(args.resume) and nvidia.is_pickle(args.resume):
        init = load_network(args.resume, "cpu")   # copied into the run's networks on their device
        transfer_cli = fine_tune.transfer_cli(dict(cli), init, dist.world_size)
        opened = open_dataset(cli.get("data"), resolution=tuple(transfer_cli["resolution"]))
        opts = _new_options(transfer_cli, device, dist.world_size, opened)
        fine_tune.apply_transfer(opts, cli, init)
        validate(opts, dist.world_size)
        dataset = open_training_data(opts, opened)
    elif args.resume is not None:
        path = ckpt_lib.resolve_resume(args.resume, args.outdir)
        resume = ckpt_lib.load_checkpoint(path)
        opts = _resume_options(cli, resume, path, device, dist.world_size)
        if args.resume == "latest":
            run_dir = os.path.dirname(os.path.abspath(path))
        dataset = open_training_data(opts)
    else:
        opened = open_dataset(cli.get("data"), resolution=cli.get("resolution"))
        opts = _new_options(cli, device, dist.world_size, opened)
        dataset = open_training_data(opts, opened)
    _check_model_options(given, opts.model)
    if init is not None:
        fine_tune.check_data(init, dataset[1].label_dim, dataset[1].num_channels)
    if run_dir is None:
        run_dir = distributed.broadcast_object(
            _new_run_dir(opts.outdir, _describe(opts, dataset[1].name, dist.world_size)) if dist.rank == 0 else None)
    return opts, resume, dataset, run_dir, init


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    dist = distributed.from_env()
    launch = launcher.should_launch(args.gpus)
    try:
        launcher.check_gpus(args.gpus, args.device, argv, dist)
        if launch:   # check everything once here, then start the processes
            dist = distributed.DistInfo(rank=0, world_size=args.gpus, local_rank=0)
        device = _device(args, dist)
        if not launch:
            distributed.init(dist, device)
        opts, resume, dataset, run_dir, init = prepare(args, dist, device)
    except (OptionsError, DatasetError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        distributed.shutdown()
        return 2
    if args.dry_run:
        if dist.rank == 0:
            print(json.dumps({**opts.to_dict(), "world_size": dist.world_size, "run_dir": run_dir}, indent=2))
        distributed.shutdown()
        return 0
    if launch:
        return launcher.launch(main, argv, args.gpus)
    if dist.rank == 0:
        os.makedirs(run_dir, exist_ok=True)
        with open(os.path.join(run_dir, "options.json"), "w") as f:
            json.dump({**opts.to_dict(), "world_size": dist.world_size}, f, indent=2)
    distributed.barrier()
    try:
        training_loop(opts, get_recipe(opts.model), run_dir, dist, device, resume=resume, dataset=dataset, init=init)
    except DivergenceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    finally:
        distributed.shutdown()
    if dist.rank == 0:
        print("\n".join(next_steps(run_dir, opts, last_grid(run_dir))))
    return 0
