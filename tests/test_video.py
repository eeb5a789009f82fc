"""video.py and interpolation.py: frame counts and sizes of decoded videos, the first frame is the first seed's
picture, grids, projected keyframes, interpolation curves, errors."""
import numpy as np
import pytest
import torch
from PIL import Image

from ganops_models.tools import generate, interpolation, latent_space, video
from ganops_models.network_loader import load_network, seed_latents
from ganops_models.images import to_uint8

from helpers import gpu
from latent_helpers import save_checkpoint

imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
pytestmark = pytest.mark.usefixtures("one_intraop_thread")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return save_checkpoint(tmp_path_factory.mktemp("net") / "c.pt")


def _generate_picture(net, seed, psi=1.0):
    """What generate computes for a seed: G_ema(z, c, psi) of NVIDIA's seed latent, to uint8."""
    with torch.no_grad():
        return to_uint8(net.G_ema(seed_latents([seed], net.z_dim), None, truncation_psi=psi, noise_mode="const"))[0]


def _decode(path):
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = reader.__next__()
    w, h = meta["size"]
    return np.stack([np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in reader])


def test_mp4_frames_size_and_first_frame(ckpt, tmp_path):
    out = tmp_path / "interp.mp4"
    assert video.main(["--network", ckpt, "--seeds", "3,1,4", "--frames", "4", "--trunc", "0.7", "--out", str(out),
                       "--device", "cpu", "--no-loop"]) == 0
    frames = _decode(out)
    assert frames.shape == (2 * 4 + 1, 16, 16, 3)
    net = load_network(ckpt)
    first = _generate_picture(net, 3, 0.7).permute(1, 2, 0).numpy().astype(float)
    other = _generate_picture(net, 1, 0.7).permute(1, 2, 0).numpy().astype(float)
    err = np.abs(frames[0] - first).mean()
    assert err < 0.5 * np.abs(frames[0] - other).mean() and err < 12    # H.264 is lossy: near, not equal
    # before encoding the first frame IS generate's picture, bit for bit
    keys = video.arrange_keyframes(latent_space.seed_ws(net, [3, 1, 4], 0.7), 1)
    frame0 = next(video.video_frames(net, keys, (1, 1), frames=4))
    assert np.array_equal(frame0, first.astype(np.uint8))
    # ... and the PNG that generate writes for that seed
    assert generate.main(["--network", ckpt, "--seeds", "3", "--trunc", "0.7", "--outdir", str(tmp_path / "gen"),
                          "--device", "cpu"]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "gen" / "seed0003.png")), frame0)


def test_gif_grid_loop_in_z(ckpt, tmp_path):
    out = tmp_path / "grid.gif"
    assert video.main(["--network", ckpt, "--seeds", "0-7", "--grid", "2x2", "--loop", "--space", "z",
                       "--interp", "slerp", "--frames", "3", "--fps", "10", "--out", str(out), "--device", "cpu"]) == 0
    with Image.open(out) as gif:
        assert gif.n_frames == 2 * 3 and gif.size == (32, 32)
        first = np.asarray(gif.convert("RGB")).astype(float)
    net = load_network(ckpt)
    for cell, seed in enumerate([0, 2, 4, 6]):    # cell i starts on seed i*K (K = 2 keyframes per cell)
        y, x = divmod(cell, 2)
        expect = _generate_picture(net, seed).permute(1, 2, 0).numpy()
        assert np.abs(first[16 * y:16 * y + 16, 16 * x:16 * x + 16] - expect).mean() < 10   # GIF palette


def test_projected_keyframes(ckpt, tmp_path):
    net = load_network(ckpt)
    ws = latent_space.seed_ws(net, [5, 6]) + 0.1
    for i in range(2):
        latent_space.save_projected_w(str(tmp_path / f"{i}.npz"), ws[i:i + 1])
    keys = video.arrange_keyframes(video.load_projected_keyframes(net, [str(tmp_path / "0.npz"),
                                                                        str(tmp_path / "1.npz")]), 1)
    frames = list(video.video_frames(net, keys, (1, 1), frames=2, kind="lerp"))
    assert len(frames) == 3
    assert np.array_equal(frames[0], latent_space.synthesize(net.G_ema, ws[:1])[0].permute(1, 2, 0).numpy())
    assert np.array_equal(frames[2], latent_space.synthesize(net.G_ema, ws[1:])[0].permute(1, 2, 0).numpy())
    out = tmp_path / "p.mp4"
    assert video.main(["--network", ckpt, "--projected", f"{tmp_path / '0.npz'},{tmp_path / '1.npz'}",
                       "--frames", "2", "--out", str(out), "--device", "cpu", "--no-loop"]) == 0
    assert _decode(out).shape == (3, 16, 16, 3)
    assert video.main(["--network", ckpt, "--projected", f"{tmp_path / '0.npz'},{tmp_path / '1.npz'}",
                       "--frames", "2", "--out", str(out), "--device", "cpu"]) == 0
    assert _decode(out).shape == (4, 16, 16, 3)                 # the default wraps around, as NVIDIA's


@pytest.mark.parametrize("kind", interpolation.KINDS)
@pytest.mark.parametrize("loop", [False, True])
def test_paths_hit_keyframes(kind, loop):
    keys = torch.randn(4, 2, 5, dtype=torch.float64)
    path = list(interpolation.interpolation_path(keys, 3, loop, kind))
    assert len(path) == interpolation.path_length(4, 3, loop) == (12 if loop else 10)
    for k in range(4):
        assert torch.equal(path[3 * k], keys[k])
    # continuity: the point just before a keyframe is close to it (no jumps), the midpoint is between
    fine = list(interpolation.interpolation_path(keys, 200, loop, kind))
    steps = torch.stack([(b - a).norm() for a, b in zip(fine, fine[1:])])
    assert steps.max() < 5 * steps.mean()


def test_curves():
    a, b = torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 3.0]])
    mid = interpolation.slerp(a, b, 0.5)
    assert torch.allclose(mid.norm(), torch.tensor(3.0)) and torch.allclose(mid[0, 0], mid[0, 1])
    assert torch.allclose(interpolation.lerp(a, b, 0.25), torch.tensor([[2.25, 0.75]]))
    assert torch.allclose(interpolation.slerp(a, 2 * a, 0.5), 1.5 * a)           # parallel: lerp
    p = [torch.tensor([float(v)]) for v in (0, 1, 2, 3)]
    assert torch.allclose(interpolation.catmull_rom(*p, 0.5), torch.tensor([1.5]))   # straight line stays straight
    assert torch.allclose(interpolation.catmull_rom(*p, 1.0), torch.tensor([2.0]))


def test_errors(ckpt, tmp_path, capsys):
    dcgan = save_checkpoint(tmp_path / "d.pt", model="dcgan", resolution=(32, 32))
    cases = [
        (["--network", dcgan, "--seeds", "0,1"], "dcgan network"),
        (["--network", ckpt, "--seeds", "0,x"], "--seeds"),
        (["--network", ckpt, "--seeds", "0"], "at least 2 keyframes"),
        (["--network", ckpt, "--seeds", "0-4", "--grid", "2x2"], "multiple of 4"),
        (["--network", ckpt, "--seeds", "0,1", "--grid", "2by2"], "--grid"),
        (["--network", ckpt, "--projected", str(tmp_path / "none.npz")], "does not exist"),
        (["--network", ckpt, "--projected", "a.npz", "--space", "z"], "--space w"),
        (["--network", ckpt, "--seeds", "0,1", "--class", "1"], "unconditional"),
    ]
    for args, message in cases:
        assert video.main(args + ["--out", str(tmp_path / "v.mp4"), "--device", "cpu"]) == 2, args
        assert message in capsys.readouterr().err, args
    assert video.main(["--network", ckpt, "--seeds", "0,1", "--out", str(tmp_path / "v.avi"), "--device", "cpu"]) == 2
    assert ".mp4" in capsys.readouterr().err
    assert not (tmp_path / "v.mp4").exists()


@gpu
def test_tools_on_cuda(ckpt, tmp_path):
    net = load_network(ckpt, "cuda")
    keys = video.arrange_keyframes(latent_space.seed_ws(net, [3, 1]), 1)
    frame0 = next(video.video_frames(net, keys, (1, 1), frames=2))
    with torch.no_grad():
        expect = to_uint8(net.G_ema(seed_latents([3], net.z_dim).cuda(), None, noise_mode="const"))[0].cpu()
    assert np.array_equal(frame0, expect.permute(1, 2, 0).numpy())
    assert video.main(["--network", ckpt, "--seeds", "0,1", "--frames", "2", "--out", str(tmp_path / "v.mp4"),
                       "--device", "cuda"]) == 0
    assert _decode(tmp_path / "v.mp4").shape == (3, 16, 16, 3)
