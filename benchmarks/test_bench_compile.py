"""Eager vs ``--compile`` StyleGAN2 training step (issue #33 item 2): ``extra_info['speedup_vs_ref']`` is
eager time / compiled time per step after the compile warm-up (the warm-up call runs step 0, where
every phase runs and compiles). GPU: paper256 at batch 32; CPU: a micro configuration (16x16, cbase 64,
batch 4) whose inductor build fits a CI budget; ``python -m benchmarks.compile_step`` times tiny and
paper256 paired in one process (the README's figures)."""
import pytest
import torch

from benchmarks.common import DEVICE, ON_GPU, bench
from benchmarks.compile_step import build

CASE = ("paper256", 32, {}) if ON_GPU else ("tiny", 4, {"resolution": "16", "cbase": 64, "cmax": 8})


@pytest.mark.cpu_benchmark
def test_bench_compiled_step(benchmark):
    cfg, batch, overrides = CASE
    eager, compiled = build(cfg, DEVICE, batch, **overrides), build(cfg, DEVICE, batch, **overrides)
    compiled.compile()
    h, w = eager.G.resolution
    reals = torch.rand(batch, 3, h, w, device=DEVICE) * 2 - 1
    labels = torch.zeros(batch, 0, device=DEVICE)

    def stepper(recipe):
        counter = iter(range(10 ** 9))

        def step():
            i = next(counter)
            recipe.train_step(reals, labels, i, i * batch)
        return step

    bench(benchmark, [stepper(compiled)], reference=[stepper(eager)], rounds=20 if ON_GPU else 5)
    benchmark.extra_info.update(config=cfg, batch=batch, resolution=f"{w}x{h}", compiled=True)
