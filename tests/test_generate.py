"""generate.py: images from a checkpoint (files per seed, grid, truncation, classes, errors)."""
import os

import numpy as np
import pytest
import torch
from PIL import Image

from ganops_models.models.stylegan2.options import StyleGAN2Options
from ganops_models import load_network
from ganops_models.tools import generate
from ganops_models.formats import checkpoint as ckpt_lib
from ganops_models.training.distributed import DistInfo
from ganops_models.training.recipe import DataInfo
from ganops_models.models.stylegan2.recipe import StyleGAN2Recipe


pytestmark = pytest.mark.usefixtures("one_intraop_thread")


def _checkpoint(path, label_dim=0):
    opts = StyleGAN2Options(batch=4, cbase=64, cmax=8, z_dim=8, w_dim=8, map=2, num_fp16_res=0, precision="fp32",
                        device="cpu", aug="noaug", cond=label_dim > 0, resolution=(16, 32))
    data = DataInfo((16, 32), label_dim=label_dim, name="toy")
    torch.manual_seed(0)
    recipe = StyleGAN2Recipe(opts, data, torch.device("cpu"), DistInfo())
    with torch.no_grad():   # non-trivial EMA weights and w_avg, so truncation changes the images
        c = torch.eye(label_dim)[torch.arange(64) % label_dim] if label_dim else None
        recipe.G.mapping(torch.randn(64, 8), c, update_w_avg=True)
        recipe.update_ema(1000)
    ckpt_lib.save_checkpoint(str(path), model="stylegan2", arch=recipe.arch_spec(), options=opts.to_dict(),
                             data={"resolution": [16, 32], "num_channels": 3, "label_dim": label_dim, "name": "toy"},
                             progress={"cur_nimg": 0, "step": 0, "tick": 0}, state=recipe.state_dict())
    return path


def _read(path):
    return np.asarray(Image.open(path))


def test_images_per_seed_are_deterministic(tmp_path):
    ckpt = _checkpoint(tmp_path / "c.pt")
    assert generate.main(["--network", str(ckpt), "--seeds", "0-2,7", "--outdir", str(tmp_path / "a"),
                          "--device", "cpu"]) == 0
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == ["seed0000.png", "seed0001.png", "seed0002.png", "seed0007.png"]
    img = _read(tmp_path / "a" / "seed0001.png")
    assert img.shape == (16, 32, 3) and img.dtype == np.uint8 and img.std() > 0
    assert generate.main(["--network", str(ckpt), "--seeds", "1", "--outdir", str(tmp_path / "b"),
                          "--device", "cpu"]) == 0
    assert np.array_equal(_read(tmp_path / "b" / "seed0001.png"), img)
    assert not np.array_equal(_read(tmp_path / "a" / "seed0000.png"), img)
    assert generate.main(["--network", str(ckpt), "--seeds", "1", "--trunc", "0.3", "--outdir",
                          str(tmp_path / "t"), "--device", "cpu"]) == 0
    assert not np.array_equal(_read(tmp_path / "t" / "seed0001.png"), img)


def test_grid_and_generate_function(tmp_path):
    ckpt = _checkpoint(tmp_path / "c.pt")
    assert generate.main(["--network", str(ckpt), "--seeds", "0-4", "--grid", "--outdir", str(tmp_path),
                          "--device", "cpu"]) == 0
    assert _read(tmp_path / "grid.png").shape == (2 * 16, 3 * 32, 3)   # 5 images on a 3x2 grid
    net = load_network(str(ckpt))
    images = generate.generate(net, [3, 4], truncation_psi=0.0)
    assert images.shape == (2, 3, 16, 32)
    assert torch.allclose(images[0], images[1], atol=1e-5)            # psi 0: every seed gives w_avg


def test_conditional_class(tmp_path):
    ckpt = _checkpoint(tmp_path / "c.pt", label_dim=3)
    net = load_network(str(ckpt))
    a = generate.generate(net, [0], class_idx=0)
    b = generate.generate(net, [0], class_idx=2)
    assert not torch.equal(a, b)
    with pytest.raises(ValueError, match="conditional"):
        generate.generate(net, [0])


def test_errors(tmp_path, capsys):
    assert generate.parse_seeds("0-3,9") == [0, 1, 2, 3, 9]
    for bad in ("", "a", "5-2", "-1"):
        with pytest.raises(ValueError, match="--seeds"):
            generate.parse_seeds(bad)
    bad_file = tmp_path / "bad.pt"
    bad_file.write_bytes(b"not a checkpoint")
    assert generate.main(["--network", str(bad_file), "--outdir", str(tmp_path), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "is a text file, not a ganops checkpoint" in err and "a run folder" in err and "'latest'" in err
    assert "weights_only" not in err
    ckpt = _checkpoint(tmp_path / "c.pt")
    assert generate.main(["--network", str(ckpt), "--class", "1", "--outdir", str(tmp_path), "--device", "cpu"]) == 2
    assert "unconditional" in capsys.readouterr().err


def test_grid_of_latest_says_what_it_wrote_and_which_checkpoint(tmp_path, capsys, monkeypatch):
    run = tmp_path / "runs" / "00001-toy"
    run.mkdir(parents=True)
    _checkpoint(run / "checkpoint-000000.000.pt")
    monkeypatch.chdir(tmp_path)
    assert generate.main(["--network", "latest", "--seeds", "0-4", "--grid", "--outdir", "o", "--device", "cpu"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"network: {os.path.join('runs', '00001-toy', 'checkpoint-000000.000.pt')}",
                   f"wrote {os.path.join('o', 'grid.png')}: a 3x2 grid of 5 image(s), seeds 0-4"]
    assert sorted(os.listdir(tmp_path / "o")) == ["grid.png"]


def test_network_may_be_a_run_directory(tmp_path, capsys):
    run = tmp_path / "00003-toy"
    run.mkdir()
    _checkpoint(run / "checkpoint-000000.000.pt")
    (run / "checkpoint-000004.000.pt").write_bytes(b"half-written")     # newer but corrupt: skipped
    assert generate.main(["--network", str(run), "--seeds", "2", "--outdir", str(tmp_path / "o"),
                          "--device", "cpu"]) == 0
    assert (tmp_path / "o" / "seed0002.png").is_file()
    out = capsys.readouterr().out
    assert f"network: {run / 'checkpoint-000000.000.pt'}" in out
    assert f"wrote 1 image(s) to {tmp_path / 'o'} (seed<NNNN>.png)" in out
    empty = tmp_path / "00004-empty"
    empty.mkdir()
    assert generate.main(["--network", str(empty), "--outdir", str(tmp_path), "--device", "cpu"]) == 2
    assert "--network" in capsys.readouterr().err


def test_seed_is_numpy_randomstate_latent_for_checkpoints(tmp_path):
    """NVIDIA's rule for every format: z of seed s = RandomState(s).randn(1, z_dim); uint8 = img*127.5+128."""
    ckpt = _checkpoint(tmp_path / "c.pt")
    assert generate.main(["--network", str(ckpt), "--seeds", "5", "--outdir", str(tmp_path), "--device", "cpu"]) == 0
    net = load_network(str(ckpt))
    z = torch.from_numpy(np.random.RandomState(5).randn(1, 8)).float()
    with torch.no_grad():
        img = net.G_ema(z, torch.zeros([1, 0]), noise_mode="const")
    expected = (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].numpy()
    assert np.array_equal(_read(tmp_path / "seed0005.png"), expected)
