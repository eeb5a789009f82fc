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
import shlex
import sys

import torch

from ganops_models.data import open_dataset
from ganops_models.errors import EXIT_DIVERGED, DivergenceError, OptionsError
from ganops_models.files import atomic_write, inside, output_folder
from ganops_models.formats import checkpoint as ckpt_lib
from ganops_models.formats import nvidia
from ganops_models.models.registry import PRESETS, RECIPES, get_recipe
from ganops_models.network_loader import LoadedNetwork, load_network, read_checkpoint
from ganops_models.tools import fine_tune, train_cli
from ganops_models.tools.cli import finished, run_command
from ganops_models.training import distributed, launcher
from ganops_models.training.guide import last_grid, next_steps
from ganops_models.training.loop import open_training_data, training_loop
from ganops_models.training.options import Layer, Resolved, TrainOptions, parse_resolution, resolve


def build_parser() -> argparse.ArgumentParser:
    presets = "\n".join(f"  {name:<14} {preset.model:<10} {preset.doc}" for name, preset in sorted(PRESETS.items()))
    return train_cli.build_parser([recipe.Options for recipe in RECIPES.values()], PRESETS,
                                  __doc__.split("\n\n")[0], presets)


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
    """``<outdir>/<NNNNN>-<desc>``, the next free number; ``desc`` must be a plain name (no '/' or '..'),
    so the run folder is always one entry of ``outdir``."""
    existing = [int(m.group(1)) for e in (os.listdir(outdir) if os.path.isdir(outdir) else [])
                if (m := re.match(r"^(\d{5})-", e))]
    try:
        return inside(outdir, f"{max(existing, default=-1) + 1:05d}-{desc}", "--desc", flat=True)
    except ValueError as e:
        raise OptionsError(str(e)) from None


def _describe(opts: TrainOptions, data_name: str, world_size: int) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", data_name)[:40]
    return opts.desc or f"{name}-{opts.cfg}-{opts.model}-n{world_size}-batch{opts.batch}-{opts.aug}"



def _model(given: dict) -> str:
    """--model, else the model of --cfg, else stylegan2."""
    if "cfg" in given and given["cfg"] not in PRESETS:
        raise OptionsError(f"--cfg must be one of {sorted(PRESETS)}, got {given['cfg']!r}")
    if "model" in given:
        return given["model"]
    return PRESETS[given["cfg"]].model if "cfg" in given else "stylegan2"


def _preset_layer(cfg: str, model: str, resolution, world_size: int) -> Layer:
    preset = PRESETS[cfg]
    if preset.model != model:
        raise OptionsError(f"--cfg {cfg} is a preset for --model {preset.model}, not {model}")
    return f"preset {cfg}", preset.values(tuple(resolution), world_size)


def _cfg_layer(given: dict, recipe, device_type: str, preset_of_network: str = None) -> Layer:
    """``--cfg``, else the preset of the network to fine-tune, else the model's default on this device."""
    if "cfg" in given:
        return "command line", {"cfg": given["cfg"]}
    if preset_of_network:
        return "pickle's config", {"cfg": preset_of_network}
    cfg = recipe.default_cfg.get(device_type)
    if cfg is None:
        raise OptionsError(f"--model {recipe.name} has no default preset on {device_type}; pass --cfg")
    return f"the model's default on {device_type}", {"cfg": cfg}


def new_run_options(given: dict, data_resolution, world_size: int, device_type: str = "cuda") -> Resolved:
    """A new run: the model's defaults < its preset (``--cfg``, else the model's for the device) < the
    command line. The resolution is the command line's, else the preset's, else the data's."""
    recipe = get_recipe(_model(given))
    cfg_layer = _cfg_layer(given, recipe, device_type)
    resolution = parse_resolution(given.get("resolution")) or tuple(data_resolution)
    preset = _preset_layer(cfg_layer[1]["cfg"], recipe.name, resolution, world_size)
    layers = [("data", {"resolution": tuple(data_resolution)}), cfg_layer, (preset[0], {"model": recipe.name, **preset[1]}),
              ("this machine", {"device": device_type}), ("command line", given)]
    return resolve(recipe.Options, layers, world_size, given=given)


def fine_tune_options(given: dict, net: LoadedNetwork, world_size: int, device_type: str = "cuda") -> Resolved:
    """A new run from an NVIDIA pickle: the model's defaults < its preset < the fine-tuning defaults <
    the pickle < the command line (see :mod:`ganops_models.tools.fine_tune`)."""
    if given.get("model", net.kind) != net.kind:
        raise OptionsError(f"--model {given['model']}: {net.describe()} is a {net.kind} network")
    recipe = get_recipe(net.kind)
    arch = fine_tune.architecture(net)
    cfg_layer = _cfg_layer(given, recipe, device_type, fine_tune.default_cfg(arch))
    cfg = cfg_layer[1]["cfg"]
    if "cfg" in given and cfg in PRESETS:
        fine_tune.check_preset(cfg, PRESETS[cfg], net, arch, world_size)
    preset = _preset_layer(cfg, recipe.name, arch["resolution"], world_size)
    layers = [cfg_layer, (preset[0], {"model": recipe.name, **preset[1]}), ("this machine", {"device": device_type}),
              *fine_tune.layers(net, arch, given), ("command line", given)]
    return resolve(recipe.Options, layers, world_size, given=given)


# What a resumed run cannot change: the model, its preset, Freeze-D and the augmentation pipeline (the
# checkpoint's augmentation state is for its pipeline). Architecture changes are refused later, when the
# checkpoint's arch spec is compared with the run's; everything else given (--glr, --dlr, --gamma, --kimg,
# --snap, --metrics, ...) applies, the learning rates in the optimisers too (training/loop.py).
_KEPT_ON_RESUME = ("model", "cfg", "freezed", "aug", "augpipe")


def resumed_options(given: dict, checkpoint: dict, path: str, world_size: int, device_type: str = "cuda") -> Resolved:
    """A resumed run: the checkpoint's options < the command line."""
    stored = dict(checkpoint["options"])
    for key in _KEPT_ON_RESUME:
        if key in given and given[key] != stored.get(key, given[key]):
            raise OptionsError(f"--{key} {given[key]}: a resumed run keeps its {key} ({stored.get(key)}); "
                               f"start a new run or leave --{key} out")
    recipe = get_recipe(stored["model"])
    layers = [(f"checkpoint {path}", stored), ("this run", {"device": device_type, "resume": path}),
              ("command line", given)]
    return resolve(recipe.Options, layers, world_size, new_run=False, given=given)



def resume_source(resume: str, outdir: str):
    """What ``--resume`` names: ``("pickle", path)``, an NVIDIA pickle to fine-tune, or
    ``("checkpoint", path)``, a trainer checkpoint (the file; the newest valid one of a run folder; for
    'latest', the newest valid one under ``outdir``). :func:`prepare` has rank 0 alone decide it, for
    every process of the job."""
    if os.path.isfile(resume) and nvidia.is_pickle(resume):
        return "pickle", resume
    return "checkpoint", ckpt_lib.resolve_resume(resume, outdir)


def prepare(args, dist: distributed.DistInfo, device: torch.device):
    """Options (with where each came from), resume checkpoint, dataset and run directory; every check
    happens here. Under several processes, rank 0 decides what ``--resume`` names and the run
    directory, and a check that fails on one rank (e.g. a machine without the data) stops every rank
    with its message."""
    source = None if args.resume is None else distributed.on_rank0(
        lambda: resume_source(args.resume, args.outdir or TrainOptions.outdir))
    resolved, resume, dataset, run_dir, init = distributed.fail_together(
        lambda: _open_run(args, source, dist.world_size, device))
    opts = resolved.options
    if run_dir is None:
        run_dir = distributed.broadcast_object(
            _new_run_dir(opts.outdir, _describe(opts, dataset[1].name, dist.world_size)) if dist.rank == 0 else None)
    return resolved, resume, dataset, run_dir, init


def _open_run(args, source, world_size: int, device: torch.device):
    """(options, resume checkpoint, dataset, run directory or None for a new one, network to start from)
    of this process, given what ``--resume`` names (:func:`resume_source`, or None)."""
    given = train_cli.given_values(args)
    given.pop("resume", None)
    resume = run_dir = init = None
    if source is not None and source[0] == "pickle":
        init = load_network(source[1], "cpu")   # copied into the run's networks on their device
        resolved = fine_tune_options(given, init, world_size, device.type)
        dataset = open_training_data(resolved.options, open_dataset(given.get("data"), resolution=init.resolution,
                                                                    exif_transpose=given.get("exif_transpose", True)))
        fine_tune.check_data(init, dataset[1].label_dim, dataset[1].num_channels)
    elif source is not None:
        path = source[1]
        resume, _ = read_checkpoint(path)
        resolved = resumed_options(given, resume, path, world_size, device.type)
        if args.resume == "latest":
            run_dir = os.path.dirname(os.path.abspath(path))
        dataset = open_training_data(resolved.options)
    else:
        opened = open_dataset(given.get("data"), resolution=given.get("resolution"),
                              exif_transpose=given.get("exif_transpose", True))
        resolved = new_run_options(given, opened.resolution, world_size, device.type)
        dataset = open_training_data(resolved.options, opened)
    return resolved, resume, dataset, run_dir, init


def main(argv=None) -> int:
    """The train command: bad input exits 2, divergence 3; SIGINT/SIGTERM stop it with one line saying
    how to resume (exit 130/143)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    return run_command(lambda: _main(args, argv), "every checkpoint written is whole")


def _main(args, argv) -> int:
    dist = distributed.from_env()
    launch = launcher.should_launch(args.gpus)
    try:
        launcher.check_gpus(args.gpus, args.device, argv, dist)
        if launch:   # check everything once here, then start the processes
            dist = distributed.DistInfo(rank=0, world_size=args.gpus, local_rank=0)
        device = _device(args, dist)
        if not launch:
            distributed.init(dist, device)
        resolved, resume, dataset, run_dir, init = prepare(args, dist, device)
        opts = resolved.options
    except BaseException:
        distributed.shutdown()
        raise
    if args.dry_run:
        if dist.rank == 0:
            print(json.dumps({**opts.to_dict(), "world_size": dist.world_size, "run_dir": run_dir,
                              "sources": resolved.sources}, indent=2))
        distributed.shutdown()
        return 0
    if launch:
        return launcher.launch(main, argv, args.gpus)
    return _train(opts, dist, device, run_dir, resume, dataset, init)


def _check_run_dir_shared(run_dir: str) -> None:
    """Every process sees the run folder rank 0 writes: the other ranks read the checkpoint a run resumes
    from there, so on several machines ``--outdir`` must be on storage they share."""
    missing = distributed.hosts_missing(os.path.join(run_dir, "options.json"))
    if missing:
        raise OptionsError(f"the run folder {run_dir}, written by rank 0, is not visible on {', '.join(missing)}: "
                           f"on several machines --outdir must be storage that all of them share (e.g. NFS), "
                           f"see docs/multinode.md")


def _train(opts, dist, device, run_dir, resume, dataset, init) -> int:
    """Write options.json and train; divergence prints ``error: ...`` and returns 3. An interrupt stops
    here (see :func:`~ganops_models.tools.cli.run_command`) and says how to resume."""
    try:
        if dist.rank == 0:
            output_folder(run_dir, "--outdir")
            with atomic_write(os.path.join(run_dir, "options.json")) as f:
                f.write(json.dumps({**opts.to_dict(), "world_size": dist.world_size}, indent=2).encode())
        finished(f"training in {run_dir} stopped; resume from its last checkpoint with "
                 f"python -m ganops_models.train --resume {shlex.quote(run_dir)}")
        distributed.barrier()
        _check_run_dir_shared(run_dir)
        training_loop(opts, get_recipe(opts.model), run_dir, dist, device, resume=resume, dataset=dataset, init=init)
    except DivergenceError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_DIVERGED
    finally:
        distributed.shutdown()
    if dist.rank == 0:
        print("\n".join(next_steps(run_dir, opts, last_grid(run_dir))))
    return 0
