"""ganops.grid_sample: values and gradients of every order against float64 references."""
import pytest
import torch
import torch.nn.functional as F

import ganops
from ganops.ref.grid_sample import grid_sample as grid_sample_ref
from helpers import HAS_GPU, assert_close, backend_cases, gpu_impls, impl_device, make_input, not_emulated

CASES = backend_cases()


def _grid(n, ho, wo, dtype, device, layout="contiguous"):
    """Random sampling points, partly outside [-1, 1] so the zeros padding is exercised."""
    g = torch.rand(n, ho, wo, 2, device=device) * 2.6 - 1.3
    if layout == "noncontig":  # a strided view: [N, Wo, Ho, 2] transposed
        g = g.transpose(1, 2).contiguous().transpose(1, 2)
    return g.to(dtype)


def _all_orders(op, x, grid, go, v_x, v_grid):
    """out, first-order grads w.r.t. (x, grid), and the grads of <gx, v_x> + <ggrid, v_grid> w.r.t.
    (grid, go): the terms R1 / path length through an augmentation need (x enters linearly)."""
    out = op(x, grid)
    gx, ggrid = torch.autograd.grad(out, (x, grid), go, create_graph=True)
    second = (gx * v_x).sum() + (ggrid * v_grid).sum()
    s_grid, s_go = torch.autograd.grad(second, (grid, go))
    return [out, gx, ggrid, s_grid, s_go]


def _check_against_reference(impl, device, shape, out_hw, dtype, layout):
    n, c, h, w = shape
    x = make_input(shape, dtype, device, layout, requires_grad=True)
    grid = _grid(n, *out_hw, dtype, device, layout).requires_grad_(True)
    go = make_input((n, c, *out_hw), dtype, device, requires_grad=True)
    v_x = make_input(shape, dtype, device)
    v_grid = make_input(grid.shape, dtype, device)
    fast = _all_orders(lambda a, b: ganops.grid_sample(a, b, impl=impl), x, grid, go, v_x, v_grid)
    up = [t.detach().double().requires_grad_(True) for t in (x, grid, go)]
    ref = _all_orders(grid_sample_ref, *up, v_x.double(), v_grid.double())
    names = ["output", "grad input", "grad grid", "2nd order grid", "2nd order grad_output"]
    for name, a, b in zip(names, fast, ref):
        assert a.dtype == dtype, f"{name}: dtype {a.dtype} != {dtype}"
        # Grid gradients are sums over channels of products with discontinuous (floor) weights: looser.
        assert_close(a, b, dtype, f"{impl} {name}", factor=1.0 if name in ("output", "grad input") else 4.0)


@pytest.mark.parametrize("backend", CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "noncontig"])
def test_matches_reference_dtypes_layouts(backend, dtype, layout):
    impl, device = backend
    torch.manual_seed(0)
    _check_against_reference(impl, device, (2, 3, 5, 7), (4, 6), dtype, layout)


@pytest.mark.parametrize("backend", CASES)
@pytest.mark.parametrize("shape,out_hw", [((1, 1, 1, 1), (1, 1)), ((1, 20, 9, 4), (9, 9)),
                                           ((3, 2, 6, 1), (2, 5))])
def test_matches_reference_shapes(backend, shape, out_hw):
    """Batch 1, single pixels, more channels / positions than one block, width 1."""
    impl, device = backend
    torch.manual_seed(1)
    _check_against_reference(impl, device, shape, out_hw, torch.float32, "contiguous")


@pytest.mark.parametrize("impl", gpu_impls())
def test_matches_reference_large_gpu(impl):
    torch.manual_seed(2)
    _check_against_reference(impl, impl_device(impl), (4, 70, 33, 47), (61, 29), torch.float32, "channels_last")


def test_reference_matches_torch_first_order():
    torch.manual_seed(3)
    x = torch.randn(2, 3, 6, 5, dtype=torch.float64, requires_grad=True)
    grid = _grid(2, 4, 7, torch.float64, "cpu").requires_grad_(True)
    go = torch.randn(2, 3, 4, 7, dtype=torch.float64)
    ours = grid_sample_ref(x, grid)
    theirs = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    assert_close(ours, theirs, torch.float64, "forward vs torch")
    for name, a, b in zip(("grad input", "grad grid"), torch.autograd.grad(ours, (x, grid), go),
                          torch.autograd.grad(theirs, (x, grid), go)):
        assert_close(a, b, torch.float64, f"{name} vs torch")


@pytest.mark.parametrize("backend", CASES)
def test_gradcheck_and_gradgradcheck_float64(backend):
    """gradgradcheck also differentiates the backward w.r.t. grad_output (what R1 through ADA needs)."""
    impl, device = backend
    torch.manual_seed(4)
    x = torch.randn(1, 2, 4, 5, dtype=torch.float64, device=device, requires_grad=True)
    grid = _grid(1, 3, 3, torch.float64, device).requires_grad_(True)
    op = lambda a, b: ganops.grid_sample(a, b, impl=impl)  # noqa: E731
    assert torch.autograd.gradcheck(op, (x, grid), fast_mode=True)
    assert torch.autograd.gradgradcheck(op, (x, grid), fast_mode=True)


@pytest.mark.parametrize("backend", CASES)
def test_gradgradcheck_wrt_grad_output_only(backend):
    """The backward as a function of grad_output alone (input and grid constant), full Jacobian."""
    impl, device = backend
    torch.manual_seed(5)
    x = torch.randn(1, 2, 3, 4, dtype=torch.float64, device=device)
    grid = _grid(1, 2, 2, torch.float64, device)

    def backward_of(go):
        xx = x.clone().requires_grad_(True)
        (gx,) = torch.autograd.grad(ganops.grid_sample(xx, grid, impl=impl), xx, go, create_graph=True)
        return gx

    go = torch.randn(1, 2, 2, 2, dtype=torch.float64, device=device, requires_grad=True)
    assert torch.autograd.gradcheck(backward_of, (go,))


@pytest.mark.parametrize("backend", CASES)
def test_compile_fullgraph(backend):
    """No graph breaks through the custom ops and their autograd (inductor on the GPU; aot_eager on
    the CPU, which traces the same graphs and runs the kernels eagerly)."""
    impl, device = backend
    torch.manual_seed(6)
    x = torch.randn(2, 3, 6, 5, device=device, requires_grad=True)
    grid = _grid(2, 4, 3, torch.float32, device).requires_grad_(True)
    torch._dynamo.reset()
    compiled = torch.compile(lambda a, b: ganops.grid_sample(a, b, impl=impl), fullgraph=True,
                             backend="inductor" if HAS_GPU else "aot_eager")
    out = compiled(x, grid)
    up = [t.detach().double().requires_grad_(True) for t in (x, grid)]
    ref = grid_sample_ref(*up)
    assert_close(out, ref, torch.float32, "compiled output")
    go = torch.randn_like(out)
    for name, a, b in zip(("grad input", "grad grid"), torch.autograd.grad(out, (x, grid), go),
                          torch.autograd.grad(ref, up, go.double())):
        assert_close(a, b, torch.float32, f"compiled {name}", factor=4.0)


@pytest.mark.parametrize("make_args,error,match", [
    (lambda: ([1.0], torch.zeros(1, 1, 1, 2)), TypeError, "input must be a torch.Tensor"),
    (lambda: (torch.randn(1, 1, 3, 3).long(), torch.zeros(1, 1, 1, 2)), TypeError, "input must be float"),
    (lambda: (torch.randn(1, 3, 3), torch.zeros(1, 1, 1, 2)), ValueError, r"input must be 4-D"),
    (lambda: (torch.randn(1, 1, 3, 3), torch.zeros(1, 1, 1, 3)), ValueError, r"grid must be 4-D \[N, Ho, Wo, 2\]"),
    (lambda: (torch.randn(2, 1, 3, 3), torch.zeros(1, 1, 1, 2)), ValueError, "grid batch 1 must equal input batch 2"),
    (lambda: (torch.randn(1, 1, 3, 3), torch.zeros(1, 1, 1, 2, dtype=torch.float64)), TypeError,
     "grid dtype must equal"),
])
def test_bad_arguments(make_args, error, match):
    with pytest.raises(error, match=match):
        ganops.grid_sample(*make_args())


@not_emulated
def test_cuda_impl_on_cpu_tensors_is_a_clear_error():
    with pytest.raises(ganops.BackendUnavailableError, match="impl='cuda' cannot serve this call"):
        ganops.grid_sample(torch.randn(1, 1, 2, 2), torch.zeros(1, 1, 1, 2), impl="cuda")


# --- non-finite grid coordinates: what torch.nn.functional.grid_sample gives ------------------------
# torch (bilinear, zeros padding): a NaN or +-inf coordinate makes that output sample NaN, adds nothing
# to the input's gradient, and its grid gradient is NaN along the other axis and 0 along its own (0 * the
# weights' derivative); every other sample is untouched.

_NONFINITE = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}
_POINTS = ((0, 1, 2), (1, 2, 0))  # (n, i, j) of the samples made non-finite


def _torch_grid_sample(x, grid):
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _forward_backward(op, x, grid, go):
    x = x.detach().requires_grad_(True)
    grid = grid.detach().requires_grad_(True)
    out = op(x, grid)
    return [out.detach()] + [t.detach() for t in torch.autograd.grad(out, (x, grid), go)]


def _assert_matches_torch(name, ours, theirs, dtype, factor):
    """Same NaN samples, same exact zeros, the rest close (theirs: float64 torch on the same values)."""
    ours = ours.double().cpu()
    assert torch.equal(ours.isnan(), theirs.isnan()), \
        f"{name}: NaN at {ours.isnan().nonzero().tolist()}, torch at {theirs.isnan().nonzero().tolist()}"
    zero = theirs == 0
    assert (ours[zero] == 0).all(), f"{name}: not 0 where torch gives 0: {ours[zero]}"
    finite = ~theirs.isnan()
    assert_close(ours[finite], theirs[finite], dtype, name, factor=factor)


@pytest.mark.parametrize("backend", CASES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16])
@pytest.mark.parametrize("value", list(_NONFINITE))
@pytest.mark.parametrize("axes", [(0,), (1,), (0, 1)], ids=["x", "y", "xy"])
def test_nonfinite_grid_matches_torch(backend, dtype, value, axes):
    """NaN / +-inf coordinates: forward and first-order gradients as torch gives them (no index error,
    no read outside the input: the CUDA case runs under ASan in CI), every other sample unchanged."""
    impl, device = backend
    torch.manual_seed(7)
    x = make_input((2, 3, 5, 4), dtype, device)
    finite_grid = _grid(2, 3, 4, dtype, device)
    grid = finite_grid.clone()
    for n, i, j in _POINTS:
        for axis in axes:
            grid[n, i, j, axis] = _NONFINITE[value]
    go = make_input((2, 3, 3, 4), dtype, device)
    ours = _forward_backward(lambda a, b: ganops.grid_sample(a, b, impl=impl), x, grid, go)
    theirs = _forward_backward(_torch_grid_sample, *(t.double().cpu() for t in (x, grid, go)))
    normal = _forward_backward(lambda a, b: ganops.grid_sample(a, b, impl=impl), x, finite_grid, go)
    bad = torch.zeros(2, 3, 4, dtype=torch.bool)
    for point in _POINTS:
        bad[point] = True
    assert theirs[0].isnan().permute(0, 2, 3, 1).all(-1).equal(bad), "torch no longer gives NaN samples"
    for name, a, b, factor in zip(("output", "grad input", "grad grid"), ours, theirs, (1.0, 1.0, 4.0)):
        _assert_matches_torch(f"{impl} {value} {name}", a, b, dtype, factor)
    # Samples with finite coordinates: bit-identical to the call without the non-finite ones.
    assert torch.equal(ours[0].permute(0, 2, 3, 1)[~bad], normal[0].permute(0, 2, 3, 1)[~bad]), "output"
    assert torch.equal(ours[2][~bad.to(device)], normal[2][~bad.to(device)]), "grad grid"


@pytest.mark.parametrize("backend", CASES)
@pytest.mark.parametrize("value", list(_NONFINITE))
def test_nonfinite_grid_second_order(backend, value):
    """Second order through a grid with NaN / +-inf coordinates runs (no index error or stray read) and,
    at every sample with finite coordinates, equals the float64 reference."""
    impl, device = backend
    torch.manual_seed(8)
    x = make_input((2, 3, 5, 4), torch.float32, device, requires_grad=True)
    grid = _grid(2, 3, 4, torch.float32, device)
    for n, i, j in _POINTS:
        grid[n, i, j, 1] = _NONFINITE[value]
    grid.requires_grad_(True)
    go = make_input((2, 3, 3, 4), torch.float32, device, requires_grad=True)
    v_x, v_grid = make_input(x.shape, torch.float32, device), make_input(grid.shape, torch.float32, device)
    fast = _all_orders(lambda a, b: ganops.grid_sample(a, b, impl=impl), x, grid, go, v_x, v_grid)
    up = [t.detach().double().requires_grad_(True) for t in (x, grid, go)]
    ref = _all_orders(grid_sample_ref, *up, v_x.double(), v_grid.double())
    good = torch.ones(2, 3, 4, dtype=torch.bool, device=device)
    for point in _POINTS:
        good[point] = False
    pick = {"output": lambda t: t.permute(0, 2, 3, 1)[good], "grad input": lambda t: t,
            "grad grid": lambda t: t[good], "2nd order grid": lambda t: t[good],
            "2nd order grad_output": lambda t: t.permute(0, 2, 3, 1)[good]}
    for (name, select), a, b in zip(pick.items(), fast, ref):
        assert_close(select(a), select(b), torch.float32, f"{impl} {value} {name}", factor=4.0)
