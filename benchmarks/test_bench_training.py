"""StyleGAN2 training-step benchmarks: each phase (G main, G reg, D main, D reg) and whole steps.

GPU: paper256 (256x256, cbase 16384, batch 32, the 4 highest resolutions in fp16 or bf16,
channels_last). CPU: the default 'tiny' preset (32x32). ``extra_info`` holds img/s and sec/kimg
(for the phase alone; for 'tick', the mean step over whole lazy-regularisation periods: main
phases every step, path length every 4, R1 every 16, G EMA, i.e. a tick's cost per step).
Inputs are random images already on the device: this times compute, not data loading.
"""
import pytest
import torch

from ganops_models.tools.train import new_run_options

from benchmarks.common import DEVICE, ON_GPU, bench
from ganops_models.training.distributed import DistInfo
from ganops_models.training.recipe import DataInfo
from ganops_models.models.stylegan2.recipe import StyleGAN2Recipe

PHASES = ["Gmain", "Greg", "Dmain", "Dreg", "tick"]
PRECISIONS = ["fp16", "bf16"] if ON_GPU else ["fp32"]


def _recipe(precision):
    if ON_GPU:
        opts = new_run_options({"cfg": "paper256", "batch": 32, "device": "cuda", "precision": precision, "aug": "noaug"},
                       (256, 256), 1).options
        resolution = (256, 256)
    else:
        opts = new_run_options({"cfg": "tiny", "device": "cpu", "precision": "fp32", "aug": "noaug"}, (32, 32), 1).options
        resolution = (32, 32)
    torch.manual_seed(0)
    return StyleGAN2Recipe(opts, DataInfo(resolution), DEVICE, DistInfo()), opts


@pytest.mark.cpu_benchmark
@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("phase", PHASES)
def test_bench_training_step(benchmark, phase, precision):
    recipe, opts = _recipe(precision)
    if phase != "tick" and phase not in [p[0] for p in recipe.phases]:
        pytest.skip(f"the {opts.cfg} preset has no {phase} phase (pl_weight {opts.pl_weight}, gamma {opts.gamma})")
    h, w = recipe.G.resolution
    reals = [torch.rand(opts.batch, 3, h, w, device=DEVICE) * 2 - 1 for _ in range(2)]
    labels = torch.zeros(opts.batch, 0, device=DEVICE)
    if phase == "tick":
        counter = iter(range(10 ** 9))

        def step(x):
            i = next(counter)
            recipe.train_step(x, labels, i, opts.batch * i)

        calls = [lambda x=x: step(x) for x in reals]
        rounds = 64 if ON_GPU else 16       # whole R1 periods (every 16 steps)
    else:
        calls = [lambda x=x: recipe.run_phase(phase, x, labels) for x in reals]
        rounds = None
    bench(benchmark, calls, rounds=rounds)
    seconds = benchmark.extra_info["median_ms"] / 1e3
    if phase == "tick" and benchmark.stats is not None:
        seconds = benchmark.stats.stats.mean          # the mean includes the amortised reg phases
    benchmark.extra_info.update(phase=phase, precision=precision, batch=opts.batch, resolution=f"{w}x{h}",
                                config=opts.cfg, img_per_sec=opts.batch / seconds,
                                sec_per_kimg=1000 * seconds / opts.batch)
