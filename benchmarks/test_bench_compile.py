"""Eager vs ``--compile`` and eager vs ``--cuda-graphs`` StyleGAN2 training step (issue #33 items 2 and 3):
``extra_info['speedup_vs_ref']`` is eager time / compiled (graphed) time per step after the warm-up (for
``--compile`` the warm-up call runs step 0, where every phase runs and compiles). GPU only (paper256 at
batch 32): on a CPU inductor's C++ build of even a 16x16 micro configuration takes 4 minutes of CPU
time, past the CPU benchmark budget; there ``python -m benchmarks.compile_step`` times tiny and paper256
paired in one process (the README's figures); ``--cuda-graphs`` needs a GPU."""
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


@pytest.mark.skipif(not ON_GPU, reason="--cuda-graphs needs a CUDA GPU")
def test_bench_cuda_graphs_step(benchmark):
    """Eager vs ``--cuda-graphs`` StyleGAN2 step (paper256, batch 32, ADA adapting): both recipes first run
    the steps in which every phase of the graphed one is captured (two eager warm-up runs, then the
    capture: up to step 2 * r1_interval), so the timed steps replay graphs."""
    cfg, batch = "paper256", 32
    eager = build(cfg, DEVICE, batch, aug="ada")
    graphed = build(cfg, DEVICE, batch, aug="ada", cuda_graphs=True)
    h, w = eager.G.resolution
    reals = torch.rand(batch, 3, h, w, device=DEVICE) * 2 - 1
    labels = torch.zeros(batch, 0, device=DEVICE)
    warmup = 2 * max(graphed.opts.r1_interval, graphed.opts.pl_interval) + 1
    for recipe in (eager, graphed):
        for i in range(warmup):
            recipe.train_step(reals, labels, i, i * batch)
    assert graphed.graphs.captures == len(graphed.phases)

    def stepper(recipe):
        counter = iter(range(warmup, 10 ** 9))

        def step():
            i = next(counter)
            recipe.train_step(reals, labels, i, i * batch)
        return step

    bench(benchmark, [stepper(graphed)], reference=[stepper(eager)], rounds=20)
    benchmark.extra_info.update(config=cfg, batch=batch, resolution=f"{w}x{h}", cuda_graphs=True)
