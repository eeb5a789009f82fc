"""Run outputs on rank 0: log.txt, stats.jsonl, TensorBoard, image grids, progress bar, and the
experiment trackers asked for (:mod:`ganops_models.training.tracking`: wandb, MLflow), which get the
same scalars and grids as TensorBoard.

Every method is a no-op on other ranks, so the training loop calls them unconditionally.
Stats accumulate as detached tensors during a tick (no host sync per step) and are averaged over
steps and ranks at the tick boundary with :meth:`StatsAccumulator.reduce`.
"""
import json
import os
import sys
import time
from typing import Dict, Optional

import torch
from tqdm import tqdm

from ganops_models.files import atomic_write
from ganops_models.images import make_grid, save_png
from ganops_models.training import distributed
from ganops_models.training.tracking import open_trackers


class StatsAccumulator:
    """Running sums of scalar stats over steps; averaged over steps and ranks on reduce()."""

    def __init__(self):
        self._sums: Dict[str, torch.Tensor] = {}
        self._counts: Dict[str, int] = {}

    def add(self, stats: Dict[str, torch.Tensor]) -> None:
        for name, value in stats.items():
            value = torch.as_tensor(value).detach().float().mean()
            if name in self._sums:
                self._sums[name] = self._sums[name] + value.to(self._sums[name].device)
                self._counts[name] += 1
            else:
                self._sums[name], self._counts[name] = value, 1

    def reduce(self, device) -> Dict[str, float]:
        """Means over steps and ranks of every stat seen since the last reduce (ranks run the same
        phases, so they hold the same names)."""
        names = sorted(self._sums)
        sums = torch.zeros(len(names), 2, dtype=torch.float64, device=device)
        for i, name in enumerate(names):
            if name in self._sums:
                sums[i, 0] = self._sums[name].to(device, torch.float64)
                sums[i, 1] = self._counts[name]
        distributed.all_reduce_sum(sums)
        sums = sums.cpu()
        self._sums.clear()
        self._counts.clear()
        return {name: float(sums[i, 0] / sums[i, 1]) for i, name in enumerate(names) if sums[i, 1] > 0}


def drop_stats_after(path: str, start_nimg: int) -> int:
    """Remove the rows of ``stats.jsonl`` past ``start_nimg`` (ticks trained after the checkpoint a run
    resumes from, which it trains again), so that no tick has two rows; a torn last line (a kill while
    writing) goes too. The file is rewritten whole or not at all. Returns the number of rows dropped."""
    if not os.path.isfile(path):
        return 0
    with open(path, "rb") as f:
        lines = f.read().splitlines(keepends=True)
    kept = [line for line in lines if _row_nimg(line) is not None and _row_nimg(line) <= start_nimg]
    if len(kept) != len(lines):
        with atomic_write(path) as f:
            f.write(b"".join(kept))
    return len(lines) - len(kept)


def _row_nimg(line: bytes) -> Optional[int]:
    """The images trained at a stats row (its kimg x 1000), None for a line that is not a whole row."""
    try:
        return round(float(json.loads(line)["kimg"]) * 1000)
    except (ValueError, KeyError, TypeError):
        return None


class Reporter:
    """Writes log.txt, stats.jsonl, TensorBoard scalars/images (and the same to the trackers: ``wandb``
    project, ``mlflow`` URI; ``config``: the run's options for them; ``previous_run``: the folder of the
    checkpoint a resumed run starts from, whose tracker runs it continues) and shows a tqdm bar (rank 0
    only)."""

    def __init__(self, run_dir: Optional[str], rank: int, total_nimg: int, start_nimg: int,
                 tensorboard: bool = True, wandb: Optional[str] = None, mlflow: Optional[str] = None,
                 config: Optional[dict] = None, previous_run: Optional[str] = None):
        self.active = rank == 0 and run_dir is not None
        self.run_dir = run_dir
        self._log = self._jsonl = self._tb = None
        self._trackers = []
        self._bar = tqdm(total=total_nimg, initial=start_nimg, unit="img", unit_scale=True, dynamic_ncols=True,
                         disable=not self.active, file=sys.stderr, mininterval=1.0)
        if not self.active:
            return
        os.makedirs(run_dir, exist_ok=True)
        self._log = open(os.path.join(run_dir, "log.txt"), "a", buffering=1)
        drop_stats_after(os.path.join(run_dir, "stats.jsonl"), start_nimg)
        self._jsonl = open(os.path.join(run_dir, "stats.jsonl"), "a", buffering=1)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:  # tensorboard is a declared dependency; say so if it is missing
                self.log(f"TensorBoard disabled: {e}")
            else:
                self._tb = SummaryWriter(run_dir)
        self._trackers = open_trackers(run_dir, wandb, mlflow, config, previous_run)

    def log(self, message: str) -> None:
        if not self.active:
            return
        tqdm.write(message, file=sys.stdout)
        self._log.write(message + "\n")

    def progress(self, nimg: int, postfix: Dict[str, float]) -> None:
        if self.active:
            self._bar.update(nimg)
            self._bar.set_postfix({k: f"{v:.3g}" for k, v in postfix.items()}, refresh=False)

    def stats(self, record: Dict[str, float]) -> None:
        """Append one tick record to stats.jsonl and TensorBoard (x axis: kimg as integer nimg/1000)."""
        if not self.active:
            return
        record = {"timestamp": time.time(), **record}
        self._jsonl.write(json.dumps(record) + "\n")
        self.scalars({name: value for name, value in record.items()
                      if name not in ("timestamp", "tick", "kimg") and isinstance(value, (int, float))},
                     int(record["kimg"] * 1000))

    def scalars(self, values: Dict[str, float], nimg: int) -> None:
        """Scalars to TensorBoard and the trackers only (the tick records, and metrics, which have their own
        metrics.jsonl)."""
        if self._tb is not None:
            for name, value in values.items():
                self._tb.add_scalar(name, value, global_step=nimg)
            self._tb.flush()
        self._track("scalars", values, nimg)

    def image_grid(self, images: torch.Tensor, grid, name: str, nimg: Optional[int] = None) -> None:
        """Save images in [-1, 1] ([N, C, H, W], N = cols*rows) as ``<name>.png``, to TensorBoard and the
        trackers."""
        if not self.active:
            return
        grid_u8 = make_grid(images, grid)
        save_png(grid_u8, os.path.join(self.run_dir, name + ".png"))
        tag = "fakes" if name.startswith("fakes") else name
        if self._tb is not None:
            self._tb.add_image(tag, grid_u8, global_step=nimg or 0, dataformats="HWC")
            self._tb.flush()
        self._track("image", tag, name, grid_u8, nimg or 0)

    def _track(self, method: str, *args) -> None:
        """Call ``method`` of every tracker; one that fails (a server gone, a full disk) is named in the log
        and dropped, and the run goes on without it."""
        for tracker in list(self._trackers):
            try:
                getattr(tracker, method)(*args)
            except Exception as e:   # the tracker libraries' own errors: never stop training for them
                self._trackers.remove(tracker)
                detail = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
                self.log(f"warning: {tracker.flag} stopped logging ({detail}); the run goes on without it")

    def close(self) -> None:
        self._bar.close()
        for f in (self._log, self._jsonl):
            if f is not None:
                f.close()
        if self._tb is not None:
            self._tb.close()
        self._track("close")
        self._trackers = []

