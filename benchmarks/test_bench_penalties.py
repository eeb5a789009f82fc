"""Regularisation steps of StyleGAN2-ADA: D's R1 step and G's path-length step, forward + backward.

GPU: the paper256 networks of ganops_models (cbase 16384, cmax 512, fp16 in the top 4 resolutions,
conv_clamp 256); R1 on 32 reals, path length on 16 (ADA's pl_batch_shrink = 2). CPU: tiny networks.

Cases: 'torch' is the same math in plain PyTorch (every ganops op forced to its reference with
GANOPS_IMPL=ref, and loss.py's literal penalty formulas); the other ids run the networks on their
best ganops backends with the penalty's reduction on the named backend. ``extra_info`` gets the
median time, peak memory (GPU) and ``speedup_vs_ref`` (against the 'torch' case).
"""
import contextlib
import math

import pytest
import torch

import ganops
from benchmarks.common import DEVICE, ON_GPU, backend_params, bench
from ganops_models.models.stylegan2.network import Discriminator, Generator

RES = 256 if ON_GPU else 16
NET = dict(channel_base=16384, channel_max=512, num_fp16_res=4, conv_clamp=256) if ON_GPU else \
    dict(channel_base=128, channel_max=32, num_fp16_res=0)
R1_BATCH = 32 if ON_GPU else 4
PL_BATCH = 16 if ON_GPU else 2
W_DIM = 512 if ON_GPU else 16
GAMMA = 1.0

# The plain-torch case (loss.py's code) is the baseline; compiled penalties are timed within the whole
# compiled step (benchmarks/compile_step.py), not here.
PARAMS = [pytest.param("torch", id="torch")] + [p for p in backend_params("sum_squares") if p.id != "ref-compile"]


def _plain_torch(active: bool):
    """The baseline's setting: every ganops op on its reference and conv2d_gradfix's weight gradients
    skipped (as loss.py runs them); nothing when ``active`` is false."""
    if not active:
        return contextlib.nullcontext()
    stack = contextlib.ExitStack()
    stack.enter_context(ganops.forced_impl("ref"))
    stack.enter_context(ganops.no_weight_gradients(True))
    return stack


def _r1_torch(images, logits):
    """loss.py's R1, literally."""
    (grads,) = torch.autograd.grad(outputs=[logits.sum()], inputs=[images], create_graph=True, only_inputs=True)
    return grads.square().sum([1, 2, 3]) * (GAMMA / 2)


def _pl_torch(images, ws, pl_mean):
    """loss.py's path-length penalty, literally."""
    noise = torch.randn_like(images) / math.sqrt(images.shape[2] * images.shape[3])
    (grads,) = torch.autograd.grad(outputs=[(images * noise).sum()], inputs=[ws], create_graph=True,
                                   only_inputs=True)
    lengths = grads.square().sum(2).mean(1).sqrt()
    new_mean = pl_mean.lerp(lengths.mean(), 0.01)
    return (lengths - new_mean).square(), new_mean.detach()


def _clear_grads(module):
    for p in module.parameters():
        p.grad = None


def _d_r1_step(D, reals, backend):
    def step():
        _clear_grads(D)
        with _plain_torch(backend == "torch"):
            images = reals.detach().requires_grad_(True)
            logits = D(images)
            if backend == "torch":
                penalty = _r1_torch(images, logits)
            else:
                penalty = ganops.r1_penalty(images, logits, GAMMA, impl=backend)
        penalty.mean().backward()
    return step


def _g_pl_step(G, z, backend):
    pl_mean = torch.zeros((), device=DEVICE)

    def step():
        _clear_grads(G)
        with _plain_torch(backend == "torch"):
            ws = G.mapping(z, None)
            images = G.synthesis(ws)
            if backend == "torch":
                penalty, new_mean = _pl_torch(images, ws, pl_mean)
            else:
                penalty, new_mean = ganops.path_length_penalty(images, ws, pl_mean, impl=backend)
        pl_mean.copy_(new_mean)
        penalty.mean().backward()
    return step


@pytest.mark.parametrize("backend", PARAMS)
def test_d_r1_step(benchmark, backend):
    torch.manual_seed(0)
    D = Discriminator(resolution=(RES, RES), **NET).to(DEVICE)
    reals = torch.randn(R1_BATCH, 3, RES, RES, device=DEVICE)
    reference = None if backend == "torch" else [_d_r1_step(D, reals, "torch")]
    bench(benchmark, [_d_r1_step(D, reals, backend)], reference=reference)


@pytest.mark.parametrize("backend", PARAMS)
def test_g_path_length_step(benchmark, backend):
    torch.manual_seed(1)
    G = Generator(z_dim=W_DIM, w_dim=W_DIM, resolution=(RES, RES), **NET).to(DEVICE)
    z = torch.randn(PL_BATCH, W_DIM, device=DEVICE)
    reference = None if backend == "torch" else [_g_pl_step(G, z, "torch")]
    bench(benchmark, [_g_pl_step(G, z, backend)], reference=reference)
