"""The training loop: data, ticks, stats, snapshots (grids, checkpoints, metrics), resume.

Model-specific work is delegated to a :class:`~ganops_models.training.recipe.Recipe`. A *tick*
is ``opts.tick`` kimg (one stats record and log line); a *snapshot* every ``opts.snap`` ticks and at
the end writes ``fakes<kimg>.png``, ``checkpoint-<kimg>.pt`` and evaluates ``opts.metrics``.
"""
import dataclasses
import os
import time
from typing import Optional, Type

import torch

from ganops_models.data import CROP_MODES, images_to_float, make_loader, open_dataset, reconfigure
from ganops_models.data.notes import data_notes
from ganops_models.formats import checkpoint as ckpt_lib
from ganops_models.training import distributed, guard, transfer
from ganops_models.training.guide import TimeEstimate
from ganops_models.errors import CheckpointError, CheckpointWriteError, DivergenceError
from ganops_models.training.recipe import DataInfo, Recipe
from ganops_models.training.reporting import Reporter, StatsAccumulator

GRID_SEED = 1234567


def open_training_data(opts, opened=None):
    """(dataset, DataInfo) of the run. ``opened``: the same data already opened (e.g. to find its
    resolution), reused so that the files are indexed, and unreadable ones reported, only once."""
    transform = CROP_MODES[opts.crop]
    if opened is None:
        dataset = open_dataset(opts.data, resolution=opts.resolution, mirror=opts.mirror, use_labels=opts.cond,
                               max_images=opts.subset, transform=transform, exif_transpose=opts.exif_transpose)
    else:
        dataset = reconfigure(opened, opts.resolution, mirror=opts.mirror, use_labels=opts.cond,
                              max_images=opts.subset, transform=transform)
    info = DataInfo(resolution=tuple(dataset.resolution), num_channels=dataset.num_channels,
                    label_dim=dataset.label_dim, name=dataset.name)
    return dataset, info


def set_backend_flags(opts) -> None:
    """As NVIDIA's training_loop: TF32 for float32 matmuls and cuDNN convolutions only with
    ``--allow-tf32``; cuDNN autotuning unless ``--nobench`` (process-wide torch.backends flags)."""
    torch.backends.cudnn.benchmark = not opts.nobench
    torch.backends.cuda.matmul.allow_tf32 = opts.allow_tf32
    torch.backends.cudnn.allow_tf32 = opts.allow_tf32


def _grid_data(dataset, recipe, grid, seed):
    """Fixed reals, latents and labels of the snapshot grids (same on every run with this seed)."""
    n = grid[0] * grid[1]
    gen = torch.Generator().manual_seed(seed + GRID_SEED)
    idx = torch.randperm(len(dataset), generator=gen)[:n].tolist()
    idx = (idx * (n // max(len(idx), 1) + 1))[:n]
    items = [dataset[i] for i in idx]
    reals = images_to_float(torch.stack([torch.as_tensor(img) for img, _ in items]))
    labels = torch.stack([torch.as_tensor(lab) for _, lab in items]).float()
    z = recipe.latents(n, gen)
    return reals, z, labels


def training_loop(opts, recipe_cls: Type[Recipe], run_dir: str, dist: distributed.DistInfo, device: torch.device,
                  resume: Optional[dict] = None, dataset=None, init=None) -> dict:
    """Train until ``opts.kimg``; returns the final progress dict. ``resume``: a loaded checkpoint;
    ``dataset``: (dataset, DataInfo) from :func:`open_training_data` (opened here when None); ``init``:
    a :class:`~ganops_models.network_loader.LoadedNetwork` whose weights start a new run (transfer learning).
    Raises :class:`~ganops_models.errors.DivergenceError` when training diverges (``--nan-policy``)."""
    set_backend_flags(opts)
    dataset, info = dataset if dataset is not None else open_training_data(opts)
    recipe = recipe_cls(opts, info, device, dist)
    progress = {"cur_nimg": 0, "step": 0, "tick": 0}
    lr_changes = []
    if resume is not None:
        ckpt_lib.check_compatible(resume, opts.model, recipe.arch_spec(), "--resume checkpoint")
        lr_changes = load_resume_state(recipe, resume, opts)
        progress = {"tick": 0, **resume["progress"]}
    elif init is not None:
        transfer.init_from_network(recipe, init)
    for module in recipe.modules().values():
        distributed.broadcast_module(module)
    torch.manual_seed(opts.seed * dist.world_size + dist.rank + progress["step"] * 7919)
    if resume is not None and dist.rank == 0 and "rng" in resume:
        ckpt_lib.set_rng_state(resume["rng"])
    if opts.compile:
        recipe.compile()

    def loader_for(batch, step):
        return make_loader(dataset, batch // dist.world_size, rank=dist.rank, world_size=dist.world_size,
                           workers=opts.workers, seed=opts.seed + step, device=device)
    batch = recipe.batch_size(progress["cur_nimg"])
    loader = loader_for(batch, progress["step"])
    total_nimg = int(opts.kimg * 1000)
    reporter = Reporter(run_dir, dist.rank, total_nimg, progress["cur_nimg"], wandb=opts.wandb, mlflow=opts.mlflow,
                        config=opts.to_dict(),
                        previous_run=os.path.dirname(os.path.abspath(opts.resume)) if resume is not None else None)
    grid_reals, grid_z, grid_c = _grid_data(dataset, recipe, opts.grid, opts.seed)
    if dist.rank == 0:
        reporter.log(f"{info.name}: {len(dataset)} images at {info.resolution[1]}x{info.resolution[0]}, "
                     f"label_dim {info.label_dim}; {dist.world_size} process(es) on {device}; run dir {run_dir}")
        for note in data_notes(dataset, opts.aug, opts.mirror):
            reporter.log(note)
        if resume is not None:
            reporter.log(f"resumed from {opts.resume} at kimg {progress['cur_nimg'] / 1000:.3f}, step "
                         f"{progress['step']}, augment p {recipe.augment_p}; learning rates "
                         f"{_learning_rates(recipe)}" + "".join(f"; {change}" for change in lr_changes))
        if init is not None:
            reporter.log(transfer.log_line(init, recipe.augment_p))
        for name in ckpt_lib.remove_orphans(run_dir):
            reporter.log(f"removed {name}, the temporary file of a checkpoint write that was interrupted")
        if not os.path.exists(os.path.join(run_dir, "reals.png")):
            reporter.image_grid(grid_reals, opts.grid, "reals")
    if resume is None:
        _save_grid(reporter, recipe, grid_z, grid_c, opts, "fakes_init", 0)

    accumulator = StatsAccumulator()
    cur_nimg, step, tick = progress["cur_nimg"], progress["step"], progress["tick"]
    tick_start_nimg, tick_start = cur_nimg, time.time()
    maintenance = 0.0
    postfix = {}
    last_checkpoint = opts.resume if resume is not None else None
    rollbacks = 0
    estimate = TimeEstimate(opts, step, cur_nimg, device)
    done = cur_nimg >= total_nimg
    while not done:
        if recipe.batch_size(cur_nimg) != batch:
            batch = recipe.batch_size(cur_nimg)
            loader = loader_for(batch, step)
        images, labels = next(loader)
        stats = recipe.train_step(images_to_float(images), labels, step, cur_nimg)
        accumulator.add(stats)
        cur_nimg += batch
        step += 1
        done = cur_nimg >= total_nimg
        reporter.progress(batch, postfix)
        message = estimate.step_done(step)
        if message is not None:
            reporter.log(message)
        if not done and cur_nimg < tick_start_nimg + opts.tick * 1000:
            continue

        # --- tick ---
        tick += 1
        tick_end = time.time()
        accumulator.add({guard.GRAD_STAT: recipe.take_nonfinite_grad_steps()})
        record = accumulator.reduce(device)
        tick_time = max(tick_end - tick_start, 1e-9)
        nimg = cur_nimg - tick_start_nimg
        record.update({"tick": tick, "kimg": cur_nimg / 1000, "step": step, "sec_per_tick": tick_time,
                       "sec_per_kimg": tick_time / (nimg / 1000), "img_per_sec": nimg / tick_time,
                       "maintenance_sec": maintenance})
        if device.type == "cuda":
            record["gpu_mem_gb"] = torch.cuda.max_memory_allocated(device) / 2 ** 30
            torch.cuda.reset_peak_memory_stats(device)
        if recipe.augment_p is not None:
            record["augment_p"] = recipe.augment_p
        record.update(recipe.tick_stats())
        reporter.stats(record)
        reporter.log(_tick_line(record))
        postfix = {k: record[k] for k in ("loss/G", "loss/D", "augment_p", "img_per_sec") if k in record}

        problems = guard.tick_problems(record, recipe.modules())
        if problems:
            last_good = _last_good(run_dir, last_checkpoint, reporter.log)
            last_checkpoint = last_good[0]
            progress = _recover(opts, recipe, reporter, problems, tick, cur_nimg, last_good, rollbacks)
            rollbacks += 1
            cur_nimg, step, tick = progress["cur_nimg"], progress["step"], progress["tick"]
            done = False
            tick_start_nimg, tick_start = cur_nimg, time.time()
            continue

        maintenance_start = time.time()
        if done or tick % opts.snap == 0:
            last_checkpoint = _snapshot(opts, run_dir, recipe, dataset, reporter, grid_z, grid_c, device, dist,
                                        {"cur_nimg": cur_nimg, "step": step, "tick": tick}, last_checkpoint)
        tick_start_nimg, tick_start = cur_nimg, time.time()
        maintenance = tick_start - maintenance_start

    reporter.close()
    distributed.barrier()
    return {"cur_nimg": cur_nimg, "step": step, "tick": tick, "augment_p": recipe.augment_p}


def _last_good(run_dir, last_checkpoint, log):
    """(path, loaded checkpoint) of the newest checkpoint, ``last_checkpoint`` or an older one of the run,
    that passes every load check (integrity, finite weights); each one that fails is logged with the
    reason. (None, None) when there is none."""
    if not last_checkpoint:
        return None, None
    last = ckpt_lib.NAME_RE.match(os.path.basename(last_checkpoint))
    older = [p for p in reversed(ckpt_lib.list_checkpoints(run_dir))
             if last and os.path.basename(p) < os.path.basename(last_checkpoint)]
    for path in [last_checkpoint, *older]:
        try:
            return path, ckpt_lib.load_checkpoint(path, note=log)
        except CheckpointError as e:
            log(f"not a good checkpoint: {e}")
    return None, None


# The optimisers of every recipe, with the option that sets each one's learning rate.
_OPTIMIZER_RATES = (("opt_G", "glr"), ("opt_D", "dlr"))


def load_resume_state(recipe, resume: dict, opts) -> list:
    """Load a checkpoint's recipe state, then give each optimiser whose rate option (``--glr``,
    ``--dlr``) differs from the checkpoint's the rate this run's options set: the one the recipe built it
    with (including any correction, e.g. StyleGAN2's lazy-regularisation ``c = I / (I + 1)``), which
    ``load_state_dict`` had replaced with the checkpoint's. Returns a line per changed rate."""
    built = {name: [group["lr"] for group in getattr(recipe, name).param_groups] for name, _ in _OPTIMIZER_RATES}
    ckpt_lib.load_state(recipe, resume, opts.resume)
    stored, changes = resume.get("options", {}), []
    for name, option in _OPTIMIZER_RATES:
        old, new = stored.get(option), getattr(opts, option)
        if old is None or old == new:
            continue
        for group, lr in zip(getattr(recipe, name).param_groups, built[name]):
            group["lr"] = lr
        changes.append(f"--{option} {new} applied (the checkpoint had {old})")
    return changes


def _learning_rates(recipe) -> str:
    """'G 0.002, D 0.002': the rates the optimisers use now (after any lazy-regularisation correction)."""
    return ", ".join(f"{name[-1]} {getattr(recipe, name).param_groups[0]['lr']:.4g}" for name, _ in _OPTIMIZER_RATES)


def _recover(opts, recipe, reporter, problems, tick, cur_nimg, last_good, rollbacks) -> dict:
    """Divergence at this tick: with ``--nan-policy rollback`` (and a good checkpoint, see
    :func:`_last_good`, and rollbacks left) load it with lower learning rates and return its progress;
    else log and raise :class:`~ganops_models.errors.DivergenceError`."""
    last_checkpoint, ckpt = last_good
    message = (f"training diverged at tick {tick} (kimg {cur_nimg / 1000:.3f}): {'; '.join(problems)}. "
               f"Last good checkpoint: {last_checkpoint or 'none (no snapshot that passes its checks)'}")
    if opts.nan_policy == "rollback":
        if last_checkpoint and rollbacks < guard.MAX_ROLLBACKS:
            guard.load_with_lower_lr(recipe, ckpt["state"], guard.ROLLBACK_LR_FACTOR)
            reporter.log(f"{message}; rolled back to it with every learning rate x{guard.ROLLBACK_LR_FACTOR} "
                         f"(rollback {rollbacks + 1} of at most {guard.MAX_ROLLBACKS})")
            return dict(ckpt["progress"])
        message += (" (--nan-policy rollback: " + ("no checkpoint to roll back to)" if not last_checkpoint
                                                  else f"gave up after {rollbacks} rollbacks)"))
    message += ". Resume from it with lower --glr/--dlr, or train with --nan-policy rollback"
    reporter.log(message)
    reporter.close()
    raise DivergenceError(message)


def _tick_line(r: dict) -> str:
    parts = [f"tick {r['tick']:<5d}", f"kimg {r['kimg']:<9.3f}", f"sec/kimg {r['sec_per_kimg']:<7.2f}",
             f"img/s {r['img_per_sec']:<7.1f}"]
    for key in ("loss/G", "loss/D", "loss/r1_penalty", "loss/pl_penalty", "augment_p", "gpu_mem_gb"):
        if key in r:
            parts.append(f"{key.split('/')[-1]} {r[key]:.4g}")
    return "  ".join(parts)


def _save_grid(reporter, recipe, z, c, opts, name, cur_nimg):
    if reporter.active:
        images = recipe.sample(z, c)
        reporter.image_grid(images, opts.grid, name, cur_nimg)


def check_replicas_in_sync(recipe, last_checkpoint: Optional[str] = None) -> None:
    """Every rank must hold the same parameters (a float64 checksum per module, compared over ranks);
    replicas that drifted apart stop the run on every rank with a :class:`DivergenceError` naming
    ``last_checkpoint`` (the verdict is all-reduced, so no rank waits for another that stopped)."""
    if not distributed.active():
        return
    drifted = []
    for name, module in recipe.modules().items():
        params = list(module.parameters())
        if not params:
            continue
        local = torch.stack([p.detach().double().sum() for p in params])
        mean = distributed.all_reduce_sum(local.clone()) / torch.distributed.get_world_size()
        differs = (~torch.isclose(local, mean, rtol=1e-6, atol=1e-6)).any().double()
        if distributed.all_reduce_sum(differs).item() > 0:
            drifted.append(name)
    if drifted:
        raise DivergenceError(
            f"the data-parallel replicas of {', '.join(drifted)} drifted apart (their parameter checksums differ "
            f"between ranks), so this snapshot was not saved. Last good checkpoint: {last_checkpoint or 'none'}. "
            f"Resume from it with --resume latest; if it happens again, train with --gpus 1 and report it")


def _snapshot(opts, run_dir, recipe, dataset, reporter, grid_z, grid_c, device, dist, progress, last_checkpoint) -> str:
    """Grid, checkpoint (rank 0) and metrics; returns the checkpoint's path. A checkpoint that cannot
    be written (a full disk) stops the run with :class:`CheckpointWriteError` naming ``last_checkpoint``."""
    check_replicas_in_sync(recipe, last_checkpoint)
    tag = ckpt_lib.kimg_tag(progress["cur_nimg"])
    _save_grid(reporter, recipe, grid_z, grid_c, opts, f"fakes{tag}", progress["cur_nimg"])
    path = os.path.join(run_dir, ckpt_lib.checkpoint_name(progress["cur_nimg"]))
    if dist.rank == 0:
        try:
            ckpt_lib.save_checkpoint(path, model=opts.model, arch=recipe.arch_spec(), options=opts.to_dict(),
                                     data=dataclasses.asdict(recipe.data), progress=progress,
                                     state=recipe.state_dict())
        except CheckpointWriteError as e:
            message = f"{e}; last good checkpoint: {last_checkpoint or 'none'}"
            reporter.log(message)
            reporter.close()
            raise CheckpointWriteError(message) from None
        reporter.log(f"saved {os.path.basename(path)}")
        if opts.metrics != "none":
            _evaluate_metrics(opts, run_dir, recipe, dataset, reporter, device, progress)
    distributed.barrier()
    return path


def _evaluate_metrics(opts, run_dir, recipe, dataset, reporter, device, progress):
    """The single metrics call site: G_ema vs the training data, appended to metrics.jsonl and plotted."""
    from ganops_models import metrics
    label_dim = recipe.data.label_dim if opts.cond else 0
    gen = metrics.make_generator_fn(recipe.sample, recipe.latents, device, label_dim=label_dim,
                                    labels=dataset.labels if opts.cond else None)
    results = metrics.evaluate(opts.metrics, gen, dataset, device=device, inception_path=opts.inception,
                               batch_size=recipe.batch_per_process, log=reporter.log)
    kimg = progress["cur_nimg"] / 1000
    metrics.append_metrics_jsonl(os.path.join(run_dir, "metrics.jsonl"), kimg, results)
    metrics.plot_metrics(os.path.join(run_dir, "metrics.jsonl"), os.path.join(run_dir, "metrics.png"))
    reporter.scalars({f"metrics/{k}": v for k, v in results.items()}, progress["cur_nimg"])
    reporter.log("metrics: " + ", ".join(f"{k} {v:.4g}" for k, v in results.items()))
