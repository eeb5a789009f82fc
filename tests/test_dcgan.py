"""DCGAN networks and recipe: shapes, initialisation, BCE targets, training steps, end to end."""
import json

import pytest
import torch
from torch.nn import functional as F

from ganops_models.models.dcgan.options import DCGANOptions
from ganops_models.models.dcgan.network import DCGANDiscriminator, DCGANGenerator


pytestmark = pytest.mark.usefixtures("one_intraop_thread")


@pytest.mark.parametrize("res", [32, 64, 128])
def test_shapes(res):
    torch.manual_seed(0)
    G, D = DCGANGenerator(res, z_dim=10, ngf=4), DCGANDiscriminator(res, ndf=4)
    img = G(torch.randn(3, 10))
    assert img.shape == (3, 3, res, res) and img.abs().max() <= 1
    logits = D(img)
    assert logits.shape == (3,)
    logits.sum().backward()
    assert all(p.grad is not None for p in list(G.parameters()) + list(D.parameters()))
    convs = [m for m in G.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert len(convs) == res.bit_length() - 2 and convs[0].out_channels == 4 * res // 8


def test_init_statistics():
    torch.manual_seed(0)
    G = DCGANGenerator(64, ngf=32)
    w = torch.cat([m.weight.flatten() for m in G.modules() if isinstance(m, torch.nn.ConvTranspose2d)])
    assert abs(w.mean().item()) < 1e-3 and abs(w.std().item() - 0.02) < 1e-3
    gains = torch.cat([m.weight for m in G.modules() if isinstance(m, torch.nn.BatchNorm2d)])
    assert abs(gains.mean().item() - 1) < 0.01 and abs(gains.std().item() - 0.02) < 0.01


def test_bad_arguments():
    with pytest.raises(ValueError, match="resolution must be one of"):
        DCGANGenerator(256)
    with pytest.raises(ValueError, match=r"z must be \[N, 100\]"):
        DCGANGenerator(32)(torch.randn(2, 3, 1, 1))
    with pytest.raises(ValueError, match=r"img must be \[N, 3, 32, 32\]"):
        DCGANDiscriminator(32)(torch.randn(2, 3, 64, 64))


def make_recipe(aug="noaug", **extra):
    from ganops_models.training.distributed import DistInfo
    from ganops_models.models.registry import get_recipe
    from ganops_models.training.recipe import DataInfo

    opts = DCGANOptions(cfg="dcgan-lite", device="cpu", precision="fp32", batch=8, z_dim=8,
                        resolution=(32, 32), aug=aug, glr=2e-4, dlr=2e-4, ema=0.01, kimg=1, ada_kimg=0.1,
                        ada_interval=1, ngf=4, ndf=4, **extra)
    return get_recipe("dcgan")(opts, DataInfo(resolution=(32, 32)), torch.device("cpu"), DistInfo())


def test_targets_smoothing_and_noise():
    torch.manual_seed(0)
    t_real, t_fake = make_recipe(label_smoothing=0.1).targets(5)
    assert torch.equal(t_real, torch.full([5], 0.9)) and torch.equal(t_fake, torch.zeros(5))
    t_real, t_fake = make_recipe(label_smoothing=0.1, label_noise=0.3).targets(20000)
    swapped = t_real == 0
    assert torch.equal(t_fake[swapped], torch.full([int(swapped.sum())], 0.9))
    assert torch.equal(t_fake[~swapped], torch.zeros(int((~swapped).sum())))
    assert abs(swapped.float().mean().item() - 0.3) < 0.02


def test_step_losses_match_hand_computation():
    """With label smoothing s: loss_D = softplus(-l_r) (1 - s) + softplus(l_r) s + softplus(l_f)."""
    torch.manual_seed(1)
    recipe = make_recipe(label_smoothing=0.2)
    reals = torch.rand(8, 3, 32, 32) * 2 - 1
    D_before = DCGANDiscriminator(32, ndf=4)
    D_before.load_state_dict(recipe.D.state_dict())
    G_before = DCGANGenerator(32, z_dim=8, ngf=4)
    G_before.load_state_dict(recipe.G.state_dict())
    state = torch.random.get_rng_state()
    stats = recipe.train_step(reals, torch.zeros(8, 0), step=0, cur_nimg=0)
    torch.random.set_rng_state(state)
    z = torch.randn(8, 8)
    l_r, l_f = D_before(reals).double(), D_before(G_before(z)).double()
    expected = (F.softplus(-l_r) * 0.8 + F.softplus(l_r) * 0.2).mean() + F.softplus(l_f).mean()
    torch.testing.assert_close(stats["loss/D"].double(), expected, rtol=1e-5, atol=1e-6)
    assert torch.isfinite(stats["loss/G"]) and stats["loss/G"] > 0
    z = recipe.latents(4, torch.Generator().manual_seed(0))
    assert recipe.sample(z).shape == (4, 3, 32, 32)


@pytest.mark.parametrize("aug", ["diffaug", "ada"])
def test_augmentations(aug):
    recipe = make_recipe(aug=aug)
    for step in range(2):
        stats = recipe.train_step(torch.rand(8, 3, 32, 32) * 2 - 1, torch.zeros(8, 0), step=step, cur_nimg=8 * step)
    assert torch.isfinite(stats["loss/D"])
    if aug == "ada":
        assert recipe.augment_p is not None and recipe.augment_p >= 0
        other = make_recipe(aug=aug)
        other.load_state_dict(recipe.state_dict())
        assert other.augment_p == recipe.augment_p


def test_bad_options():
    from ganops_models.errors import OptionsError
    with pytest.raises(OptionsError, match="--label-smoothing"):
        make_recipe(label_smoothing=1.0)
    with pytest.raises(OptionsError, match="--label-noise"):
        make_recipe(label_noise=0.7)


@pytest.mark.slow
def test_train_end_to_end_and_resume(tmp_path):
    from ganops_models.tools.train import main
    from ganops_models.formats.checkpoint import load_checkpoint

    common = ["--model", "dcgan", "--cfg", "dcgan-lite", "--outdir", str(tmp_path), "--tick", "0.032", "--snap", "1",
              "--batch", "16", "--ngf", "8", "--ndf", "8", "--workers", "0", "--device", "cpu",
              "--label-smoothing", "0.1"]
    assert main(common + ["--kimg", "0.064"]) == 0
    run = next(p for p in tmp_path.iterdir() if p.is_dir())
    for name in ("options.json", "log.txt", "stats.jsonl", "reals.png", "fakes000000.064.png",
                 "checkpoint-000000.064.pt"):
        assert (run / name).is_file(), name
    records = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert [r["kimg"] for r in records] == [0.032, 0.064]
    assert main(common + ["--kimg", "0.096", "--resume", "latest"]) == 0
    ckpt = load_checkpoint(str(run / "checkpoint-000000.096.pt"))
    assert ckpt["progress"]["step"] == 6 and ckpt["state"]["opt_D"]["state"][0]["step"] == 6
    assert ckpt["options"]["label_smoothing"] == 0.1 and ckpt["options"]["resolution"] == [32, 32]
