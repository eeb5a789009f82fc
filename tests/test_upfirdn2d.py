"""upfirdn2d family: reference vs a direct evaluation of the definition, every backend vs the float64
reference (forward, backward, double backward), the StyleGAN2-ADA wrappers, bad input, torch.compile."""
import itertools

import numpy as np
import pytest
import torch

import ganops
from ganops.ref.upfirdn2d import DENSE_MAX
from helpers import (HAS_GPU, TRITON_ON_CPU, assert_close, backend_cases, gpu, gpu_impls, impl_device, make_input,
                     not_emulated)


def naive_upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1):
    """The definition evaluated tap by tap in float64 numpy (independent of the reference's conv path)."""
    upx, upy = (up, up) if isinstance(up, int) else up
    downx, downy = (down, down) if isinstance(down, int) else down
    if isinstance(padding, int):
        padding = (padding, padding)
    if len(padding) == 2:
        padding = (padding[0], padding[0], padding[1], padding[1])
    px0, px1, py0, py1 = padding
    xs = x.detach().double().cpu().numpy()
    fs = np.ones((1, 1)) if f is None else f.detach().double().cpu().numpy()
    if fs.ndim == 1:
        fs = np.outer(fs, fs)
    g = fs if flip_filter else fs[::-1, ::-1]
    n, c, h, w = xs.shape
    fh, fw = g.shape
    oh = (h * upy + py0 + py1 - fh + downy) // downy
    ow = (w * upx + px0 + px1 - fw + downx) // downx
    out = np.zeros((n, c, oh, ow))
    oy, ox = np.meshgrid(np.arange(oh), np.arange(ow), indexing="ij")
    for a, b in itertools.product(range(fh), range(fw)):
        u, v = oy * downy + a - py0, ox * downx + b - px0
        ok = (u % upy == 0) & (v % upx == 0) & (u >= 0) & (v >= 0) & (u < h * upy) & (v < w * upx)
        iy, ix = np.where(ok, u // upy, 0), np.where(ok, v // upx, 0)
        out += np.where(ok, xs[:, :, iy, ix], 0.0) * g[a, b]
    return torch.from_numpy(out * gain)


def rand_filter(taps, ndim, device="cpu"):
    """A random positive filter (float32), 1-D [taps] or 2-D [taps, taps - 1 or taps]."""
    shape = (taps,) if ndim == 1 else (taps, max(taps - 1, 1) if taps % 2 else taps)
    return (torch.rand(shape) + 0.1).to(device)


# (up, down, taps, filter ndim, flip, padding, H, W)
REF_CASES = [
    (1, 1, 1, 2, False, 0, 5, 7),
    (2, 1, 4, 2, False, (2, 1), 5, 6),
    (1, 2, 4, 1, True, (1, 1, 1, 1), 7, 9),
    (4, 1, 12, 1, False, (6, 5, 6, 5), 3, 4),
    (1, 4, 12, 1, True, (-1, 4, 5, -2), 17, 13),
    (2, 2, 3, 2, True, (0, -1, 2, 3), 6, 5),
    (4, 4, 5, 2, False, (-3, 2, 1, -1), 5, 3),
    ((2, 1), (1, 2), 6, 2, False, (3, 2, 1, 0), 9, 4),
    ((1, 4), (2, 1), 7, 1, True, (0, 3, -2, 4), 5, 6),
    (2, 4, 2, 1, False, (-2, -1, 0, 1), 9, 11),
    # a side longer than DENSE_MAX: separable filters through the convolutions instead of the axis matrices
    (2, 2, 12, 1, True, (5, 6, 4, 7), 3, DENSE_MAX + 3),
]


@pytest.mark.parametrize("case", REF_CASES, ids=lambda c: f"up{c[0]}-down{c[1]}-taps{c[2]}-{c[3]}d-flip{int(c[4])}")
def test_reference_matches_definition(case):
    up, down, taps, ndim, flip, padding, h, w = case
    x = make_input((2, 3, h, w), torch.float64)
    f = rand_filter(taps, ndim)
    out = ganops.upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=flip, gain=1.7, impl="ref")
    expected = naive_upfirdn2d(x, f, up, down, padding, flip, 1.7)
    assert_close(out, expected, torch.float64)


def test_reference_negative_gain_separable():
    x = make_input((1, 2, 6, 5), torch.float64)
    f = rand_filter(8, 1)
    out = ganops.upfirdn2d(x, f, up=2, padding=3, gain=-0.5, impl="ref")
    assert_close(out, naive_upfirdn2d(x, f, 2, 1, 3, False, -0.5), torch.float64)


# (up, down, taps, filter ndim, flip, padding, (H, W)) - tiny: gradgradcheck is quadratic in size.
GRAD_CASES = [
    (2, 1, 4, 2, False, (2, 1), (3, 2)),
    (1, 2, 4, 1, True, (1, 1, 1, 1), (5, 4)),
    ((1, 2), (2, 1), 3, 2, True, (0, -1, 2, 1), (3, 5)),
]


@pytest.mark.parametrize("case", GRAD_CASES, ids=lambda c: f"up{c[0]}-down{c[1]}-taps{c[2]}")
def test_reference_gradcheck_gradgradcheck(case):
    up, down, taps, ndim, flip, padding, (h, w) = case
    x = make_input((1, 1, h, w), torch.float64, requires_grad=True)
    f = rand_filter(taps, ndim).double()
    fn = lambda t: ganops.upfirdn2d(t, f, up=up, down=down, padding=padding, flip_filter=flip, gain=1.3, impl="ref")  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


# --- the StyleGAN2-ADA wrappers -----------------------------------------------------------------

def test_setup_filter():
    f = ganops.setup_filter([1, 3, 3, 1])
    assert f.shape == (4, 4) and f.dtype == torch.float32
    torch.testing.assert_close(f, torch.outer(torch.tensor([1., 3, 3, 1]), torch.tensor([1., 3, 3, 1])) / 64)
    f12 = ganops.setup_filter(torch.arange(1.0, 13.0), gain=4)
    assert f12.shape == (12,)
    torch.testing.assert_close(f12.sum(), torch.tensor(2.0))  # gain ** (ndim / 2) = 4 ** 0.5
    fflip = ganops.setup_filter([1, 2, 3], flip_filter=True, normalize=False, separable=True)
    torch.testing.assert_close(fflip, torch.tensor([3., 2, 1]))
    assert ganops.setup_filter(None).shape == (1, 1)
    with pytest.raises(ValueError, match="f must"):
        ganops.setup_filter(torch.ones(2, 2, 2))


@pytest.mark.parametrize("size", [(5, 7), (8, 8)])
@pytest.mark.parametrize("taps", [1, 4, 12])
@pytest.mark.parametrize("factor", [1, 2, 3])
def test_wrappers_match_stylegan2_padding(size, taps, factor):
    h, w = size
    x = make_input((2, 3, h, w), torch.float64)
    f = ganops.setup_filter(torch.rand(taps) + 0.5, separable=taps >= 8)
    fw = taps
    # StyleGAN2-ADA's padding adjustments, written out.
    pad = (fw // 2, (fw - 1) // 2)
    assert_close(ganops.filter2d(x, f, padding=1, gain=2),
                 naive_upfirdn2d(x, f, padding=(pad[0] + 1, pad[1] + 1, pad[0] + 1, pad[1] + 1), gain=2), torch.float64)
    pu = ((fw + factor - 1) // 2, (fw - factor) // 2)
    up = ganops.upsample2d(x, f, up=factor)
    assert_close(up, naive_upfirdn2d(x, f, factor, 1, (pu[0], pu[1], pu[0], pu[1]), gain=factor ** 2), torch.float64)
    assert up.shape[2:] == (h * factor, w * factor)
    pd = ((fw - factor + 1) // 2, (fw - factor) // 2)
    down = ganops.downsample2d(x, f, down=factor, flip_filter=True)
    assert_close(down, naive_upfirdn2d(x, f, 1, factor, (pd[0], pd[1], pd[0], pd[1]), True), torch.float64)
    assert down.shape[2:] == (h // factor, w // factor)


def test_wrappers_non_uniform_factors():
    x = make_input((1, 2, 6, 9), torch.float64)
    f = ganops.setup_filter([1, 3, 3, 1])
    assert ganops.upsample2d(x, f, up=(2, 1)).shape == (1, 2, 6, 18)
    assert ganops.downsample2d(x, f, down=(3, 2)).shape == (1, 2, 3, 3)


# --- every backend vs the float64 reference --------------------------------------------------------

# (up, down, taps, filter ndim, flip, padding, (N, C, H, W)) - tiny, for the Triton interpreter.
FAST_CASES = [
    (2, 1, 4, 2, False, (2, 1), (2, 3, 5, 4)),          # upsample2d with [1,3,3,1]
    (1, 2, 4, 2, True, (1, 1), (1, 4, 7, 6)),           # downsample2d with [1,3,3,1]
    (1, 1, 3, 2, False, (1, 1, 1, 1), (1, 3, 5, 7)),    # filter2d
    (2, 1, 12, 1, False, (6, 5, 6, 5), (1, 2, 4, 3)),   # ADA 12-tap separable, up
    (1, 2, 12, 1, True, (5, 5, 5, 5), (1, 3, 9, 8)),    # ADA 12-tap separable, down
    (4, 2, 5, 1, False, (-1, 3, 2, -2), (1, 2, 3, 4)),  # negative/asymmetric padding
    ((1, 4), (4, 1), 6, 2, True, (0, 2, 3, 1), (1, 2, 3, 9)),
    (1, 4, 2, 1, False, (0, 0, 0, 1), (2, 1, 9, 8)),
]
FAST_IDS = [f"up{c[0]}-down{c[1]}-taps{c[2]}-{c[3]}d" for c in FAST_CASES]


def _run(impl, device, x, f, case, **kw):
    up, down, _, _, flip, padding, _ = case
    return ganops.upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=flip, gain=1.5, impl=impl, **kw)


@pytest.mark.parametrize("backend", backend_cases())
@pytest.mark.parametrize("case", FAST_CASES, ids=FAST_IDS)
def test_forward_backward_vs_reference(backend, case):
    impl, device = backend
    _, _, taps, ndim, _, _, shape = case
    f = rand_filter(taps, ndim, device)
    for dtype, layout in [(torch.float32, "contiguous"), (torch.float16, "channels_last"),
                          (torch.bfloat16, "noncontig")]:
        x = make_input(shape, dtype, device, layout, requires_grad=True)
        out = _run(impl, device, x, f, case)
        x64 = x.detach().double().requires_grad_(True)
        ref = _run("ref", device, x64, f, case)
        assert out.dtype == dtype
        assert_close(out, ref, dtype, f"forward {dtype} {layout}")
        if layout == "channels_last" and impl != "ref":
            assert out.is_contiguous(memory_format=torch.channels_last)
        dy = torch.randn_like(ref)
        (gx,) = torch.autograd.grad(out, x, dy.to(dtype))
        (gx64,) = torch.autograd.grad(ref, x64, dy)
        assert_close(gx, gx64, dtype, f"backward {dtype} {layout}")


@pytest.mark.parametrize("backend", backend_cases())
@pytest.mark.parametrize("case", [FAST_CASES[0], FAST_CASES[4], FAST_CASES[6]], ids=[FAST_IDS[0], FAST_IDS[4], FAST_IDS[6]])
def test_double_backward_vs_reference(backend, case):
    """d/dx <grad_x <y, dy>, v> (the R1 / path-length pattern) against the float64 reference."""
    impl, device = backend
    _, _, taps, ndim, _, _, shape = case
    f = rand_filter(taps, ndim, device)
    x = make_input(shape, torch.float32, device, requires_grad=True)
    x64 = x.detach().double().requires_grad_(True)
    dy = torch.randn_like(_run("ref", device, x64, f, case))
    results = []
    for inp, which in ((x, impl), (x64, "ref")):
        y = _run(which, device, inp, f, case)
        (g,) = torch.autograd.grad((y * y).sum() * 0.5 + (y * dy.to(y.dtype)).sum(), inp, create_graph=True)
        (gg,) = torch.autograd.grad((g * g).sum(), inp)
        results.append(gg)
    assert_close(results[0], results[1], torch.float32, "double backward")


@pytest.mark.parametrize("backend", backend_cases())
@pytest.mark.parametrize("shape, taps, kw", [((0, 3, 4, 4), 3, dict(up=2, padding=1)),
                                             ((1, 2, 0, 3), 3, dict(padding=(0, 0, 2, 2))),
                                             ((1, 2, 0, 3), 12, dict(up=2, padding=(6, 5, 7, 7)))],
                         ids=["batch0", "height0", "height0-two-passes"])
def test_empty_inputs(backend, shape, taps, kw):
    """Empty batches give empty outputs; an empty image axis padded out gives zeros."""
    impl, device = backend
    f = rand_filter(taps, 1, device)
    x = torch.randn(shape, device=device)
    out = ganops.upfirdn2d(x, f, impl=impl, **kw)
    ref = ganops.upfirdn2d(x.double(), f, impl="ref", **kw)
    assert out.shape == ref.shape
    assert torch.equal(out.double(), ref)


# --- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(f=torch.ones(2, 2, 2)), ValueError, "f must be 1-D"),
    (dict(f=torch.ones(3, dtype=torch.float16)), TypeError, "f must be a float32"),
    (dict(f=torch.ones(3, dtype=torch.int64)), TypeError, "f must be a float32"),
    (dict(f=[1.0, 2.0]), TypeError, "f must be None or a torch.Tensor"),
    (dict(f=torch.ones(3, requires_grad=True)), ValueError, "f must not require grad"),
    (dict(up=0), ValueError, "up must be >= 1"),
    (dict(down=(2, -1)), ValueError, "down must be >= 1"),
    (dict(up=1.5), TypeError, "up must be an int"),
    (dict(padding=(1, 2, 3)), TypeError, "padding must be"),
    (dict(padding=-3), ValueError, "padding .* leaves an empty output"),
    (dict(f=torch.ones(9), padding=(4, 4, 0, 0)), ValueError, "padding .* leaves an empty output"),
    (dict(gain="2"), TypeError, "gain must be"),
    (dict(flip_filter=1), TypeError, "flip_filter must be a bool"),
    (dict(impl="fast"), ValueError, "impl must be"),
])
def test_bad_input(kwargs, exc, match):
    args = dict(x=torch.randn(1, 2, 5, 5), f=torch.ones(3))
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        ganops.upfirdn2d(**args)


def test_bad_x():
    f = torch.ones(3)
    with pytest.raises(ValueError, match="x must be 4-D"):
        ganops.upfirdn2d(torch.randn(2, 5, 5), f)
    with pytest.raises(TypeError, match="x must be float16"):
        ganops.upfirdn2d(torch.ones(1, 1, 5, 5, dtype=torch.int32), f)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        ganops.upfirdn2d(np.ones((1, 1, 5, 5)), f)


@gpu
def test_filter_on_other_device():
    with pytest.raises(ValueError, match="f must be on the same device as x"):
        ganops.upfirdn2d(torch.randn(1, 1, 5, 5, device="cuda"), torch.ones(3))


def test_fast_backends_reject_float64():
    x = torch.randn(1, 1, 5, 5, dtype=torch.float64, device="cuda" if HAS_GPU else "cpu")
    with pytest.raises(ganops.BackendUnavailableError, match="float64"):
        ganops.upfirdn2d(x, torch.ones(3, device=x.device), impl="triton")


# --- torch.compile ----------------------------------------------------------------------------

@pytest.mark.parametrize("impl", ["ref", "triton"])
def test_torch_compile_fullgraph(impl):
    if impl == "triton" and not (HAS_GPU or TRITON_ON_CPU):
        pytest.skip("triton needs a GPU or TRITON_INTERPRET=1")
    device = "cuda" if HAS_GPU else "cpu"
    f = ganops.setup_filter([1, 3, 3, 1], device=device)
    torch._dynamo.reset()

    def step(x, which=impl):
        y = ganops.upsample2d(x, f, impl=which)
        return ganops.downsample2d(y, f, impl=which)

    # aot_eager: dynamo + AOT autograd tracing (what fullgraph checks) without inductor's C++ build time.
    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    x = make_input((1, 2, 4, 5), torch.float32, device, requires_grad=True)
    out = compiled(x)
    x64 = x.detach().double().requires_grad_(True)
    expected = step(x64, "ref")
    assert_close(out, expected, torch.float32)
    (g,) = torch.autograd.grad(out.sum(), x)
    (g64,) = torch.autograd.grad(expected.sum(), x64)
    assert_close(g, g64, torch.float32)


@not_emulated
def test_cuda_backend_needs_cuda_tensors():
    with pytest.raises(ganops.BackendUnavailableError, match="cuda"):
        ganops.upfirdn2d(torch.randn(1, 1, 5, 5), torch.ones(3), impl="cuda")


# --- GPU: larger shapes (several tiles and planes), every kernel variant, kernel selection ----------

# (up, down, filter, padding, (N, C, H, W), layout)
GPU_CASES = [
    (2, 1, "4x4", (2, 1), (3, 5, 37, 70), "contiguous"),        # tile, hot up-2
    (1, 2, "4x4", (1, 1), (2, 3, 67, 130), "contiguous"),       # tile, hot down-2
    (1, 2, "4x4", (1, 1), (3, 50, 8, 8), "contiguous"),         # tile, 64 small planes per block, tail
    (1, 1, "4x4", (2, 1), (1, 4, 33, 65), "noncontig"),         # tile, hot filter2d, strided input
    (2, 1, "4x4", (2, 1), (2, 37, 19, 21), "channels_last"),    # channels-last, hot up-2
    (1, 2, "4x4", (1, 1), (2, 70, 20, 17), "channels_last"),    # channels-last, hot down-2
    (2, 2, "12", (6, 5, 6, 5), (2, 3, 45, 31), "contiguous"),   # two hot 1-D tile passes, up then down
    (2, 1, "12", (6, 5, 6, 5), (2, 6, 16, 16), "channels_last"),  # two channels-last 1-D passes
    (3, 2, "5x7", (-2, 4, 3, -1), (2, 3, 29, 23), "contiguous"),  # generic tile
    (1, 3, "5", (0, 2, 1, 1), (1, 9, 31, 26), "channels_last"),  # generic channels-last, fused separable
    (4, 4, "9x9", (4, 4), (1, 2, 40, 9), "contiguous"),         # generic tile, odd filter
    (1, 1, "100x100", (50, 49), (1, 2, 60, 70), "contiguous"),  # filter too large to stage: direct
]


def _gpu_filter(spec, device):
    dims = [int(v) for v in spec.split("x")]
    return (torch.rand(dims, device=device) + 0.1)


@pytest.mark.parametrize("impl", gpu_impls())
@pytest.mark.parametrize("case", GPU_CASES, ids=[f"up{c[0]}-down{c[1]}-f{c[2]}-{c[5]}" for c in GPU_CASES])
def test_gpu_larger_shapes_vs_reference(impl, case):
    device = impl_device(impl)
    up, down, spec, padding, shape, layout = case
    f = _gpu_filter(spec, device)
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        x = make_input(shape, dtype, device, layout, requires_grad=True)
        out = ganops.upfirdn2d(x, f, up=up, down=down, padding=padding, gain=0.7, impl=impl)
        x64 = x.detach().double().requires_grad_(True)
        ref = ganops.upfirdn2d(x64, f, up=up, down=down, padding=padding, gain=0.7, impl="ref")
        assert_close(out, ref, dtype, f"{impl} forward {dtype}")
        dy = torch.randn_like(ref)
        (gx,) = torch.autograd.grad(out, x, dy.to(dtype))
        (gx64,) = torch.autograd.grad(ref, x64, dy)
        assert_close(gx, gx64, dtype, f"{impl} backward {dtype}")


@pytest.mark.parametrize("impl", gpu_impls())
def test_gpu_many_planes(impl):
    """More (n, c) planes than a grid dimension holds (65535): the tile kernel loops over planes."""
    device = impl_device(impl)
    x = make_input((1, 70000, 8, 32), torch.float16, device)  # 16x64 outputs: one plane per block
    f = ganops.setup_filter([1, 3, 3, 1], device=device)
    out = ganops.upsample2d(x, f, impl=impl)
    assert_close(out, ganops.upsample2d(x.double(), f, impl="ref"), torch.float16)


@pytest.mark.parametrize("impl", [p for p in gpu_impls() if p.values[0] == "cuda"])
def test_cuda_kernel_selection(impl):
    device = impl_device(impl)
    pick = torch.ops.ganops.upfirdn2d_cuda_kernels
    f4 = ganops.setup_filter([1, 3, 3, 1], device=device)
    f12 = ganops.setup_filter(torch.rand(12) + 0.1, device=device)
    x = torch.randn(2, 8, 32, 32, device=device, dtype=torch.float16)
    xcl = x.contiguous(memory_format=torch.channels_last)
    assert pick(x, f4, 2, 2, 1, 1, 2, 1, 2, 1, False, 4.0) == "tile-hot"
    assert pick(x, f4, 1, 1, 2, 2, 1, 1, 1, 1, False, 1.0) == "tile-hot"
    assert pick(xcl, f4, 2, 2, 1, 1, 2, 1, 2, 1, False, 4.0) == "channels-last-hot"
    assert pick(xcl, f4, 1, 1, 2, 2, 1, 1, 1, 1, False, 1.0) == "channels-last-hot"
    assert pick(x, f12, 2, 2, 1, 1, 6, 5, 6, 5, False, 4.0) == "tile-hot+tile-hot"
    assert pick(x, f12, 1, 1, 2, 2, 5, 5, 5, 5, False, 1.0) == "tile-hot+tile-hot"
    assert pick(x, f4, 3, 3, 1, 1, 2, 1, 2, 1, False, 1.0) == "tile"
    assert pick(x, torch.ones(100, 100, device=device), 1, 1, 1, 1, 50, 49, 50, 49, False, 1.0) == "direct"
