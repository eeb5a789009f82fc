"""NVIDIA StyleGAN2 pickles (issue #16): safe loading, weights by name, TF conversion, refused and
broken files, generate/convert on pickles, and fine-tuning from a pickle on the CPU.

The pickles are built here with NVIDIA's record structure (tests/nvidia_pickles.py), not by NVIDIA's code."""
import json
import os
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

import nvidia_pickles as nv
from helpers import write_image_folder

from ganops_models import load_network
from ganops_models.tools import convert, generate
from ganops_models.tools.metrics import network_generator_fn
from ganops_models.models.stylegan2.network import Discriminator, Generator
from ganops_models.formats.safe_pickle import safe_load
from ganops_models.errors import UnsafePickleError
from ganops_models.tools.train import main as train_main
from ganops_models.formats import checkpoint as ckpt_lib
from ganops_models.errors import CheckpointError

pytestmark = pytest.mark.usefixtures("one_intraop_thread")

CB, CM = 128, 16          # channel_base, channel_max of the test networks: 16 channels at every block


def _networks(res=16, c_dim=0, g_arch="skip", d_arch="resnet", seed=0, d_mapping_layers=8):
    """ganops G and D with random (non-initial) weights and w_avg, so every parameter matters."""
    torch.manual_seed(seed)
    G = Generator(z_dim=8, c_dim=c_dim, w_dim=8, resolution=res, mapping_layers=2, architecture=g_arch,
                  channel_base=CB, channel_max=CM, precision="fp32")
    D = Discriminator(c_dim=c_dim, resolution=res, architecture=d_arch, channel_base=CB, channel_max=CM,
                      precision="fp32", mapping_layers=d_mapping_layers)
    with torch.no_grad():
        for p in [*G.parameters(), *D.parameters()]:
            p.copy_(torch.randn_like(p) * 0.5 + 0.1)
        G.mapping.w_avg.normal_()
    return G.eval(), D.eval()


def _inputs(c_dim, n=4, res=16):
    z = torch.randn(n, 8)
    c = torch.eye(c_dim)[torch.arange(n) % c_dim] if c_dim else torch.zeros(n, 0)
    return z, c, torch.randn(n, 3, res, res)


def _snapshot(path, G, D, G_ema=None, marker=None, augment_p=0.25, g_arch="skip", d_arch="resnet", **g_kw):
    return nv.write_snapshot(path, G, D, G_ema if G_ema is not None else G, nv.g_kwargs(G, CB, CM, g_arch, **g_kw),
                             nv.d_kwargs(D, CB, CM, d_arch), marker or (path.parent / "marker"), augment_p)


@pytest.mark.parametrize("g_arch,d_arch,c_dim", [("skip", "resnet", 0), ("resnet", "skip", 3), ("orig", "orig", 0)])
def test_snapshot_weights_land_in_the_ganops_parameters(tmp_path, g_arch, d_arch, c_dim):
    G, D = _networks(c_dim=c_dim, g_arch=g_arch, d_arch=d_arch)
    G_ema, _ = _networks(c_dim=c_dim, g_arch=g_arch, d_arch=d_arch, seed=1)
    path = _snapshot(tmp_path / "network-snapshot-000100.pkl", G, D, G_ema, g_arch=g_arch, d_arch=d_arch)
    net = load_network(str(path))
    assert (net.kind, net.source, net.z_dim, net.c_dim, net.resolution, net.augment_p) == \
        ("stylegan2", "nvidia-pytorch", 8, c_dim, (16, 16), 0.25)
    assert net.info["training_set_kwargs"]["path"] == "~/data/toy.zip"
    assert not (tmp_path / "marker").exists()                 # the record's module source was never run
    z, c, img = _inputs(c_dim)
    with torch.no_grad():
        for ours, theirs in ((net.G, G), (net.G_ema, G_ema)):
            for psi, cutoff in ((1, None), (0.6, None), (0.6, 2)):
                expected = theirs(z, c, truncation_psi=psi, truncation_cutoff=cutoff, noise_mode="const")
                assert torch.equal(ours(z, c, truncation_psi=psi, truncation_cutoff=cutoff, noise_mode="const"),
                                   expected)
        assert torch.equal(net.D(img, c), D(img, c))
    # a few names checked against NVIDIA's layout directly
    assert torch.equal(net.G_ema.synthesis.blocks[1].conv0.affine.weight, G_ema.synthesis.blocks[1].conv0.affine.weight)
    state = nv.nvidia_state(G_ema, "G")
    assert torch.equal(net.G_ema.mapping.layers[1].bias, state["mapping.fc1.bias"])
    assert torch.equal(net.G_ema.synthesis.blocks[2].conv1.noise_const, state["synthesis.b16.conv1.noise_const"])
    assert torch.equal(net.D.blocks[0].conv1.weight, nv.nvidia_state(D, "D")["b16.conv1.weight"])
    assert not any(p.requires_grad for p in net.G_ema.parameters())


def test_stylegan3_repos_stylegan2_records(tmp_path):
    """StyleGAN3's train.py passes the synthesis options at the top level of networks_stylegan2.Generator."""
    G, D = _networks(c_dim=2)
    path = nv.write_snapshot(tmp_path / "sg3.pkl", G, D, G, nv.g_kwargs(G, CB, CM, flat=True), nv.d_kwargs(D, CB, CM),
                             tmp_path / "m", src=nv.SRC_STYLEGAN3_SG2)
    net = load_network(str(path))
    z, c, _ = _inputs(2)
    with torch.no_grad():
        assert torch.equal(net.G_ema(z, c, noise_mode="const"), G(z, c, noise_mode="const"))


def test_truncation_to_w_avg(tmp_path):
    G, D = _networks()
    net = load_network(str(_snapshot(tmp_path / "s.pkl", G, D)))
    z, c, _ = _inputs(0)
    with torch.no_grad():
        images = net.G_ema(z, c, truncation_psi=0.0, noise_mode="const")
        at_avg = net.G_ema.synthesis(G.mapping.w_avg.expand(1, G.num_ws, -1), noise_mode="const")
    assert torch.allclose(images, at_avg.expand_as(images), atol=1e-6) and images.std() > 0


@pytest.mark.parametrize("g_arch,d_arch,c_dim", [("skip", "resnet", 0), ("resnet", "skip", 2), ("orig", "orig", 0)])
def test_tensorflow_pickle_variables_are_converted(tmp_path, g_arch, d_arch, c_dim):
    G, D = _networks(c_dim=c_dim, g_arch=g_arch, d_arch=d_arch, d_mapping_layers=0)
    Gs, _ = _networks(c_dim=c_dim, g_arch=g_arch, d_arch=d_arch, seed=1)
    static = dict(latent_size=8, dlatent_size=8, label_size=c_dim, resolution=16, fmap_base=CB // 2, fmap_max=CM,
                  mapping_layers=2, architecture=g_arch, truncation_psi=0.5)
    d_static = dict(label_size=c_dim, resolution=16, fmap_base=CB // 2, fmap_max=CM, architecture=d_arch,
                    mbstd_group_size=4)
    if g_arch == "orig":    # 'orig' told by the ToRGB_lod/FromRGB_lod names alone
        del static["architecture"], d_static["architecture"]
    path = nv.write_tf_pickle(tmp_path / "stylegan2-toy-config-f.pkl", G, D, Gs, static, d_static,
                              lod=g_arch == "orig")
    net = load_network(str(path))
    assert (net.source, net.c_dim, net.augment_p) == ("nvidia-tf", c_dim, None)
    z, c, img = _inputs(c_dim)
    with torch.no_grad():
        for ours, theirs in ((net.G, G), (net.G_ema, Gs)):
            expected = theirs(z, c, truncation_psi=0.7, noise_mode="const")
            assert torch.allclose(ours(z, c, truncation_psi=0.7, noise_mode="const"), expected, atol=1e-5, rtol=1e-5)
        assert torch.allclose(net.D(img, c), D(img, c), atol=1e-5, rtol=1e-5)
    if c_dim:   # the TF D's label mapping has no layers: the training recipe rebuilds that too (d_map 0)
        convert.convert(str(path), str(tmp_path / "c.pt"))
        with torch.no_grad():
            assert torch.allclose(load_network(str(tmp_path / "c.pt")).D(img, c), D(img, c), atol=1e-5, rtol=1e-5)


class _Evil:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _EvalEvil(_Evil):
    def __reduce__(self):
        return eval, (f"open({self.marker!r}, 'w')",)


@pytest.mark.parametrize("evil", [_Evil, _EvalEvil])
def test_malicious_pickles_are_refused_and_never_run(tmp_path, evil):
    marker = tmp_path / "pwned"
    for name, payload in (("top.pkl", evil(marker)), ("nested.pkl", {"G": [evil(marker)], "D": 1, "G_ema": 2})):
        (tmp_path / name).write_bytes(pickle.dumps(payload, protocol=2))
        with pytest.raises(UnsafePickleError, match=r"(posix\.system|builtins\.eval).*not on the allow-list"):
            load_network(str(tmp_path / name))
    assert not marker.exists()


def test_broken_and_foreign_files_give_clear_errors(tmp_path):
    G, D = _networks()
    good = _snapshot(tmp_path / "good.pkl", G, D).read_bytes()
    (tmp_path / "cut.pkl").write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_network(str(tmp_path / "cut.pkl"))
    (tmp_path / "list.pkl").write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    with pytest.raises(CheckpointError, match="not an NVIDIA StyleGAN2 network pickle"):
        load_network(str(tmp_path / "list.pkl"))
    (tmp_path / "image.pkl").write_bytes(b"GIF89a" + bytes(100))
    with pytest.raises(CheckpointError, match="is a GIF image, not a network; expected a ganops checkpoint"):
        load_network(str(tmp_path / "image.pkl"))
    (tmp_path / "noise.pkl").write_bytes(bytes([7, 0, 200, 13]) * 50)
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_network(str(tmp_path / "noise.pkl"))
    # a class of a known NVIDIA module that has no builder
    sg3 = nv.module_record({}, "SuperResolution", "class SynthesisInput(torch.nn.Module): pass\n")
    with nv.nvidia_modules():
        (tmp_path / "sg3.pkl").write_bytes(pickle.dumps({"G": sg3, "D": sg3, "G_ema": sg3}, protocol=3))
    with pytest.raises(CheckpointError, match="training.networks_stylegan3.SuperResolution network, which ganops_models"):
        load_network(str(tmp_path / "sg3.pkl"))


def test_weights_or_options_that_do_not_fit_are_named(tmp_path):
    G, D = _networks()
    src = nv.SRC_NETWORKS.format(marker=str(tmp_path / "m"))
    state = nv.nvidia_state(G, "G")
    state["synthesis.b8.conv0.weight"] = state["synthesis.b8.conv0.weight"][:, :3]
    del state["mapping.fc1.bias"]
    kwargs = nv.g_kwargs(G, CB, CM)
    with nv.nvidia_modules():
        data = {"G": nv.module_record(state, "Generator", src, kwargs),
                "D": nv.module_record(nv.nvidia_state(D, "D"), "Discriminator", src, nv.d_kwargs(D, CB, CM)),
                "G_ema": nv.module_record(nv.nvidia_state(G, "G"), "Generator", src,
                                          {**kwargs, "synthesis_kwargs": {**kwargs["synthesis_kwargs"],
                                                                           "resample_filter": [1, 2, 1]}})}
        (tmp_path / "bad.pkl").write_bytes(pickle.dumps(data, protocol=3))
    with pytest.raises(CheckpointError, match=r"missing mapping\.fc1\.bias.*synthesis\.b8\.conv0\.weight: shape "
                                              r"\[16, 3, 3, 3\] in the file, \[16, 16, 3, 3\] in ganops"):
        load_network(str(tmp_path / "bad.pkl"))
    data["G"] = data["D"] = data["G_ema"]
    with nv.nvidia_modules():
        (tmp_path / "filter.pkl").write_bytes(pickle.dumps(data, protocol=3))
    with pytest.raises(CheckpointError, match=r"resample_filter=\[1, 2, 1\] is not supported"):
        load_network(str(tmp_path / "filter.pkl"))


def test_generate_and_convert_use_the_pickle(tmp_path, capsys):
    G, D = _networks(c_dim=2)
    pkl = _snapshot(tmp_path / "s.pkl", G, D)
    assert generate.main(["--network", str(pkl), "--seeds", "3-4", "--class", "1", "--trunc", "0.7",
                          "--outdir", str(tmp_path / "a"), "--device", "cpu"]) == 0
    z = torch.from_numpy(np.random.RandomState(4).randn(1, 8)).float()
    with torch.no_grad():
        img = G(z, torch.tensor([[0.0, 1.0]]), truncation_psi=0.7, noise_mode="const")
    expected = (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].numpy()
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a" / "seed0004.png")), expected)
    images = network_generator_fn(load_network(str(pkl)), trunc=0.7)(3, 0)    # metrics --network X.pkl
    assert images.shape == (3, 3, 16, 16) and images.dtype == torch.uint8 and images.float().std() > 0
    assert convert.main(["--network", str(pkl), "--out", str(tmp_path / "c.pt")]) == 0
    assert "NVIDIA pickle" in capsys.readouterr().out
    converted = load_network(str(tmp_path / "c.pt"))
    assert converted.source == "ganops" and converted.augment_p == pytest.approx(0.25)
    z, c, img = _inputs(2)
    with torch.no_grad():
        assert torch.equal(converted.G_ema(z, c, noise_mode="const"), G(z, c, noise_mode="const"))
        assert torch.equal(converted.D(img, c), D(img, c))
    assert convert.main(["--network", str(tmp_path / "c.pt"), "--out", str(tmp_path / "d.pt")]) == 2
    assert "not a pickle" in capsys.readouterr().err


def test_fine_tune_from_pickle_then_resume(tmp_path, capsys):
    G, D = _networks(res=16, d_arch="resnet")
    pkl = _snapshot(tmp_path / "s.pkl", G, D, augment_p=0.2)
    data = write_image_folder(tmp_path / "data")
    common = ["--data", str(data), "--outdir", str(tmp_path / "runs"), "--batch", "4", "--tick", "0.004",
              "--snap", "1", "--workers", "0", "--device", "cpu", "--gamma", "0.1"]
    assert train_main(["--resume", str(pkl), "--resolution", "32"] + common) == 2
    assert "has resolution (16, 16)" in capsys.readouterr().err
    assert train_main(["--resume", str(pkl), "--cfg", "paper256"] + common) == 2
    assert "--cfg paper256 sets" in capsys.readouterr().err
    assert train_main(["--resume", str(pkl), "--kimg", "0.004", "--freezed", "2"] + common) == 0
    run = ckpt_lib.run_dirs(str(tmp_path / "runs"))[0]
    assert "resumed from NVIDIA pickle" in open(os.path.join(run, "log.txt")).read()
    opts = json.load(open(os.path.join(run, "options.json")))
    assert (opts["ada_kimg"], opts["ema_rampup"], opts["p"], opts["cbase"], opts["conv_clamp"], opts["freezed"]) == \
        (100, None, pytest.approx(0.2), CB, None, 2)
    assert opts["aug"] == "ada", "fine-tuning continues ADA from the pickle's p, whatever the preset's --aug"
    state = ckpt_lib.load_checkpoint(os.path.join(run, "checkpoint-000000.004.pt"))["state"]
    before = nv.nvidia_state(D, "D")
    # Freeze-D: fromrgb and conv0 of the 16x16 block kept the pickle's values; conv1 and the epilogue moved
    assert torch.equal(state["D"]["blocks.0.fromrgb.weight"], before["b16.fromrgb.weight"])
    assert torch.equal(state["D"]["blocks.0.conv0.bias"], before["b16.conv0.bias"])
    assert not torch.equal(state["D"]["blocks.0.conv1.weight"], before["b16.conv1.weight"])
    assert not torch.equal(state["D"]["b4.out.weight"], before["b4.out.weight"])
    assert torch.allclose(state["G_ema"]["synthesis.blocks.0.const"], G.synthesis.blocks[0].const, atol=0.1)
    assert train_main(["--resume", "latest", "--kimg", "0.008"] + common) == 0
    assert len(ckpt_lib.run_dirs(str(tmp_path / "runs"))) == 1
    assert ckpt_lib.load_checkpoint(os.path.join(run, "checkpoint-000000.008.pt"))["progress"]["step"] == 2


def test_safe_load_reads_numpy_and_tensors_only(tmp_path):
    payload = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "s": np.float64(0.5), "t": torch.arange(3.0)[1:]}
    for protocol in (2, 5):
        (tmp_path / "p.pkl").write_bytes(pickle.dumps(payload, protocol=protocol))
        out = safe_load(str(tmp_path / "p.pkl"))
        assert np.array_equal(out["a"], payload["a"]) and out["s"] == 0.5
        assert torch.equal(out["t"], torch.tensor([1., 2.]))
    (tmp_path / "o.pkl").write_bytes(pickle.dumps(np.array([{"x": 1}], dtype=object), protocol=2))
    with pytest.raises(UnsafePickleError, match="not numeric"):
        safe_load(str(tmp_path / "o.pkl"))
    (tmp_path / "alloc.pkl").write_bytes(pickle.dumps(_Alloc(), protocol=2))
    with pytest.raises(UnsafePickleError, match=r"calls numpy\.ndarray"):
        safe_load(str(tmp_path / "alloc.pkl"))


class _Alloc:
    def __reduce__(self):
        return np.ndarray, ((10 ** 6,),)
