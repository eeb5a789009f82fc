"""Eager vs ``--compile`` time per StyleGAN2 training step, paired in one process.

    python -m benchmarks.compile_step --cfg tiny
    python -m benchmarks.compile_step --cfg paper256 --batch 4 --steps 4

Two recipes with the same seed and options, one compiled (``recipe.compile()``, what ``--compile``
calls). The first step (every phase runs at step 0: Gmain, Dmain and the lazy regularisers) is the
compiled recipe's warm-up and is timed alone; then each step index runs on both recipes back to back,
in alternating order, so a change of machine load hits both alike. Reported: the median eager and
compiled ms per step and the median of the per-pair ratios, over ``--steps`` steps from step 1 on
(main phases only unless an interval divides a step index), and the mean over whole R1 periods
(``--period``: steps 1..period, the regularisers amortised as in training). Inputs are random images on
the device (compute only, no data loading).
"""
import argparse
import statistics
import time
from typing import Callable, List

import torch

from ganops_models.models.stylegan2.recipe import StyleGAN2Recipe
from ganops_models.tools.train import new_run_options
from ganops_models.training.distributed import DistInfo
from ganops_models.training.recipe import DataInfo

RESOLUTIONS = {"tiny": 32, "paper256": 256}


def build(cfg: str, device: torch.device, batch=None, aug: str = "noaug", **overrides) -> StyleGAN2Recipe:
    """A StyleGAN2 recipe of preset ``cfg`` (one round per phase when ``batch`` is given; ``overrides``:
    more option values, e.g. resolution)."""
    res = int(overrides.get("resolution", RESOLUTIONS[cfg]))
    values = {"cfg": cfg, "device": device.type, "aug": aug, **({"batch": batch, "batch_gpu": batch} if batch else {}),
              **overrides}
    opts = new_run_options(values, (res, res), 1, device.type).options
    torch.manual_seed(0)
    return StyleGAN2Recipe(opts, DataInfo((res, res)), device, DistInfo())


def _timed(fn: Callable[[], None], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def compare(cfg: str, device: torch.device, steps: int, batch=None, aug: str = "noaug") -> dict:
    """Paired eager / compiled step times (seconds) of ``cfg``; see the module docstring."""
    eager, compiled = build(cfg, device, batch, aug), build(cfg, device, batch, aug)
    compiled.compile()
    n = eager.opts.batch
    h, w = eager.G.resolution
    reals = torch.rand(n, 3, h, w, device=device) * 2 - 1
    labels = torch.zeros(n, 0, device=device)

    def step(recipe, i):
        return lambda: recipe.train_step(reals, labels, i, i * n)

    first_eager = _timed(step(eager, 0), device)
    warmup = _timed(step(compiled, 0), device)
    times = {"eager": [], "compiled": []}
    for i in range(1, steps + 1):
        order = [("eager", eager), ("compiled", compiled)]
        for name, recipe in order if i % 2 else order[::-1]:
            times[name].append(_timed(step(recipe, i), device))
    ratios = [e / c for e, c in zip(times["eager"], times["compiled"])]
    return {"cfg": cfg, "batch": n, "resolution": f"{w}x{h}", "device": str(device),
            "first_step_eager_s": first_eager, "warmup_s": warmup,
            "eager_ms": 1e3 * statistics.median(times["eager"]),
            "compiled_ms": 1e3 * statistics.median(times["compiled"]),
            "speedup": statistics.median(ratios), "steps": steps,
            "eager_mean_ms": 1e3 * statistics.mean(times["eager"]),
            "compiled_mean_ms": 1e3 * statistics.mean(times["compiled"])}


def main(argv: List[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cfg", choices=sorted(RESOLUTIONS), default="tiny")
    parser.add_argument("--batch", type=int, help="global batch (default: the preset's); one round per phase")
    parser.add_argument("--steps", type=int, default=32, help="timed steps after the warm-up (per variant)")
    parser.add_argument("--aug", default="noaug", choices=["noaug", "ada"])
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    r = compare(args.cfg, torch.device(args.device), args.steps, args.batch, args.aug)
    print(f"{r['cfg']} {r['resolution']} batch {r['batch']} on {r['device']} ({torch.get_num_threads()} threads), "
          f"{r['steps']} paired steps after step 0")
    print(f"  compile warm-up (step 0, every phase): {r['warmup_s']:.1f} s (eager step 0: {r['first_step_eager_s']:.2f} s)")
    print(f"  eager    {r['eager_ms']:9.1f} ms/step median ({r['eager_mean_ms']:.1f} mean)")
    print(f"  compiled {r['compiled_ms']:9.1f} ms/step median ({r['compiled_mean_ms']:.1f} mean)")
    print(f"  speed-up {r['speedup']:.2f}x (median of paired ratios)")


if __name__ == "__main__":
    main()
