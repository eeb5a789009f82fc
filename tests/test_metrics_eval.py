"""FID Inception network layout and loading, reference resizes, evaluate(), the statistics cache
and the command line.  Inception runs with random weights on tiny inputs (CPU time)."""
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import gpu

from ganops_models import metrics
from ganops_models.tools import metrics as cli
from ganops_models.metrics import cache, features, inception, resize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


pytestmark = pytest.mark.usefixtures("one_intraop_thread")


# ---------------------------------------------------------------- expected pytorch-fid layout
def _basic(prefix, cin, cout, k):
    kh, kw = (k, k) if isinstance(k, int) else k
    return {f"{prefix}.conv.weight": (cout, cin, kh, kw), f"{prefix}.bn.weight": (cout,), f"{prefix}.bn.bias": (cout,),
            f"{prefix}.bn.running_mean": (cout,), f"{prefix}.bn.running_var": (cout,),
            f"{prefix}.bn.num_batches_tracked": ()}


def expected_layout():
    """Key -> shape of torchvision Inception3(num_classes=1008, aux_logits=False) with pytorch-fid's
    FIDInceptionA/C/E blocks, i.e. of pt_inception-2015-12-05-6726825d.pth."""
    out = {}
    for name, cin, cout, k in (("Conv2d_1a_3x3", 3, 32, 3), ("Conv2d_2a_3x3", 32, 32, 3), ("Conv2d_2b_3x3", 32, 64, 3),
                               ("Conv2d_3b_1x1", 64, 80, 1), ("Conv2d_4a_3x3", 80, 192, 3)):
        out.update(_basic(name, cin, cout, k))
    for name, cin, pool in (("Mixed_5b", 192, 32), ("Mixed_5c", 256, 64), ("Mixed_5d", 288, 64)):
        for sub, a, b, k in (("branch1x1", cin, 64, 1), ("branch5x5_1", cin, 48, 1), ("branch5x5_2", 48, 64, 5),
                             ("branch3x3dbl_1", cin, 64, 1), ("branch3x3dbl_2", 64, 96, 3),
                             ("branch3x3dbl_3", 96, 96, 3), ("branch_pool", cin, pool, 1)):
            out.update(_basic(f"{name}.{sub}", a, b, k))
    for sub, a, b, k in (("branch3x3", 288, 384, 3), ("branch3x3dbl_1", 288, 64, 1), ("branch3x3dbl_2", 64, 96, 3),
                         ("branch3x3dbl_3", 96, 96, 3)):
        out.update(_basic(f"Mixed_6a.{sub}", a, b, k))
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
        for sub, a, b, k in (("branch1x1", 768, 192, 1), ("branch7x7_1", 768, c7, 1), ("branch7x7_2", c7, c7, (1, 7)),
                             ("branch7x7_3", c7, 192, (7, 1)), ("branch7x7dbl_1", 768, c7, 1),
                             ("branch7x7dbl_2", c7, c7, (7, 1)), ("branch7x7dbl_3", c7, c7, (1, 7)),
                             ("branch7x7dbl_4", c7, c7, (7, 1)), ("branch7x7dbl_5", c7, 192, (1, 7)),
                             ("branch_pool", 768, 192, 1)):
            out.update(_basic(f"{name}.{sub}", a, b, k))
    for sub, a, b, k in (("branch3x3_1", 768, 192, 1), ("branch3x3_2", 192, 320, 3), ("branch7x7x3_1", 768, 192, 1),
                         ("branch7x7x3_2", 192, 192, (1, 7)), ("branch7x7x3_3", 192, 192, (7, 1)),
                         ("branch7x7x3_4", 192, 192, 3)):
        out.update(_basic(f"Mixed_7a.{sub}", a, b, k))
    for name, cin in (("Mixed_7b", 1280), ("Mixed_7c", 2048)):
        for sub, a, b, k in (("branch1x1", cin, 320, 1), ("branch3x3_1", cin, 384, 1), ("branch3x3_2a", 384, 384, (1, 3)),
                             ("branch3x3_2b", 384, 384, (3, 1)), ("branch3x3dbl_1", cin, 448, 1),
                             ("branch3x3dbl_2", 448, 384, 3), ("branch3x3dbl_3a", 384, 384, (1, 3)),
                             ("branch3x3dbl_3b", 384, 384, (3, 1)), ("branch_pool", cin, 192, 1)):
            out.update(_basic(f"{name}.{sub}", a, b, k))
    out["fc.weight"], out["fc.bias"] = (1008, 2048), (1008,)
    return out


def random_state(seed=0):
    """A state dict of the reference layout with He-scaled random weights (no num_batches_tracked,
    like the distributed file)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in expected_layout().items():
        if key.endswith("num_batches_tracked"):
            continue
        if key.endswith("conv.weight") or key == "fc.weight":
            fan_in = int(np.prod(shape[1:]))
            state[key] = torch.randn(shape, generator=g) * (2.0 / fan_in) ** 0.5
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        elif key.endswith("bn.weight"):
            state[key] = torch.rand(shape, generator=g) * 0.5 + 0.75
        else:
            state[key] = torch.randn(shape, generator=g) * 0.1
    return state


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("inception") / inception.WEIGHTS_NAME
    torch.save(random_state(), path)
    return str(path)


@pytest.fixture
def small_inception_input(monkeypatch):
    """Feed the Inception 75x75 inputs (its minimum) instead of 299x299 to keep CPU tests fast."""
    monkeypatch.setattr(resize, "SIZE", 75)


def _write_images(folder, n, seed, size=32):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    for i in range(n):
        img = np.stack([(xx * (3 + c + i) + yy * rng.integers(1, 9)) % 256 for c in range(3)], -1)
        img = np.clip(img + rng.normal(0, 20, img.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"img{i:03d}.png")
    return str(folder)


def _generator(n_seed_offset=0, size=32):
    def generator_fn(n, seed):
        g = torch.Generator().manual_seed(seed + n_seed_offset)
        return (torch.rand(n, 3, size, size, generator=g) * 255).to(torch.uint8)
    return generator_fn


# ---------------------------------------------------------------- network
def test_inception_layout_matches_pytorch_fid():
    got = {k: tuple(v.shape) for k, v in inception.FIDInceptionV3().state_dict().items()}
    want = expected_layout()
    assert sorted(set(want) - set(got)) == [] and sorted(set(got) - set(want)) == []
    assert got == want


def test_reference_state_dict_loads_strictly_and_gives_2048_features(weights_file, small_inception_input):
    net = inception.load_inception(weights_file)
    state = random_state()
    for key, value in net.state_dict().items():
        if key in state:
            torch.testing.assert_close(value, state[key], rtol=0, atol=0)
    images = (torch.rand(1, 3, 40, 50) * 255).to(torch.uint8)
    feats = features.InceptionFeatures(net, "tf")(images)
    assert feats.shape == (1, inception.FEATURE_DIM) and feats.dtype == torch.float32
    assert torch.isfinite(feats).all() and (feats >= 0).all() and (feats > 0).any()


def test_missing_and_wrong_weights_give_clear_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("GANOPS_INCEPTION", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(FileNotFoundError) as err:
        inception.find_weights()
    msg = str(err.value)
    assert inception.WEIGHTS_NAME in msg and str(tmp_path / "hub" / "checkpoints") in msg
    assert "GANOPS_INCEPTION" in msg and "--inception" in msg and "inception_path" not in msg
    with pytest.raises(FileNotFoundError, match="--inception: no file at"):
        inception.find_weights(tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"fc.weight": torch.zeros(3)}, bad)
    with pytest.raises(ValueError, match="not a pytorch-fid Inception state dict"):
        inception.load_inception(bad)


def test_weights_are_found_through_env_and_hub_cache(tmp_path, monkeypatch, weights_file):
    monkeypatch.setenv("GANOPS_INCEPTION", weights_file)
    assert str(inception.find_weights()) == weights_file
    monkeypatch.delenv("GANOPS_INCEPTION")
    hub = tmp_path / "hub"
    (hub / "checkpoints").mkdir(parents=True)
    (hub / "checkpoints" / inception.WEIGHTS_NAME).write_bytes(b"x")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    assert inception.find_weights() == hub / "checkpoints" / inception.WEIGHTS_NAME


def _real_weights():
    for path in inception.weight_search_paths():
        if path.is_file():
            return path
    return None


@pytest.mark.skipif(_real_weights() is None,
                    reason=f"real weights {inception.WEIGHTS_NAME} not present (set GANOPS_INCEPTION)")
def test_real_weights_file():
    """The distributed file: its sha256 starts with the hash in its name, it loads strictly, and
    pool features of natural-ish images are non-negative means of ReLU outputs of moderate size."""
    path = _real_weights()
    assert hashlib.sha256(path.read_bytes()).hexdigest().startswith(inception.WEIGHTS_SHA256_PREFIX)
    feats = features.InceptionFeatures.load(path)(torch.full((2, 3, 64, 64), 128, dtype=torch.uint8))
    assert feats.shape == (2, 2048) and torch.isfinite(feats).all() and (feats >= 0).all()
    torch.testing.assert_close(feats[0], feats[1])
    assert 0.01 < feats.mean().item() < 10


# ---------------------------------------------------------------- reference resizes
def _tf1_loop(x, oh, ow):
    h, w = x.shape
    out = np.zeros((oh, ow), np.float32)
    sy, sx = np.float32(h / oh), np.float32(w / ow)
    for i in range(oh):
        fy = np.float32(i) * sy
        y0 = int(np.floor(fy))
        y1, dy = min(y0 + 1, h - 1), np.float32(fy - y0)
        for j in range(ow):
            fx = np.float32(j) * sx
            x0 = int(np.floor(fx))
            x1, dx = min(x0 + 1, w - 1), np.float32(fx - x0)
            top = x[y0, x0] + (x[y0, x1] - x[y0, x0]) * dx
            bot = x[y1, x0] + (x[y1, x1] - x[y1, x0]) * dx
            out[i, j] = top + (bot - top) * dy
    return out


@pytest.mark.parametrize("src,dst", [((5, 7), (11, 4)), ((13, 9), (6, 17)), ((8, 8), (8, 8))])
def test_tf1_bilinear_resize_matches_the_tensorflow_formula(src, dst):
    x = torch.rand(1, 2, *src) * 255
    got = resize.resize_bilinear_tf1(x, dst)
    for c in range(2):
        np.testing.assert_allclose(got[0, c].numpy(), _tf1_loop(x[0, c].numpy(), *dst), rtol=1e-6, atol=1e-4)
    if src == dst:
        torch.testing.assert_close(got, x, rtol=0, atol=0)


def test_preprocess_resizes_to_299_by_default():
    x = (torch.rand(1, 3, 20, 30) * 255).to(torch.uint8)
    for mode in resize.RESIZE_MODES:
        assert resize.preprocess(x, mode).shape == (1, 3, 299, 299)


def test_preprocess_normalisation_and_shapes(small_inception_input):
    white = torch.full((1, 1, 75, 75), 255, dtype=torch.uint8)
    assert torch.allclose(resize.preprocess(white, "pytorch-fid"), torch.tensor(1.0))
    assert torch.allclose(resize.preprocess(white, "tf"), torch.tensor(127 / 128))
    x = (torch.rand(2, 3, 75, 75) * 255).to(torch.uint8)
    for mode in resize.RESIZE_MODES:  # same size: only the normalisation differs
        out = resize.preprocess(x, mode)
        assert out.shape == (2, 3, 75, 75) and out.dtype == torch.float32
        ref = x.float() / 127.5 - 1 if mode == "pytorch-fid" else (x.float() - 128) / 128
        torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-6)
    small = (torch.rand(1, 3, 20, 30) * 255).to(torch.uint8)
    assert resize.preprocess(small, "clean").shape == (1, 3, 75, 75)
    with pytest.raises(ValueError, match="resize"):
        resize.preprocess(x, "bilinear")
    with pytest.raises(TypeError, match="uint8"):
        resize.preprocess(x.float(), "tf")
    with pytest.raises(ValueError, match="shape"):
        resize.preprocess(x[:, :2], "tf")


# ---------------------------------------------------------------- evaluate + cache
def test_evaluate_with_a_generator(tmp_path, weights_file, small_inception_input):
    real = _write_images(tmp_path / "real", 5, seed=0)
    kw = dict(num_gen=4, inception_path=weights_file, cache_dir=tmp_path / "cache", batch_size=3)
    out = metrics.evaluate("fid,kid,swd", _generator(), real, "cpu", **kw)
    assert set(out) == {"fid", "kid", "kid/std", "swd", "swd/res32", "swd/res16"}
    assert all(isinstance(v, float) and np.isfinite(v) for v in out.values())
    assert out["fid"] > 0
    assert metrics.evaluate("fid,kid,swd", _generator(), real, "cpu", **kw) == out  # deterministic in seed
    assert metrics.evaluate("none", _generator(), real, "cpu", **kw) == {}


def test_evaluate_fake_folder_identical_to_real_gives_zero_fid(tmp_path, weights_file, small_inception_input):
    real = _write_images(tmp_path / "real", 4, seed=1)
    out = metrics.evaluate(["fid", "swd"], real, real, "cpu", inception_path=weights_file, cache_dir=False)
    assert abs(out["fid"]) < 1e-6
    other = metrics.evaluate(["fid"], _write_images(tmp_path / "fake", 4, seed=2), real, "cpu",
                             inception_path=weights_file, cache_dir=False)
    assert other["fid"] > 1e3 * max(abs(out["fid"]), 1e-9)


def test_generator_output_is_validated(tmp_path, weights_file):
    real = _write_images(tmp_path / "real", 3, seed=0)
    with pytest.raises(TypeError, match="generator_fn output"):
        metrics.evaluate("swd", lambda n, s: torch.rand(n, 3, 32, 32), real, "cpu", num_gen=2)
    with pytest.raises(ValueError, match="asked for 2"):
        metrics.evaluate("swd", lambda n, s: torch.zeros(1, 3, 32, 32, dtype=torch.uint8), real, "cpu", num_gen=2)
    with pytest.raises(ValueError, match="num_gen"):
        metrics.evaluate("swd", _generator(), real, "cpu", num_gen=0)
    with pytest.raises(ValueError, match="resize"):
        metrics.evaluate("swd", _generator(), real, "cpu", num_gen=2, resize="bicubic")


def test_statistics_cache_hit_miss_and_invalidation(tmp_path, weights_file, small_inception_input):
    real_dir = tmp_path / "real"
    real = _write_images(real_dir, 4, seed=3)
    cache = tmp_path / "cache"
    logs = []
    kw = dict(num_gen=3, inception_path=weights_file, cache_dir=cache, log=logs.append)

    def run(names="fid", **extra):
        logs.clear()
        out = metrics.evaluate(names, _generator(), real, "cpu", **{**kw, **extra})
        return out, any("cache hit" in m for m in logs)

    first, hit = run()
    assert not hit and len(list(cache.glob("*.npz"))) == 1
    second, hit = run()
    assert hit and second == first
    _, hit = run("kid")  # small sets keep their features in the entry: KID reuses it
    assert hit
    with np.load(next(cache.glob("*.npz"))) as entry:
        assert entry["features"].shape == (4, 2048) and entry["sigma"].dtype == np.float64
    _, hit = run("fid", resize="pytorch-fid")  # other settings: other entry
    assert not hit and len(list(cache.glob("*.npz"))) == 2
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(real_dir / "img001.png")  # the data changed
    changed, hit = run()
    assert not hit and changed["fid"] != first["fid"]
    _write_images(tmp_path / "extra", 1, seed=9)
    os.replace(tmp_path / "extra" / "img000.png", real_dir / "img999.png")  # a file was added
    _, hit = run()
    assert not hit
    _, hit = run()
    assert hit


def test_cache_entry_without_features_misses_when_features_are_needed(tmp_path):
    path = cache.entry_path(tmp_path, "abc", {"count": 3, "resize": "tf"})
    assert path != cache.entry_path(tmp_path, "abc", {"count": 4, "resize": "tf"})
    assert path != cache.entry_path(tmp_path, "abd", {"count": 3, "resize": "tf"})
    assert cache.load(path, need_features=False) is None
    cache.store(path, np.zeros(2), np.eye(2))
    assert cache.load(path, need_features=True) is None
    np.testing.assert_array_equal(cache.load(path, need_features=False)["sigma"], np.eye(2))
    path.write_bytes(b"truncated")
    assert cache.load(path, need_features=False) is None


def test_make_generator_fn():
    latents = lambda n, gen: torch.randn(n, 4, generator=gen)  # noqa: E731
    seen = {}

    def sample(z, c):
        seen["c"] = c
        return torch.tanh(z[:, :3, None, None].expand(-1, 3, 8, 8)) * torch.tensor([1.0, -1.0, 0.5]).view(1, 3, 1, 1)

    fn = metrics.make_generator_fn(sample, latents, "cpu", label_dim=5)
    a, b, c = fn(6, 1), fn(6, 1), fn(6, 2)
    assert a.dtype == torch.uint8 and a.shape == (6, 3, 8, 8)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert seen["c"].shape == (6, 5) and torch.equal(seen["c"].sum(1), torch.ones(6))
    edge = metrics.make_generator_fn(lambda z, c: torch.tensor([-1.0, 0.0, 1.0, 3.0]).view(1, 1, 1, 4), latents, "cpu")
    assert edge(1, 0).flatten().tolist() == [0, 128, 255, 255]


# ---------------------------------------------------------------- command line
def test_cli_swd_subprocess(tmp_path):
    real = _write_images(tmp_path / "real", 3, seed=4)
    fake = _write_images(tmp_path / "fake", 3, seed=5)
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "ganops_models.metrics", "--metrics", "swd", "--real", real,
                           "--fake", fake, "--json", "--device", "cpu"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) == {"swd", "swd/res32", "swd/res16"} and out["swd"] > 0


def test_cli_missing_weights_subprocess(tmp_path):
    real = _write_images(tmp_path / "real", 2, seed=4)
    env = {k: v for k, v in os.environ.items() if k != "GANOPS_INCEPTION"}
    env.update(PYTHONPATH=ROOT, TORCH_HOME=str(tmp_path / "torch"), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "ganops_models.metrics", "--metrics", "fid", "--real", real,
                           "--fake", real, "--device", "cpu"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert proc.returncode == 2
    assert inception.WEIGHTS_NAME in proc.stderr and "GANOPS_INCEPTION" in proc.stderr


def test_cli_fid_kid_with_inception_path(tmp_path, capsys, weights_file, small_inception_input):
    real = _write_images(tmp_path / "real", 4, seed=6)
    fake = _write_images(tmp_path / "fake", 4, seed=7)
    assert cli.main(["--metrics", "fid,kid", "--real", real, "--fake", fake, "--inception", weights_file,
                     "--json", "--no-cache", "--device", "cpu", "--num", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"fid", "kid", "kid/std"} and out["fid"] > 0
    assert cli.main(["--metrics", "fid", "--real", real, "--fake", fake, "--inception", weights_file,
                     "--cache-dir", str(tmp_path / "c"), "--device", "cpu", "--resize", "clean"]) == 0
    assert capsys.readouterr().out.startswith("fid: ")


def _tiny_checkpoint(path, data=None):
    """A DCGAN checkpoint (32x32, few channels, trained on ``data``) written with the trainer's checkpoint code."""
    import dataclasses

    from ganops_models.formats import checkpoint
    from ganops_models.training.distributed import DistInfo
    from ganops_models.models.dcgan.options import DCGANOptions
    from ganops_models.models.registry import get_recipe
    from ganops_models.training.recipe import DataInfo
    opts = DCGANOptions(cfg="dcgan-lite", device="cpu", precision="fp32", batch=4, z_dim=8,
                        resolution=(32, 32), aug="noaug", kimg=1, ngf=4, ndf=4, data=data)
    data = DataInfo(resolution=(32, 32))
    recipe = get_recipe("dcgan")(opts, data, torch.device("cpu"), DistInfo())
    checkpoint.save_checkpoint(str(path), model="dcgan", arch=recipe.arch_spec(), options=opts.to_dict(),
                               data=dataclasses.asdict(data), progress={"cur_nimg": 0, "step": 0, "tick": 0},
                               state=recipe.state_dict())
    return str(path)


def test_cli_network_checkpoint(tmp_path, capsys):
    real = _write_images(tmp_path / "real", 3, seed=8)
    ckpt = _tiny_checkpoint(tmp_path / "checkpoint-000000.pt")
    args = ["--metrics", "swd", "--real", real, "--network", ckpt, "--json", "--device", "cpu", "--num", "3"]
    assert cli.main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert set(first) == {"swd", "swd/res32", "swd/res16"} and first["swd"] > 0
    assert cli.main(args) == 0
    assert json.loads(capsys.readouterr().out) == first  # generated images are seeded
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    assert cli.main(["--metrics", "swd", "--real", real, "--network", str(tmp_path / "bad.pt")]) == 2
    assert capsys.readouterr().err.startswith("error: --network: ")


def test_cli_network_latest_run_folder_and_its_own_training_data(tmp_path, capsys, monkeypatch):
    """--network takes 'latest' and a run folder; without --real the network's training data (64x64
    here, the network 32x32) is used, resized with a message, and gives the same SWD as passing it."""
    data = _write_images(tmp_path / "data", 4, seed=9, size=64)
    run = tmp_path / "runs" / "00003-x"
    run.mkdir(parents=True)
    _tiny_checkpoint(run / "checkpoint-000000.000.pt", data=data)
    (run / "checkpoint-000000.004.pt").write_bytes(b"PK\x03\x04 cut short")   # newer but truncated: skipped
    monkeypatch.chdir(tmp_path)
    common = ["--metrics", "swd", "--device", "cpu", "--num", "4"]
    assert cli.main([*common, "--network", "latest"]) == 0
    out, err = capsys.readouterr()
    assert f"network: {os.path.join('runs', '00003-x', 'checkpoint-000000.000.pt')}" in err
    assert "the network's training data, data (4 images)" in err
    assert "real images are 64x64, the generated ones 32x32: resizing the real images to 32x32" in err
    default = float(out.split("swd: ")[1].split()[0])
    assert cli.main([*common, "--network", str(run), "--real", data, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["swd"] == pytest.approx(default, rel=1e-5)
    assert cli.main([*common, "--fake", data]) == 2
    assert "--real is needed with --fake" in capsys.readouterr().err


def test_cli_real_and_fake_of_other_resolutions(tmp_path, capsys):
    real = _write_images(tmp_path / "real", 3, seed=10, size=64)
    fake = _write_images(tmp_path / "fake", 3, seed=11, size=32)
    assert cli.main(["--metrics", "swd", "--real", real, "--fake", fake, "--device", "cpu", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["swd"] > 0


@gpu
def test_gpu_matches_cpu(tmp_path, weights_file):
    """Features (TF32 off, flags restored), FID/KID/SWD on the GPU agree with the CPU."""
    images = (torch.rand(3, 3, 64, 48) * 255).to(torch.uint8)
    flags = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    for mode in resize.RESIZE_MODES:
        cpu = features.InceptionFeatures.load(weights_file, "cpu", mode)(images)
        gpu = features.InceptionFeatures.load(weights_file, "cuda", mode)(images.cuda())
        torch.testing.assert_close(gpu, cpu, rtol=1e-4, atol=1e-5)
    assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == flags
    real = _write_images(tmp_path / "real", 6, seed=10)
    kw = dict(num_gen=5, inception_path=weights_file, cache_dir=False)
    on_cpu = metrics.evaluate("fid,kid,swd", _generator(), real, "cpu", **kw)
    on_gpu = metrics.evaluate("fid,kid,swd", _generator(), real, "cuda", **kw)
    assert on_gpu.keys() == on_cpu.keys()
    for key in on_cpu:
        assert on_gpu[key] == pytest.approx(on_cpu[key], rel=1e-3, abs=1e-6), key


# ---------------------------------------------------------------- the reference implementations
# These run only where pytorch-fid / torch-fidelity (and torchvision) are installed; they compare
# our pipelines with theirs on the same random weights (their weight download is replaced).
def _pytorch_fid():
    return pytest.importorskip("pytorch_fid.inception", reason="pytorch-fid (+ torchvision) not installed")


def test_features_match_pytorch_fid(monkeypatch, weights_file):
    ref_mod = _pytorch_fid()
    monkeypatch.setattr(ref_mod, "load_state_dict_from_url", lambda *a, **k: random_state())
    ref_net = ref_mod.InceptionV3([3]).eval()
    images = (torch.rand(2, 3, 37, 53) * 255).to(torch.uint8)
    with torch.no_grad():
        want = ref_net(images.float() / 255)[0].flatten(1)
    got = features.InceptionFeatures.load(weights_file, resize="pytorch-fid")(images)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_features_match_torch_fidelity(tmp_path, weights_file):
    tf_mod = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3", reason="torch-fidelity not installed")
    ref_net = tf_mod.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                                 feature_extractor_weights_path=weights_file)
    images = (torch.rand(2, 3, 37, 53) * 255).to(torch.uint8)
    with torch.no_grad():
        want = ref_net(images)[0]
    got = features.InceptionFeatures.load(weights_file, resize="tf")(images)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_fid_and_kid_formulas_match_the_references():
    fid_score = pytest.importorskip("pytorch_fid.fid_score", reason="pytorch-fid (+ torchvision) not installed")
    tf_fid = pytest.importorskip("torch_fidelity.metric_fid", reason="torch-fidelity not installed")
    tf_kid = pytest.importorskip("torch_fidelity.metric_kid", reason="torch-fidelity not installed")
    from ganops_models.metrics import fid, kid
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 48)).astype(np.float32)
    y = (rng.standard_normal((260, 48)) * 1.2 + 0.3).astype(np.float32)
    (m1, s1), (m2, s2) = fid.feature_stats(x), fid.feature_stats(y)
    assert fid.frechet_distance(m1, s1, m2, s2) == pytest.approx(
        fid_score.calculate_frechet_distance(m1, s1, m2, s2), rel=1e-10)
    stats = [tf_fid.fid_features_to_statistics(torch.from_numpy(f)) for f in (x, y)]
    want = tf_fid.fid_statistics_to_metric(*stats, verbose=False)["frechet_inception_distance"]
    assert fid.fid_from_features(x, y, method="eig") == pytest.approx(want, rel=1e-4)  # they keep a float32 mean
    want = tf_kid.kid_features_to_metric(torch.from_numpy(x), torch.from_numpy(y), kid_subsets=5,
                                         kid_subset_size=50, verbose=False)
    mean, std = kid.kernel_inception_distance(x, y, num_subsets=5, max_subset_size=50)
    assert mean == pytest.approx(want["kernel_inception_distance_mean"], rel=1e-4)
    assert std == pytest.approx(want["kernel_inception_distance_std"], rel=1e-3)
