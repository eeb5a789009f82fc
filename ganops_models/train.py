"""Train a GAN: ``python -m ganops_models.train [options]`` (``torchrun --nproc_per_node=N -m
ganops_models.train ...`` for several GPUs or CPU processes).

With no arguments it trains the tiny StyleGAN2 preset on the built-in dataset (a few minutes on a
CPU) or the 'auto' preset on a GPU. Outputs go to ``<outdir>/<NNNNN>-<desc>/``: options.json,
log.txt, stats.jsonl, TensorBoard events, reals.png, fakes<kimg>.png, checkpoint-<kimg>.pt
(and metrics.jsonl / metrics.png with --metrics). Invalid options, data or resume checkpoints are
reported before anything is trained (exit status 2).
"""
import argparse
import json
import os
import re
import sys

import torch

from . import pretrained
from .data import DatasetError, open_dataset
from .training import checkpoint as ckpt_lib
from .training import distributed, transfer
from .training.checkpoint import CheckpointError
from .training.loop import open_training_data, training_loop
from .training.options import OptionsError, TrainOptions, parse_resolution, resolve, validate
from .training.presets import PRESETS
from .training.recipes import RECIPES, get_recipe

def build_parser() -> argparse.ArgumentParser:
    get_recipe("stylegan2")  # registers the built-in recipes so their options and presets are known
    presets = "\n".join(f"  {name:<14} {preset.model:<10} {preset.doc}" for name, preset in sorted(PRESETS.items()))
    p = argparse.ArgumentParser(
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
    a("--resume", help="checkpoint file, run directory, 'latest' (newest valid checkpoint in --outdir), or an "
      "NVIDIA StyleGAN2(-ADA) .pkl to fine-tune (a new run with the pickle's architecture, ada_kimg 100, "
      "no EMA rampup)")
    a("--seed", type=int, help="random seed")
    a("--device", choices=["cuda", "cpu"], help="default: cuda if available")
    a("--precision", choices=["fp32", "fp16", "bf16"], help="dtype of the highest-resolution blocks "
      "(default fp16 on GPU, fp32 on CPU)")
    a("--compile", action="store_true", default=None, help="torch.compile the forward passes")
    a("--workers", type=int, help="data loader worker processes")
    a("--aug", choices=["ada", "fixed", "noaug", "diffaug"], help="discriminator augmentation")
    a("--augpipe", help="ADA augmentation preset (blit, geom, color, filter, noise, cutout, bg, bgc, ...)")
    a("--p", type=float, help="initial (ada) or fixed augmentation probability")
    a("--target", type=float, help="ADA target for E[sign(D(reals))]")
    a("--ada-kimg", type=float, help="ADA: kimg for p to move from 0 to 1")
    a("--mirror", action="store_true", default=None, help="add x-flipped copies of the data")
    a("--cond", action="store_true", default=None, help="class-conditional (labels from dataset.json)")
    a("--resolution", help="R or WxH; images are resized on the fly if needed")
    a("--metrics", help="comma list, e.g. fid50k_full,kid50k_full,swd, or none")
    a("--inception", help="Inception weights file for FID/KID")
    a("--gamma", type=float, help="R1 weight")
    a("--glr", type=float, help="G learning rate")
    a("--dlr", type=float, help="D learning rate")
    a("--map", type=int, help="mapping network depth")
    a("--ema", type=float, help="G EMA half-life in kimg")
    a("--mbstd-group", type=int, help="minibatch-std group size")
    a("--cbase", type=int, help="channel base (channels at res r: min(cbase / r, cmax))")
    a("--cmax", type=int, help="maximum channels")
    a("--freezed", type=int, help="Freeze-D: the first N discriminator layers (from the image side) get no updates")
    for recipe in RECIPES.values():
        for name, kwargs in recipe.cli_options.items():
            if f"--{name}" not in p._option_string_actions:
                dest = name.replace("-", "_")
                if kwargs.get("action") is None and "choices" not in kwargs:
                    kwargs = {"metavar": dest.upper(), **kwargs}
                a(f"--{name}", dest=f"extra__{dest}", default=None, **kwargs)
    return p


def _cli_values(args) -> dict:
    """Explicitly given options (None = not given); recipe options gathered under 'extra'."""
    values = {k: v for k, v in vars(args).items() if v is not None and not k.startswith("extra__")}
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
    opts = TrainOptions.from_dict(base)
    validate(opts, world_size)
    return opts


def _new_options(cli: dict, device: torch.device, world_size: int) -> TrainOptions:
    """Options from the preset (default per model and device) and the explicitly given values; the
    resolution defaults to the dataset's own."""
    model = cli.get("model") or (PRESETS[cli["cfg"]].model if "cfg" in cli else "stylegan2")
    recipe = get_recipe(model)
    cli.setdefault("cfg", recipe.default_cfg.get(device.type))
    if cli["cfg"] is None:
        raise OptionsError(f"--model {model} has no default preset on {device.type}; pass --cfg")
    cli["device"] = device.type
    cli.setdefault("precision", "fp16" if device.type == "cuda" else "fp32")
    if "resolution" not in cli:
        native = open_dataset(cli.get("data")).resolution
        cli["resolution"] = PRESETS[cli["cfg"]].values(tuple(native), world_size).get("resolution", tuple(native))
    resolution = parse_resolution(cli["resolution"])
    return resolve(cli, resolution, world_size, recipe_defaults=recipe.defaults)


def prepare(args, dist: distributed.DistInfo, device: torch.device):
    """Options, resume checkpoint, dataset and run directory; every check happens here."""
    cli = _cli_values(args)
    cli.pop("resume", None)
    resume = run_dir = init = None
    if args.resume is not None and os.path.isfile(args.resume) and pretrained.is_pickle(args.resume):
        init = pretrained.load_pickle(args.resume, device)
        opts = _new_options(transfer.transfer_cli(dict(cli), init, dist.world_size), device, dist.world_size)
        transfer.apply_transfer(opts, cli, init)
        validate(opts, dist.world_size)
    elif args.resume is not None:
        path = ckpt_lib.resolve_resume(args.resume, args.outdir)
        resume = ckpt_lib.load_checkpoint(path)
        opts = _resume_options(cli, resume, path, device, dist.world_size)
        if args.resume == "latest":
            run_dir = os.path.dirname(os.path.abspath(path))
    else:
        opts = _new_options(cli, device, dist.world_size)
    dataset = open_training_data(opts)
    if init is not None:
        transfer.check_data(init, dataset[1].label_dim, dataset[1].num_channels)
    if run_dir is None:
        run_dir = distributed.broadcast_object(
            _new_run_dir(opts.outdir, _describe(opts, dataset[1].name, dist.world_size)) if dist.rank == 0 else None)
    return opts, resume, dataset, run_dir, init


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    dist = distributed.from_env()
    try:
        device = _device(args, dist)
        distributed.init(dist, device)
        opts, resume, dataset, run_dir, init = prepare(args, dist, device)
    except (OptionsError, DatasetError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        distributed.shutdown()
        return 2
    if dist.rank == 0:
        os.makedirs(run_dir, exist_ok=True)
        with open(os.path.join(run_dir, "options.json"), "w") as f:
            json.dump({**opts.to_dict(), "world_size": dist.world_size}, f, indent=2)
    distributed.barrier()
    try:
        training_loop(opts, run_dir, dist, device, resume=resume, dataset=dataset, init=init)
    finally:
        distributed.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
