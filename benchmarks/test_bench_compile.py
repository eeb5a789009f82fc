"""Eager vs ``--compile`` StyleGAN2 training step (issue #33 item 2): ``extra_info['speedup_vs_ref']`` is
eager time / compiled time per step after the compile warm-up (the warm-up call runs step 0, where
every phase runs and compiles). GPU only (paper256 at batch 32): on a CPU inductor's C++ build of even
a 16x16 micro configuration takes 4 minutes of CPU time, past the CPU benchmark budget; there
``python -m benchmarks.compile_step`` times tiny and paper256 paired in one process (the README's figures)."""
import pytest
import torch

from benchmarks.common import DEVICE, ON_GPU, bench
from benchmarks.compile_step import build



@pytest.mark.skipif(not ON_GPU, reason="inductor's build takes minutes on a CPU: python -m benchmarks.compile_step "
                                       "times the CPU")
def test_bench_compiled_step(benchmark):
    cfg, batch = "paper256", 32
    eager, compiled = build(cfg, DEVICE, batch), build(cfg, DEVICE, batch)
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
