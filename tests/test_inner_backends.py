"""An explicit ``impl`` is honoured all the way down.

Every public op of ganops is called with each backend that can run here (the reference; Triton through
its interpreter or on a GPU; the CUDA kernels on a GPU or through the CPU emulator), forward and
backward, while two recorders watch it:
  * every call of ``_registry.choose`` (the outer one and those of the ops it calls inside) must receive
    that ``impl`` explicitly and return it: no inner op decides for itself;
  * a TorchDispatchMode sees every ``ganops::`` custom op that runs: none for 'ref' (the reference runs
    no compiled or Triton kernel), only ``*_<impl>`` ops for the fast backends.
``GANOPS_IMPL`` is set to another backend meanwhile, so an inner op that fell back to the default
choice would be caught even where that default happens to equal ``impl``.
"""
import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import ganops
from ganops import _registry
from helpers import backend_cases


class _GanopsOps(TorchDispatchMode):
    """Records the names of the ganops:: custom ops dispatched while active."""

    def __init__(self):
        super().__init__()
        self.names = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.namespace == "ganops":
            self.names.add(func.name())
        return func(*args, **(kwargs or {}))


@pytest.fixture
def choices(monkeypatch):
    """(impl argument, chosen backend, op family) of every ``_registry.choose`` call."""
    seen = []
    choose = _registry.choose

    def recording(op, impl, x):
        backend = choose(op, impl, x)
        seen.append((impl, backend, op))
        return backend

    monkeypatch.setattr(_registry, "choose", recording)
    return seen


def _leaf(shape, device, scale=1.0):
    return (torch.randn(shape, device=device) * scale).requires_grad_(True)


def _filter(device):
    return ganops.setup_filter([1, 3, 3, 1], device=device)


# Each case: (device, impl) -> (output, inputs to differentiate w.r.t.). Tiny shapes: the Triton
# interpreter and the CUDA emulator run them on the CPU.
def _bias_act(device, impl, act="lrelu"):
    x, b = _leaf([2, 4, 3, 3], device), _leaf([4], device)
    return ganops.bias_act(x, b, act=act, clamp=1.5 if act == "tanh" else None, impl=impl), [x, b]


def _upfirdn2d(device, impl):
    x = _leaf([2, 3, 6, 6], device)
    return ganops.upfirdn2d(x, _filter(device), up=2, down=1, padding=[2, 1, 2, 1], impl=impl), [x]


def _filter2d(device, impl):
    x = _leaf([2, 3, 6, 6], device)
    return ganops.filter2d(x, _filter(device), impl=impl), [x]


def _upsample2d(device, impl):
    x = _leaf([2, 3, 4, 4], device)
    return ganops.upsample2d(x, _filter(device), impl=impl), [x]


def _downsample2d(device, impl):
    x = _leaf([2, 3, 8, 8], device)
    return ganops.downsample2d(x, _filter(device), impl=impl), [x]


def _conv2d_resample(device, impl, up=1, down=1, k=3, padding=1):
    x, w = _leaf([2, 4, 6, 6], device), _leaf([5, 4, k, k], device, 0.2)
    f = _filter(device) if up > 1 or down > 1 else None
    return ganops.conv2d_resample(x, w, f, up=up, down=down, padding=padding, impl=impl), [x, w]


def _modulated_conv2d(device, impl, up=1, down=1, k=3, act="lrelu", noise=True, batch=2, grad=True):
    x = _leaf([batch, 4, 6, 6], device)
    w, s, bias = _leaf([5, 4, k, k], device), _leaf([batch, 4], device), _leaf([5], device)
    out_res = 6 * up // down
    n = torch.randn([batch, 1, out_res, out_res], device=device) if noise else None
    padding = None if k % 2 else 0
    if not grad:
        with torch.no_grad():
            y = ganops.modulated_conv2d(x, w, s, n, up=up, down=down, padding=padding, bias=bias, act=act,
                                        impl=impl)
        return y, []
    y = ganops.modulated_conv2d(x, w, s, n, up=up, down=down, padding=padding, bias=bias, act=act, impl=impl)
    return y, [x, w, s, bias]


def _filtered_lrelu(device, impl):
    x, b = _leaf([2, 3, 6, 6], device), _leaf([3], device)
    f = _filter(device)
    return ganops.filtered_lrelu(x, f, f, b, up=2, down=2, padding=[2, 2, 2, 2], clamp=0.8, impl=impl), [x, b]


def _grid_sample(device, impl):
    x = _leaf([2, 3, 5, 5], device)
    grid = (torch.rand([2, 4, 4, 2], device=device) * 2.2 - 1.1).requires_grad_(True)
    return ganops.grid_sample(x, grid, impl=impl), [x, grid]


def _sum_squares(device, impl):
    x = _leaf([3, 2, 4, 4], device)
    return ganops.sum_squares(x, 0.5, impl=impl), [x]


def _discriminator(device):
    w = _leaf([1, 3, 3, 3], device, 0.3)
    return (lambda img: torch.tanh(torch.nn.functional.conv2d(img, w)).flatten(1).sum(1)), w


def _r1_penalty(device, impl):
    images = _leaf([2, 3, 5, 5], device)
    D, w = _discriminator(device)
    return ganops.r1_penalty(images, D(images), gamma=1.0, impl=impl), [w]


def _gradient_penalty(device, impl):
    D, w = _discriminator(device)
    real, fake = torch.randn([2, 3, 5, 5], device=device), torch.randn([2, 3, 5, 5], device=device)
    return ganops.gradient_penalty(D, real, fake, impl=impl), [w]


def _path_length_penalty(device, impl):
    ws = _leaf([2, 3, 4], device)
    a = _leaf([4, 3 * 6 * 6], device, 0.3)
    images = torch.tanh(ws.mean(1) @ a).reshape(2, 3, 6, 6)
    penalty, _ = ganops.path_length_penalty(images, ws, 0.0, impl=impl)
    return penalty, [a]


def _bias_act_module(device, impl):
    layer = ganops.nn.BiasAct(4, act="lrelu", impl=impl).to(device)
    x = _leaf([2, 4, 3], device)
    return layer(x), [x, layer.bias]


CASES = {
    "bias_act": _bias_act,
    "bias_act-tanh-clamp": lambda d, i: _bias_act(d, i, act="tanh"),
    "nn.BiasAct": _bias_act_module,
    "upfirdn2d": _upfirdn2d,
    "filter2d": _filter2d,
    "upsample2d": _upsample2d,
    "downsample2d": _downsample2d,
    "conv2d_resample": _conv2d_resample,
    "conv2d_resample-up2": lambda d, i: _conv2d_resample(d, i, up=2),
    "conv2d_resample-down2": lambda d, i: _conv2d_resample(d, i, down=2),
    "conv2d_resample-1x1-up2": lambda d, i: _conv2d_resample(d, i, up=2, k=1, padding=0),
    "conv2d_resample-1x1-down2": lambda d, i: _conv2d_resample(d, i, down=2, k=1, padding=0),
    "conv2d_resample-asymmetric": lambda d, i: _conv2d_resample(d, i, padding=[1, 0, 2, 0]),
    "modulated_conv2d": _modulated_conv2d,
    "modulated_conv2d-swish": lambda d, i: _modulated_conv2d(d, i, act="swish"),
    "modulated_conv2d-up2": lambda d, i: _modulated_conv2d(d, i, up=2),
    "modulated_conv2d-1x1-up2": lambda d, i: _modulated_conv2d(d, i, up=2, k=1, noise=False),
    "modulated_conv2d-down2": lambda d, i: _modulated_conv2d(d, i, down=2),
    "modulated_conv2d-batch1-inference": lambda d, i: _modulated_conv2d(d, i, up=2, batch=1, grad=False),
    "filtered_lrelu": _filtered_lrelu,
    "grid_sample": _grid_sample,
    "sum_squares": _sum_squares,
    "r1_penalty": _r1_penalty,
    "gradient_penalty": _gradient_penalty,
    "path_length_penalty": _path_length_penalty,
}


# Cases that run no kernel on any backend (a plain convolution: conv2d_resample without resampling).
NO_KERNEL = {"conv2d_resample"}


def test_every_exported_op_has_a_case():
    """A new public op taking ``impl`` must get a case here."""
    import inspect

    with_impl = {name for name, obj in vars(ganops).items()
                 if callable(obj) and not inspect.isclass(obj) and "impl" in inspect.signature(obj).parameters}
    assert with_impl <= {name.split("-")[0] for name in CASES}, with_impl - set(CASES)


def _other_backend(impl):
    """A backend other than ``impl`` to force through GANOPS_IMPL (an inner op that ignored the outer
    ``impl`` would take it)."""
    return "triton" if impl != "triton" else "ref"


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("backend", backend_cases())
def test_explicit_impl_reaches_every_inner_op(case, backend, choices, monkeypatch):
    impl, device = backend
    monkeypatch.setenv("GANOPS_IMPL", _other_backend(impl))
    torch.manual_seed(0)
    with _GanopsOps() as dispatched:
        y, inputs = CASES[case](device, impl)
        if inputs:
            torch.autograd.grad(y.float().square().sum(), inputs, allow_unused=True)
    assert choices, "the op made no backend choice"
    wrong = sorted({c for c in choices if c[:2] != (impl, impl)})
    assert not wrong, f"inner choices (impl argument, chosen backend, op) that are not {impl!r}: {wrong}"
    if impl == "ref":
        assert not dispatched.names, f"impl='ref' ran ganops custom ops: {sorted(dispatched.names)}"
    else:
        assert dispatched.names or case in NO_KERNEL, f"impl={impl!r} ran no ganops custom op"
        foreign = sorted(n for n in dispatched.names if not n.endswith(f"_{impl}"))
        assert not foreign, f"impl={impl!r} ran other backends' ops: {foreign}"
    assert math.isfinite(float(y.detach().float().sum()))
