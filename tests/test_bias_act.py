"""bias_act: reference semantics, fast backends against the float64 reference, autograd, compile."""
import itertools
import math

import pytest
import torch
import torch.nn.functional as F

import ganops
from ganops.ops.bias_act import ACTIVATIONS

from helpers import FLOAT_DTYPES, assert_close, backend_cases, gpu, make_input

ACTS = list(ACTIVATIONS)


def _expected(x, b, dim, act, alpha, gain, clamp):
    """Independent float64 formula of the StyleGAN2-ADA semantics."""
    v = x.double()
    if b is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        v = v + b.double().reshape(shape)
    fn = {
        "linear": lambda t: t, "relu": F.relu, "lrelu": lambda t: F.leaky_relu(t, alpha),
        "tanh": torch.tanh, "sigmoid": torch.sigmoid, "elu": F.elu, "selu": F.selu,
        "softplus": F.softplus, "swish": lambda t: t * torch.sigmoid(t),
    }[act]
    y = fn(v) * gain
    return y if clamp is None else y.clamp(-clamp, clamp)


def _ref64(x, b, dim, act, alpha=None, gain=None, clamp=None):
    """The reference evaluated in float64 on the upcast inputs (what fast paths are compared to)."""
    b64 = None if b is None else b.detach().double()
    return ganops.bias_act(x.detach().double(), b64, dim, act, alpha, gain, clamp, impl="ref")


# ----------------------------------------------------------------------------- reference semantics


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("clamp", [None, 0.7])
def test_reference_matches_formula(act, clamp):
    x = make_input([3, 5, 4, 3], torch.float64, scale=2)
    b = torch.randn(5, dtype=torch.float64)
    alpha, gain = ACTIVATIONS[act].alpha, ACTIVATIONS[act].gain
    out = ganops.bias_act(x, b, 1, act, clamp=clamp, impl="ref")
    torch.testing.assert_close(out, _expected(x, b, 1, act, alpha, gain, clamp), rtol=1e-12, atol=1e-12)


def test_defaults_alpha_gain():
    x = make_input([4, 6], torch.float64)
    assert torch.allclose(ganops.bias_act(x, act="lrelu"), F.leaky_relu(x, 0.2) * math.sqrt(2))
    assert torch.allclose(ganops.bias_act(x, act="relu", gain=1.0), F.relu(x))
    assert torch.allclose(ganops.bias_act(x, act="tanh"), torch.tanh(x))
    assert torch.allclose(ganops.bias_act(x, act="lrelu", alpha=0.1, gain=3), F.leaky_relu(x, 0.1) * 3)


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("clamp", [None, 0.9])
def test_reference_gradgradcheck(act, clamp):
    x = make_input([2, 3, 3, 2], torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)

    def fn(x, b):
        return ganops.bias_act(x, b, 1, act, clamp=clamp, impl="ref")

    assert torch.autograd.gradcheck(fn, (x, b))
    assert torch.autograd.gradgradcheck(fn, (x, b))


def test_clamp_zeroes_gradient_where_clamped():
    x = make_input([64, 8], torch.float64, scale=3, requires_grad=True)
    y = ganops.bias_act(x, act="linear", clamp=1.0, impl="ref")
    (g,) = torch.autograd.grad(y.sum(), x)
    assert torch.equal(g, (x.abs() < 1).double())


def test_module_bias_act():
    m = ganops.nn.BiasAct(6, act="lrelu", bias_init=0.5, lr_multiplier=0.1, impl="ref")
    x = make_input([2, 6, 3, 3])
    torch.testing.assert_close(m(x), _expected(x, torch.full([6], 0.05), 1, "lrelu", 0.2, math.sqrt(2), None).float())
    m(x).sum().backward()
    assert m.bias.grad is not None and m.bias.grad.shape == (6,)


# ------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(b=torch.randn(4)), ValueError, "b must be 1-D with x.shape"),
    (dict(b=torch.randn(5, 1)), ValueError, "b must be 1-D"),
    (dict(b=torch.randn(5, dtype=torch.float64)), TypeError, "b must have the dtype of x"),
    (dict(b=[1.0] * 5), TypeError, "b must be None or a torch.Tensor"),
    (dict(act="gelu"), ValueError, "act must be one of"),
    (dict(clamp=-1.0), ValueError, "clamp must be None"),
    (dict(clamp=float("nan")), ValueError, "clamp must be finite"),
    (dict(gain="2"), TypeError, "gain must be None or a real number"),
    (dict(alpha=float("inf"), act="lrelu"), ValueError, "alpha must be finite"),
    (dict(dim=4), ValueError, "dim must be in"),
    (dict(dim=1.0), TypeError, "dim must be an int"),
    (dict(impl="fast"), ValueError, "impl must be None or one of"),
])
def test_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ganops.bias_act(torch.randn(2, 5, 3, 3), **kwargs)


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64, torch.bool])
def test_integer_input_is_type_error(dtype):
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        ganops.bias_act(torch.ones(2, 3, dtype=dtype))


@gpu
def test_bias_on_other_device_is_value_error():
    with pytest.raises(ValueError, match="b must be on the same device as x"):
        ganops.bias_act(torch.randn(2, 3, device="cuda"), torch.randn(3))


def test_module_bad_arguments():
    with pytest.raises(ValueError, match="channels must be a positive int"):
        ganops.nn.BiasAct(0)
    with pytest.raises(ValueError, match="act must be one of"):
        ganops.nn.BiasAct(4, act="gelu")


# ------------------------------------------------------------------ every backend vs the float64 reference

# name -> (shape, dim); channel counts and inner sizes chosen to hit the vectorized and scalar paths.
CASES = {
    "nchw_odd": ([2, 5, 3, 7], 1),
    "nchw_vec": ([3, 16, 4, 8], 1),
    "fc": ([3, 37], 1),
    "dim_neg2": ([1, 3, 6, 8], -2),
}
LAYOUTS = ("contiguous", "channels_last", "noncontig")
CLAMP = 0.8


def _make_x(case, dtype, device, layout):
    shape, dim = CASES[case]
    if layout == "channels_last" and len(shape) == 2:
        # The 2-D analogue of channels_last: a dense column-major matrix (channels outermost in memory).
        return torch.randn(shape[::-1], device=device).to(dtype).t().requires_grad_(True)
    return make_input(shape, dtype, device, layout, requires_grad=True)


def _configs():
    return list(itertools.product(ACTS, FLOAT_DTYPES, LAYOUTS, CASES, (False, True), (False, True)))


def _config_id(cfg):
    act, dtype, layout, case, clamp, bias = cfg
    return f"{act}-{str(dtype)[6:]}-{layout}-{case}-{'clamp' if clamp else 'noclamp'}-{'bias' if bias else 'nobias'}"


def _matrix():
    """Full cross product on the GPU backends; on the CPU (to keep the run short) every 5th
    configuration for the reference and every 11th for the Triton interpreter; the steps are prime
    to the inner sizes, so every activation, dtype, layout, case, clamp and bias setting appears."""
    params = []
    configs = _configs()
    for case in backend_cases():
        impl, device = case.values[0]
        step = {"cuda": 1, "cpu": 11 if impl == "triton" else 5}[device]
        chosen = configs[::step]
        for cfg in chosen:
            params.append(pytest.param((impl, device), *cfg, marks=case.marks, id=f"{case.id}-{_config_id(cfg)}"))
    return params


def _grads(y, inputs, g):
    out = torch.autograd.grad(y, inputs, g, create_graph=True, allow_unused=True)
    return [torch.zeros_like(t) if o is None else o for o, t in zip(out, inputs)]


@pytest.mark.parametrize("backend, act, dtype, layout, case, clamp, bias", _matrix())
def test_matches_reference(backend, act, dtype, layout, case, clamp, bias):
    impl, device = backend
    dim = CASES[case][1]
    clamp = CLAMP if clamp else None
    x = _make_x(case, dtype, device, layout)
    b = (torch.randn(x.shape[dim], device=device) * 0.5).to(dtype).requires_grad_(True) if bias else None
    x64 = x.detach().double().requires_grad_(True)
    b64 = None if b is None else b.detach().double().requires_grad_(True)

    y = ganops.bias_act(x, b, dim, act, clamp=clamp, impl=impl)
    y64 = ganops.bias_act(x64, b64, dim, act, clamp=clamp, impl="ref")
    assert y.dtype == dtype
    if layout != "noncontig":
        assert y.stride() == x.stride(), "output must keep the input's memory format"
    assert_close(y, y64, dtype, "y")

    # Backward with a contiguous dy (so channels_last outputs get a dy of another layout).
    g = torch.randn(x.shape, device=device).to(dtype).requires_grad_(True)
    g64 = g.detach().double().requires_grad_(True)
    leaves = [x] + ([b] if bias else [])
    leaves64 = [x64] + ([b64] if bias else [])
    d = _grads(y, leaves, g)
    d64 = _grads(y64, leaves64, g64)
    for name, out, ref in zip(("dx", "db"), d, d64):
        assert_close(out, ref, dtype, name, factor=2)

    # Double backward: d/d(x, b, dy) of <dx, wx> + <db, wb>.
    w = [torch.randn(t.shape, device=device).to(dtype) for t in d]
    s = sum((o * wi).sum() for o, wi in zip(d, w))
    s64 = sum((o * wi.double()).sum() for o, wi in zip(d64, w))
    gg = torch.autograd.grad(s, leaves + [g], allow_unused=True) if s.requires_grad else [None] * (len(leaves) + 1)
    gg64 = torch.autograd.grad(s64, leaves64 + [g64], allow_unused=True)
    for name, out, ref in zip(("ddx", "ddb", "ddy") if bias else ("ddx", "ddy"), gg, gg64):
        ref = torch.zeros_like(ref if ref is not None else y64) if ref is None else ref
        out = torch.zeros_like(ref) if out is None else out
        if ref.abs().max() == 0:
            assert out.abs().max() == 0, f"{name}: expected zero"
        else:
            assert_close(out, ref, dtype, name, factor=4)


FAST = [c for c in backend_cases() if c.values[0][0] != "ref"]


@pytest.mark.parametrize("backend", FAST)
@pytest.mark.parametrize("act, alpha, gain, clamp", [
    ("relu", None, -0.5, None),      # negative gain: backward must work from x, not y
    ("lrelu", -0.3, None, 0.5),      # negative slope: y does not tell the sign of x + b
    ("tanh", None, 0.0, None),       # zero gain
    ("sigmoid", None, 2.5, 1.5),
    ("swish", None, 1.0, 0.0),       # clamp 0: everything clamped, all gradients zero
])
def test_fast_paths_with_unusual_parameters(backend, act, alpha, gain, clamp):
    impl, device = backend
    x = make_input([2, 6, 3, 5], torch.float32, device, requires_grad=True, scale=2)
    b = torch.randn(6, device=device, requires_grad=True)
    x64 = x.detach().double().requires_grad_(True)
    b64 = b.detach().double().requires_grad_(True)
    y = ganops.bias_act(x, b, 1, act, alpha, gain, clamp, impl=impl)
    y64 = ganops.bias_act(x64, b64, 1, act, alpha, gain, clamp, impl="ref")
    g = torch.randn_like(y)
    d = _grads(y, [x, b], g)
    d64 = _grads(y64, [x64, b64], g.double())
    for name, out, ref in zip(("y", "dx", "db"), [y] + d, [y64] + d64):
        if ref.abs().max() == 0:
            assert out.abs().max() == 0, f"{name}: expected zero"
        else:
            assert_close(out, ref, torch.float32, name, factor=2)


@pytest.mark.parametrize("backend", FAST)
def test_fast_backward_with_expanded_grad(backend):
    """y.sum().backward() hands the kernel an expanded (stride 0) dy."""
    impl, device = backend
    x = make_input([2, 8, 4, 4], torch.float16, device, "channels_last", requires_grad=True)
    b = torch.randn(8, device=device).half().requires_grad_(True)
    ganops.bias_act(x, b, act="softplus", impl=impl).sum().backward()
    x64, b64 = x.detach().double().requires_grad_(True), b.detach().double().requires_grad_(True)
    ganops.bias_act(x64, b64, act="softplus", impl="ref").sum().backward()
    assert_close(x.grad, x64.grad, torch.float16, "dx")
    assert_close(b.grad, b64.grad, torch.float16, "db")


@pytest.mark.parametrize("backend", FAST)
def test_fast_third_order_is_a_clear_error(backend):
    impl, device = backend
    x = make_input([2, 3], torch.float32, device, requires_grad=True)
    y = ganops.bias_act(x, act="tanh", impl=impl)
    (d1,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    (d2,) = torch.autograd.grad(d1.sum(), x, create_graph=True)
    with pytest.raises(NotImplementedError, match="not third-order"):
        torch.autograd.grad(d2.sum(), x)


@pytest.mark.parametrize("backend", FAST)
def test_fast_float64_is_refused_explicitly(backend):
    impl, device = backend
    with pytest.raises(ganops.BackendUnavailableError, match="float64 is not supported"):
        ganops.bias_act(torch.randn(2, 3, dtype=torch.float64, device=device), impl=impl)


@pytest.mark.parametrize("backend", FAST)
def test_fast_empty_and_single_channel(backend):
    impl, device = backend
    assert ganops.bias_act(torch.randn(0, 4, device=device), torch.randn(4, device=device), impl=impl).shape == (0, 4)
    x = make_input([3, 1, 5], torch.float32, device, requires_grad=True)
    b = torch.randn(1, device=device, requires_grad=True)
    ganops.bias_act(x, b, act="lrelu", impl=impl).sum().backward()
    x64, b64 = x.detach().double().requires_grad_(True), b.detach().double().requires_grad_(True)
    ganops.bias_act(x64, b64, act="lrelu", impl="ref").sum().backward()
    assert_close(b.grad, b64.grad, torch.float32, "db")
    assert_close(x.grad, x64.grad, torch.float32, "dx")


# ------------------------------------------------------------------------------------- torch.compile


class _Block(torch.nn.Module):
    def __init__(self, impl):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.act = ganops.nn.BiasAct(4, act="lrelu", clamp=1.0, bias_init=0.1, impl=impl)

    def forward(self, x):
        return self.act(self.conv(x)) * 2


@pytest.mark.parametrize("backend", backend_cases())
def test_compile_fullgraph_matches_eager(backend):
    impl, device = backend
    torch._dynamo.reset()
    model = _Block(impl).to(device)
    x = make_input([2, 3, 5, 6], torch.float32, device, requires_grad=True)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager" if device == "cpu" else "inductor")
    y_eager, y_comp = model(x), compiled(x)
    torch.testing.assert_close(y_comp, y_eager)
    g = torch.randn_like(y_eager)
    ge = torch.autograd.grad(y_eager, [x, model.act.bias], g)
    gc = torch.autograd.grad(y_comp, [x, model.act.bias], g)
    for a, c in zip(ge, gc):
        torch.testing.assert_close(c, a)


@pytest.mark.parametrize("backend", FAST)
def test_fast_ops_pass_opcheck(backend):
    """torch.library.opcheck: schema, fake kernel strides, autograd registration."""
    impl, device = backend
    x = make_input([2, 4, 3, 3], torch.float32, device, "channels_last", requires_grad=True)
    b = torch.randn(4, device=device, requires_grad=True)
    fwd = getattr(torch.ops.ganops, f"bias_act_{impl}")
    grad = getattr(torch.ops.ganops, f"bias_act_grad_{impl}")
    torch.library.opcheck(fwd, (x, b, 1, ACTIVATIONS["swish"].code, 0.0, 1.0, 0.9))
    g = torch.randn(2, 4, 3, 3, device=device, requires_grad=True)
    torch.library.opcheck(grad, (g, None, x, b, 1, ACTIVATIONS["swish"].code, 0.0, 1.0, 0.9,
                                 False, True))


# The fast backends on a GPU, and the CUDA kernels under the emulator (tests/cuda_emulator).
GPU_FAST = [c for c in FAST if c.values[0][1] == "cuda" or c.values[0][0] == "cuda"]


def _misaligned(shape, dtype, device):
    """A dense tensor whose data pointer is one element past a 16-byte boundary (scalar kernel path)."""
    n = torch.Size(shape).numel()
    return torch.randn(n + 1, device=device).to(dtype)[1:].view(shape)


def _away_from_clamp(x, b, dim, act, clamp):
    """Moves the inputs whose output lies within 1e-3 of ±clamp by +0.01 (at least 2.8e-3 in output for
    these activations): there float32 and float64 arithmetic may legitimately disagree on whether the
    element is clamped, and so on its gradient; with millions of elements some always land there."""
    with torch.no_grad():
        y = ganops.bias_act(x.double(), b.double(), dim, act, impl="ref")
        x.add_(((y.abs() - clamp).abs() < 1e-3).to(x.dtype) * 0.01)


@pytest.mark.parametrize("backend", GPU_FAST)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("shape, dim, layout", [
    ([4, 64, 96, 96], 1, "contiguous"),        # long rows: several chunks per row, many blocks
    ([4, 64, 96, 96], 1, "channels_last"),     # column kernel, many row blocks reducing into db
    ([2048, 520], 1, "contiguous"),            # fully connected, column blocks
    ([3, 7, 33, 65], 1, "contiguous"),         # odd sizes: scalar path
    ([5, 24, 40, 16], 3, "contiguous"),        # last dim
    ([2, 32, 64, 64], 1, "misaligned"),        # scalar path because of the pointer
])
@pytest.mark.parametrize("act, clamp", [("lrelu", 0.9), ("swish", None), ("tanh", 0.5), ("linear", None)])
def test_gpu_large_shapes(backend, dtype, shape, dim, layout, act, clamp):
    impl, device = backend
    if layout == "misaligned":
        x = _misaligned(shape, dtype, device).requires_grad_(True)
    else:
        x = make_input(shape, dtype, device, layout, requires_grad=True)
    b = torch.randn(shape[dim], device=device).to(dtype).requires_grad_(True)
    if clamp is not None:
        _away_from_clamp(x, b, dim, act, clamp)
    x64 = x.detach().double().requires_grad_(True)
    b64 = b.detach().double().requires_grad_(True)
    y = ganops.bias_act(x, b, dim, act, clamp=clamp, impl=impl)
    y64 = ganops.bias_act(x64, b64, dim, act, clamp=clamp, impl="ref")
    assert_close(y, y64, dtype, "y")
    g = torch.randn_like(y)
    d = _grads(y, [x, b], g)
    d64 = _grads(y64, [x64, b64], g.double())
    assert_close(d[0], d64[0], dtype, "dx", factor=2)
    assert_close(d[1], d64[1], dtype, "db", factor=4)
    if act in ("swish", "tanh"):
        w = torch.randn_like(d[0])
        (ggx,) = torch.autograd.grad((d[0] * w).sum(), x)
        (ggx64,) = torch.autograd.grad((d64[0] * w.double()).sum(), x64)
        assert_close(ggx, ggx64, dtype, "ddx", factor=4)


@pytest.mark.parametrize("backend", GPU_FAST)
def test_gpu_no_bias_large_flat(backend):
    impl, device = backend
    x = make_input([3, 5, 129, 257], torch.float16, device, requires_grad=True)
    y = ganops.bias_act(x, None, act="sigmoid", impl=impl)
    (dx,) = torch.autograd.grad(y, x, torch.ones_like(y))
    x64 = x.detach().double().requires_grad_(True)
    y64 = ganops.bias_act(x64, None, act="sigmoid", impl="ref")
    (dx64,) = torch.autograd.grad(y64, x64, torch.ones_like(y64))
    assert_close(y, y64, torch.float16, "y")
    assert_close(dx, dx64, torch.float16, "dx")


@gpu
def test_gpu_default_dispatch_uses_fast_backend():
    """impl=None on a CUDA tensor goes to the best fast backend (CUDA when built, else Triton)."""
    from ganops import _registry

    x = torch.randn(2, 3, device="cuda")
    expected = "cuda" if _registry.unavailable_reason("bias_act", "cuda", x) is None else "triton"
    assert _registry.choose("bias_act", None, x) == expected


@pytest.mark.parametrize("backend", [c for c in FAST if c.values[0][0] == "triton"])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_triton_multi_tile_reduction(backend, layout, monkeypatch):
    """Programs that walk several tiles before their db atomics (what large tensors use)."""
    from ganops.triton_kernels import bias_act as kernels

    monkeypatch.setattr(kernels, "MIN_PROGRAMS", 1)
    impl, device = backend
    shape = [2, 8, 40, 50] if layout == "contiguous" else [3, 8, 30, 30]  # rows of 2000 / 2700 rows
    x = make_input(shape, torch.float32, device, layout, requires_grad=True)
    b = torch.randn(8, device=device, requires_grad=True)
    g = torch.randn(shape, device=device)
    d = _grads(ganops.bias_act(x, b, act="elu", clamp=1.0, impl=impl), [x, b], g)
    x64, b64 = x.detach().double().requires_grad_(True), b.detach().double().requires_grad_(True)
    d64 = _grads(ganops.bias_act(x64, b64, act="elu", clamp=1.0, impl="ref"), [x64, b64], g.double())
    assert_close(d[0], d64[0], torch.float32, "dx")
    assert_close(d[1], d64[1], torch.float32, "db")


def test_triton_one_compiled_variant_serves_every_activation_and_order():
    """The activation, clamp, gain, s_is_y and derivative order are runtime arguments of the Triton kernel:
    the forward, first- and second-order gradients of every activation, with and without clamp, compile
    one variant per kernel (forward, gradient) and matrix view (per channel; flat where no bias enters)
    for a given shape, dtype and layout. What the launchers would issue for CUDA tensors, on fake
    tensors: nothing runs."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    from benchmarks import jit_variants as J

    with J.recorded_launches() as launches, J.fake_triton_ops(), FakeTensorMode(), J.cpu_fakes_posing_as_cuda():
        for act, clamp in itertools.product(ACTS, (None, 0.8)):
            x = torch.randn(2, 64, 8, 8, dtype=torch.float16).contiguous(memory_format=torch.channels_last)
            x.requires_grad_(True)
            b = torch.randn(64, dtype=torch.float16, requires_grad=True)
            y = ganops.bias_act(x, b, 1, act, clamp=clamp, impl="triton")
            dx, db = torch.autograd.grad(y, [x, b], torch.randn_like(y), create_graph=True)
            torch.autograd.grad(dx.float().sum() + db.float().sum(), [x, b], allow_unused=True)
    kernels = [l for l in launches if l.kernel == "_bias_act_kernel"]
    views = {}
    for l in kernels:
        views.setdefault(tuple(sorted(l.constexprs.items())), set()).add(l.key)
    assert len({l.key for l in kernels}) == 3, views  # forward, per-channel gradient, flat gradient
    assert all(len(keys) == 1 for keys in views.values()), views
    assert {(c["GRAD"], c["CH_ROW"]) for c in map(dict, views)} == {(False, False), (True, False), (True, True)}
    assert len([l for l in kernels if not l.constexprs["GRAD"]]) == 2 * len(ACTS)  # every activation launched
    assert len([l for l in kernels if l.constexprs["GRAD"]]) > 4 * len(ACTS)  # first and second order
