"""style_mixing.py: NVIDIA's grid layout, which layers come from the column seed, errors."""
import numpy as np
import pytest
from PIL import Image

from ganops_models.tools import latent_space, style_mixing
from ganops_models.network_loader import load_network

from helpers import gpu
from latent_helpers import save_checkpoint

pytestmark = pytest.mark.usefixtures("one_intraop_thread")


def _cell(grid, r, c, size=16):
    return grid[r * size:(r + 1) * size, c * size:(c + 1) * size]


def _picture(net, ws):
    return latent_space.synthesize(net.G_ema, ws)[0].permute(1, 2, 0).numpy()


def test_grid_layout(tmp_path):
    ckpt = save_checkpoint(tmp_path / "c.pt")
    out = tmp_path / "sub" / "grid.png"
    assert style_mixing.main(["--network", ckpt, "--rows", "0,1", "--cols", "2-4", "--styles", "0-2",
                              "--out", str(out), "--device", "cpu"]) == 0
    grid = np.asarray(Image.open(out))
    assert grid.shape == (3 * 16, 4 * 16, 3)
    net = load_network(ckpt)
    assert not _cell(grid, 0, 0).any()                                        # top-left empty (black)
    for j, seed in enumerate([2, 3, 4]):                                      # column seeds across the top
        assert np.array_equal(_cell(grid, 0, j + 1), _picture(net, latent_space.seed_ws(net, [seed])))
    for i, seed in enumerate([0, 1]):                                         # row seeds down the left
        assert np.array_equal(_cell(grid, i + 1, 0), _picture(net, latent_space.seed_ws(net, [seed])))
    mix = latent_space.seed_ws(net, [1]).clone()
    mix[:, 0:3] = latent_space.seed_ws(net, [3])[:, 0:3]                      # layers 0-2 from column seed 3
    assert np.array_equal(_cell(grid, 2, 2), _picture(net, mix))
    assert not np.array_equal(_cell(grid, 2, 2), _cell(grid, 0, 2))
    assert not np.array_equal(_cell(grid, 2, 2), _cell(grid, 2, 0))


def test_all_styles_from_the_column_give_the_column_picture(tmp_path):
    ckpt = save_checkpoint(tmp_path / "c.pt")
    net = load_network(ckpt)
    grid = style_mixing.style_mixing_grid(net, [5], [6, 7], list(range(net.G_ema.num_ws)), truncation_psi=0.5)
    assert np.array_equal(_cell(grid, 1, 1), _cell(grid, 0, 1))
    assert np.array_equal(_cell(grid, 1, 2), _cell(grid, 0, 2))


def test_errors(tmp_path, capsys):
    ckpt = save_checkpoint(tmp_path / "c.pt")
    num_ws = load_network(ckpt).G_ema.num_ws
    dcgan = save_checkpoint(tmp_path / "d.pt", model="dcgan", resolution=(32, 32))
    for args, message in [(["--network", dcgan, "--rows", "0", "--cols", "1"], "no mapping network"),
                          (["--network", ckpt, "--rows", "0,-1", "--cols", "1"], "--rows"),
                          (["--network", ckpt, "--rows", "0", "--cols", "a"], "--cols"),
                          (["--network", ckpt, "--rows", "0", "--cols", "1", "--styles", f"0-{num_ws}"],
                           f"{num_ws} style layers")]:
        assert style_mixing.main(args + ["--out", str(tmp_path / "g.png"), "--device", "cpu"]) == 2, args
        assert message in capsys.readouterr().err, args
    assert not (tmp_path / "g.png").exists()


def test_conditional_network_needs_a_class(tmp_path, capsys):
    ckpt = save_checkpoint(tmp_path / "c.pt", label_dim=3)
    args = ["--network", ckpt, "--rows", "0", "--cols", "1", "--device", "cpu"]
    assert style_mixing.main(args + ["--out", str(tmp_path / "a.png")]) == 2
    assert "conditional" in capsys.readouterr().err
    for k in (0, 2):
        assert style_mixing.main(args + ["--class", str(k), "--out", str(tmp_path / f"{k}.png")]) == 0
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "0.png")), np.asarray(Image.open(tmp_path / "2.png")))


@gpu
def test_grid_on_cuda(tmp_path):
    ckpt = save_checkpoint(tmp_path / "c.pt")
    assert style_mixing.main(["--network", ckpt, "--rows", "0", "--cols", "1,2", "--out", str(tmp_path / "g.png"),
                              "--device", "cuda"]) == 0
    assert np.asarray(Image.open(tmp_path / "g.png")).shape == (2 * 16, 3 * 16, 3)
