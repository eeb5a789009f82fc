"""filtered_lrelu family: the reference against a direct composition of the definition, gradients of
the reference, every backend against the float64 reference (forward and first-order backward),
bad arguments and the StyleGAN3 drop-in."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import ganops
from ganops.ref.upfirdn2d import DENSE_MAX
from ganops.compat.stylegan2_ada import filtered_lrelu as compat
from helpers import assert_close, backend_cases, make_input
from test_upfirdn2d import naive_upfirdn2d

pytestmark = pytest.mark.usefixtures("one_intraop_thread")  # tiny tensors: threads only add overhead


def rand_filter(taps, ndim):
    """A random lowpass-like float32 filter: [taps] (separable) or [taps, taps]."""
    f = torch.rand(taps) + 0.2
    f = f / f.sum()
    return f if ndim == 1 else torch.outer(f, torch.rand(taps) + 0.2) / 0.7 / taps


def composed(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip):
    """upfirdn2d(x + b) -> lrelu * gain -> clamp -> upfirdn2d, tap by tap in float64 numpy."""
    v = x.double() + (0 if b is None else b.double().reshape(1, -1, 1, 1))
    v = naive_upfirdn2d(v, fu, up, 1, padding, flip, up * up)
    v = F.leaky_relu(v, slope) * gain
    if clamp is not None:
        v = v.clamp(-clamp, clamp)
    return naive_upfirdn2d(v, fd, 1, down, 0, flip, 1)


# (up, down, fu taps/ndim, fd taps/ndim, padding, clamp, flip, (N, C, H, W))
REF_CASES = [
    (1, 1, None, None, 0, None, False, (2, 3, 5, 7)),
    (2, 2, (6, 1), (6, 1), (5, 4), 0.5, False, (1, 2, 7, 6)),
    (2, 1, (12, 1), (6, 2), (7, 6, 5, 8), None, True, (2, 1, 5, 4)),
    (4, 2, (24, 1), (12, 1), 20, 1.0, False, (1, 2, 4, 3)),
    (1, 4, (6, 2), (24, 1), (-1, 12, 11, -2), 0.3, True, (1, 3, 29, 27)),
    (4, 4, (8, 2), (8, 2), (3, 4, 2, 5), None, False, (1, 1, 3, 5)),
    # up-sampled width > DENSE_MAX: the up filter as axis matrices, the down filter as convolutions
    (2, 2, (12, 1), (12, 1), (11, 10, 10, 9), 0.5, False, (1, 2, 2, DENSE_MAX // 2 + 2)),
]


def _case_id(c):
    return f"up{c[0]}-down{c[1]}-fu{c[2] and c[2][0]}-fd{c[3] and c[3][0]}-clamp{c[5]}-flip{int(c[6])}"


@pytest.mark.parametrize("case", REF_CASES, ids=_case_id)
def test_reference_matches_composition(case):
    up, down, fu_spec, fd_spec, padding, clamp, flip, shape = case
    fu = None if fu_spec is None else rand_filter(*fu_spec)
    fd = None if fd_spec is None else rand_filter(*fd_spec)
    x = make_input(shape, torch.float64, scale=2.0)
    b = torch.randn(shape[1], dtype=torch.float64)
    out = ganops.filtered_lrelu(x, fu, fd, b, up=up, down=down, padding=padding, gain=1.3, slope=0.25, clamp=clamp,
                                flip_filter=flip, impl="ref")
    assert_close(out, composed(x, fu, fd, b, up, down, padding, 1.3, 0.25, clamp, flip), torch.float64)


def test_output_size_rule_and_stylegan3_layer_shape():
    # A StyleGAN3-T layer: 36x36 in, up 2 with 12-tap filters, 2x lrelu oversampling, down 2, 36x36 out
    # (padding from NVIDIA's SynthesisLayer for in_size 36, out_size 36).
    x = make_input((1, 2, 36, 36))
    f12 = rand_filter(12, 1)
    y = ganops.filtered_lrelu(x, f12, f12, up=2, down=2, padding=(11, 11, 11, 11), impl="ref")
    assert y.shape == (1, 2, 36, 36)
    y = ganops.filtered_lrelu(make_input((1, 1, 9, 5)), rand_filter(6, 2), rand_filter(8, 1), up=4, down=2,
                              padding=(3, -2, 1, 0), impl="ref")
    assert y.shape == (1, 1, (9 * 4 + 1 - 5 - 7 + 1) // 2, (5 * 4 + 1 - 5 - 7 + 1) // 2)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_reference_half_precision_computes_in_float32(dtype):
    x = make_input((1, 2, 6, 5), dtype)
    b = torch.randn(2).to(dtype)
    f = rand_filter(6, 1)
    out = ganops.filtered_lrelu(x, f, f, b, up=2, down=2, padding=5, clamp=0.8, impl="ref")
    expected = ganops.filtered_lrelu(x.double(), f, f, b.double(), up=2, down=2, padding=5, clamp=0.8, impl="ref")
    assert out.dtype == dtype
    assert_close(out, expected, dtype)


def test_reference_gradcheck_gradgradcheck():
    torch.manual_seed(0)  # the case must not depend on what earlier tests drew
    fu, fd = rand_filter(4, 1).double(), rand_filter(3, 2).double()
    x = make_input((1, 2, 3, 4), torch.float64, requires_grad=True)
    b = torch.randn(2, dtype=torch.float64, requires_grad=True)

    def fn(x, b):
        return ganops.filtered_lrelu(x, fu, fd, b, up=2, down=2, padding=(2, 1, 3, 2), gain=1.2, slope=0.3,
                                     clamp=0.9, flip_filter=True, impl="ref")
    m = ganops.upfirdn2d(x + b.reshape(1, -1, 1, 1), fu, up=2, padding=(2, 1, 3, 2), flip_filter=True, gain=4.0)
    m = F.leaky_relu(m, 0.3) * 1.2
    assert (m.abs() > 0.9).any() and (m.abs() < 0.9).any(), "the case must exercise clamped and free values"
    assert torch.autograd.gradcheck(fn, (x, b))
    assert torch.autograd.gradgradcheck(fn, (x, b))


# --- every backend vs the float64 reference ---------------------------------------------------------

# (up, down, fu taps/ndim, fd taps/ndim, padding, clamp, flip, (N, C, H, W), dtype, layout) - tiny, for
# the interpreter and the emulator; each case runs one dtype and layout, together they cover all.
FAST_CASES = [
    (2, 2, (6, 1), (6, 1), (5, 4, 5, 6), 0.4, False, (1, 2, 5, 6), torch.float32, "noncontig"),
    (2, 1, (12, 1), (7, 1), (7, 6, 5, 8), None, True, (2, 3, 3, 4), torch.float16, "channels_last"),
    (1, 4, (6, 2), (8, 1), (3, 6, 4, 2), 0.3, True, (1, 2, 11, 9), torch.bfloat16, "contiguous"),
    (4, 2, (8, 1), (6, 2), 4, 1.0, False, (1, 3, 3, 2), torch.bfloat16, "channels_last"),
    (1, 1, None, None, 0, None, False, (2, 3, 4, 5), torch.float16, "noncontig"),
    (2, 2, (12, 2), (12, 1), 11, 0.6, False, (1, 1, 4, 4), torch.float32, "contiguous"),
    (4, 2, (24, 1), (12, 1), 16, 0.9, True, (1, 2, 2, 3), torch.float16, "contiguous"),
]


def _fast_id(c):
    return f"{_case_id(c)}-{str(c[8])[6:]}-{c[9]}"


@pytest.mark.parametrize("backend", backend_cases())
@pytest.mark.parametrize("case", FAST_CASES, ids=_fast_id)
def test_forward_backward_vs_reference(backend, case):
    """Forward, dx and db against the float64 reference fed with the same (rounded) inputs."""
    impl, device = backend
    up, down, fu_spec, fd_spec, padding, clamp, flip, shape, dtype, layout = case
    fu = None if fu_spec is None else rand_filter(*fu_spec).to(device)
    fd = None if fd_spec is None else rand_filter(*fd_spec).to(device)
    x = make_input(shape, dtype, device, layout, requires_grad=True, scale=2.0)
    b = torch.randn(shape[1], device=device).to(dtype).requires_grad_(True)
    x64, b64 = (t.detach().double().requires_grad_(True) for t in (x, b))
    kw = dict(up=up, down=down, padding=padding, gain=1.3, slope=0.25, clamp=clamp, flip_filter=flip)
    out = ganops.filtered_lrelu(x, fu, fd, b, impl=impl, **kw)
    ref = ganops.filtered_lrelu(x64, fu, fd, b64, impl="ref", **kw)
    assert out.dtype == dtype
    assert_close(out, ref, dtype, "forward")
    if layout == "channels_last" and impl != "ref":
        assert out.is_contiguous(memory_format=torch.channels_last)
    dy = torch.randn_like(ref).to(dtype)
    gx, gb = torch.autograd.grad(out, [x, b], dy)
    gx64, gb64 = torch.autograd.grad(ref, [x64, b64], dy.double())
    assert gx.dtype == dtype and gb.dtype == dtype
    assert_close(gx, gx64, dtype, "dx")
    assert_close(gb, gb64, dtype, "db")


@pytest.mark.parametrize("backend", [c for c in backend_cases() if c.id != "ref"])
def test_several_tiles_vs_reference(backend):
    """A StyleGAN3-T layer (12-tap up 2 / down 2) large enough for several output tiles per plane, so tile
    halos and the sign bytes where neighbouring tiles meet are exercised, forward and backward."""
    impl, device = backend
    f = rand_filter(12, 1).to(device)
    x = make_input((1, 1, 30, 29), device=device, requires_grad=True, scale=2.0)
    b = torch.randn(1, device=device, requires_grad=True)
    x64, b64 = (t.detach().double().requires_grad_(True) for t in (x, b))
    kw = dict(up=2, down=2, padding=(11, 10, 11, 11), clamp=1.5)
    out = ganops.filtered_lrelu(x, f, f, b, impl=impl, **kw)
    ref = ganops.filtered_lrelu(x64, f, f, b64, impl="ref", **kw)
    assert out.shape == (1, 1, 30, 29)
    assert_close(out, ref, torch.float32, "forward")
    dy = torch.randn_like(out)
    for got, want, what in zip(torch.autograd.grad(out, [x, b], dy), torch.autograd.grad(ref, [x64, b64], dy.double()),
                               ("dx", "db")):
        assert_close(got, want, torch.float32, what)


@pytest.mark.parametrize("backend", [c for c in backend_cases() if c.id != "ref"])
def test_fast_backends_refuse_double_backward(backend):
    impl, device = backend
    f = rand_filter(4, 1).to(device)
    x = make_input((1, 2, 3, 3), device=device, requires_grad=True)
    y = ganops.filtered_lrelu(x, f, f, up=2, down=2, padding=3, impl=impl)
    (g,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
    with pytest.raises(NotImplementedError, match="first-order gradients only.*impl='ref'"):
        g.sum().backward()


# --- bad arguments ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, match", [
    (dict(x=torch.randn(2, 3, 4)), ValueError, "4-D"),
    (dict(x=torch.ones(1, 1, 4, 4, dtype=torch.int32)), TypeError, "float16, bfloat16"),
    (dict(fu=torch.ones(3, dtype=torch.float16)), TypeError, "float32"),
    (dict(fd=torch.ones(2, 2, 2)), ValueError, "1-D .* or 2-D"),
    (dict(b=torch.ones(4)), ValueError, "x.shape\\[1\\] = 3"),
    (dict(b=torch.ones(3, dtype=torch.float64)), TypeError, "dtype of x"),
    (dict(up=2.0), ValueError, "up must be an int"),
    (dict(down=0), ValueError, "down must be an int >= 1"),
    (dict(up=(2, 1)), ValueError, "one factor for both axes"),
    (dict(padding=(1, 2, 3)), TypeError, "padding must be"),
    (dict(gain=0.0), ValueError, "gain must be > 0"),
    (dict(slope=-0.1), ValueError, "slope must be >= 0"),
    (dict(clamp=-1.0), ValueError, "clamp must be >= 0"),
    (dict(clamp=float("nan")), TypeError, "clamp must be a finite"),
    (dict(flip_filter=1), TypeError, "flip_filter must be a bool"),
    (dict(padding=-3), ValueError, "empty output"),
    (dict(impl="gpu"), ValueError, "impl must be"),
])
def test_bad_arguments(kwargs, error, match):
    args = dict(x=torch.randn(1, 3, 4, 4), fu=rand_filter(4, 1), fd=rand_filter(4, 1), up=2, down=2, padding=3)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        ganops.filtered_lrelu(**args)


# --- StyleGAN3 drop-in -----------------------------------------------------------------------------

def test_compat_matches_stylegan3_call():
    """networks_stylegan3.SynthesisLayer's call: numpy-int padding, np.sqrt(2) gain, impl='cuda'."""
    x = make_input((2, 3, 6, 6))
    b = torch.randn(3)
    f = rand_filter(12, 1)
    padding = [np.int64(11), np.int64(10), np.int64(11), np.int64(10)]
    y = compat.filtered_lrelu(x=x, fu=f, fd=f, b=b, up=2, down=2, padding=padding, gain=np.sqrt(2), slope=0.2,
                              clamp=256, flip_filter=False)
    expected = ganops.filtered_lrelu(x, f, f, b, up=2, down=2, padding=(11, 10, 11, 10), gain=math.sqrt(2), clamp=256.0,
                                     impl="ref")
    assert_close(y, expected.double(), torch.float32)
    assert_close(compat.filtered_lrelu(x, impl="ref"), F.leaky_relu(x.double(), 0.2) * math.sqrt(2), torch.float32)
    with pytest.raises(ValueError, match="impl must be 'cuda' or 'ref'"):
        compat.filtered_lrelu(x, impl="triton")
