"""One training step (D step + G step + EMA) of a recipe, timed against the same step with every
ganops op forced to its reference backend (``GANOPS_IMPL=ref``); shared by the FastGAN and DCGAN
benchmarks. ``extra_info`` gets ``img_per_sec`` and ``speedup_vs_ref``."""
import pytest
import torch

import ganops
from benchmarks.common import DEVICE, ON_GPU, bench
from ganops_models.training.distributed import DistInfo
from ganops_models.models.registry import get_recipe
from ganops_models.training.recipe import DataInfo

PRECISIONS = ["fp32", "bf16"] if ON_GPU else ["fp32"]


def build(model, cfg, res, batch, z_dim, width, precision):
    torch.manual_seed(0)
    extra = dict(ngf=width, ndf=width)
    if model == "fastgan":
        extra["recon"] = "mse"
    opts = get_recipe(model).Options(cfg=cfg, device=DEVICE.type, precision=precision, batch=batch, z_dim=z_dim,
                        resolution=(res, res), aug="diffaug" if model == "fastgan" else "noaug", glr=2e-4,
                        dlr=2e-4, ema=0.0055 * batch, kimg=1, **extra)
    return get_recipe(model)(opts, DataInfo(resolution=(res, res)), DEVICE, DistInfo())


def bench_training_step(benchmark, case, precision):
    """``case``: (id, model, cfg, resolution, batch, z_dim, widths)."""
    _, model, cfg, res, batch, z_dim, width = case
    recipe = build(model, cfg, res, batch, z_dim, width, precision)
    reals = torch.rand(batch, 3, res, res, device=DEVICE) * 2 - 1
    labels = torch.zeros(batch, 0, device=DEVICE)
    state = {"step": 0}

    def step():
        recipe.train_step(reals, labels, state["step"], state["step"] * batch)
        state["step"] += 1

    def reference_step():
        with ganops.forced_impl("ref"):
            step()

    bench(benchmark, [step], reference=[reference_step], rounds=20 if ON_GPU else 3)
    info = benchmark.extra_info
    info["img_per_sec"] = batch / (info["median_ms"] / 1e3)
    info["batch"], info["resolution"], info["precision"] = batch, res, precision


def training_step_test(gpu_cases, cpu_cases):
    """The parametrised ``test_training_step`` of a family: its GPU cases on a GPU, else its CPU cases."""
    cases = gpu_cases if ON_GPU else cpu_cases

    @pytest.mark.cpu_benchmark
    @pytest.mark.parametrize("precision", PRECISIONS)
    @pytest.mark.parametrize("case", cases, ids=[c[0] for c in cases])
    def test_training_step(benchmark, case, precision):
        bench_training_step(benchmark, case, precision)

    return test_training_step
