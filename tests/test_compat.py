"""ganops.compat: the StyleGAN2-ADA/StyleGAN3 and rosinality op APIs, used exactly as those repos'
networks use them, checked against references written from the documented semantics in plain torch."""
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganops.compat import rosinality as ros
from ganops.compat.stylegan2_ada import (bias_act, conv2d_gradfix, conv2d_resample, fma, grid_sample_gradfix,
                                         upfirdn2d)
from helpers import assert_close

torch.backends.cudnn.allow_tf32 = False
torch.backends.cuda.matmul.allow_tf32 = False


# ----------------------------------------------------------------------------- plain-torch references

def ref_upfirdn2d(x, f, up=1, down=1, pad=(0, 0, 0, 0), gain=1.0):
    """Zero-insert by `up`, pad/crop by (x0, x1, y0, y1), true convolution with f (2-D), keep every
    `down`-th sample; `f` is scaled by `gain`."""
    n, c, h, w = x.shape
    x = x.reshape(n, c, h, 1, w, 1)
    x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1]).reshape(n, c, h * up, w * up)
    x0, x1, y0, y1 = pad
    x = F.pad(x, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    x = x[:, :, max(-y0, 0): x.shape[2] - max(-y1, 0), max(-x0, 0): x.shape[3] - max(-x1, 0)]
    k = (f * gain).flip([0, 1])[None, None].repeat(c, 1, 1, 1).to(x.dtype)
    x = F.conv2d(x, k, groups=c)
    return x[:, :, ::down, ::down]


def fir_2d(taps=(1, 3, 3, 1)):
    f = torch.tensor(taps, dtype=torch.float64)
    f = torch.outer(f, f)
    return f / f.sum()


def ref_conv2d_resample(x, w, f, up=1, down=1, padding=0):
    """StyleGAN2-ADA's generic conv2d_resample: upsample+FIR, correlate with w, FIR+downsample."""
    fh = fw = f.shape[0]
    p = [padding] * 4
    if up > 1:
        p = [p[0] + (fw + up - 1) // 2, p[1] + (fw - up) // 2, p[2] + (fh + up - 1) // 2, p[3] + (fh - up) // 2]
    if down > 1:
        p = [p[0] + (fw - down + 1) // 2, p[1] + (fw - down) // 2, p[2] + (fh - down + 1) // 2, p[3] + (fh - down) // 2]
    if up > 1:
        x = ref_upfirdn2d(x, f, up=up, pad=p, gain=up * up)
    else:
        x = F.pad(x, [p[0], p[1], p[2], p[3]])
    x = F.conv2d(x, w.to(x.dtype))
    if down > 1:
        x = ref_upfirdn2d(x, f, down=down)
    return x


def ref_modulated_conv(x, weight, styles, noise, f, up, padding, demodulate=True):
    w = weight[None] * styles[:, None, :, None, None]
    d = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt() if demodulate else torch.ones(w.shape[:2], dtype=x.dtype)
    out = torch.stack([ref_conv2d_resample(x[i:i + 1], w[i], f, up=up, padding=padding)[0] for i in range(x.shape[0])])
    return out * d[:, :, None, None] + noise


# ----------------------------------------------------------------------------- StyleGAN2-ADA usage

class SG2SynthesisLayer(torch.nn.Module):
    """The modulated conv + noise + bias_act of StyleGAN2-ADA's networks.py, on the compat ops."""

    def __init__(self, in_ch, out_ch, w_dim, up, k=3, fused_modconv=False, conv_clamp=None):
        super().__init__()
        self.up, self.padding, self.fused = up, k // 2, fused_modconv
        self.affine = torch.nn.Linear(w_dim, in_ch)
        self.weight = torch.nn.Parameter(torch.randn(out_ch, in_ch, k, k))
        self.bias = torch.nn.Parameter(torch.randn(out_ch) * 0.1)
        self.register_buffer("resample_filter", upfirdn2d.setup_filter([1, 3, 3, 1]))
        self.act_gain = bias_act.activation_funcs["lrelu"].def_gain
        self.conv_clamp = conv_clamp

    def forward(self, x, w, noise):
        styles = self.affine(w)
        n, i = styles.shape
        weight = self.weight[None] * styles[:, None, :, None, None]
        dcoefs = (weight.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
        if self.fused:
            weight = (weight * dcoefs[:, :, None, None, None]).reshape(-1, i, *self.weight.shape[2:])
            x = conv2d_resample.conv2d_resample(x=x.reshape(1, -1, *x.shape[2:]), w=weight, f=self.resample_filter,
                                                up=self.up, padding=self.padding, groups=n)
            x = x.reshape(n, -1, *x.shape[2:]) + noise
        else:
            x = x * styles.reshape(n, -1, 1, 1)
            x = conv2d_resample.conv2d_resample(x=x, w=self.weight, f=self.resample_filter, up=self.up,
                                                padding=self.padding)
            x = fma.fma(x, dcoefs.reshape(n, -1, 1, 1), noise)
        return bias_act.bias_act(x, self.bias.to(x.dtype), act="lrelu", gain=self.act_gain, clamp=self.conv_clamp)


@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("fused", [False, True], ids=["modconv", "fused_modconv"])
def test_stylegan2_synthesis_layer_matches_reference(up, fused):
    torch.manual_seed(up + 2 * fused)
    layer = SG2SynthesisLayer(5, 7, 6, up=up, fused_modconv=fused, conv_clamp=1.5).double()
    layer.resample_filter = layer.resample_filter.float()  # filters stay float32, as NVIDIA's ops require
    x = torch.randn(2, 5, 6, 7, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 6, dtype=torch.float64)
    noise = torch.randn(2, 1, 6 * up, 7 * up, dtype=torch.float64) * 0.1
    y = layer(x, w, noise)
    styles = layer.affine(w)
    pre = ref_modulated_conv(x, layer.weight, styles, noise, fir_2d().double(), up, 1)
    expected = (F.leaky_relu(pre + layer.bias[None, :, None, None], 0.2) * math.sqrt(2)).clamp(-1.5, 1.5)
    assert_close(y, expected, torch.float64, "synthesis layer")
    g = torch.randn_like(y)
    gx, gw = torch.autograd.grad(y, [x, layer.weight], g)
    ex, ew = torch.autograd.grad(expected, [x, layer.weight], g)
    assert_close(gx, ex, torch.float64, "d/dx")
    assert_close(gw, ew, torch.float64, "d/dweight")


def test_torgb_with_skip_upsampling():
    torch.manual_seed(0)
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    img = torch.randn(2, 3, 5, 6, dtype=torch.float64, requires_grad=True)
    rgb = torch.randn(2, 3, 10, 12, dtype=torch.float64)
    y = upfirdn2d.upsample2d(img, f) + rgb
    expected = ref_upfirdn2d(img, fir_2d(), up=2, pad=(2, 1, 2, 1), gain=4) + rgb
    assert_close(y, expected, torch.float64, "skip upsample")
    g = torch.randn_like(y)
    assert_close(torch.autograd.grad(y, img, g)[0], torch.autograd.grad(expected, img, g)[0], torch.float64, "grad")


def test_discriminator_block_downsampling_and_residual():
    torch.manual_seed(1)
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    x = torch.randn(3, 4, 9, 8, dtype=torch.float64, requires_grad=True)
    w_conv = torch.randn(6, 4, 3, 3, dtype=torch.float64) / 6
    w_skip = torch.randn(6, 4, 1, 1, dtype=torch.float64) / 2
    y = conv2d_resample.conv2d_resample(x=x, w=w_conv, f=f, down=2, padding=1)
    skip = conv2d_resample.conv2d_resample(x=x, w=w_skip, f=f, down=2)
    assert_close(y, ref_conv2d_resample(x, w_conv, fir_2d(), down=2, padding=1), torch.float64, "3x3 down")
    assert_close(skip, ref_conv2d_resample(x, w_skip, fir_2d(), down=2), torch.float64, "1x1 down")
    blurred = upfirdn2d.filter2d(x, f)
    assert_close(blurred, ref_upfirdn2d(x, fir_2d(), pad=(2, 1, 2, 1)), torch.float64, "filter2d")
    down = upfirdn2d.downsample2d(x, f)
    assert_close(down, ref_upfirdn2d(x, fir_2d(), down=2, pad=(1, 1, 1, 1)), torch.float64, "downsample2d")


def test_bias_act_impl_values_and_table():
    x = torch.randn(4, 5, 3, 3)
    b = torch.randn(5)
    expected = F.leaky_relu(x + b[None, :, None, None], 0.2) * math.sqrt(2)
    for impl in ("cuda", "ref"):  # 'cuda' on CPU tensors quietly uses the reference, as NVIDIA's op does
        assert_close(bias_act.bias_act(x, b, act="lrelu", impl=impl), expected.double(), torch.float32, impl)
    assert bias_act.activation_funcs["relu"].def_gain == pytest.approx(math.sqrt(2))
    assert bias_act.activation_funcs["tanh"].def_gain == 1
    assert bias_act.activation_funcs["lrelu"].def_alpha == pytest.approx(0.2)
    with pytest.raises(ValueError, match="impl"):
        bias_act.bias_act(x, b, impl="triton")


def test_fma_broadcast_gradients():
    a = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, 3, 1, 1, dtype=torch.float64, requires_grad=True)
    c = torch.randn(2, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fma.fma, (a, b, c))
    assert torch.autograd.gradgradcheck(fma.fma, (a, b, c))


def _tiny_d(conv, x, w1, w2):
    h = F.leaky_relu(conv(x, w1, padding=1), 0.2)
    return conv(h, w2, stride=2).mean(dim=[1, 2, 3])


def test_r1_with_no_weight_gradients_matches_plain_autograd(monkeypatch):
    monkeypatch.setattr(conv2d_gradfix, "enabled", True)
    torch.manual_seed(2)
    w1 = torch.randn(4, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    w2 = torch.randn(2, 4, 3, 3, dtype=torch.float64, requires_grad=True)
    reals = torch.randn(3, 3, 8, 8, dtype=torch.float64, requires_grad=True)

    logits = _tiny_d(conv2d_gradfix.conv2d, reals, w1, w2)
    with conv2d_gradfix.no_weight_gradients():
        assert conv2d_gradfix.weight_gradients_disabled
        (g,) = torch.autograd.grad(logits.sum(), [reals], create_graph=True)
    assert not conv2d_gradfix.weight_gradients_disabled
    penalty = g.square().sum(dim=[1, 2, 3]).mean()
    grads = torch.autograd.grad(penalty, [w1, w2])

    ref_logits = _tiny_d(F.conv2d, reals, w1, w2)
    (ref_g,) = torch.autograd.grad(ref_logits.sum(), [reals], create_graph=True)
    ref_grads = torch.autograd.grad(ref_g.square().sum(dim=[1, 2, 3]).mean(), [w1, w2])
    assert_close(g, ref_g, torch.float64, "R1 gradient")
    for got, want in zip(grads, ref_grads):
        assert_close(got, want, torch.float64, "penalty weight gradient")


def test_no_weight_gradients_skips_the_weight_gradient(monkeypatch):
    monkeypatch.setattr(conv2d_gradfix, "enabled", True)
    x = torch.randn(2, 3, 6, 6, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, requires_grad=True)
    y = conv2d_gradfix.conv2d(x, w, padding=1)
    with conv2d_gradfix.no_weight_gradients():
        gx, gw = torch.autograd.grad(y.sum(), [x, w], allow_unused=True, materialize_grads=False)
    assert gx is not None and gw is None


def test_grid_sample_gradfix_enabled_and_disabled_agree(monkeypatch):
    x = torch.randn(2, 3, 5, 6, dtype=torch.float64)
    grid = torch.rand(2, 4, 7, 2, dtype=torch.float64) * 2.2 - 1.1
    plain = grid_sample_gradfix.grid_sample(x, grid)
    monkeypatch.setattr(grid_sample_gradfix, "enabled", True)
    fixed = grid_sample_gradfix.grid_sample(x, grid)
    assert_close(fixed, plain, torch.float64, "grid_sample")


# ----------------------------------------------------------------------------- rosinality usage

def make_kernel(k):
    k = torch.tensor(k, dtype=torch.float32)
    k = k[None, :] * k[:, None] if k.ndim == 1 else k
    return k / k.sum()


class RosUpsample(torch.nn.Module):
    def __init__(self, kernel, factor=2):
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_kernel(kernel) * factor ** 2)
        p = self.kernel.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x):
        return ros.upfirdn2d(x, self.kernel, up=self.factor, down=1, pad=self.pad)


class RosDownsample(torch.nn.Module):
    def __init__(self, kernel, factor=2):
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_kernel(kernel))
        p = self.kernel.shape[0] - factor
        self.pad = ((p + 1) // 2, p // 2)

    def forward(self, x):
        return ros.upfirdn2d(x, self.kernel, up=1, down=self.factor, pad=self.pad)


class RosStyledConvTail(torch.nn.Module):
    """The conv + FusedLeakyReLU tail of rosinality's StyledConv / ConvLayer."""

    def __init__(self, cin, cout):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(cout, cin, 3, 3))
        self.activate = ros.FusedLeakyReLU(cout)

    def forward(self, x):
        return self.activate(ros.conv2d_gradfix.conv2d(x, self.weight / 3, padding=1))


def test_rosinality_resampling_matches_reference():
    x = torch.randn(2, 3, 7, 6)
    up, down = RosUpsample([1, 3, 3, 1]), RosDownsample([1, 3, 3, 1])
    k = make_kernel([1, 3, 3, 1]).double()
    assert_close(up(x), ref_upfirdn2d(x.double(), k * 4, up=2, pad=(2, 1, 2, 1)), torch.float32, "Upsample")
    assert_close(down(x), ref_upfirdn2d(x.double(), k, down=2, pad=(1, 1, 1, 1)), torch.float32, "Downsample")
    asym = ros.upfirdn2d(x, k.float(), up=(2, 1), down=1, pad=(1, 2, 0, 1))
    assert asym.shape == (2, 3, 7 + 0 + 1 - 3, 12 + 3 - 3)


@pytest.mark.parametrize("slope", [0.2, 0.05])
def test_fused_leaky_relu_honours_negative_slope(slope):
    x = torch.randn(3, 4, 5, 5, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, requires_grad=True)
    y = ros.fused_leaky_relu(x, b, negative_slope=slope, scale=1.7)
    expected = F.leaky_relu(x + b[None, :, None, None], slope) * 1.7
    assert_close(y, expected, torch.float64, "fused_leaky_relu")
    g = torch.randn_like(y)
    for got, want in zip(torch.autograd.grad(y, [x, b], g), torch.autograd.grad(expected, [x, b], g)):
        assert_close(got, want, torch.float64, "gradient")
    fc = ros.fused_leaky_relu(torch.randn(5, 4, dtype=torch.float64), b.detach())  # EqualLinear's 2-D use
    assert fc.shape == (5, 4)


def test_fused_leaky_relu_state_dict_loads_unchanged():
    original = {"weight": torch.randn(6, 5, 3, 3), "activate.bias": torch.randn(6)}  # rosinality's names
    layer = RosStyledConvTail(5, 6)
    layer.load_state_dict(original, strict=True)
    assert torch.equal(layer.activate.bias, original["activate.bias"])
    x = torch.randn(2, 5, 4, 4)
    pre = F.conv2d(x, original["weight"] / 3, padding=1) + original["activate.bias"][None, :, None, None]
    assert_close(layer(x), (F.leaky_relu(pre, 0.2) * math.sqrt(2)).double(), torch.float32, "StyledConv tail")
    assert ros.FusedLeakyReLU(3, bias=False).bias is None


def test_import_compiles_nothing_and_works_without_the_extension():
    code = ("import sys, warnings; sys.modules['ganops._C'] = None; warnings.simplefilter('ignore');"
            "from ganops.compat.stylegan2_ada import bias_act, upfirdn2d, conv2d_resample, conv2d_gradfix, fma, grid_sample_gradfix;"
            "from ganops.compat.rosinality import FusedLeakyReLU, fused_leaky_relu, upfirdn2d, conv2d_gradfix;"
            "import torch; print(float(fused_leaky_relu(torch.ones(1, 1), torch.zeros(1))[0, 0]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert float(result.stdout.strip()) == pytest.approx(math.sqrt(2))


def test_upfirdn2d_on_numpy_filter_list():
    f = upfirdn2d.setup_filter(np.array([1.0, 2.0, 1.0]))
    assert f.shape == (3, 3) and float(f.sum()) == pytest.approx(1.0)
