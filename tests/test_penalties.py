"""Gradient penalties and their fused per-sample sum of squares, against float64 references.

References are the plain-PyTorch formulas of StyleGAN2-ADA's loss.py / WGAN-GP evaluated in float64
(autograd through reference ops); the penalties' gradients w.r.t. the networks' weights go through
the double-backward graph.
"""
import copy
import math

import pytest
import torch
import torch.nn.functional as F

import ganops
from ganops import _registry
from ganops.ref import conv2d_gradfix
from ganops.ops.penalties import gradient_penalty, path_length_penalty, r1_penalty
from ganops.ops.sum_squares import sum_squares
from helpers import HAS_GPU, assert_close, backend_cases, make_input

CASES = backend_cases()


@pytest.fixture(autouse=True)
def _no_tf32():
    """fp32 convolutions on the GPU must be fp32 (not TF32) to compare with float64 references."""
    previous = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32 = previous


# --- the fused reduction ---------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "noncontig"])
def test_sum_squares_all_orders(case, dtype, layout):
    impl, device = case
    torch.manual_seed(0)
    x = make_input((3, 4, 5, 7), dtype, device, layout, requires_grad=True)
    gy = torch.randn(3, device=device, requires_grad=True)
    v = make_input(x.shape, dtype, device)
    scale = 0.37

    def all_orders(xx, gg, vv, op):
        out = op(xx)
        (gx,) = torch.autograd.grad(out, xx, gg, create_graph=True)
        s_x, s_g = torch.autograd.grad((gx * vv).sum(), (xx, gg))
        return [out, gx, s_x, s_g]

    fast = all_orders(x, gy, v, lambda t: sum_squares(t, scale, impl=impl))
    up = [t.detach().double().requires_grad_(True) for t in (x, gy)]
    ref = all_orders(up[0], up[1], v.double(), lambda t: t.square().sum((1, 2, 3)) * scale)
    assert fast[0].dtype == torch.float32 and fast[1].dtype == dtype
    if layout == "channels_last" and impl != "ref":
        assert fast[1].is_contiguous(memory_format=torch.channels_last), "fast grad keeps the input's layout"
    for name, a, b in zip(["sum", "grad x", "2nd order x", "2nd order grad_out"], fast, ref):
        assert_close(a, b, dtype, f"{impl} {name}")


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("shape", [(1, 1), (2, 20001), (5, 3, 1, 2)])
def test_sum_squares_shapes(case, shape):
    """Batch 1, one element, several partial-sum chunks per sample, odd sizes."""
    impl, device = case
    torch.manual_seed(1)
    x = make_input(shape, torch.float32, device, requires_grad=True)
    out = sum_squares(x, 2.0, impl=impl)
    ref = x.detach().double().reshape(shape[0], -1).square().sum(1) * 2.0
    assert_close(out, ref, torch.float32, f"{impl} sum")
    gy = torch.randn(shape[0], device=device)
    (gx,) = torch.autograd.grad(out, x, gy)
    assert_close(gx, 4.0 * gy.double().reshape(-1, *[1] * (len(shape) - 1)) * x.double(), torch.float32,
                 f"{impl} grad x")


@pytest.mark.parametrize("case", CASES)
def test_sum_squares_gradgradcheck_float64(case):
    impl, device = case
    torch.manual_seed(2)
    x = torch.randn(2, 3, 4, dtype=torch.float64, device=device, requires_grad=True)
    op = lambda t: sum_squares(t, 0.5, impl=impl)  # noqa: E731
    assert_close(op(x), x.detach().square().sum((1, 2)) * 0.5, torch.float64, f"{impl} float64 sum")
    assert torch.autograd.gradcheck(op, (x,), fast_mode=True)
    assert torch.autograd.gradgradcheck(op, (x,), fast_mode=True)


@pytest.mark.parametrize("case", CASES)
def test_sum_squares_compile_fullgraph(case):
    """No graph breaks through the custom ops and their autograd (inductor on the GPU; aot_eager on
    the CPU, which traces the same graphs and runs the kernels eagerly)."""
    impl, device = case
    x = torch.randn(4, 3, 8, 8, device=device, requires_grad=True)
    backend = "inductor" if HAS_GPU else "aot_eager"
    torch._dynamo.reset()
    compiled = torch.compile(lambda t: sum_squares(t, 1.5, impl=impl), fullgraph=True, backend=backend)
    out = compiled(x)
    assert_close(out, x.detach().double().square().sum((1, 2, 3)) * 1.5, torch.float32, "compiled sum")
    (gx,) = torch.autograd.grad(out.sum(), x)
    assert_close(gx, 3.0 * x.double(), torch.float32, "compiled grad")


# --- discriminators / generator used by the penalty tests -----------------------------------------

class GanopsD(torch.nn.Module):
    """conv (ganops conv2d_gradfix) -> ganops.bias_act lrelu -> ganops.downsample2d -> conv -> swish -> fc."""

    def __init__(self, c=3, res=8):
        super().__init__()
        self.w1 = torch.nn.Parameter(torch.randn(6, c, 3, 3) * 0.4)
        self.b1 = torch.nn.Parameter(torch.randn(6) * 0.1)
        self.w2 = torch.nn.Parameter(torch.randn(5, 6, 3, 3) * 0.3)
        self.b2 = torch.nn.Parameter(torch.randn(5) * 0.1)
        self.fc = torch.nn.Parameter(torch.randn(5 * (res // 2) ** 2, 1) * 0.2)
        self.register_buffer("f", ganops.setup_filter([1, 3, 3, 1]))

    def forward(self, x):
        x = ganops.bias_act(conv2d_gradfix.conv2d(x, self.w1.to(x.dtype), padding=1), self.b1.to(x.dtype), act="lrelu")
        x = ganops.downsample2d(x, self.f)
        x = ganops.bias_act(conv2d_gradfix.conv2d(x, self.w2.to(x.dtype), padding=1), self.b2.to(x.dtype), act="swish")
        return x.flatten(1) @ self.fc.to(x.dtype)


class TorchD(torch.nn.Module):
    """Plain torch ops: conv -> softplus -> avg_pool -> conv -> tanh -> fc."""

    def __init__(self, c=3, res=8):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(c, 6, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(6, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4 * (res // 2) ** 2, 1)

    def forward(self, x):
        x = F.avg_pool2d(F.softplus(self.conv1(x)), 2)
        return self.fc(torch.tanh(self.conv2(x)).flatten(1))


def _assert_param_grads_close(module, module64, what):
    """Gradients of every parameter against the float64 copy's (None only where both are None:
    e.g. a final bias has no influence on an input gradient)."""
    for (name, p), p64 in zip(module.named_parameters(), module64.parameters()):
        if p64.grad is None:
            assert p.grad is None, f"{what}: {name} has a gradient, the reference has none"
            continue
        assert p.grad is not None, f"{what}: {name} has no gradient"
        assert_close(p.grad, p64.grad, torch.float32, f"{what} w.r.t. {name}", factor=20)


def _ref_r1(D, images, gamma):
    """StyleGAN2-ADA loss.py's R1, literally."""
    images = images.detach().requires_grad_(True)
    logits = D(images)
    (grads,) = torch.autograd.grad(outputs=[logits.sum()], inputs=[images], create_graph=True, only_inputs=True)
    return grads.square().sum([1, 2, 3]) * (gamma / 2)


# --- R1 --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("D_cls", [GanopsD, TorchD], ids=["ganops-D", "torch-D"])
@pytest.mark.parametrize("reduce", ["none", "mean"])
def test_r1_matches_reference(case, D_cls, reduce):
    impl, device = case
    torch.manual_seed(3)
    D = D_cls().to(device)
    D64 = copy.deepcopy(D).double()
    images = make_input((3, 3, 8, 8), torch.float32, device, requires_grad=True)
    penalty = r1_penalty(images, D(images), gamma=10.0, reduce=reduce, impl=impl)
    penalty.sum().backward()
    ref = _ref_r1(D64, images.double(), 10.0)
    ref = ref.mean() if reduce == "mean" else ref
    ref.sum().backward()
    assert penalty.shape == ref.shape
    assert_close(penalty, ref, torch.float32, f"{impl} R1", factor=10)
    _assert_param_grads_close(D, D64, f"{impl} R1 grad")


def test_r1_computes_the_input_gradient_without_weight_gradients():
    seen = []

    class Probe(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, g):
            seen.append(conv2d_gradfix.weight_gradients_disabled())
            return g

    D = TorchD()
    images = torch.randn(2, 3, 8, 8, requires_grad=True)
    penalty = r1_penalty(images, D(Probe.apply(images)), gamma=1.0, reduce="sum")
    assert seen == [True]
    penalty.backward()
    for name, p in D.named_parameters():  # the final bias does not enter the input gradient
        assert (p.grad is None) == (name == "fc.bias"), name
        assert p.grad is None or p.grad.abs().sum() > 0, f"zero gradient for {name}"


# --- R1 through an ADA-like augmentation pipeline ---------------------------------------------------

def augment(images, theta, impl):
    """Geometric (rotation + scaling via ganops.grid_sample) then filtering (ganops.upfirdn2d with a
    4-band filter bank mixed per sample, like ADA's), then a 3x3 conv filter bank per channel."""
    n, c = images.shape[:2]
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    x = ganops.grid_sample(images, grid, impl=impl)
    f = ganops.setup_filter([1, 2, 1], device=images.device)
    x = ganops.upfirdn2d(x, f, padding=1, impl=impl)
    bank = torch.tensor([[0.0, -0.25, 0.0], [-0.25, 2.0, -0.25], [0.0, -0.25, 0.0]], device=images.device)
    x = conv2d_gradfix.conv2d(x, bank.to(x.dtype).expand(c, 1, 3, 3), padding=1, groups=c)
    return x


def _theta(n, device):
    angle = torch.rand(n, device=device) * 2 * math.pi
    scale = torch.exp2(torch.randn(n, device=device) * 0.2)
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    zero = torch.zeros_like(cos)
    return torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)


@pytest.mark.parametrize("case", CASES)
def test_r1_through_augmentation_matches_reference(case):
    impl, device = case
    torch.manual_seed(4)
    D = TorchD().to(device)
    D64 = copy.deepcopy(D).double()
    images = make_input((2, 3, 8, 8), torch.float32, device, requires_grad=True)
    theta = _theta(2, device)
    penalty = r1_penalty(images, D(augment(images, theta, impl)), gamma=2.0, impl=impl)
    penalty.sum().backward()
    images64 = images.detach().double().requires_grad_(True)
    ref = r1_penalty(images64, D64(augment(images64, theta.double(), "ref")), gamma=2.0, impl="ref")
    ref.sum().backward()
    assert_close(penalty, ref, torch.float32, f"{impl} R1 through augmentation", factor=10)
    _assert_param_grads_close(D, D64, f"{impl} augmented R1 grad")


def _torch_grid_sample_has_double_backward() -> bool:
    """torch's grid_sampler_2d_backward got a derivative only in later torch releases (not in 2.11)."""
    x = torch.zeros(1, 1, 2, 2, dtype=torch.float64, requires_grad=True)
    w = torch.ones(1, 1, 1, 1, dtype=torch.float64, requires_grad=True)
    y = F.grid_sample(x, torch.zeros(1, 1, 1, 2, dtype=torch.float64), align_corners=False)
    (gx,) = torch.autograd.grad((y * w).sum(), x, create_graph=True)
    try:
        torch.autograd.grad(gx.sum(), w)
    except RuntimeError as exc:
        if "not implemented" in str(exc):
            return False
        raise
    return True


def test_augmented_r1_reference_matches_torch_double_backward():
    """Independent check of the reference's second order: where torch's grid_sampler has a double
    backward, R1 through torch's grid_sample gives the same penalty gradients in float64."""
    if not _torch_grid_sample_has_double_backward():
        pytest.skip(f"torch {torch.__version__}'s grid_sampler_2d has no double backward")
    torch.manual_seed(9)
    D = TorchD().double()
    D_torch = copy.deepcopy(D)
    images = torch.randn(2, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    grid = F.affine_grid(_theta(2, "cpu").double(), [2, 3, 8, 8], align_corners=False)
    ours = r1_penalty(images, D(ganops.grid_sample(images, grid, impl="ref")), gamma=1.0, reduce="sum")
    ours.backward()
    theirs = r1_penalty(images, D_torch(F.grid_sample(images, grid, align_corners=False)), gamma=1.0, reduce="sum")
    theirs.backward()
    assert_close(ours, theirs, torch.float64, "R1 through grid_sample vs torch")
    for (name, p), q in zip(D.named_parameters(), D_torch.parameters()):
        if q.grad is not None:
            assert_close(p.grad, q.grad, torch.float64, f"R1 grad w.r.t. {name} vs torch")


@pytest.mark.parametrize("case", CASES)
def test_augmentation_ops_gradgradcheck_float64(case):
    """grid_sample, upfirdn2d and the filter-bank conv under double backward, w.r.t. the images."""
    impl, device = case
    torch.manual_seed(5)
    probe = torch.zeros(1, 1, 4, 4, dtype=torch.float64, device=device)
    # upfirdn2d's fast kernels may not take float64 (grid_sample's do): then its reference.
    impl_up = "ref" if _registry.unavailable_reason("upfirdn2d", impl, probe) else impl
    theta = _theta(1, device).double()
    images = torch.randn(1, 2, 4, 4, dtype=torch.float64, device=device, requires_grad=True)

    def pipeline(x):
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        y = ganops.grid_sample(x, grid, impl=impl)
        y = ganops.upfirdn2d(y, ganops.setup_filter([1, 2, 1], device=device), padding=1, impl=impl_up)
        bank = torch.tensor([[0.0, 1.0, 0.0], [1.0, -3.0, 1.0], [0.0, 1.0, 0.0]], dtype=x.dtype, device=device)
        return conv2d_gradfix.conv2d(y, bank.expand(2, 1, 3, 3), padding=1, groups=2)

    assert torch.autograd.gradgradcheck(pipeline, (images,), fast_mode=True)


# --- path length -----------------------------------------------------------------------------------

class TinyG(torch.nn.Module):
    """ws [N, num_ws, w_dim] -> images [N, 3, 8, 8]: per-layer affine styles, a conv, nearest upsample."""

    def __init__(self, num_ws=3, w_dim=5):
        super().__init__()
        self.const = torch.nn.Parameter(torch.randn(1, 4, 4, 4))
        self.affine = torch.nn.Parameter(torch.randn(num_ws, w_dim, 4) * 0.3)
        self.conv = torch.nn.Conv2d(4, 3, 3, padding=1)

    def forward(self, ws):
        styles = torch.einsum("nlw,lwc->nc", ws, self.affine)
        x = self.const * torch.tanh(styles)[:, :, None, None]
        return self.conv(F.interpolate(F.softplus(x), scale_factor=2))


def _ref_path_length(G, ws, pl_mean, decay, noise):
    """StyleGAN2-ADA loss.py's path-length regulariser, literally (pl_mean a buffer value)."""
    ws = ws.detach().requires_grad_(True)
    img = G(ws)
    (pl_grads,) = torch.autograd.grad(outputs=[(img * noise).sum()], inputs=[ws], create_graph=True, only_inputs=True)
    pl_lengths = pl_grads.square().sum(2).mean(1).sqrt()
    new_mean = pl_mean.lerp(pl_lengths.mean(), decay)
    return (pl_lengths - new_mean).square(), new_mean.detach()


@pytest.mark.parametrize("case", CASES)
def test_path_length_matches_reference(case):
    impl, device = case
    torch.manual_seed(6)
    G = TinyG().to(device)
    G64 = copy.deepcopy(G).double()
    ws = torch.randn(4, 3, 5, device=device, requires_grad=True)
    noise = torch.randn(4, 3, 8, 8, device=device) / 8
    pl_mean = torch.tensor(0.7, device=device)
    penalty, new_mean = path_length_penalty(G(ws), ws, pl_mean, decay=0.05, noise=noise, impl=impl)
    penalty.sum().backward()
    ref, ref_mean = _ref_path_length(G64, ws.double(), pl_mean.double(), 0.05, noise.double())
    ref.sum().backward()
    assert_close(penalty, ref, torch.float32, f"{impl} path-length penalty", factor=10)
    assert_close(new_mean, ref_mean, torch.float32, f"{impl} new pl_mean")
    assert not new_mean.requires_grad and pl_mean.item() == pytest.approx(0.7), "pl_mean is returned, not mutated"
    _assert_param_grads_close(G, G64, f"{impl} path-length grad")


def test_path_length_default_noise_scale():
    """Without ``noise`` the image-space noise is randn / sqrt(H * W): same RNG stream as loss.py."""
    G = TinyG()
    ws = torch.randn(2, 3, 5, requires_grad=True)
    img = G(ws)
    torch.manual_seed(7)
    penalty, new_mean = path_length_penalty(img, ws, 0.0, decay=0.01)
    torch.manual_seed(7)
    noise = torch.randn_like(img) / math.sqrt(8 * 8)
    ref, ref_mean = _ref_path_length(G, ws, torch.tensor(0.0), 0.01, noise)
    assert_close(penalty, ref.double(), torch.float32, "penalty with default noise")
    assert_close(new_mean, ref_mean.double(), torch.float32, "pl_mean with default noise")


# --- WGAN-GP / lightweight-gan -----------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("kind", ["wgan-gp", "real"])
@pytest.mark.parametrize("D_cls", [GanopsD, TorchD], ids=["ganops-D", "torch-D"])
def test_gradient_penalty_matches_reference(case, kind, D_cls):
    impl, device = case
    torch.manual_seed(8)
    D = D_cls().to(device)
    D64 = copy.deepcopy(D).double()
    real = torch.randn(3, 3, 8, 8, device=device)
    fake = torch.randn(3, 3, 8, 8, device=device)
    alpha = torch.rand(3, device=device)
    penalty = gradient_penalty(D, real, fake, kind=kind, target=1.0, weight=10.0, alpha=alpha, reduce="mean", impl=impl)
    penalty.backward()
    r, f_ = real.double(), fake.double()
    x = (f_ + alpha.double()[:, None, None, None] * (r - f_)) if kind == "wgan-gp" else r
    x = x.requires_grad_(True)
    (g,) = torch.autograd.grad(D64(x).sum(), x, create_graph=True)
    ref = 10.0 * ((g.reshape(3, -1).norm(2, dim=1) - 1.0) ** 2).mean()
    ref.backward()
    assert_close(penalty, ref, torch.float32, f"{impl} gradient penalty", factor=10)
    _assert_param_grads_close(D, D64, f"{impl} gradient-penalty grad")


def test_gradient_penalty_zero_gradient_is_finite():
    D = lambda x: x.sum((1, 2, 3)) * 0.0  # noqa: E731
    real = torch.randn(2, 1, 2, 2, requires_grad=False)
    w = torch.ones((), requires_grad=True)
    penalty = gradient_penalty(lambda x: D(x) * w, real, kind="real", reduce="sum")
    penalty.backward()
    assert penalty.item() == pytest.approx(2.0) and torch.isfinite(w.grad)


# --- argument validation ----------------------------------------------------------------------------

def _d_out(x):
    return x.flatten(1).sum(1)


@pytest.mark.parametrize("call,error,match", [
    (lambda: sum_squares(torch.ones(2, 2).long()), TypeError, "x must be float"),
    (lambda: sum_squares(torch.tensor(1.0)), ValueError, "x must have a batch dimension"),
    (lambda: sum_squares(torch.ones(2, 2), scale="1"), TypeError, "scale must be a Python number"),
    (lambda: r1_penalty(torch.randn(2, 3), torch.randn(2), 1.0), ValueError, "real_images must require grad"),
    (lambda: r1_penalty(torch.randn(2, 3, requires_grad=True), torch.randn(3), 1.0), ValueError,
     "real_logits batch 3 must equal real_images batch 2"),
    (lambda: r1_penalty(torch.randn(2, 3, requires_grad=True), torch.randn(2), -1.0), ValueError,
     "gamma must be finite and >= 0"),
    (lambda: r1_penalty(torch.randn(2, 3, requires_grad=True), torch.randn(2), 1.0, reduce="avg"), ValueError,
     "reduce must be one of"),
    (lambda: path_length_penalty(torch.randn(2, 3, 4, 4), torch.randn(2, 3, 5, requires_grad=True), 0.0, decay=2.0),
     ValueError, r"decay must be finite and in \[0.0, 1.0\]"),
    (lambda: path_length_penalty(torch.randn(2, 3, 4, 4), torch.randn(2, 5, requires_grad=True), 0.0), ValueError,
     r"ws must be 3-D \[N, num_ws, w_dim\]"),
    (lambda: path_length_penalty(torch.randn(2, 3, 4, 4), torch.randn(2, 3, 5, requires_grad=True), torch.zeros(2)),
     ValueError, "pl_mean must be a one-element"),
    (lambda: path_length_penalty(torch.randn(2, 3, 4, 4), torch.randn(2, 3, 5, requires_grad=True), 0.0,
                                 noise=torch.randn(2, 3, 4, 5)), ValueError, "noise must be a tensor of the images' shape"),
    (lambda: gradient_penalty(None, torch.randn(2, 3)), TypeError, "D must be callable"),
    (lambda: gradient_penalty(_d_out, torch.randn(2, 3), kind="r1"), ValueError, "kind must be one of"),
    (lambda: gradient_penalty(_d_out, torch.randn(2, 3), None), TypeError, "fake must be a torch.Tensor"),
    (lambda: gradient_penalty(_d_out, torch.randn(2, 3), torch.randn(3, 3)), ValueError, "fake must match real"),
    (lambda: gradient_penalty(_d_out, torch.randn(2, 3), torch.randn(2, 3), alpha=torch.rand(3)), ValueError,
     r"alpha must be a tensor of shape \(2,\)"),
    (lambda: gradient_penalty(lambda x: x.sum(), torch.randn(2, 3), kind="real"), ValueError,
     "D must return a tensor of logits"),
])
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()
