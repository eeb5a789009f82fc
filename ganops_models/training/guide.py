"""What the trainer tells a user about the run itself: how long it will take (measured on the
first steps) and, at the end, where the results are and what to run next."""
import os
import shlex
import time
from typing import List, Optional

CALIBRATION_STEPS = 16      # steps timed (after the first, which includes warm-up) for the estimate
OVERHEAD = 1.15             # snapshots (grids, checkpoints) and regularisation steps on top of the timed steps


def is_demo(opts) -> bool:
    """The no-argument default run on a CPU: the tiny preset on the built-in data."""
    return opts.data is None and opts.cfg == "tiny"


def _duration(seconds: float) -> str:
    minutes = seconds / 60
    if minutes < 1.5:
        return "~1 min"
    if minutes < 90:
        return f"~{minutes:.0f} min"
    return f"~{minutes / 60:.1f} h"


class TimeEstimate:
    """Times steps ``first_step + 1 ... first_step + CALIBRATION_STEPS`` and then gives, once, the
    message with the estimated time of the whole run."""

    def __init__(self, opts, first_step: int, cur_nimg: int, device):
        self.opts, self.device = opts, device
        self.first_step = first_step
        self.steps_left = max(int(opts.kimg * 1000) - cur_nimg, 0) / opts.batch
        self._start = None

    def step_done(self, step: int) -> Optional[str]:
        """Call after every step (``step`` = steps done so far); returns the message once, else None."""
        if step == self.first_step + 1:
            self._start = time.perf_counter()
        if self._start is None or step != self.first_step + 1 + CALIBRATION_STEPS:
            return None
        per_step = (time.perf_counter() - self._start) / CALIBRATION_STEPS
        total = _duration(per_step * self.steps_left * OVERHEAD)
        where = "this CPU" if self.device.type == "cpu" else "this GPU"
        if is_demo(self.opts):
            h, w = self.opts.resolution
            return (f"a short demo run: {total} on {where} (the tiny StyleGAN2 at {w}x{h} on the built-in shapes, "
                    f"{self.opts.kimg:g} kimg); watch the fakes*.png grids in the run folder")
        return f"estimated training time: {total} on {where} ({self.opts.kimg:g} kimg)"


def next_steps(run_dir: str, opts, last_grid: Optional[str]) -> List[str]:
    """The end-of-run message: the run folder, the files to look at and the commands to try next."""
    run = shlex.quote(run_dir)
    lines = [f"done: {run_dir}",
             f"  look at: reals.png (training images) and {last_grid or 'fakes*.png'} (the last grid of generated "
             f"images); log.txt and stats.jsonl (or `tensorboard --logdir {shlex.quote(opts.outdir)}`)",
             "  next:",
             f"    python -m ganops_models.generate --network {run} --seeds 0-63 --grid --outdir out   # images",
             f"    python -m ganops_models.metrics --network {run} --metrics swd   # vs its training data",
             "    python -m ganops_models.train --data ~/my_images --resolution 256 --cfg paper256 --mirror"
             "   # your own images",
             f"    python -m ganops_models.train --resume {run} --kimg {opts.kimg * 2:g}   # train this run longer"]
    return lines


def last_grid(run_dir: str) -> Optional[str]:
    """File name of the newest fakes<kimg>.png in ``run_dir`` (None if there is none)."""
    grids = sorted(f for f in os.listdir(run_dir) if f.startswith("fakes") and f[5:6].isdigit() and f.endswith(".png"))
    return grids[-1] if grids else None
