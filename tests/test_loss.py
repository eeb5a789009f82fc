"""StyleGAN2 loss terms and optimisation details against hand computation."""
import math

import pytest
import torch

from ganops import path_length_penalty, r1_penalty
from ganops_models.models.stylegan2.options import StyleGAN2Options
from ganops_models.models.stylegan2.loss import StyleGAN2Loss, d_main_loss, g_main_loss
from ganops_models.models.stylegan2.network import Discriminator, Generator
from ganops_models.training.distributed import DistInfo
from ganops_models.training.recipe import DataInfo
from ganops_models.models.stylegan2.recipe import StyleGAN2Recipe, lazy_adam


pytestmark = pytest.mark.usefixtures("one_intraop_thread")


def test_logistic_losses():
    x = torch.tensor([-3.0, -0.5, 0.0, 0.7, 4.0], dtype=torch.float64)
    expect_g = torch.tensor([math.log1p(math.exp(-v)) for v in x.tolist()], dtype=torch.float64)
    assert torch.allclose(g_main_loss(x), expect_g)
    real = torch.tensor([1.0, -2.0, 0.3, 0.0, 2.5], dtype=torch.float64)
    expect_d = torch.tensor([math.log1p(math.exp(f)) + math.log1p(math.exp(-r)) for f, r in
                             zip(x.tolist(), real.tolist())], dtype=torch.float64)
    assert torch.allclose(d_main_loss(x, real), expect_d)


def test_r1_penalty_and_its_gradient():
    """D(x) = sum(a * x^2) / 2 per sample: grad = a * x, penalty = gamma/2 * sum (a x)^2,
    d penalty / d a = gamma * a * x^2 (summed over the batch)."""
    torch.manual_seed(0)
    gamma = 3.0
    x = torch.randn(4, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    a = torch.randn(2, 3, 3, dtype=torch.float64, requires_grad=True)
    logits = (a * x.square()).sum(dim=[1, 2, 3]) / 2
    penalty = r1_penalty(x, logits.unsqueeze(1), gamma)
    expect = gamma / 2 * (a * x).square().sum(dim=[1, 2, 3])
    assert penalty.shape == (4,)
    assert torch.allclose(penalty, expect.detach())
    penalty.sum().backward()
    assert torch.allclose(a.grad, gamma * (a * x.square()).sum(0).detach())


def test_path_length_penalty_matches_hand_computation():
    """images[n] = sum_{l,k} ws[n,l,k] A[l,k]: the Jacobian-vector product is A . y, by hand."""
    torch.manual_seed(1)
    n, layers, wdim, c, h, w = 3, 4, 5, 2, 4, 6
    A = torch.randn(layers, wdim, c, h, w, dtype=torch.float64, requires_grad=True)
    ws = torch.randn(n, layers, wdim, dtype=torch.float64, requires_grad=True)
    images = torch.einsum("nlk,lkchw->nchw", ws, A)
    pl_mean = torch.tensor(0.7, dtype=torch.float64)
    torch.manual_seed(5)
    penalty, new_mean = path_length_penalty(images, ws, pl_mean, decay=0.1)
    torch.manual_seed(5)
    y = torch.randn_like(images) / math.sqrt(h * w)
    g = torch.einsum("lkchw,nchw->nlk", A.detach(), y)
    lengths = g.square().sum(2).mean(1).sqrt()
    expect_mean = 0.7 + 0.1 * (lengths.mean() - 0.7)
    assert torch.allclose(new_mean, expect_mean)
    assert torch.allclose(penalty, (lengths - expect_mean).square().detach())
    assert not new_mean.requires_grad and penalty.requires_grad


def test_lazy_regularisation_adam_correction():
    p = [torch.nn.Parameter(torch.zeros(1))]
    opt = lazy_adam(p, 0.002, 16)
    c = 16 / 17
    group = opt.param_groups[0]
    assert group["lr"] == pytest.approx(0.002 * c)
    assert group["betas"] == (0.0, pytest.approx(0.99 ** c))
    assert group["eps"] == 1e-8
    assert lazy_adam(p, 0.002, 0).param_groups[0]["lr"] == 0.002


def _nets():
    torch.manual_seed(0)
    kw = dict(channel_base=128, channel_max=8)
    G = Generator(z_dim=8, w_dim=8, resolution=(16, 16), mapping_layers=2, **kw).requires_grad_(False)
    D = Discriminator(resolution=(16, 16), mbstd_group_size=2, **kw).requires_grad_(False)
    return G, D


def test_phases_touch_only_their_network():
    G, D = _nets()
    loss = StyleGAN2Loss(G, D, r1_gamma=1.0, pl_weight=2.0)
    real = torch.randn(4, 3, 16, 16)
    c = torch.zeros(4, 0)
    z = torch.randn(4, 8)
    for phase, net, other in (("Gmain", G, D), ("Greg", G, D), ("Dmain", D, G), ("Dreg", D, G)):
        for m in (G, D):
            m.zero_grad(set_to_none=True)
        net.requires_grad_(True)
        stats = loss.accumulate_gradients(phase, real, c, z, c, gain=1.0)
        net.requires_grad_(False)
        assert stats and all(torch.isfinite(v).all() for v in stats.values())
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters()), phase
        assert all(p.grad is None for p in other.parameters()), phase
    assert loss.pl_mean > 0


def test_dreg_gradient_equals_autograd_of_r1_times_gain():
    G, D = _nets()
    gamma, gain = 2.0, 16.0
    real = torch.randn(4, 3, 16, 16)
    c = torch.zeros(4, 0)
    D.requires_grad_(True)
    StyleGAN2Loss(G, D, r1_gamma=gamma).accumulate_gradients("Dreg", real, c, torch.randn(4, 8), c, gain=gain)
    got = [p.grad.clone() for p in D.parameters()]
    D.zero_grad(set_to_none=True)
    x = real.clone().requires_grad_(True)
    grads, = torch.autograd.grad(D(x).sum(), x, create_graph=True)
    (grads.square().sum([1, 2, 3]) * gamma / 2).mean().mul(gain).backward()
    for p, g in zip(D.parameters(), got):
        expect = p.grad if p.grad is not None else torch.zeros_like(g)
        assert torch.allclose(g, expect, rtol=1e-4, atol=1e-6)


def test_style_mixing_uses_two_latents_per_sample():
    G, D = _nets()
    loss = StyleGAN2Loss(G, D, style_mixing_prob=1.0)
    torch.manual_seed(3)
    _, ws = loss.run_G(torch.randn(5, 8), torch.zeros(5, 0))
    first, last = ws[:, :1], ws[:, -1:]
    same_as_first = (ws - first).abs().amax(dim=2) < 1e-6
    same_as_last = (ws - last).abs().amax(dim=2) < 1e-6
    assert (same_as_first | same_as_last).all()
    assert not same_as_first[:, -1].any()     # the last layers come from the second latent
    loss.style_mixing_prob = 0.0
    _, ws = loss.run_G(torch.randn(5, 8), torch.zeros(5, 0))
    assert torch.equal(ws, ws[:, :1].expand_as(ws))


def test_ema_update_and_rampup():
    opts = StyleGAN2Options(batch=4, cbase=128, cmax=8, z_dim=8, w_dim=8, map=2, num_fp16_res=0, precision="fp32",
                        device="cpu", aug="noaug", ema=2.0, ema_rampup=0.05)
    recipe = StyleGAN2Recipe(opts, DataInfo((16, 16)), torch.device("cpu"), DistInfo())
    with torch.no_grad():
        for p in recipe.G.parameters():
            p.add_(1.0)
    before = [p.clone() for p in recipe.G_ema.parameters()]
    recipe.update_ema(cur_nimg=1000)
    beta = 0.5 ** (4 / min(2000, 1000 * 0.05))
    for e0, e1, p in zip(before, recipe.G_ema.parameters(), recipe.G.parameters()):
        assert torch.allclose(e1, p.lerp(e0, beta), atol=1e-6)
    assert torch.equal(recipe.G_ema.mapping.w_avg, recipe.G.mapping.w_avg)


@pytest.mark.parametrize("r1_interval, expect", [(16, ["Gmain", "Dmain", "Dreg"]), (0, ["Gmain", "Dboth"])])
def test_lazy_and_non_lazy_phases(r1_interval, expect):
    opts = StyleGAN2Options(batch=4, cbase=64, cmax=8, z_dim=8, w_dim=8, map=2, num_fp16_res=0, precision="fp32",
                        device="cpu", aug="noaug", pl_weight=0.0, r1_interval=r1_interval, mbstd_group=2)
    recipe = StyleGAN2Recipe(opts, DataInfo((16, 16)), torch.device("cpu"), DistInfo())
    assert [p[0] for p in recipe.phases] == expect
    stats = recipe.train_step(torch.rand(4, 3, 16, 16) * 2 - 1, torch.zeros(4, 0), 0, 0)
    assert {"loss/G", "loss/D", "loss/r1_penalty"} <= set(stats)
    assert float(recipe.opt_D.state_dict()["state"][0]["step"]) == len(expect) - 1


# --- rounds (NVIDIA's gradient accumulation over batch_gpu samples) --------------------------------

def _round_recipe(**kw):
    opts = StyleGAN2Options(**{**dict(batch=8, batch_gpu=2, cbase=64, cmax=8, z_dim=8, w_dim=8, map=2, num_fp16_res=0,
                                  precision="fp32", device="cpu", aug="noaug", pl_interval=1, r1_interval=1,
                                  mbstd_group=2, style_mixing=1.0), **kw})
    return StyleGAN2Recipe(opts, DataInfo((16, 16)), torch.device("cpu"), DistInfo())


def _cutoff(ws):
    """Per sample: the first layer whose w differs from layer 0's (num_ws: no mixing)."""
    differs = (ws - ws[:, :1]).abs().amax(dim=2) > 1e-6
    return torch.where(differs.any(1), differs.float().argmax(1), torch.full_like(differs[:, 0], ws.shape[1],
                                                                                   dtype=torch.long))


def test_each_round_draws_one_style_mixing_cutoff():
    """batch 8 in rounds of 2: Gmain synthesises 4 batches of 2; inside a round all samples share
    the cutoff, and the rounds draw their cutoffs independently."""
    recipe = _round_recipe(pl_weight=0.0, gamma=0.0)
    calls = []
    synthesis = recipe.G.synthesis.forward
    recipe.G.synthesis.forward = lambda ws, **kw: calls.append(ws.detach().clone()) or synthesis(ws, **kw)
    torch.manual_seed(2)
    reals = torch.rand(8, 3, 16, 16) * 2 - 1
    cutoffs = []
    for step in range(3):
        calls.clear()
        recipe.run_phase("Gmain", reals, torch.zeros(8, 0))
        assert [ws.shape[0] for ws in calls] == [2, 2, 2, 2]
        for ws in calls:
            cut = _cutoff(ws)
            assert (cut == cut[0]).all(), cut
            cutoffs.append(int(cut[0]))
    assert len(set(cutoffs)) > 1, cutoffs
    assert 1 <= min(cutoffs) and max(cutoffs) < recipe.G.synthesis.num_ws


def test_path_length_runs_per_round_on_half_the_round_and_updates_pl_mean_each_time(monkeypatch):
    import ganops
    recipe = _round_recipe(batch=12, batch_gpu=4, gamma=0.0)
    calls = []
    penalty = ganops.path_length_penalty

    def recording(images, ws, pl_mean, decay, **kw):
        out = penalty(images, ws, pl_mean, decay, **kw)
        calls.append((images.shape[0], float(pl_mean), float(out[1])))
        return out
    monkeypatch.setattr(ganops, "path_length_penalty", recording)
    torch.manual_seed(0)
    stats = recipe.run_phase("Greg", torch.rand(12, 3, 16, 16) * 2 - 1, torch.zeros(12, 0))
    assert [n for n, _, _ in calls] == [2, 2, 2]                  # 3 rounds of 4, pl batch 4 // 2
    assert calls[0][1] == 0.0
    for (_, _, new), (_, old, _) in zip(calls, calls[1:]):
        assert old == pytest.approx(new)                          # each round starts from the last update
    assert len({new for _, _, new in calls}) == 3
    assert float(recipe.loss.pl_mean) == pytest.approx(calls[-1][2]) == pytest.approx(float(stats["pl_mean"]))


def test_round_gradients_add_up():
    """The phase's gradient is the sum of its rounds' gradients (each a round mean times the gain),
    as NVIDIA accumulates them, before nan_to_num and the optimiser step."""
    recipe = _round_recipe(style_mixing=0.0, g_noise=False)
    reals = torch.rand(8, 3, 16, 16) * 2 - 1
    c = torch.zeros(8, 0)
    step = recipe.opt_D.step
    grads = {}
    recipe.opt_D.step = lambda: grads.update({n: p.grad.clone() for n, p in recipe.D.named_parameters()
                                              if p.grad is not None})
    torch.manual_seed(4)
    recipe.run_phase("Dmain", reals, c)
    recipe.opt_D.step = step
    torch.manual_seed(4)
    z = torch.randn(8, 8)
    recipe.D.zero_grad(set_to_none=True)
    recipe.D.requires_grad_(True)
    for part in range(4):
        sl = slice(2 * part, 2 * part + 2)
        recipe.loss.accumulate_gradients("Dmain", reals[sl], c[sl], z[sl], c[sl], gain=1)
    assert grads and all(torch.allclose(grads[n], p.grad, rtol=1e-5, atol=1e-7)
                         for n, p in recipe.D.named_parameters() if n in grads)
    one_round = _round_recipe(style_mixing=0.0, g_noise=False, batch_gpu=8)
    assert one_round.round_size == 8 and recipe.round_size == 2


def test_ada_signs_come_from_dmain_and_dreg():
    """NVIDIA's 'Loss/signs/real' is reported by both the Dmain and the R1 pass."""
    G, D = _nets()
    seen = []
    loss = StyleGAN2Loss(G, D, r1_gamma=1.0, real_sign_hook=lambda logits: seen.append(logits.shape[0]))
    c = torch.zeros(4, 0)
    for phase, expect in (("Dmain", [4]), ("Dreg", [4]), ("Dboth", [4])):
        seen.clear()
        D.requires_grad_(True)
        loss.accumulate_gradients(phase, torch.randn(4, 3, 16, 16), c, torch.randn(4, 8), c, gain=1.0)
        D.requires_grad_(False)
        D.zero_grad(set_to_none=True)
        assert seen == expect, phase
