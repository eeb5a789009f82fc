"""FastGAN networks: shapes at every resolution, SLE, decoders, resampling, LPIPS."""
import pytest
import torch
from torch.nn import functional as F

import ganops
from ganops_models.models.fastgan.options import FastGANOptions
from ganops_models.nn.lpips import LPIPS, load_lpips, reconstruction_loss
from ganops_models.errors import LPIPSWeightsError
from ganops_models.models.fastgan import blocks as B
from ganops_models.models.fastgan.network import (FastGANDiscriminator, FastGANGenerator, aux_resolution, crop_quadrant,
                                            resize_down)


pytestmark = pytest.mark.usefixtures("one_intraop_thread")


def small_nets(res, width=4, **kw):
    torch.manual_seed(0)
    return FastGANGenerator(res, z_dim=16, ngf=width, **kw), FastGANDiscriminator(res, ndf=width, **kw)


@pytest.mark.parametrize("res", [64, 128, 256, 512, 1024])
def test_shapes_every_resolution(res):
    G, D = small_nets(res)
    s = aux_resolution(res)
    assert s == min(128, res // 2)
    raw = {}
    G.to_big.register_forward_hook(lambda m, i, o: raw.update(big=o))
    G.to_aux.register_forward_hook(lambda m, i, o: raw.update(aux=o))
    with torch.no_grad():
        img, aux = G(torch.randn(1, 16))
        assert img.shape == (1, 3, res, res) and aux.shape == (1, 3, s, s)
        out_fn = torch.tanh if res == 1024 else (lambda t: t)   # official: tanh only at 1024, no output bias
        torch.testing.assert_close(img, out_fn(raw["big"]))
        torch.testing.assert_close(aux, out_fn(raw["aux"]))
        logits, recs = D(img, aux, part=3)
        assert logits.shape == (1, 50)
        assert all(r.shape == (1, 3, s, s) for r in recs)
        assert D(img).shape == (1, 50), "aux defaults to the area-downsampled image"
    assert sorted(map(int, G.sle)) == [d for d in (64, 128, 256, 512) if d <= res]
    assert sorted(map(int, D.sle)) == [d // 8 for d in (64, 128, 256) if d <= min(res, 256)]


# Parameter counts of the official networks (odegeasslbc/FastGAN-pytorch models.py), ngf = ndf = 64, nz = 256.
OFFICIAL_PARAMS = {256: (29_127_846, 11_526_160), 512: (29_174_392, 11_526_496), 1024: (29_176_512, 11_528_192)}


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def conv_widths(module):
    return [m.out_channels for m in module.modules() if isinstance(m, torch.nn.Conv2d)]


@pytest.mark.parametrize("res", sorted(OFFICIAL_PARAMS))
def test_parameter_counts_equal_official(res):
    G, D = FastGANGenerator(res, z_dim=256, ngf=64), FastGANDiscriminator(res, ndf=64)
    assert (n_params(G), n_params(D)) == OFFICIAL_PARAMS[res]


def test_official_channel_tables():
    """D uses its own table ndf * {4:16, 8:16, 16:8, 32:4, 64:2, 128:1, 256:.5, 512:.25}, indexed at twice
    (big path) / four times (small path) the spatial size; decoders 128/64/64/32 wide; only BN has biases."""
    G, D = small_nets(256, width=64)
    assert D.from_big[0].out_channels == 16
    assert [D.downs[k].main[0].out_channels for k in ("128", "64", "32", "16", "8")] == [32, 64, 128, 256, 512]
    assert conv_widths(D.rf_big) == [1024, 1]
    assert conv_widths(D.from_small) == [32, 64, 128, 256] and D.rf_small.in_channels == 256
    for name in ("decoder_big", "decoder_part", "decoder_small"):
        assert conv_widths(getattr(D, name)) == [256, 128, 128, 64, 3], name   # GLU halves: 128/64/64/32
    assert [D.decoder_big.blocks[0].net[1].in_channels, D.decoder_part.blocks[0].net[1].in_channels] == [512, 256]
    for net in (G, D):
        for name, module in net.named_modules():
            for pname, _ in module.named_parameters(recurse=False):
                assert pname != "bias" or isinstance(module, torch.nn.BatchNorm2d), f"{name}.{pname}"


def test_official_weight_init():
    """Conv weights ~ N(0, 0.02) before spectral norm, BN gamma ~ N(1, 0.02), beta 0, noise weights 0."""
    G, D = small_nets(128, width=16)
    convs = [m for net in (G, D) for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    for conv in convs:
        w = conv.parametrizations.weight.original
        if w.numel() >= 2000:
            assert 0.018 < w.std().item() < 0.022 and abs(w.mean().item()) < 0.003, conv
    weights = torch.cat([c.parametrizations.weight.original.flatten() for c in convs])
    assert abs(weights.mean().item()) < 5e-4 and abs(weights.std().item() - 0.02) < 5e-4
    bns = [m for net in (G, D) for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    gamma = torch.cat([bn.weight.detach() for bn in bns])
    assert abs(gamma.mean().item() - 1) < 2e-3 and abs(gamma.std().item() - 0.02) < 2e-3
    assert all(torch.equal(bn.bias, torch.zeros_like(bn.bias)) for bn in bns)
    noise = [m.weight for m in G.modules() if isinstance(m, B.NoiseInjection)]
    assert noise and all(torch.equal(w, torch.zeros(1)) for w in noise)
    conv = D.rf_small.eval()          # spectral norm's power iteration started on these weights
    sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
    assert abs(sigma.item() - 1) < 0.05


def test_batch_and_gradients_reach_inputs():
    G, D = small_nets(64, width=8)
    z = torch.randn(3, 16, requires_grad=True)
    img, aux = G(z)
    D(img, aux).sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    assert all(p.grad is not None for n, p in D.named_parameters() if "decoder" not in n)
    assert all(p.grad is None for n, p in D.named_parameters() if "decoder" in n), "decoders only on reals"


def test_bad_arguments():
    with pytest.raises(ValueError, match="resolution must be one of"):
        FastGANGenerator(32)
    with pytest.raises(ValueError, match="resolution must be one of"):
        FastGANDiscriminator(200)
    G, D = small_nets(64)
    with pytest.raises(ValueError, match=r"z must be \[N, 16\]"):
        G(torch.randn(2, 8))
    with pytest.raises(ValueError, match=r"img must be \[N, 3, 64, 64\]"):
        D(torch.randn(2, 3, 32, 32))
    with pytest.raises(ValueError, match=r"aux must be \[N, 3, 32, 32\]"):
        D(torch.randn(2, 3, 64, 64), torch.randn(2, 3, 16, 16))
    with pytest.raises(ValueError, match="part must be"):
        D(torch.randn(2, 3, 64, 64), part=4)


def test_sle_gate():
    torch.manual_seed(1)
    sle = B.SLE(6, 5).eval()            # eval: spectral norm stops its power iteration
    small, big = torch.randn(2, 6, 8, 8, requires_grad=True), torch.randn(2, 5, 16, 16)
    gate = sle.gate(small)
    assert gate.shape == (2, 5, 1, 1) and (gate > 0).all() and (gate < 1).all()
    out = sle(small, big)
    torch.testing.assert_close(out, big * gate)
    torch.testing.assert_close(sle(small, big * 3), 3 * out), "the gate depends on the small map only"
    out.sum().backward()
    assert small.grad.abs().sum() > 0


def test_generator_sle_uses_low_res_features():
    """G's SLE at 64 gates the 64x64 map with a gate computed from the 4x4 map."""
    G, _ = small_nets(64, width=8)
    G.eval()
    z = torch.randn(2, 16)
    with torch.no_grad():
        feats = {}
        G.sle["64"].register_forward_hook(lambda m, i, o: feats.update(inputs=i))
        G(z)
        small, big = feats["inputs"]
        assert small.shape[-1] == 4 and big.shape[-1] == 64


def test_resampling_ops_match_torch():
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(B.Up2()(x), F.interpolate(x, scale_factor=2, mode="nearest"))
    torch.testing.assert_close(B.Down2()(x), F.avg_pool2d(x, 2))
    torch.testing.assert_close(resize_down(x, 2), F.avg_pool2d(x, 4))
    blurred = B.Blur()(x)
    assert blurred.shape == x.shape
    torch.testing.assert_close(blurred.mean(), x.mean(), atol=0.2, rtol=0)
    up = B.Up2(antialias=True)(x)
    assert up.shape == (2, 3, 16, 16)
    torch.testing.assert_close(up, ganops.upsample2d(x, ganops.setup_filter([1, 3, 3, 1])))


def test_antialias_networks():
    G, D = small_nets(64, antialias=True)
    with torch.no_grad():
        img, aux = G(torch.randn(2, 16))
        assert D(img, aux, part=0)[0].shape == (2, 50)
    assert any(isinstance(m, B.Blur) for m in D.modules())


def test_networks_trace_without_graph_breaks():
    """--compile: G and D (with its auxiliary resize and decoders) are single Dynamo graphs."""
    G, D = small_nets(64)
    torch._dynamo.reset()
    assert torch._dynamo.explain(G)(torch.randn(2, 16)).graph_break_count == 0
    assert torch._dynamo.explain(D)(torch.randn(2, 3, 64, 64), None, 1).graph_break_count == 0


def test_spectral_norm_on_convs():
    G, D = small_nets(64)
    kinds = (torch.nn.Conv2d, torch.nn.ConvTranspose2d)
    convs = [m for m in list(G.modules()) + list(D.modules()) if isinstance(m, kinds)]
    assert convs and all(torch.nn.utils.parametrize.is_parametrized(m, "weight") for m in convs)


def test_crop_quadrant():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    assert crop_quadrant(x, 0).flatten().tolist() == [0, 1, 4, 5]
    assert crop_quadrant(x, 1).flatten().tolist() == [2, 3, 6, 7]
    assert crop_quadrant(x, 2).flatten().tolist() == [8, 9, 12, 13]
    assert crop_quadrant(x, 3).flatten().tolist() == [10, 11, 14, 15]


def test_decoder_part_reads_its_quadrant():
    """rec_part is the part decoder applied to quadrant `part` of the 16x16 features."""
    _, D = small_nets(64, width=8)
    D.eval()
    img = torch.randn(2, 3, 64, 64)
    seen = []
    D.decoder_part.register_forward_hook(lambda m, i, o: seen.append(i[0]))
    feats = []
    D.downs["16"].register_forward_hook(lambda m, i, o: feats.append(o))
    with torch.no_grad():
        recs = [D(img, part=p)[1][2] for p in range(4)]
    for p in range(4):
        torch.testing.assert_close(seen[p], crop_quadrant(feats[p], p))
    assert not torch.allclose(recs[0], recs[3])


def test_decoders_learn_to_reconstruct():
    """A few Adam steps on the reconstruction loss of fixed reals lower it (self-supervision works)."""
    _, D = small_nets(64, width=4)
    reals = torch.rand(2, 3, 64, 64) * 2 - 1
    target = resize_down(reals, 32)
    opt = torch.optim.Adam(D.parameters(), lr=5e-3)
    losses = []
    for _ in range(8):
        _, (rb, rs, rp) = D(reals, part=0)
        loss = F.mse_loss(rb, target) + F.mse_loss(rs, target) + F.mse_loss(rp, crop_quadrant(reals, 0))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0]


# --- LPIPS ---------------------------------------------------------------------------------------

def _random_lpips_file(path, lpips_layout=True):
    torch.manual_seed(2)
    model = LPIPS()
    state = {f"features.{k}": torch.randn_like(v) * 0.05 for k, v in model.features.state_dict().items()}
    for i, lin in enumerate(model.lins):
        key = f"lin{i}.model.1.weight" if lpips_layout else f"lin{i}.weight"
        state[key] = torch.rand_like(lin.weight)
    torch.save(state, path)
    return state


def test_lpips_from_local_file(tmp_path):
    path = tmp_path / "lpips.pth"
    state = _random_lpips_file(path)
    model = load_lpips(str(path))
    torch.testing.assert_close(model.lins[2].weight, state["lin2.model.1.weight"])
    torch.testing.assert_close(model.features[0].weight, state["features.0.weight"])
    assert all(not p.requires_grad for p in model.parameters())
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    y = (x + 0.3 * torch.randn_like(x)).clamp(-1, 1)
    d_xy = model(x, y)
    assert d_xy.shape == (2,) and (d_xy > 0).all()
    torch.testing.assert_close(model(x, x), torch.zeros(2), atol=1e-6, rtol=0)
    torch.testing.assert_close(model(y, x), d_xy)
    y.requires_grad_(True)
    model(x, y).sum().backward()
    assert y.grad.abs().sum() > 0
    fn = reconstruction_loss("lpips", model)      # summed over the batch, as the official trainer does
    torch.testing.assert_close(fn(x, y.detach()), d_xy.sum())
    torch.testing.assert_close(fn(torch.cat([x, x]), torch.cat([y, y]).detach()), 2 * d_xy.sum())


def test_lpips_two_files_and_errors(tmp_path):
    state = _random_lpips_file(tmp_path / "all.pth", lpips_layout=False)
    torch.save({k: v for k, v in state.items() if k.startswith("features.")}, tmp_path / "vgg.pth")
    torch.save({k: v for k, v in state.items() if k.startswith("lin")}, tmp_path / "lin.pth")
    model = load_lpips(f"{tmp_path / 'vgg.pth'},{tmp_path / 'lin.pth'}")
    torch.testing.assert_close(model.lins[4].weight, state["lin4.weight"])
    with pytest.raises(LPIPSWeightsError, match="missing lin0"):
        load_lpips(str(tmp_path / "vgg.pth"))
    with pytest.raises(LPIPSWeightsError, match="does not exist"):
        load_lpips(str(tmp_path / "nope.pth"))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(LPIPSWeightsError, match="cannot read"):
        load_lpips(str(tmp_path / "junk.pth"))
    with pytest.raises(ValueError, match="at least 16x16"):
        model(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="recon must be"):
        reconstruction_loss("l1")


# --- recipe and trainer ------------------------------------------------------------------------

def make_recipe(tmp_path=None, **extra):
    from ganops_models.training.distributed import DistInfo
    from ganops_models.models.registry import get_recipe
    from ganops_models.training.recipe import DataInfo

    aug, cond = extra.pop("aug", "diffaug"), extra.pop("cond", False)
    opts = FastGANOptions(cfg="fastgan-lite", device="cpu", precision="fp32", batch=2, z_dim=16,
                        resolution=(64, 64), aug=aug, cond=cond, glr=2e-4, dlr=2e-4, ema=0.002, kimg=1,
                        ngf=4, ndf=4, **extra)
    return get_recipe("fastgan")(opts, DataInfo(resolution=(64, 64)), torch.device("cpu"), DistInfo())


def test_recipe_step_updates_everything():
    torch.manual_seed(0)
    recipe = make_recipe()
    before = {k: {n: p.detach().clone() for n, p in m.named_parameters()} for k, m in recipe.modules().items()}
    stats = recipe.train_step(torch.rand(2, 3, 64, 64) * 2 - 1, torch.zeros(2, 0), step=0, cur_nimg=0)
    for key in ("loss/D", "loss/G", "loss/D_real", "loss/D_fake", "loss/recon"):
        assert torch.isfinite(stats[key]), key
    assert 0 <= stats["loss/D_real"] and 0 <= stats["loss/D_fake"]
    for name, module in recipe.modules().items():
        changed = [n for n, p in module.named_parameters() if not torch.equal(p, before[name][n])]
        assert changed, f"{name} did not change"
    d_changed = {n.split(".")[0] for n, p in recipe.D.named_parameters() if not torch.equal(p, before["D"][n])}
    assert {"decoder_big", "decoder_small", "decoder_part", "rf_big", "rf_small"} <= d_changed
    assert not any(p.requires_grad for p in list(recipe.G.parameters()) + list(recipe.D.parameters()))
    z = recipe.latents(3, torch.Generator().manual_seed(0))
    images = recipe.sample(z)
    assert images.shape == (3, 3, 64, 64) and images.dtype == torch.float32
    assert recipe.generator_for_eval()(z).shape == (3, 3, 64, 64)


def test_recipe_state_round_trip():
    recipe = make_recipe()
    recipe.train_step(torch.rand(2, 3, 64, 64) * 2 - 1, torch.zeros(2, 0), step=0, cur_nimg=0)
    other = make_recipe()
    other.load_state_dict(recipe.state_dict())
    z = torch.randn(2, 16)
    torch.testing.assert_close(other.sample(z), recipe.sample(z))
    assert other.opt_G.state_dict()["state"][0]["step"] == 1
    assert other.arch_spec() == recipe.arch_spec() == {"layout": "official-FastGAN-pytorch", "resolution": 64,
                                                      "img_channels": 3, "z_dim": 16, "ngf": 4, "ndf": 4,
                                                      "antialias": False}


def test_sample_noise_modes_and_errors():
    recipe = make_recipe()
    for m in recipe.G_ema.modules():
        if isinstance(m, B.NoiseInjection):
            m.weight.data.fill_(1.0)
    z = torch.randn(2, 16)
    const = recipe.sample(z)
    torch.testing.assert_close(recipe.sample(z, noise_mode="const"), const)
    assert not torch.allclose(recipe.sample(z, noise_mode="random"), const)
    none = recipe.sample(z, noise_mode="none")
    torch.testing.assert_close(recipe.sample(z, noise_mode="none"), none)
    assert not torch.allclose(none, const)
    state = torch.random.get_rng_state()
    recipe.sample(z)
    assert torch.equal(torch.random.get_rng_state(), state), "const sampling leaves the global RNG alone"
    with pytest.raises(ValueError, match="truncation"):
        recipe.sample(z, truncation_psi=0.7)
    with pytest.raises(ValueError, match="unconditional"):
        recipe.sample(z, torch.ones(2, 3))
    with pytest.raises(ValueError, match="noise_mode"):
        recipe.sample(z, noise_mode="fixed")


def test_recon_lpips_without_weights_warns_and_uses_mse(tmp_path):
    with pytest.warns(UserWarning, match="--lpips FILE"):
        recipe = make_recipe(recon="lpips")
    assert recipe.recon_mode == "mse"
    path = tmp_path / "lpips.pth"
    _random_lpips_file(path)
    recipe = make_recipe(recon="lpips", lpips=str(path))
    assert recipe.recon_mode == "lpips"
    stats = recipe.train_step(torch.rand(2, 3, 64, 64) * 2 - 1, torch.zeros(2, 0), step=0, cur_nimg=0)
    assert torch.isfinite(stats["loss/recon"]) and stats["loss/recon"] > 0
    with pytest.raises(LPIPSWeightsError, match="does not exist"):
        make_recipe(recon="lpips", lpips=str(tmp_path / "missing.pth"))


def test_official_defaults_policy_mirror_precision():
    """New FastGAN runs: DiffAugment color,translation, --mirror on and fp32 on CUDA (bf16/fp16 opt-in);
    StyleGAN2 keeps its fp16 default."""
    from ganops_models.augment.diffaugment import DiffAugment
    from ganops_models.tools.train import build_parser, new_run_options
    from ganops_models.tools.train_cli import given_values

    assert DiffAugment().policy == "color,translation"
    assert make_recipe().augment.policy == "color,translation"

    def new_run(*argv):
        given = given_values(build_parser().parse_args(list(argv)))
        return new_run_options(given, (256, 256), 1, "cuda").options

    for cfg in ("fastgan-256", "fastgan-1024", "fastgan-lite"):
        opts = new_run("--cfg", cfg, "--resolution", "256")
        assert (opts.model, opts.mirror, opts.precision) == ("fastgan", True, "fp32"), cfg
    assert new_run("--model", "fastgan", "--resolution", "256", "--precision", "bf16").precision == "bf16"
    sg2 = new_run("--cfg", "paper256", "--resolution", "256")
    assert (sg2.mirror, sg2.precision) == (False, "fp16")


def test_checkpoint_of_older_layout_is_refused(tmp_path):
    """Checkpoints written before the official layout (arch spec without 'layout') are refused with a
    message naming the difference, by --resume and by the network loader."""
    import dataclasses

    from ganops_models.network_loader import load_network
    from ganops_models.formats import checkpoint as ckpt_lib

    recipe = make_recipe()
    old_arch = {k: v for k, v in recipe.arch_spec().items() if k != "layout"}
    for name, arch in (("old.pt", old_arch), ("new.pt", recipe.arch_spec())):
        ckpt_lib.save_checkpoint(str(tmp_path / name), model="fastgan", arch=arch, options=recipe.opts.to_dict(),
                                 data=dataclasses.asdict(recipe.data), progress={"cur_nimg": 0, "step": 0},
                                 state=recipe.state_dict())
    assert load_network(str(tmp_path / "new.pt")).kind == "fastgan"
    with pytest.raises(ckpt_lib.CheckpointError, match="another architecture.*layout: checkpoint None"):
        load_network(str(tmp_path / "old.pt"))
    with pytest.raises(ckpt_lib.CheckpointError, match="another architecture.*layout"):
        ckpt_lib.check_compatible(ckpt_lib.load_checkpoint(str(tmp_path / "old.pt")), "fastgan", recipe.arch_spec())


def test_recipe_rejects_bad_options():
    from ganops_models.errors import OptionsError
    with pytest.raises(OptionsError, match="supports --aug diffaug|noaug"):
        make_recipe(aug="ada")
    with pytest.raises(OptionsError, match="--gp must be >= 0"):
        make_recipe(gp=-1.0)
    with pytest.raises(ValueError, match="unknown"):
        make_recipe(diffaug="color,zoom")
    with pytest.raises(OptionsError, match="unconditional"):
        make_recipe(cond=True)


@pytest.mark.skipif(not hasattr(ganops, "gradient_penalty"), reason="ganops.gradient_penalty not available yet")
def test_recipe_gradient_penalty():
    recipe = make_recipe(gp=10.0)
    stats = recipe.train_step(torch.rand(2, 3, 64, 64) * 2 - 1, torch.zeros(2, 0), step=0, cur_nimg=0)
    assert torch.isfinite(stats["loss/gp"]) and stats["loss/gp"] >= 0


def _run_dir(outdir):
    runs = [p for p in outdir.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


@pytest.mark.slow
def test_train_end_to_end_and_resume(tmp_path):
    """Two ticks of fastgan-lite on the built-in data, then resume for one more tick."""
    import json

    from ganops_models.tools.train import main
    from ganops_models.formats.checkpoint import load_checkpoint

    common = ["--cfg", "fastgan-lite", "--outdir", str(tmp_path), "--tick", "0.008", "--snap", "1",
              "--batch", "4", "--ngf", "4", "--ndf", "4", "--workers", "0", "--device", "cpu", "--seed", "3"]
    assert main(common + ["--kimg", "0.016"]) == 0
    run = _run_dir(tmp_path)
    for name in ("options.json", "log.txt", "stats.jsonl", "reals.png", "fakes_init.png", "fakes000000.016.png",
                 "checkpoint-000000.008.pt", "checkpoint-000000.016.pt"):
        assert (run / name).is_file(), name
    records = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert [r["kimg"] for r in records] == [0.008, 0.016]
    assert all(abs(r["loss/recon"]) < 1e3 and "loss/D" in r and "loss/G" in r for r in records)
    assert json.loads((run / "options.json").read_text())["model"] == "fastgan"

    assert main(common + ["--kimg", "0.024", "--resume", "latest"]) == 0
    ckpt = load_checkpoint(str(run / "checkpoint-000000.024.pt"))
    assert ckpt["progress"]["cur_nimg"] == 24 and ckpt["progress"]["step"] == 6
    assert ckpt["state"]["opt_G"]["state"][0]["step"] == 6
    assert ckpt["options"]["ngf"] == 4
    records = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert records[-1]["kimg"] == 0.024

    assert main(common + ["--kimg", "0.032", "--resume", "latest", "--ndf", "8"]) == 2   # error: ..., no traceback

    from ganops_models.tools.generate import main as generate
    out = tmp_path / "gen"
    assert generate(["--network", str(run / "checkpoint-000000.024.pt"), "--seeds", "0-2", "--outdir", str(out),
                     "--device", "cpu"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["seed0000.png", "seed0001.png", "seed0002.png"]
    assert generate(["--network", str(run / "checkpoint-000000.024.pt"), "--seeds", "0", "--trunc", "0.5",
                     "--outdir", str(out), "--device", "cpu"]) == 2
