"""ganops.ref.activations.ACTIVATIONS is the one activation table: the reference reads it, and the
codes of the Triton kernels and of the CUDA enum (csrc/cuda/bias_act.h) are checked against it."""
import re
from pathlib import Path

import pytest
import torch

from ganops.ref.activations import ACTIVATIONS
from helpers import backend_cases

BIAS_ACT_H = Path(__file__).resolve().parents[1] / "csrc" / "cuda" / "bias_act.h"
NAMES = list(ACTIVATIONS)


def test_codes_are_the_table_order():
    assert [a.code for a in ACTIVATIONS.values()] == list(range(len(ACTIVATIONS)))
    assert all(name == a.name for name, a in ACTIVATIONS.items())


def test_cuda_enum_matches_the_table():
    """``enum Act { kLinear = 0, kRelu, ..., kNumActs }``: k<Name> in code order, then the count."""
    body = re.search(r"enum\s+Act\s*\{([^}]*)\}", BIAS_ACT_H.read_text()).group(1)
    entries = [e.split("=")[0].strip() for e in body.split(",") if e.strip()]
    assert re.search(r"kLinear\s*=\s*0", body), "the enum must start at 0"
    assert entries[-1] == "kNumActs"
    assert [e[1:].lower() for e in entries[:-1]] == NAMES


def _sample(device):
    # away from the kinks at 0, where one-sided derivatives differ
    v = torch.linspace(-3, 3, 64, dtype=torch.float64)
    return v[v.abs() > 0.05].to(device)


@pytest.mark.parametrize("name", NAMES)
def test_zero_second_derivative_flag(name):
    a = ACTIVATIONS[name]
    v = _sample("cpu").requires_grad_(True)
    (d1,) = torch.autograd.grad(a.fn(v, 0.3).sum(), v, create_graph=True)
    d2 = torch.autograd.grad(d1.sum(), v, allow_unused=True)[0] if d1.requires_grad else None
    zero = d2 is None or bool((d2 == 0).all())
    assert zero == a.zero_second_derivative


def _fast_ops(impl):
    if impl == "triton":
        from ganops.triton_kernels import bias_act as kernels

        return kernels.forward, lambda *args: kernels.grad(*args)[0]
    import ganops  # noqa: F401 (registers the fake kernels and autograd of the CUDA ops)

    return torch.ops.ganops.bias_act_cuda, lambda *args: torch.ops.ganops.bias_act_grad_cuda(*args)[0]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("backend", [c for c in backend_cases() if c.values[0][0] != "ref"])
def test_kernel_codes_compute_the_table_activation(backend, name):
    """The fused kernels, given an activation's code, compute its reference function and derivative."""
    impl, device = backend
    a = ACTIVATIONS[name]
    forward, grad = _fast_ops(impl)
    v = _sample(device).float().reshape(1, 1, -1)
    y = forward(v, None, 1, a.code, 0.3, 1.0, -1.0)
    v64 = v.double().requires_grad_(True)
    expected = a.fn(v64, 0.3)
    torch.testing.assert_close(y.double(), expected.detach(), rtol=1e-5, atol=1e-6)
    g = torch.ones_like(v)
    dx = grad(g, None, v, None, 1, a.code, 0.3, 1.0, -1.0, False, False)
    (expected_dx,) = torch.autograd.grad(expected.sum(), v64)
    torch.testing.assert_close(dx.double(), expected_dx, rtol=1e-5, atol=1e-6)
