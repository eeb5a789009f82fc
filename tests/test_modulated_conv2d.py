"""modulated_conv2d: every backend vs an independent float64 evaluation (per-sample demodulated
weights, one conv2d_resample per sample, activation written out) - forward, every first-order
gradient and the second-order path of path-length regularisation - plus the reference's grouped
(batch-1) path, float16 pre-normalisation, no_weight_gradients and bad input."""
import dataclasses
import math
import zlib

import pytest
import torch

import ganops
from helpers import HAS_GPU, assert_close, backend_cases, gpu, gpu_impls, impl_device, rel_err


@dataclasses.dataclass(frozen=True)
class Case:
    n: int
    cin: int
    cout: int
    hw: tuple
    k: int = 3
    up: int = 1
    down: int = 1
    demod: bool = True
    noise: str = "none"  # none | per-sample ([N,1,H,W]) | shared ([H,W])
    bias: bool = True
    act: str = "lrelu"
    clamp: float = None
    gain: float = None
    flip_weight: bool = True

    def __str__(self):
        return (f"n{self.n}-c{self.cin}x{self.cout}-{self.hw[0]}x{self.hw[1]}-k{self.k}-up{self.up}-down{self.down}"
                f"-demod{int(self.demod)}-noise_{self.noise}-{self.act}-clamp{self.clamp}-flip{int(self.flip_weight)}")


CASES = [
    Case(8, 3, 17, (5, 6), k=3, noise="per-sample"),
    Case(1, 17, 3, (4, 5), k=1, act="linear", bias=False),                       # ToRGB, batch 1
    Case(2, 17, 3, (5, 4), k=3, up=2, noise="shared", flip_weight=False),
    Case(2, 3, 17, (6, 7), k=3, down=2, demod=False, noise="per-sample"),
    Case(8, 5, 4, (4, 4), k=1, up=2, demod=False, clamp=0.75),
    Case(2, 4, 5, (7, 6), k=1, down=2, act="tanh", gain=1.3),
    Case(1, 3, 4, (5, 5), k=3, up=2, noise="per-sample", clamp=0.5, act="lrelu"),
    Case(3, 6, 5, (5, 6), k=3, act="swish", noise="shared", clamp=2.0),
]
DTYPE_ID = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}
SMALL = Case(2, 3, 4, (4, 4), k=3, noise="per-sample")

# Triton through the CPU interpreter costs seconds per call: there each case runs once, the dtypes
# and layouts spread over the cases; on a GPU every combination runs.
INTERPRETER_SUBSET = {(1, "fp16-cl"), (2, "bf16-nc"), (3, "fp32"), (4, "fp16-cl"), (5, "bf16-nc"),
                      (6, "fp32"), (7, "fp16-cl"), ("pl", SMALL, "fp32"), ("pl", CASES[6], "bf16")}


def skip_outside_interpreter_subset(impl, key):
    if impl == "triton" and not HAS_GPU and key not in INTERPRETER_SUBSET:
        pytest.skip("Triton interpreter: this combination runs on the GPU only (CPU time budget)")

FIR = [1, 3, 3, 1]
# Gradients pass through two or three rounded intermediates (conv input/output, dz) before a
# reduction over pixels or the batch: allow a few times the single-op tolerance.
GRAD_FACTOR = 6


def make_args(case: Case, dtype, device, layout="contiguous", requires_grad=False):
    gen = torch.Generator().manual_seed(zlib.crc32(str(case).encode()))
    def rnd(*shape, scale=1.0):
        return (torch.randn(shape, generator=gen) * scale)
    h, w = case.hw
    oh, ow = h * case.up // case.down, w * case.up // case.down
    x = rnd(case.n, case.cin, h, w).to(device, dtype)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == "noncontig":
        x = torch.cat([x, x], dim=3)[..., ::2]
    pdt = torch.float64 if dtype == torch.float64 else torch.float32  # parameters stay float32, as in training
    args = dict(
        x=x,
        weight=rnd(case.cout, case.cin, case.k, case.k).to(device, pdt),
        styles=(rnd(case.n, case.cin) * 0.5 + 1).to(device, pdt),
        noise=None if case.noise == "none" else
        (rnd(case.n, 1, oh, ow, scale=0.3) if case.noise == "per-sample" else rnd(oh, ow, scale=0.3)).to(device, dtype),
        bias=rnd(case.cout, scale=0.2).to(device, pdt) if case.bias else None,
    )
    if requires_grad:
        for value in args.values():
            if value is not None:
                value.requires_grad_(True)
    return args


def out_shape(case: Case):
    return (case.n, case.cout, case.hw[0] * case.up // case.down, case.hw[1] * case.up // case.down)


def options(case: Case):
    opts = dict(up=case.up, down=case.down, demodulate=case.demod, flip_weight=case.flip_weight, act=case.act,
                gain=case.gain, clamp=case.clamp)
    if case.up > 1 or case.down > 1:
        opts["resample_filter"] = ganops.setup_filter(FIR)
    return opts


ALPHA = 0.2
ACTS = {"linear": (lambda v: v, 1.0), "lrelu": (lambda v: torch.where(v >= 0, v, v * ALPHA), math.sqrt(2)),
        "tanh": (torch.tanh, 1.0), "swish": (lambda v: v * torch.sigmoid(v), math.sqrt(2))}


def preactivation(case: Case, x, weight, styles, noise, bias):
    """Independent float64 evaluation of conv(x * s, w) * d + noise + bias."""
    x, weight, styles = x.double(), weight.double(), styles.double()
    wn = weight.unsqueeze(0) * styles[:, None, :, None, None]
    if case.demod:
        wn = wn * (wn.square().sum(dim=(2, 3, 4), keepdim=True) + 1e-8).rsqrt()
    f = ganops.setup_filter(FIR) if case.up > 1 or case.down > 1 else None
    z = torch.cat([ganops.conv2d_resample(x[i:i + 1], wn[i], f, case.up, case.down, padding=case.k // 2,
                                          flip_weight=case.flip_weight) for i in range(x.shape[0])])
    if noise is not None:
        z = z + noise.double()
    if bias is not None:
        z = z + bias.double().reshape(1, -1, 1, 1)
    return z


def gain_of(case: Case) -> float:
    return ACTS[case.act][1] if case.gain is None else case.gain


def expected(case: Case, **args):
    """The layer in float64: clamp(act(preactivation) * gain)."""
    y = ACTS[case.act][0](preactivation(case, **args)) * gain_of(case)
    return y if case.clamp is None else y.clamp(-case.clamp, case.clamp)


def expected_given(case: Case, out, **args64):
    """The float64 layer with its piecewise decisions (lrelu side, clamped or not) read from the
    tested output ``out``: a low-precision forward may put an element lying within rounding distance
    of a kink on the other side, which is not an error of its gradients. Equals :func:`expected`
    wherever the decisions agree; its derivatives of every order are the layer's."""
    z = preactivation(case, **args64)
    out = out.detach().double().cpu()
    if case.act == "lrelu":
        a = z * torch.where(out > 0, 1.0, ALPHA).double()
    else:
        a = ACTS[case.act][0](z)
    y = a * gain_of(case)
    if case.clamp is not None:
        y = torch.where(out.abs() < case.clamp, y, out.sign() * case.clamp)
    return y


def decided(case: Case, args64, dtype):
    """1 where the clamp decision is clear, 0 where the float64 value before clamping lies within
    rounding distance of the clamp (a low-precision forward may decide either way there; the
    upstream gradient is zeroed at those few elements)."""
    with torch.no_grad():
        z = preactivation(case, **{k: None if v is None else v.detach() for k, v in args64.items()})
        if case.clamp is None:
            return torch.ones_like(z)
        v = ACTS[case.act][0](z) * gain_of(case)
        band = 8 * torch.finfo(dtype).eps * case.clamp
        return ((v.abs() - case.clamp).abs() > band).double()


def upcast(args):
    return {k: None if v is None else v.detach().double().cpu().requires_grad_(v.requires_grad) for k, v in args.items()}


@pytest.mark.parametrize("backend", backend_cases())
@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("dtype,layout", [(torch.float32, "contiguous"), (torch.float16, "channels_last"),
                                          (torch.bfloat16, "noncontig")], ids=["fp32", "fp16-cl", "bf16-nc"])
def test_forward_and_gradients(backend, case, dtype, layout):
    impl, device = backend
    skip_outside_interpreter_subset(impl, (CASES.index(case), DTYPE_ID[dtype] + {"contiguous": "",
                                                                                 "channels_last": "-cl",
                                                                                 "noncontig": "-nc"}[layout]))
    check_forward_and_gradients(case, impl, device, dtype, layout)


def check_forward_and_gradients(case, impl, device, dtype, layout):
    args = make_args(case, dtype, device, layout, requires_grad=True)
    out = ganops.modulated_conv2d(**args, **options(case), impl=impl)
    assert out.dtype == dtype
    args64 = upcast(args)
    assert_close(out, expected(case, **args64), dtype, "y", factor=2)

    dy = torch.randn(out.shape, generator=torch.Generator().manual_seed(7)).double() * decided(case, args64, dtype)
    names = [k for k, v in args.items() if v is not None]
    grads = torch.autograd.grad(out, [args[k] for k in names], dy.to(device, dtype))
    grads64 = torch.autograd.grad(expected_given(case, out, **args64), [args64[k] for k in names], dy)
    for name, g, g64 in zip(names, grads, grads64):
        assert_close(g, g64, dtype, f"grad {name}", factor=GRAD_FACTOR)


MULTI_TILE = Case(1, 40, 36, (9, 9), k=3, noise="per-sample")  # > 1 tile along every GEMM axis (interpreter tiles)


@pytest.mark.parametrize("backend", backend_cases())
def test_multi_tile_interpreter_shape(backend):
    impl, device = backend
    check_forward_and_gradients(MULTI_TILE, impl, device, torch.float32, "contiguous")


@pytest.mark.parametrize("impl", gpu_impls())
@pytest.mark.parametrize("k,up,down", [(3, 1, 1), (3, 2, 1), (3, 1, 2), (1, 1, 1), (1, 2, 1)])
@pytest.mark.parametrize("dtype,layout", [(torch.float32, "contiguous"), (torch.float16, "channels_last"),
                                          (torch.bfloat16, "contiguous")], ids=["fp32", "fp16-cl", "bf16"])
def test_gpu_realistic_tiles(impl, k, up, down, dtype, layout):
    """Channel counts and sizes spanning several GPU tiles (K blocks, output-channel tiles, pixels)."""
    case = Case(4, 80, 70, (19, 21), k=k, up=up, down=down, noise="per-sample", clamp=None)
    check_forward_and_gradients(case, impl, impl_device(impl), dtype, layout)


@pytest.mark.parametrize("backend", backend_cases())
def test_torch_compile_fullgraph_traces(backend):
    """Dynamo traces the op without graph breaks; AOTAutograd runs its fake kernels and backward."""
    impl, device = backend
    args = make_args(SMALL, torch.float32, device, requires_grad=True)
    opts = options(SMALL)
    compiled = torch.compile(lambda a: ganops.modulated_conv2d(**a, **opts, impl=impl), backend="aot_eager",
                             fullgraph=True)
    out = compiled(args)
    eager = ganops.modulated_conv2d(**args, **opts, impl=impl)
    assert_close(out, eager.double(), torch.float32, "compiled y")
    g, = torch.autograd.grad(out.square().sum(), [args["styles"]])
    g_eager, = torch.autograd.grad(eager.square().sum(), [args["styles"]])
    assert_close(g, g_eager.double(), torch.float32, "compiled grad styles")


@gpu
@pytest.mark.parametrize("impl", gpu_impls())
@pytest.mark.parametrize("case", [CASES[0], CASES[2]], ids=str)
def test_gpu_torch_compile_fullgraph(impl, case):
    args = make_args(case, torch.float16, "cuda", requires_grad=True)
    opts = options(case)
    compiled = torch.compile(lambda a: ganops.modulated_conv2d(**a, **opts, impl=impl), fullgraph=True)
    out = compiled(args)
    eager = ganops.modulated_conv2d(**args, **opts, impl=impl)
    assert_close(out, eager.double(), torch.float16, "compiled y")
    g, = torch.autograd.grad(out.float().square().sum(), [args["styles"]])
    g_eager, = torch.autograd.grad(eager.float().square().sum(), [args["styles"]])
    assert_close(g, g_eager.double(), torch.float16, "compiled grad styles", factor=4)


@pytest.mark.parametrize("backend", backend_cases())
@pytest.mark.parametrize("case", [SMALL, CASES[0], CASES[2], CASES[6], CASES[7]], ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=["fp32", "fp16", "bf16"])
def test_path_length_second_order(backend, case, dtype):
    """d/d(x, w, s) of |d(sum(y * noise))/ds|^2: the gradient path-length regularisation takes."""
    impl, device = backend
    skip_outside_interpreter_subset(impl, ("pl", case, DTYPE_ID[dtype]))
    args = make_args(case, dtype, device, requires_grad=True)
    args64 = upcast(args)

    pl_noise = torch.randn(out_shape(case), generator=torch.Generator().manual_seed(3)).double() * decided(
        case, args64, dtype)

    def penalty_grads(fn, a, skip_weight_gradients):
        y = fn(a)
        with ganops.no_weight_gradients(skip_weight_gradients):
            g_s, = torch.autograd.grad((y * pl_noise.to(y.device, y.dtype)).sum(), [a["styles"]], create_graph=True)
        return torch.autograd.grad(g_s.square().sum(), [a["x"], a["weight"], a["styles"]])

    out = ganops.modulated_conv2d(**args, **options(case), impl=impl)
    # The op's first-order pass runs inside no_weight_gradients, as in training (the weights get
    # their gradient from the second pass); the float64 evaluation convolves with per-sample
    # weights, whose gradient it needs, so it runs outside.
    got = penalty_grads(lambda a: ganops.modulated_conv2d(**a, **options(case), impl=impl), args, True)
    ref = penalty_grads(lambda a: expected_given(case, out, **a), args64, False)
    for name, g, g64 in zip(["x", "weight", "styles"], got, ref):
        assert_close(g, g64, dtype, f"second-order grad {name}", factor=GRAD_FACTOR)


def test_reference_gradcheck_and_gradgradcheck():
    case = Case(2, 2, 2, (3, 3), k=3, up=2, noise="per-sample", act="lrelu")
    args = make_args(case, torch.float64, "cpu", requires_grad=True)
    names = [k for k, v in args.items() if v is not None]
    opts = options(case)
    fn = lambda *t: ganops.modulated_conv2d(**dict(zip(names, t)), **opts, impl="ref")
    inputs = tuple(args[k] for k in names)
    assert torch.autograd.gradcheck(fn, inputs, fast_mode=True)
    assert torch.autograd.gradgradcheck(fn, inputs, fast_mode=True)


@pytest.mark.parametrize("case", [CASES[0], CASES[2], CASES[3]], ids=str)
def test_reference_grouped_path_matches_non_fused(case):
    """The batch-1 grouped convolution (fused_modconv) equals the non-fused path."""
    from ganops.ref.modulated_conv2d import modulated_conv2d_ref

    args = make_args(case, torch.float64, "cpu")
    f = options(case).get("resample_filter")
    common = (args["x"], args["weight"], args["styles"], args["noise"], case.up, case.down, (case.k // 2,) * 4, f,
              case.demod, case.flip_weight)
    assert_close(modulated_conv2d_ref(*common, fused_modconv=True), modulated_conv2d_ref(*common, fused_modconv=False),
                 torch.float64)


@pytest.mark.parametrize("backend", backend_cases())
def test_float16_large_inputs_do_not_overflow(backend):
    """Pre-normalisation keeps float16 finite where the raw conv(x * s, w) would exceed 65504."""
    impl, device = backend
    case = Case(2, 17, 5, (4, 4), act="linear", bias=False)
    args = make_args(case, torch.float16, device)
    args["weight"] = args["weight"] * 300
    args["styles"] = args["styles"] * 300
    args["x"] = (args["x"].float() * 100).half()
    out = ganops.modulated_conv2d(**args, **options(case), impl=impl)
    assert_close(out, expected(case, **upcast(args)), torch.float16, factor=2)


@pytest.mark.parametrize("backend", backend_cases())
def test_no_weight_gradients_skips_weight_only(backend):
    """Inside the context the convolution gives the weight no gradient (with demodulation on, the
    weight still gets the demodulation coefficients' gradient, as in StyleGAN2-ADA)."""
    impl, device = backend
    case = dataclasses.replace(SMALL, demod=False)
    args = make_args(case, torch.float32, device, requires_grad=True)
    y = ganops.modulated_conv2d(**args, **options(case), impl=impl)
    with ganops.no_weight_gradients():
        g_w, g_s = torch.autograd.grad(y.sum(), [args["weight"], args["styles"]], allow_unused=True)
    assert g_w is None or not g_w.any()
    args64 = upcast(args)
    g_s64, = torch.autograd.grad(expected_given(case, y, **args64).sum(), [args64["styles"]])
    assert_close(g_s, g_s64, torch.float32, "grad styles", factor=4)


def test_bad_input():
    x, w, s = torch.randn(2, 4, 6, 6), torch.randn(5, 4, 3, 3), torch.randn(2, 4)
    with pytest.raises(ValueError, match=r"weight.shape\[1\] \(3 input channels\) must equal x.shape\[1\] \(4\)"):
        ganops.modulated_conv2d(x, torch.randn(5, 3, 3, 3), s)
    with pytest.raises(ValueError, match=r"styles must have shape \[N, I\] = \[2, 4\]"):
        ganops.modulated_conv2d(x, w, torch.randn(2, 5))
    with pytest.raises(ValueError, match="styles must be 2-D"):
        ganops.modulated_conv2d(x, w, s[0])
    with pytest.raises(ValueError, match="padding=None needs an odd kernel size"):
        ganops.modulated_conv2d(x, torch.randn(5, 4, 2, 2), s)
    with pytest.raises(ValueError, match="up and down cannot both be > 1"):
        ganops.modulated_conv2d(x, w, s, up=2, down=2)
    with pytest.raises(ValueError, match=r"noise must be broadcastable to \[N, 1, H', W'\] = \[2, 1, 12, 12\]"):
        ganops.modulated_conv2d(x, w, s, noise=torch.randn(2, 1, 6, 6), up=2)
    with pytest.raises(ValueError, match="bias must have weight.shape\\[0\\] = 5"):
        ganops.modulated_conv2d(x, w, s, bias=torch.randn(4))
    with pytest.raises(ValueError, match="act must be one of"):
        ganops.modulated_conv2d(x, w, s, act="gelu")
    with pytest.raises(ValueError, match="x must be 4-D"):
        ganops.modulated_conv2d(x[0], w, s)
    with pytest.raises(ValueError, match="clamp must be None"):
        ganops.modulated_conv2d(x, w, s, clamp=-1)
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        ganops.modulated_conv2d(x.long(), w, s)
    zero_channels = r"x must have at least 1 channel \(x.shape\[1\] >= 1\), got shape \(2, 0, 6, 6\)"
    with pytest.raises(ValueError, match=zero_channels):
        ganops.modulated_conv2d(x[:, :0], w[:, :0], s[:, :0])
    with pytest.raises(ValueError, match=r"x must have at least 1 channel"):
        ganops.modulated_conv2d(x[:, :0], w[:, :0], s[:, :0], demodulate=False)
    with pytest.raises(ValueError, match=r"weight must have at least 1 output channel \(weight.shape\[0\] >= 1\)"):
        ganops.modulated_conv2d(x, w[:0], s, bias=torch.randn(0))
    with pytest.raises(ValueError, match=r"weight must have a kernel of at least 1x1, got shape \(5, 4, 0, 3\)"):
        ganops.modulated_conv2d(x, torch.randn(5, 4, 0, 3), s, padding=1)
    if HAS_GPU:
        with pytest.raises(ValueError, match="styles must be on the device of x"):
            ganops.modulated_conv2d(x.cuda(), w.cuda(), s)


# --- what the launchers would compile for a GPU, on fake CUDA tensors (no GPU, nothing runs) ------

def _gpu_launches(dtype, layout, sizes, noise=True):
    """The Triton launches (benchmarks.jit_variants.Launch) of forward + backward of a 32->32 3x3
    layer for every input size in ``sizes``, as the launchers would issue them for CUDA tensors."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    from benchmarks import jit_variants as J

    with J.recorded_launches() as launches, J.fake_triton_ops(), FakeTensorMode(), J.cpu_fakes_posing_as_cuda():
        for hw in sizes:
            case = Case(2, 32, 32, (hw, hw), k=3, noise="per-sample" if noise else "none")
            args = make_args(case, dtype, "cpu", layout, requires_grad=True)
            y = ganops.modulated_conv2d(**args, **options(case), impl="triton")
            y.float().sum().backward()
    return launches


@pytest.mark.parametrize("dtype,layout", [(torch.float16, "contiguous"), (torch.bfloat16, "channels_last")],
                         ids=["fp16", "bf16-cl"])
def test_one_compiled_variant_serves_every_resolution(dtype, layout):
    """Sizes only bound loops and masks (do_not_specialize): a layer at 4x4 ... 64x64 reuses the
    variants compiled for its first size instead of compiling new ones per resolution."""
    launches = _gpu_launches(dtype, layout, [4, 8, 16, 64])
    kinds = {(l.kernel, tuple(sorted(l.constexprs.items()))) for l in launches if "modconv" in l.kernel}
    assert {k for k, _ in kinds} == {"_modconv_fwd_kernel", "_modconv_wgrad_kernel"}
    for kernel, constexprs in kinds:
        keys = {l.key for l in launches if (l.kernel, tuple(sorted(l.constexprs.items()))) == (kernel, constexprs)}
        assert len(keys) == 1, f"{kernel} {dict(constexprs)}: {len(keys)} compilations for 4 sizes"
    per_size = len([l for l in _gpu_launches(dtype, layout, [4]) if "modconv" in l.kernel])
    assert len([l for l in launches if "modconv" in l.kernel]) == 4 * per_size  # every size did launch


@pytest.fixture
def restore_fp32_precision():
    conv = torch.backends.cudnn.conv.fp32_precision
    yield
    torch.backends.cudnn.conv.fp32_precision = conv


@pytest.mark.parametrize("setting", ["legacy-on", "legacy-off", "tf32", "ieee"])
def test_float32_dots_follow_the_cudnn_tf32_setting(setting, restore_fp32_precision):
    """float32 runs TF32 dots only where cuDNN's convolutions may (the CUDA path), exact IEEE dots
    otherwise: torch.backends.cudnn.allow_tf32 (legacy) or torch.backends.cudnn.conv.fp32_precision."""
    from ganops.triton_kernels import modulated_conv2d as K

    if setting.startswith("legacy"):
        torch.backends.cudnn.allow_tf32 = setting == "legacy-on"
    else:
        torch.backends.cudnn.conv.fp32_precision = setting
    allowed = setting in ("legacy-on", "tf32")
    dots = {l.constexprs["DOT"] for l in _gpu_launches(torch.float32, "contiguous", [8]) if "modconv" in l.kernel}
    assert dots == {K.DOT_TF32 if allowed else K.DOT_IEEE}
    assert K.dot_mode(torch.zeros(1), allow_tf32=True) == K.DOT_IEEE  # CPU tensors (interpreter): never TF32


@gpu
@pytest.mark.parametrize("allow", [False, True], ids=["ieee", "tf32"])
def test_gpu_float32_precision_follows_tf32_setting(allow, restore_fp32_precision):
    """On the GPU: float32 within 1e-5 of float64 with TF32 off; with TF32 on, the error of 10-bit
    mantissa operands (above 1e-5, below 2e-3)."""
    torch.backends.cudnn.conv.fp32_precision = "tf32" if allow else "ieee"
    case = Case(2, 64, 48, (16, 16), k=3, act="linear", bias=False)
    args = make_args(case, torch.float32, "cuda")
    out = ganops.modulated_conv2d(**args, **options(case), impl="triton")
    err = float(rel_err(out, expected(case, **upcast(args))))
    assert (1e-5 < err < 2e-3) if allow else (err <= 1e-5), err
