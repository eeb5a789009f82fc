"""StyleGAN3 generator (T and R configs): NVIDIA's layer schedule and filter designs, EMAs, and NVIDIA
StyleGAN3 snapshots (records built in tests/nvidia_pickles.py, not by NVIDIA's code) loading into it."""
import numpy as np
import pytest
import torch
from PIL import Image

import nvidia_pickles as nv

from ganops_models import load_network
from ganops_models.tools import generate
from ganops_models.models.stylegan2.network import Discriminator
from ganops_models.models.stylegan3.network import Generator, LayerSchedule, SynthesisLayer

pytestmark = pytest.mark.usefixtures("one_intraop_thread")

# a tiny StyleGAN3: 16x16, 4 layers + ToRGB, the last one critically sampled, margin 2
TINY = dict(z_dim=8, w_dim=8, img_resolution=16, channel_base=64, channel_max=8, num_layers=4, num_critical=1,
            margin_size=2)
CONFIGS = {"t": {}, "r": dict(conv_kernel=1, use_radial_filters=True)}


def _generator(config, seed=0, c_dim=0):
    """Tiny G with random (non-initial) weights, w_avg and magnitude EMAs, so every one of them matters."""
    torch.manual_seed(seed)
    G = Generator(**TINY, c_dim=c_dim, **CONFIGS[config], precision="fp32")
    with torch.no_grad():
        for name, p in G.named_parameters():
            p.add_(torch.randn_like(p) * (0.05 if name.startswith("synthesis.input.affine") else 0.3))
        G.mapping.w_avg.normal_()
        for name in G.synthesis.layer_names:
            getattr(G.synthesis, name).magnitude_ema.uniform_(0.5, 2.0)
    return G.eval()


def test_layer_schedule_of_stylegan3_t_1024():
    """NVIDIA's layer names (L{i}_{size}_{channels}) of the published StyleGAN3-T 1024x1024 generator."""
    s = LayerSchedule(1024, 3, 32768, 512, 14, 2, 2, 2 ** 2.1, 2 ** 0.3, 10)
    names = [f"L{i}_{int(a)}_{int(b)}" for i, (a, b) in enumerate(zip(s.sizes, s.channels))]
    assert names == ["L0_36_512", "L1_36_512", "L2_52_512", "L3_52_512", "L4_84_512", "L5_148_512", "L6_148_512",
                     "L7_276_323", "L8_276_203", "L9_532_128", "L10_1044_81", "L11_1044_51", "L12_1044_32",
                     "L13_1024_32", "L14_1024_3"]
    assert s.cutoffs[0] == 2 and s.cutoffs[-1] == s.cutoffs[-3] == 512 and s.sampling_rates[-1] == 1024


def test_filters_sizes_and_padding():
    """T: separable Kaiser low-pass filters; R: radial (2-D) down filters except on critically sampled
    layers; every layer maps its input grid to its output grid; filters pass DC with gain 1."""
    for config in ("t", "r"):
        G = _generator(config)
        x = G.synthesis.input(torch.randn(2, 8))
        for i, name in enumerate(G.synthesis.layer_names):
            layer = getattr(G.synthesis, name)
            if layer.is_torgb:
                assert layer.up_filter is None and layer.down_filter is None
            else:
                assert layer.up_filter.ndim == 1 and layer.up_filter.numel() == 6 * layer.up_factor
                radial = config == "r" and i < len(G.synthesis.layer_names) - 2
                assert layer.down_filter.ndim == (2 if radial else 1)
                assert layer.down_filter.sum().item() == pytest.approx(1, abs=1e-5)
                if radial:
                    assert torch.allclose(layer.down_filter, layer.down_filter.t())
                    separable = torch.outer(layer.down_filter.sum(1), layer.down_filter.sum(0))
                    assert not torch.allclose(layer.down_filter, separable, rtol=0.05, atol=0)
            x = layer(x, torch.randn(2, 8))
            assert x.shape == (2, layer.out_channels, layer.out_size, layer.out_size)
        assert x.shape == (2, 3, 16, 16)


def test_emas_truncation_and_bad_input():
    G = _generator("t")
    z = torch.randn(3, 8)
    layer = getattr(G.synthesis, G.synthesis.layer_names[1])
    before_m, before_w = layer.magnitude_ema.clone(), G.mapping.w_avg.clone()
    with torch.no_grad():
        G(z, update_w_avg=True)                                  # eval mode: EMAs frozen
        assert torch.equal(layer.magnitude_ema, before_m) and torch.equal(G.mapping.w_avg, before_w)
        G.train()(z, update_w_avg=True)
        assert not torch.equal(layer.magnitude_ema, before_m) and not torch.equal(G.mapping.w_avg, before_w)
        G.eval()
        images = G(z, truncation_psi=0.0)
        at_avg = G.synthesis(G.mapping.w_avg.expand(1, G.num_ws, -1))
    assert torch.allclose(images, at_avg.expand_as(images), atol=1e-6) and images.std() > 0
    with pytest.raises(ValueError, match=r"ws must be \[N, 6, 8\]"):
        G.synthesis(torch.zeros(1, 5, 8))
    with pytest.raises(ValueError, match="not integer ratios"):
        SynthesisLayer(8, False, False, False, 4, 4, 8, 8, 16, 12, 4, 4, 2, 2)


def _kwargs(config, c_dim):
    """NVIDIA's StyleGAN3 Generator kwargs as its train.py and training loop pass them."""
    extra = dict(conv_kernel=1, use_radial_filters=True) if config == "r" else {}
    return nv.EasyDict(z_dim=8, c_dim=c_dim, w_dim=8, img_resolution=16, img_channels=3,
                       mapping_kwargs=nv.EasyDict(num_layers=2), channel_base=64, channel_max=8, num_layers=4,
                       num_critical=1, margin_size=2, magnitude_ema_beta=0.5 ** (32 / 20000), **extra)


@pytest.mark.parametrize("config,c_dim", [("t", 0), ("r", 2)])
def test_nvidia_stylegan3_snapshot(tmp_path, config, c_dim):
    G, G_ema = _generator(config, 0, c_dim), _generator(config, 1, c_dim)
    torch.manual_seed(2)
    D = Discriminator(c_dim=c_dim, resolution=16, channel_base=64, channel_max=8, precision="fp32").eval()
    path = nv.write_snapshot(tmp_path / "network-snapshot-000200.pkl", G, D, G_ema, _kwargs(config, c_dim),
                             nv.d_kwargs(D, 64, 8), tmp_path / "marker", augment_p=0.1, src=nv.SRC_STYLEGAN3,
                             d_src=nv.SRC_STYLEGAN3_SG2)
    net = load_network(str(path))
    assert (net.kind, net.source, net.z_dim, net.c_dim, net.resolution, net.augment_p) == \
        ("stylegan3", "nvidia-pytorch", 8, c_dim, (16, 16), pytest.approx(0.1))
    assert net.has_w_space and net.G_ema.num_ws == 6
    state = nv.nvidia_state(G_ema, "G")
    assert torch.equal(net.G_ema.mapping.layers[1].weight, state["mapping.fc1.weight"])
    assert torch.equal(net.G_ema.synthesis.L1_20_8.down_filter, state["synthesis.L1_20_8.down_filter"])
    z = torch.randn(3, 8)
    c = torch.eye(c_dim)[torch.arange(3) % c_dim] if c_dim else torch.zeros(3, 0)
    with torch.no_grad():
        for ours, theirs in ((net.G, G), (net.G_ema, G_ema)):
            for psi, cutoff in ((1, None), (0.5, 3)):
                assert torch.equal(ours(z, c, truncation_psi=psi, truncation_cutoff=cutoff),
                                   theirs(z, c, truncation_psi=psi, truncation_cutoff=cutoff))
        img = torch.randn(3, 3, 16, 16)
        assert torch.equal(net.D(img, c), D(img, c))
    # generate: NVIDIA's gen_images.py seed rule and uint8 conversion
    args = ["--network", str(path), "--seeds", "5", "--trunc", "0.7", "--outdir", str(tmp_path / "out"),
            "--device", "cpu"] + (["--class", "1"] if c_dim else [])
    assert generate.main(args) == 0
    z5 = torch.from_numpy(np.random.RandomState(5).randn(1, 8)).float()
    with torch.no_grad():
        expected = G_ema(z5, c[1:2] if c_dim else torch.zeros(1, 0), truncation_psi=0.7)
    expected = (expected.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].numpy()
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "seed0005.png")), expected)


def test_stylegan3_repo_defaults_fill_missing_kwargs(tmp_path):
    """StyleGAN3's train.py leaves num_fp16_res / conv_clamp out: its G and D default to 4 and 256."""
    from ganops_models.formats.nvidia import train_options
    G = _generator("t")
    D = Discriminator(resolution=16, channel_base=64, channel_max=8, precision="fp32")
    d_kwargs = nv.d_kwargs(D, 64, 8)
    del d_kwargs["num_fp16_res"], d_kwargs["conv_clamp"]
    path = nv.write_snapshot(tmp_path / "a.pkl", G, D, G, _kwargs("t", 0), d_kwargs, tmp_path / "m",
                             src=nv.SRC_STYLEGAN3, d_src=nv.SRC_STYLEGAN3_SG2)
    net = load_network(str(path))
    assert net.D.b4.conv.conv_clamp == 256 and net.info["nvidia_kwargs"]["D"]["num_fp16_res"] == 4
    with pytest.raises(Exception, match="num_layers=4 is not NVIDIA's default") as error:  # the tiny schedule
        train_options(net.info["nvidia_kwargs"], "stylegan3")
    assert "conv_clamp" not in str(error.value) and "num_fp16_res" not in str(error.value)   # G and D agree


def test_snapshot_with_unsupported_options_is_refused(tmp_path):
    G = _generator("t")
    D = Discriminator(resolution=16, channel_base=64, channel_max=8, precision="fp32")
    kwargs = _kwargs("t", 0)
    kwargs["mapping_kwargs"]["lr_multiplier"] = 0.1
    path = nv.write_snapshot(tmp_path / "a.pkl", G, D, G, kwargs, nv.d_kwargs(D, 64, 8), tmp_path / "m",
                             src=nv.SRC_STYLEGAN3, d_src=nv.SRC_STYLEGAN3_SG2)
    with pytest.raises(Exception, match="lr_multiplier=0.1"):
        load_network(str(path))
    kwargs = _kwargs("t", 0)
    kwargs["num_layers"] = 5                                  # weights of a 4-layer network
    nv.write_snapshot(tmp_path / "b.pkl", G, D, G, kwargs, nv.d_kwargs(D, 64, 8), tmp_path / "m",
                      src=nv.SRC_STYLEGAN3, d_src=nv.SRC_STYLEGAN3_SG2)
    with pytest.raises(Exception, match="do not fit"):
        load_network(str(tmp_path / "b.pkl"))
    del kwargs["img_resolution"]
    nv.write_snapshot(tmp_path / "c.pkl", G, D, G, kwargs, nv.d_kwargs(D, 64, 8), tmp_path / "m",
                      src=nv.SRC_STYLEGAN3, d_src=nv.SRC_STYLEGAN3_SG2)
    with pytest.raises(Exception, match=r"lacks the options \['img_resolution'\]"):
        load_network(str(tmp_path / "c.pkl"))
