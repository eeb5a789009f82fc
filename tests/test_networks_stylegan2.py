"""StyleGAN2 generator / discriminator: shapes, dtypes, architectures, conditioning, truncation,
noise modes, mixed precision and bad input."""
import pytest
import torch

from ganops_models.nn.layers import MappingNetwork, normalize_2nd_moment
from ganops_models.models.stylegan2.network import Discriminator, Generator, MinibatchStdLayer

SMALL = dict(channel_base=256, channel_max=16)


pytestmark = pytest.mark.usefixtures("one_intraop_thread")


def _nets(resolution, g_arch="skip", d_arch="resnet", c_dim=0, **kw):
    torch.manual_seed(0)
    G = Generator(z_dim=16, c_dim=c_dim, w_dim=16, resolution=resolution, mapping_layers=2, architecture=g_arch,
                  **SMALL, **kw)
    D = Discriminator(c_dim=c_dim, resolution=resolution, architecture=d_arch, mbstd_group_size=2, **SMALL, **kw)
    return G, D


@pytest.mark.parametrize("resolution", [(16, 16), (32, 32), (64, 64), (16, 32), (32, 16), (16, 64)])
@pytest.mark.parametrize("arch", ["orig", "skip", "resnet"])
def test_shapes_all_architectures(resolution, arch):
    G, D = _nets(resolution, g_arch=arch, d_arch=arch)
    z = torch.randn(3, 16)
    img = G(z)
    assert img.shape == (3, 3, *resolution) and img.dtype == torch.float32
    assert torch.isfinite(img).all() and img.std() > 0
    logits = D(img)
    assert logits.shape == (3, 1) and logits.dtype == torch.float32 and torch.isfinite(logits).all()
    # every ws entry is consumed: num_ws = 2 per block (1 for the first) + 1 ToRGB
    blocks = len(G.synthesis.blocks)
    assert G.num_ws == 2 * blocks


def test_generator_gradients_reach_every_parameter():
    G, D = _nets((16, 16), g_arch="resnet")
    G.requires_grad_(True)
    D(G(torch.randn(2, 16))).sum().backward()
    missing = [n for n, p in G.named_parameters() if p.grad is None]
    assert missing == []


def test_conditioning_changes_outputs_and_validates_labels():
    G, D = _nets((16, 16), c_dim=4)
    z = torch.randn(2, 16)
    c0, c1 = torch.eye(4)[[0, 0]], torch.eye(4)[[1, 1]]
    a, b = G(z, c0, noise_mode="const"), G(z, c1, noise_mode="const")
    assert (a - b).abs().max() > 1e-4
    assert D(a, c0).shape == (2, 1)
    assert (D(a, c0) - D(a, c1)).abs().max() > 0
    assert D.mapping.num_ws is None and D.cmap_dim == 16


def test_truncation_and_w_avg():
    G, _ = _nets((16, 16))
    G.train()
    z = torch.randn(64, 16)
    assert G.mapping.w_avg.abs().sum() == 0
    ws = G.mapping(z, None, update_w_avg=True)
    assert ws.shape == (64, G.num_ws, 16)
    assert torch.allclose(G.mapping.w_avg, ws[:, 0].mean(0) * (1 - 0.995), atol=1e-6)
    # psi = 0 collapses every layer to w_avg; psi = 1 is the identity; cutoff keeps later layers
    w0 = G.mapping(z[:4], None, truncation_psi=0.0)
    assert torch.allclose(w0, G.mapping.w_avg.expand_as(w0), atol=1e-6)
    w_half = G.mapping(z[:4], None, truncation_psi=0.5, truncation_cutoff=2)
    w_full = G.mapping(z[:4], None)
    assert torch.allclose(w_half[:, 2:], w_full[:, 2:])
    assert torch.allclose(w_half[:, :2], G.mapping.w_avg.lerp(w_full[:, :2], 0.5), atol=1e-6)
    G.eval()
    before = G.mapping.w_avg.clone()
    G.mapping(z, None, update_w_avg=True)
    assert torch.equal(before, G.mapping.w_avg)


def test_noise_modes():
    G, _ = _nets((16, 16))
    for layer in G.modules():
        if hasattr(layer, "noise_strength"):
            layer.noise_strength.data.fill_(0.5)
    z = torch.randn(2, 16)
    assert torch.equal(G(z, noise_mode="const"), G(z, noise_mode="const"))
    assert not torch.equal(G(z, noise_mode="random"), G(z, noise_mode="random"))
    assert not torch.equal(G(z, noise_mode="none"), G(z, noise_mode="const"))
    with pytest.raises(ValueError, match="noise_mode"):
        G(z, noise_mode="sometimes")


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_blocks(precision):
    """The highest-resolution blocks compute in the low dtype; outputs stay float32 and close to the
    float32 network (force_fp32)."""
    G, D = _nets((32, 32), num_fp16_res=2, precision=precision, conv_clamp=256)
    low = {torch.float16: "fp16", torch.bfloat16: "bf16"}
    assert [low.get(b.dtype) for b in G.synthesis.blocks] == [None, None, precision, precision]
    assert [low.get(b.dtype) for b in D.blocks] == [precision, precision, None]
    z = torch.randn(2, 16)
    try:
        img = G(z, noise_mode="const")
    except (RuntimeError, NotImplementedError) as e:  # fp16 convolution kernels may be missing on a CPU
        pytest.skip(f"{precision} convolution unavailable on this device: {e}")
    ref = G(z, noise_mode="const", force_fp32=True)
    assert img.dtype == torch.float32
    assert (img - ref).norm() / ref.norm() < 0.05
    logits, ref_logits = D(ref), D(ref, force_fp32=True)
    assert logits.dtype == torch.float32
    assert (logits - ref_logits).abs().max() < 0.05 * ref_logits.abs().max() + 1e-2


def test_minibatch_std_layer():
    x = torch.randn(6, 4, 3, 3)
    y = MinibatchStdLayer(group_size=3)(x)
    assert y.shape == (6, 5, 3, 3)
    # group g holds samples g, g+2, g+4 (reshape(G, -1, ...)): std over them, averaged
    std = x.reshape(3, 2, 4, 3, 3).std(dim=0, unbiased=False).mean(dim=[1, 2, 3])
    assert torch.allclose(y[:, 4, 0, 0], std.repeat(3), atol=1e-4)
    # a batch that the group size does not divide uses gcd(group, N)
    assert MinibatchStdLayer(4)(torch.randn(6, 4, 3, 3)).shape == (6, 5, 3, 3)


def test_mapping_normalises_inputs():
    z = torch.randn(5, 7) * 10
    assert torch.allclose(normalize_2nd_moment(z).square().mean(1), torch.ones(5), atol=1e-4)
    m = MappingNetwork(z_dim=7, c_dim=0, w_dim=8, num_ws=3, num_layers=2)
    assert torch.allclose(m(z, None), m(z / 10, None), atol=1e-5)


def test_bad_input():
    with pytest.raises(ValueError, match="resolution"):
        Generator(z_dim=8, w_dim=8, resolution=(24, 24), **SMALL)
    with pytest.raises(ValueError, match="resolution"):
        Discriminator(resolution=(8, 64), **SMALL)
    with pytest.raises(ValueError, match="architecture"):
        Generator(z_dim=8, w_dim=8, resolution=16, architecture="unet", **SMALL)
    with pytest.raises(ValueError, match="precision"):
        Discriminator(resolution=16, precision="fp8", **SMALL)
    G, D = _nets((16, 16))
    with pytest.raises(ValueError, match="ws must be"):
        G.synthesis(torch.randn(2, 3, 16))
    with pytest.raises(ValueError, match="img must be"):
        D(torch.randn(2, 3, 32, 32))
