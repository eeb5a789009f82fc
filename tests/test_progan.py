"""ProGAN: growth schedule, networks at every phase, fade-in semantics, a short 4->32 run and
kill-and-resume in the middle of a fade-in."""
import json

import pytest
import torch
from torch.nn import functional as F

from ganops_models.models.progan.network import (ProGANDiscriminator, ProGANGenerator, downsample_avg,
                                           upsample_nearest)
from ganops_models.models.progan.schedule import GrowthSchedule, parse_batch_per_res

pytestmark = pytest.mark.usefixtures("one_intraop_thread")


def test_schedule_phases_alpha_and_batches():
    s = GrowthSchedule(4, 32, lod_kimg=1.0, batch=16, batch_per_res=parse_batch_per_res("16:8,32:4"))
    expect = {0: (0, 4, 1.0, 16), 999: (0, 4, 1.0, 16), 1000: (0, 4, 1.0, 16),       # stable 4x4
              1250: (1, 8, 0.25, 16), 1750: (1, 8, 0.75, 16),                         # fade 8x8 in
              2000: (2, 8, 1.0, 16), 3000: (2, 8, 1.0, 16),                           # stable 8x8
              3500: (3, 16, 0.5, 8), 4500: (4, 16, 1.0, 8),                           # fade, stable 16x16
              5800: (5, 32, 0.8, 4), 6000: (6, 32, 1.0, 4), 10 ** 6: (6, 32, 1.0, 4)}  # fade, stable 32x32
    for nimg, (index, res, alpha, batch) in expect.items():
        p = s.at(nimg)
        assert (p.index, p.resolution, p.batch) == (index, res, batch), nimg
        assert p.alpha == pytest.approx(alpha) and p.fading == (alpha < 1), nimg
    assert s.at(1750).kimg == pytest.approx(0.75) and s.at(10 ** 6).kimg == pytest.approx(994.0)
    alphas = [s.at(n).alpha for n in range(3001, 4000, 50)]          # linear ramp over the fade
    assert alphas == sorted(alphas) and alphas[0] < 0.01 and alphas[-1] > 0.94
    assert GrowthSchedule(8, 8, 2.0, 4, {}).at(0).resolution == 8


def test_schedule_bad_values():
    with pytest.raises(ValueError, match="power-of-two --resolution"):
        GrowthSchedule(4, 48, 1.0, 16, {})
    with pytest.raises(ValueError, match="--lod-kimg must be a positive"):
        GrowthSchedule(4, 32, 0, 16, {})
    with pytest.raises(ValueError, match="resolution:batch"):
        parse_batch_per_res("16=8")
    with pytest.raises(ValueError, match="must be positive"):
        parse_batch_per_res("16:0")


def test_resampling_is_nearest_and_average_pooling():
    f = ProGANGenerator(8, z_dim=4, cbase=32, cmax=8).up_filter
    x = torch.randn(2, 3, 5, 5)
    torch.testing.assert_close(upsample_nearest(x, 4, f), x.repeat_interleave(4, 2).repeat_interleave(4, 3))
    y = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(downsample_avg(y, 4, f), F.avg_pool2d(y, 4))


def test_output_shapes_and_fade_endpoints_at_every_phase():
    torch.manual_seed(0)
    G = ProGANGenerator(32, z_dim=8, cbase=64, cmax=16)
    D = ProGANDiscriminator(32, cbase=64, cmax=16)
    z = torch.randn(3, 8)
    s = GrowthSchedule(4, 32, 1.0, 3, {})
    for nimg in range(0, 7000, 250):
        p = s.at(nimg)
        G.set_phase(p.resolution, p.alpha)
        img = G(z, final_size=False)
        assert img.shape == (3, 3, p.resolution, p.resolution)
        torch.testing.assert_close(G(z), upsample_nearest(img, 32 // p.resolution, G.up_filter))
        assert D(img, p.alpha).shape == (3,)
    for res in (8, 16, 32):          # alpha 0: exactly the previous resolution, upsampled / pooled
        G.set_phase(res // 2, 1.0)
        old = G(z)
        G.set_phase(res, 0.0)
        torch.testing.assert_close(G(z), old)
        img = torch.randn(3, 3, res, res)
        torch.testing.assert_close(D(img, 0.0), D(F.avg_pool2d(img, 2), 1.0))
    with pytest.raises(ValueError, match="phase must have a resolution"):
        G.set_phase(64, 1.0)
    with pytest.raises(ValueError, match=r"img must be \[N, 3, r, r\]"):
        D(torch.randn(2, 3, 12, 12))


def test_parameter_counts_match_the_paper():
    """Karras et al. 2018, Table 2: 23.1M parameters in G and in D at 1024x1024 (fmap_base 8192)."""
    torch.manual_seed(0)
    for net in (ProGANGenerator(1024), ProGANDiscriminator(1024)):
        assert round(sum(p.numel() for p in net.parameters()) / 1e5) == 231


def _stats(run):
    return [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]


def make_recipe(loss, gamma):
    from ganops_models.training.distributed import DistInfo
    from ganops_models.models.progan.options import ProGANOptions
    from ganops_models.models.registry import get_recipe
    from ganops_models.training.recipe import DataInfo

    opts = ProGANOptions(cfg="progan-lite", device="cpu", precision="fp32", batch=4, z_dim=8,
                        cbase=64, cmax=8, resolution=(16, 16), aug="noaug", glr=1e-3, dlr=1e-3, gamma=gamma, ema=0.01,
                        kimg=1, lod_kimg=0.004, progan_loss=loss)
    return get_recipe("progan")(opts, DataInfo(resolution=(16, 16)), torch.device("cpu"), DistInfo())


@pytest.mark.parametrize("loss", ["wgan-gp", "logistic"])
def test_losses_match_hand_computation(loss):
    """Mid-fade step (8x8, alpha 0.5): WGAN loss s_f - s_r + 0.001 s_r^2 or logistic softplus(s_f) +
    softplus(-s_r), from copies of G and D taken before the step (penalty weight 0 here)."""
    torch.manual_seed(0)
    recipe = make_recipe(loss, gamma=0.0)
    G, D = ProGANGenerator(16, z_dim=8, cbase=64, cmax=8), ProGANDiscriminator(16, cbase=64, cmax=8)
    G.load_state_dict(recipe.G.state_dict())
    D.load_state_dict(recipe.D.state_dict())
    G.set_phase(8, 0.5)
    reals = torch.rand(4, 3, 16, 16) * 2 - 1
    state = torch.random.get_rng_state()
    stats = recipe.train_step(reals, None, step=0, cur_nimg=6)
    torch.random.set_rng_state(state)
    small = F.avg_pool2d(reals, 2)
    faded = torch.lerp(F.avg_pool2d(small, 2).repeat_interleave(2, 2).repeat_interleave(2, 3), small, 0.5)
    s_r, s_f = D(faded, 0.5).double(), D(G(torch.randn(4, 8), final_size=False), 0.5).double()
    expected = ((s_f - s_r).mean() + 0.001 * s_r.square().mean() if loss == "wgan-gp"
                else (F.softplus(s_f) + F.softplus(-s_r)).mean())
    torch.testing.assert_close(stats["loss/D"].double(), expected, rtol=1e-5, atol=1e-6)
    assert (recipe.phase.index, recipe.phase.resolution, recipe.phase.alpha) == (2, 8, 1.0)   # reached at nimg 10
    assert int(recipe.G_ema.phase_resolution) == 8 and float(recipe.G_ema.phase_alpha) == 1.0


@pytest.mark.parametrize("loss", ["wgan-gp", "logistic"])
def test_penalty_is_positive_and_trains(loss):
    recipe = make_recipe(loss, gamma=10.0)
    before = recipe.D.from_rgb["4"].weight.detach().clone()
    stats = recipe.train_step(torch.rand(4, 3, 16, 16) * 2 - 1, None, step=0, cur_nimg=0)
    assert stats["loss/penalty"] > 0 and torch.isfinite(stats["loss/G"])
    assert not torch.equal(before, recipe.D.from_rgb["4"].weight)
    assert recipe.D.from_rgb["8"].weight.grad is None          # not yet grown: untouched


@pytest.mark.slow
def test_grow_4_to_32_and_resume_mid_fade(tmp_path):
    """A 4->32 run with 2 steps per phase logs resolution and alpha every step; a run stopped in the
    middle of the 16x16 fade-in and resumed gets the same phases and Adam step counts."""
    from ganops_models.network_loader import load_network, seed_latents
    from ganops_models.tools.train import main
    from ganops_models.formats.checkpoint import load_checkpoint

    common = ["--model", "progan", "--cfg", "progan-lite", "--tick", "0.004", "--snap", "1000", "--batch", "4",
              "--lod-kimg", "0.008", "--batch-per-res", "32:2", "--cbase", "64", "--cmax", "8",
              "--workers", "0", "--device", "cpu", "--subset", "16"]
    assert main(common + ["--outdir", str(tmp_path / "a"), "--kimg", "0.062"]) == 0
    run_a = next((tmp_path / "a").iterdir())
    rows = _stats(run_a)
    phases = [(r["kimg"], r["resolution"], round(r["alpha"], 6)) for r in rows]
    assert phases[:8] == [(0.004, 4, 1.0), (0.008, 4, 1.0), (0.012, 8, 0.5), (0.016, 8, 1.0),
                          (0.02, 8, 1.0), (0.024, 8, 1.0), (0.028, 16, 0.5), (0.032, 16, 1.0)]
    assert [p[1] for p in phases[-3:]] == [32, 32, 32] and rows[-1]["kimg"] == 0.062   # batch 2 at 32x32
    assert all(torch.isfinite(torch.tensor(r["loss/D"])) for r in rows)
    ckpt_a = load_checkpoint(str(run_a / "checkpoint-000000.062.pt"))

    assert main(common + ["--outdir", str(tmp_path / "b"), "--kimg", "0.028"]) == 0
    run_b = next((tmp_path / "b").iterdir())
    mid = load_checkpoint(str(run_b / "checkpoint-000000.028.pt"))
    assert mid["state"]["phase"]["resolution"] == 16 and mid["state"]["phase"]["alpha"] == pytest.approx(0.5)
    assert main(common + ["--outdir", str(tmp_path / "b"), "--kimg", "0.062", "--resume", "latest"]) == 0
    ckpt_b = load_checkpoint(str(run_b / "checkpoint-000000.062.pt"))
    assert [(r["kimg"], r["resolution"], r["alpha"]) for r in _stats(run_b)] == \
        [(r["kimg"], r["resolution"], r["alpha"]) for r in rows]
    assert ckpt_b["state"]["phase"] == ckpt_a["state"]["phase"] and ckpt_a["state"]["phase"]["resolution"] == 32
    for opt in ("opt_G", "opt_D"):
        steps = lambda c: sorted(int(s["step"]) for s in c["state"][opt]["state"].values())  # noqa: E731
        assert steps(ckpt_b) == steps(ckpt_a) and steps(ckpt_a)[-1] == 7   # reset at the 32x32 stable phase

    net = load_network(str(run_b / "checkpoint-000000.028.pt"))   # the tools see the saved phase
    assert net.kind == "progan" and int(net.G_ema.G.phase_resolution) == 16
    images = net.sample(seed_latents([0, 1], net.z_dim))
    assert images.shape == (2, 3, 32, 32)
    torch.testing.assert_close(images[..., ::2, ::2], images[..., 1::2, 1::2])   # 16x16 shown at 32x32
    from ganops_models.tools import video
    from ganops_models.images import to_uint8
    frames = list(video.video_frames(net, seed_latents([0, 1], net.z_dim)[:, None], (1, 1), frames=2,
                                     kind="lerp", space="z"))
    assert len(frames) == 3 and frames[0].shape == (32, 32, 3)
    assert (frames[0] == to_uint8(images[0]).permute(1, 2, 0).numpy()).all()    # generate's picture of seed 0
