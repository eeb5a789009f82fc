"""Issue #30: details that change a training run against the reference trainers."""
import os

import pytest
import torch

from ganops_models.models.registry import get_recipe
from ganops_models.tools.train import new_run_options
from ganops_models.training.distributed import DistInfo
from ganops_models.training.recipe import DataInfo

CPU = torch.device("cpu")


def _recipe(given, resolution=16):
    opts = new_run_options({"resolution": str(resolution), "device": "cpu", **given}, (resolution, resolution), 1,
                           "cpu").options
    return get_recipe(opts.model)(opts, DataInfo((resolution, resolution)), CPU, DistInfo())


def _adam(opt):
    group = opt.param_groups[0]
    return group["lr"], group["betas"]


@pytest.mark.parametrize("cfg", ["stylegan3-t", "stylegan3-r"])
def test_stylegan3_g_adam_has_no_lazy_correction(cfg):
    """NVIDIA stylegan3 train.py sets G_reg_interval only for its stylegan2 config: with pl_weight 0 G's
    Adam is lr 0.0025, betas (0, 0.99); D keeps R1 every 16 steps: lr 0.002 * 16/17, beta2 0.99 ** (16/17)."""
    recipe = _recipe({"cfg": cfg, "cbase": 128, "cmax": 4, "batch": 4})
    lr, betas = _adam(recipe.opt_G)
    assert lr == pytest.approx(0.0025) and betas == pytest.approx((0.0, 0.99))
    lr, betas = _adam(recipe.opt_D)
    assert lr == pytest.approx(0.002 * 16 / 17) and betas == pytest.approx((0.0, 0.99 ** (16 / 17)))
    assert [p[0] for p in recipe.phases] == ["Gmain", "Dmain", "Dreg"]


def test_stylegan2_g_adam_keeps_its_correction_when_path_length_runs():
    recipe = _recipe({"cfg": "tiny", "pl_weight": 2.0, "gamma": 0.0, "batch": 4})
    lr, betas = _adam(recipe.opt_G)
    assert lr == pytest.approx(0.0025 * 4 / 5) and betas == pytest.approx((0.0, 0.99 ** 0.8))
    lr, betas = _adam(recipe.opt_D)                      # gamma 0: no R1, so no correction
    assert lr == pytest.approx(0.0025) and betas == pytest.approx((0.0, 0.99))
    assert [p[0] for p in recipe.phases] == ["Gmain", "Greg", "Dmain"]


def _progan(loss="wgan-gp", gamma=10.0, resolution=32):
    from ganops_models.models.progan.options import ProGANOptions
    opts = ProGANOptions(cfg="progan-lite", device="cpu", precision="fp32", batch=4, z_dim=8, cbase=64, cmax=8,
                         resolution=(resolution, resolution), gamma=gamma, kimg=1, lod_kimg=0.004, progan_loss=loss)
    return get_recipe("progan")(opts, DataInfo((resolution, resolution)), CPU, DistInfo())


@pytest.mark.parametrize("loss", ["wgan-gp", "logistic"])
@pytest.mark.parametrize("phase_res, fade", [(8, 1.0), (16, 0.3), (32, 1.0)])
def test_progan_penalty_is_on_the_final_resolution_gradient(loss, phase_res, fade):
    """The official code penalises the gradient with respect to final-resolution images (the phase
    image nearest-upsampled; D average-pools it back): its norm is the phase gradient's over k = final /
    phase resolution. The recipe's penalty equals that reference, computed at the final resolution."""
    from ganops_models.models.progan.network import downsample_avg, upsample_nearest
    from ganops_models.models.progan.schedule import Phase
    torch.manual_seed(0)
    recipe = _progan(loss)
    phase = Phase(index=0, resolution=phase_res, alpha=fade, kimg=0.0, batch=4)
    k = 32 // phase_res
    f = recipe.G.up_filter
    reals, fakes = torch.randn(4, 3, phase_res, phase_res), torch.randn(4, 3, phase_res, phase_res)
    mix = torch.rand(4)
    x_phase = (fakes + mix.view(-1, 1, 1, 1) * (reals - fakes)) if loss == "wgan-gp" else reals
    x_full = upsample_nearest(x_phase, k, f).requires_grad_(True)
    grad_full, = torch.autograd.grad(recipe.D(downsample_avg(x_full, k, f), fade).sum(), x_full)
    x = x_phase.clone().requires_grad_(True)
    grad_phase, = torch.autograd.grad(recipe.D(x, fade).sum(), x)
    norm_full, norm_phase = grad_full.flatten(1).norm(dim=1), grad_phase.flatten(1).norm(dim=1)
    assert torch.allclose(norm_phase / norm_full, torch.full([4], float(k)), rtol=1e-4)
    expect = 10.0 * ((norm_full - 1) ** 2).mean() if loss == "wgan-gp" else 5.0 * (norm_full ** 2).mean()
    assert recipe.penalty(reals, fakes, phase, alpha=mix).item() == pytest.approx(expect.item(), rel=1e-4)


def test_progan_d_block_pools_before_bias_and_activation():
    """NVIDIA's D (fused_scale=True): Conv1_down = lrelu(conv2d_downscale2d(x) + b), where
    conv2d_downscale2d pads the 3x3 kernel to 4x4, averages its four shifts and convolves with stride 2."""
    from torch.nn import functional as F
    from ganops_models.models.progan.network import DiscriminatorBlock
    torch.manual_seed(1)
    block = DiscriminatorBlock(4, 6).double()
    with torch.no_grad():
        for conv in (block.conv0, block.conv1):
            conv.bias.normal_()
    x = torch.randn(2, 4, 8, 8, dtype=torch.float64)

    def lrelu(t):
        return F.leaky_relu(t, 0.2)

    c0, c1 = block.conv0, block.conv1
    h = lrelu(F.conv2d(x, c0.weight * c0.weight_gain, padding=1) + c0.bias.view(1, -1, 1, 1))
    w = F.pad(c1.weight * c1.weight_gain, [1, 1, 1, 1])
    w = (w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]) * 0.25
    expect = lrelu(F.conv2d(h, w, stride=2, padding=1) + c1.bias.view(1, -1, 1, 1))
    assert torch.allclose(block(x), expect, atol=1e-12)


@pytest.mark.parametrize("sample_bn", ["batch", "running"])
def test_fastgan_samples_with_batch_statistics_as_the_official_eval(sample_bn):
    """The official eval.py leaves net_ig in training mode (``#net_ig.eval()``): batch norm uses the
    statistics of each batch. That is FastGAN's default here; --sample-bn running is eval mode. Sampling
    leaves the running statistics untouched."""
    import copy
    from ganops_models.models.fastgan.options import FastGANOptions
    opts = FastGANOptions(cfg="fastgan-lite", device="cpu", batch=2, z_dim=16, ngf=4, ndf=4, resolution=(64, 64),
                          sample_bn=sample_bn)
    recipe = get_recipe("fastgan")(opts, DataInfo((64, 64)), CPU, DistInfo())
    with torch.no_grad():                      # running statistics that differ from any batch's
        for m in recipe.G_ema.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    before = copy.deepcopy(recipe.G_ema.state_dict())
    z = torch.randn(4, 16)
    images = recipe.sample(z, noise_mode="none", batch=4)
    reference = copy.deepcopy(recipe.G_ema).eval()
    for m in reference.modules():
        if hasattr(m, "noise_enabled"):
            m.noise_enabled = False
        if isinstance(m, torch.nn.BatchNorm2d):
            m.train(sample_bn == "batch")       # spectral norm stays in eval mode: no power iteration
    with torch.no_grad():
        expect = reference(z)[0]
    assert torch.allclose(images, expect, atol=1e-5)
    assert all(torch.equal(before[k], v) for k, v in recipe.G_ema.state_dict().items())
    alone = recipe.sample(z[:1], noise_mode="none", batch=1)
    assert torch.allclose(alone, images[:1], atol=1e-5) is (sample_bn == "running")   # batch statistics: depends on the batch


def test_progan_preset_is_the_official_preset_v1_1gpu():
    """config.py: mbstd_group_size 16, minibatch_base 16, minibatch_dict {256: 14, 512: 6, 1024: 3},
    lod_training_kimg = lod_transition_kimg = 800, total_kimg 19000."""
    o = new_run_options({"cfg": "progan"}, (1024, 1024), 1, "cuda").options
    assert (o.mbstd_group, o.batch, o.batch_per_res, o.lod_kimg, o.kimg) == (16, 16, "256:14,512:6,1024:3", 800, 19000)
    assert (o.glr, o.dlr, o.gamma, o.aug, o.mirror) == (0.001, 0.001, 10.0, "noaug", False)


# --- tool defaults (items 6-8) -------------------------------------------------------------------------

def test_tool_defaults_are_nvidias():
    """projector.py --seed 303; gen_video.py --w-frames 120 at 60 fps, wrapping around."""
    from ganops_models.tools import project, video
    p = project.build_parser().parse_args(["--network", "n", "--target", "t", "--outdir", "o"])
    assert p.seed == 303
    v = video.build_parser().parse_args(["--network", "n", "--seeds", "0,1", "--out", "v.gif"])
    assert (v.frames, v.fps, v.loop) == (120, 60, True)
    assert video.build_parser().parse_args(["--network", "n", "--seeds", "0,1", "--out", "v.gif", "--no-loop"]).loop is False


def test_project_says_when_its_distance_is_not_lpips(tmp_path):
    from ganops_models.nn import lpips
    from ganops_models.tools.project import distance_name
    trunk = lpips.LPIPS()
    torch.save({f"features.{k}": v for k, v in trunk.features.state_dict().items()}, tmp_path / "vgg16.pth")
    torch.save({f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate(lpips.TAP_CHANNELS)},
               tmp_path / "heads.pth")
    vgg_only = lpips.load_lpips(str(tmp_path / "vgg16.pth"), unit_heads=True)
    full = lpips.load_lpips(f"{tmp_path / 'vgg16.pth'},{tmp_path / 'heads.pth'}", unit_heads=True)
    assert "not LPIPS" in distance_name(vgg_only) and "unit heads" in distance_name(vgg_only)
    assert distance_name(full).startswith("LPIPS") and "not LPIPS" in distance_name(None)


def test_style_mixing_save_cells_writes_nvidias_cell_files(tmp_path):
    import numpy as np
    from PIL import Image
    from latent_helpers import save_checkpoint
    from ganops_models.tools import style_mixing
    ckpt = save_checkpoint(tmp_path / "c.pt")
    out = tmp_path / "out" / "grid.png"
    assert style_mixing.main(["--network", ckpt, "--rows", "1,2", "--cols", "3", "--out", str(out), "--device", "cpu",
                              "--save-cells"]) == 0
    names = sorted(os.listdir(out.parent))
    assert names == ["1-1.png", "1-3.png", "2-2.png", "2-3.png", "3-3.png", "grid.png"]
    grid = np.asarray(Image.open(out))
    h = grid.shape[0] // 3
    assert np.array_equal(np.asarray(Image.open(out.parent / "2-3.png")), grid[2 * h:3 * h, h:2 * h])
    assert np.array_equal(np.asarray(Image.open(out.parent / "3-3.png")), grid[:h, h:2 * h])


def test_generate_translate_and_rotate_are_stylegan3s_input_transform(tmp_path):
    """gen_images.py: m = make_transform(translate, rotate); G.synthesis.input.transform.copy_(inv(m))."""
    import numpy as np
    from PIL import Image
    from explore_helpers import stylegan3_pickle
    from latent_helpers import save_checkpoint
    from ganops_models.network_loader import load_network
    from ganops_models.tools import generate, latent_space
    pkl = stylegan3_pickle(tmp_path)
    assert generate.main(["--network", pkl, "--seeds", "5", "--translate", "0.3,-0.2", "--rotate", "20",
                          "--outdir", str(tmp_path / "moved"), "--device", "cpu"]) == 0
    net = load_network(pkl)
    c, s = np.cos(np.radians(20)), np.sin(np.radians(20))
    m = np.array([[c, s, 0.3], [-s, c, -0.2], [0, 0, 1]])
    net.G_ema.synthesis.input.transform.copy_(torch.from_numpy(np.linalg.inv(m)))
    expect = latent_space.synthesize(net.G_ema, latent_space.seed_ws(net, [5]))[0].permute(1, 2, 0).numpy()
    moved = np.asarray(Image.open(tmp_path / "moved" / "seed0005.png"))
    assert np.array_equal(moved.reshape(expect.shape), expect)
    assert generate.main(["--network", pkl, "--seeds", "5", "--outdir", str(tmp_path / "plain"), "--device", "cpu"]) == 0
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "plain" / "seed0005.png")), moved)
    sg2 = save_checkpoint(tmp_path / "sg2.pt")
    assert generate.main(["--network", sg2, "--seeds", "5", "--rotate", "10", "--outdir", str(tmp_path / "x"),
                          "--device", "cpu"]) == 2
