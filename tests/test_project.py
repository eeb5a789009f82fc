"""project.py (+ generate --projected-w / --trunc 0): the projector reduces its distance and recovers a
picture the network can produce far better than the average image; output files; round trip of
projected_w.npz through generate; LPIPS weights; errors."""
import numpy as np
import pytest
import torch
from PIL import Image

from ganops_models.nn import lpips
from ganops_models.tools import generate, latent_space, project
from ganops_models.network_loader import load_network
from ganops_models.tools.projection_loss import LPIPSDistance, WeightFreeDistance

from helpers import gpu
from latent_helpers import save_checkpoint

pytestmark = pytest.mark.usefixtures("one_intraop_thread")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return save_checkpoint(tmp_path_factory.mktemp("net") / "c.pt", resolution=(16, 16))


def _as_float(u8):
    return u8.float() / 127.5 - 1


def test_projection_recovers_a_picture_of_the_network(ckpt):
    net = load_network(ckpt)
    target_ws = latent_space.seed_ws(net, [11])
    target = _as_float(latent_space.synthesize(net.G_ema, target_ws))
    torch.manual_seed(0)
    result = project.project(net.G_ema, WeightFreeDistance(net.D, target), 60, w_avg_samples=500, progress=False)
    assert result.ws.shape == (60, net.G_ema.num_ws, net.G_ema.w_dim)
    assert np.mean(result.dist[-10:]) < 0.3 * np.mean(result.dist[:10])
    proj = _as_float(latent_space.synthesize(net.G_ema, result.ws[-1:]))     # what proj.png shows
    avg = _as_float(latent_space.synthesize(net.G_ema, latent_space.w_avg_ws(net)))
    err_proj, err_avg = (proj - target).square().mean(), (avg - target).square().mean()
    assert err_proj < 0.25 * err_avg, (err_proj, err_avg)
    # the generator it was given is untouched (the noise maps were optimised on a copy)
    assert torch.equal(load_network(ckpt).G_ema.state_dict()["synthesis.blocks.0.conv1.noise_const"],
                       net.G_ema.state_dict()["synthesis.blocks.0.conv1.noise_const"])


def test_schedules():
    assert project.lr_schedule(0.0) == 0                              # ramp up from 0 ...
    assert project.lr_schedule(0.5) == pytest.approx(0.1)             # ... to 0.1 after 5 % ...
    assert project.lr_schedule(0.875) == pytest.approx(0.05)          # ... cosine down over the last 25 %
    flat = torch.ones(16, 16)
    checker = (torch.arange(16)[:, None] + torch.arange(16)).remainder(2).float() * 2 - 1
    assert project.noise_regularization([flat]).item() == pytest.approx(4.0)   # 2 shifts x 2 levels x 1^2
    assert project.noise_regularization([checker]).item() == pytest.approx(2.0)    # level 1 averages to 0
    assert project.noise_regularization([torch.randn(64, 64, generator=torch.Generator().manual_seed(0))]) < 0.01


def test_cli_files_and_round_trip_through_generate(ckpt, tmp_path):
    rng = np.random.RandomState(0)
    Image.fromarray((rng.rand(30, 50, 3) * 255).astype(np.uint8)).save(tmp_path / "wide.png")
    out = tmp_path / "proj"
    assert project.main(["--network", ckpt, "--target", str(tmp_path / "wide.png"), "--steps", "6", "--w-plus",
                         "--save-video", "--outdir", str(out), "--device", "cpu"]) == 0
    target = np.asarray(Image.open(out / "target.png"))
    assert target.shape == (16, 16, 3)
    center = np.asarray(Image.open(tmp_path / "wide.png").crop((10, 0, 40, 30)).resize((16, 16), Image.LANCZOS))
    assert np.array_equal(target, center)                             # centre crop to the aspect, then resize
    with np.load(out / "projected_w.npz") as f:
        w = f["w"]
    net = load_network(ckpt)
    assert w.shape == (1, net.G_ema.num_ws, net.G_ema.w_dim) and w.dtype == np.float32
    assert np.asarray(Image.open(out / "proj.png")).shape == (16, 16, 3)
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    reader = imageio_ffmpeg.read_frames(str(out / "proj.mp4"))
    assert reader.__next__()["size"] == (32, 16) and len(list(reader)) == 6
    # generate --projected-w gives exactly proj.png
    assert generate.main(["--network", ckpt, "--projected-w", str(out / "projected_w.npz"),
                          "--outdir", str(tmp_path / "gen"), "--device", "cpu"]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "gen" / "proj00.png")),
                          np.asarray(Image.open(out / "proj.png")))
    expect = latent_space.synthesize(net.G_ema, torch.from_numpy(w))[0].permute(1, 2, 0).numpy()
    assert np.array_equal(np.asarray(Image.open(out / "proj.png")), expect)


def test_generate_trunc_0_is_the_average_picture(ckpt, tmp_path):
    assert generate.main(["--network", ckpt, "--seeds", "1,2", "--trunc", "0", "--outdir", str(tmp_path),
                          "--device", "cpu"]) == 0
    net = load_network(ckpt)
    avg = latent_space.synthesize(net.G_ema, latent_space.w_avg_ws(net))[0].permute(1, 2, 0).numpy()
    for seed in (1, 2):
        assert np.array_equal(np.asarray(Image.open(tmp_path / f"seed{seed:04d}.png")), avg)


def test_lpips_distance_from_vgg_weights(ckpt, tmp_path):
    torch.manual_seed(0)
    trunk = lpips.LPIPS()
    for m in trunk.features:
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight)
    torch.save({f"features.{k}": v for k, v in trunk.features.state_dict().items()}, tmp_path / "vgg16.pth")
    model = lpips.load_lpips(str(tmp_path / "vgg16.pth"), unit_heads=True)     # torchvision trunk alone
    assert all(torch.equal(lin.weight, torch.ones_like(lin.weight)) for lin in model.lins)
    net = load_network(ckpt)
    target = _as_float(latent_space.synthesize(net.G_ema, latent_space.seed_ws(net, [3])))
    distance = LPIPSDistance(model, target)
    assert distance(target).item() == pytest.approx(0, abs=1e-6)
    torch.manual_seed(0)
    result = project.project(net.G_ema, distance, 12, w_avg_samples=100, progress=False)
    assert np.mean(result.dist[-3:]) < np.mean(result.dist[:3])
    gray = torch.rand(1, 1, 264, 32) * 2 - 1                          # grayscale, > 256: repeated, area-resized
    assert LPIPSDistance(model, gray)(gray).item() == pytest.approx(0, abs=1e-6)
    with pytest.raises(lpips.LPIPSWeightsError, match="missing"):
        lpips.load_lpips(str(tmp_path / "vgg16.pth"))                 # heads are required unless unit_heads


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
def test_errors(ckpt, tmp_path, capsys):
    Image.new("RGB", (20, 20)).save(tmp_path / "t.png")
    (tmp_path / "not_an_image.png").write_text("hello")
    scripted = torch.jit.script(torch.nn.Conv2d(3, 4, 3))
    scripted.save(str(tmp_path / "vgg16.pt"))                          # TorchScript: contains code
    dcgan = save_checkpoint(tmp_path / "d.pt", model="dcgan", resolution=(32, 32))
    np.savez(tmp_path / "bad_w.npz", w=np.zeros([1, 3, 5], np.float32))
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object))
    cases = [(["--network", dcgan, "--target", str(tmp_path / "t.png")], "no mapping network"),
             (["--network", ckpt, "--target", str(tmp_path / "not_an_image.png")], "is not an image"),
             (["--network", ckpt, "--target", str(tmp_path / "missing.png")], "does not exist"),
             (["--network", ckpt, "--target", str(tmp_path / "t.png"), "--vgg", str(tmp_path / "vgg16.pt")],
              "TorchScript"),
             (["--network", ckpt, "--target", str(tmp_path / "t.png"), "--steps", "0"], "--steps")]
    for args, message in cases:
        assert project.main(args + ["--outdir", str(tmp_path / "o"), "--device", "cpu"]) == 2, args
        assert message in capsys.readouterr().err, args
    assert not (tmp_path / "o").exists()
    for path, message in [(tmp_path / "bad_w.npz", "another network"), (tmp_path / "obj.npy", "not a readable"),
                          (tmp_path / "t.png", "not a readable")]:
        assert generate.main(["--network", ckpt, "--projected-w", str(path), "--outdir", str(tmp_path / "g"),
                              "--device", "cpu"]) == 2
        assert message in capsys.readouterr().err


@gpu
def test_projection_on_cuda(ckpt, tmp_path):
    Image.new("RGB", (16, 16), (200, 30, 30)).save(tmp_path / "red.png")
    assert project.main(["--network", ckpt, "--target", str(tmp_path / "red.png"), "--steps", "20",
                         "--outdir", str(tmp_path / "o"), "--device", "cuda"]) == 0
    assert generate.main(["--network", ckpt, "--projected-w", str(tmp_path / "o" / "projected_w.npz"),
                          "--outdir", str(tmp_path / "g"), "--device", "cuda"]) == 0
    assert (tmp_path / "g" / "proj00.png").is_file()
