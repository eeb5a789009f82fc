"""Dispatch rules of ganops._registry: default order, forced backends and clear errors."""
import os

import pytest
import torch

from ganops import _registry
from ganops._registry import BackendUnavailableError
from helpers import gpu, not_emulated


@pytest.fixture
def family():
    name = "test_family"
    _registry.register(name, "ref")
    _registry.register(name, "triton", check=lambda x: "float64 is not supported" if x.dtype == torch.float64 else None)
    _registry.register(name, "cuda")
    yield name
    _registry._OPS.pop(name)


def test_cpu_default_is_reference(family, monkeypatch):
    monkeypatch.delenv("GANOPS_IMPL", raising=False)
    assert _registry.choose(family, None, torch.randn(3)) == "ref"


def test_explicit_ref(family):
    assert _registry.choose(family, "ref", torch.randn(3)) == "ref"


def test_unknown_impl_name_is_value_error(family):
    with pytest.raises(ValueError, match="impl must be None or one of"):
        _registry.choose(family, "cudnn", torch.randn(3))


@not_emulated
def test_cuda_on_cpu_tensor_says_why(family):
    with pytest.raises(BackendUnavailableError, match="impl='cuda' cannot serve this call"):
        _registry.choose(family, "cuda", torch.randn(3))


def test_triton_on_cpu_needs_interpreter(family, monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    reason = _registry.unavailable_reason(family, "triton", torch.randn(3))
    assert reason is not None and ("TRITON_INTERPRET" in reason or "not installed" in reason)
    with pytest.raises(BackendUnavailableError):
        _registry.choose(family, "triton", torch.randn(3))


@pytest.mark.skipif(_registry.triton_missing_reason() is not None, reason="triton not installed")
def test_triton_on_cpu_with_interpreter(family, monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert _registry.choose(family, "triton", torch.randn(3)) == "triton"


@pytest.mark.skipif(_registry.triton_missing_reason() is not None, reason="triton not installed")
def test_op_specific_check_is_reported(family, monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    with pytest.raises(BackendUnavailableError, match="float64 is not supported"):
        _registry.choose(family, "triton", torch.randn(3, dtype=torch.float64))


@not_emulated
def test_env_forces_backend(family, monkeypatch):
    monkeypatch.setenv("GANOPS_IMPL", "cuda")
    with pytest.raises(BackendUnavailableError, match="impl='cuda' cannot serve this call"):
        _registry.choose(family, None, torch.randn(3))
    monkeypatch.setenv("GANOPS_IMPL", "ref")
    assert _registry.choose(family, None, torch.randn(3)) == "ref"


@not_emulated
def test_forced_impl_sets_the_environment_within_the_block_only(family, monkeypatch):
    monkeypatch.setenv("GANOPS_IMPL", "ref")
    with _registry.forced_impl("cuda"):
        with pytest.raises(BackendUnavailableError, match="impl='cuda' cannot serve this call"):
            _registry.choose(family, None, torch.randn(3))
    assert _registry.choose(family, None, torch.randn(3)) == "ref"
    monkeypatch.delenv("GANOPS_IMPL")
    with pytest.raises(RuntimeError), _registry.forced_impl("ref"):
        raise RuntimeError("restored on an exception too")
    assert "GANOPS_IMPL" not in os.environ
    with pytest.raises(ValueError, match="forced_impl"):
        with _registry.forced_impl("fast"):
            pass


def test_env_bad_value(family, monkeypatch):
    monkeypatch.setenv("GANOPS_IMPL", "fast")
    with pytest.raises(ValueError, match="GANOPS_IMPL"):
        _registry.choose(family, None, torch.randn(3))


def test_env_skips_families_without_that_backend(monkeypatch):
    _registry.register("ref_only_family", "ref")
    try:
        monkeypatch.setenv("GANOPS_IMPL", "cuda")
        assert _registry.choose("ref_only_family", None, torch.randn(3)) == "ref"
        with pytest.raises(BackendUnavailableError, match="has no cuda implementation"):
            _registry.choose("ref_only_family", "cuda", torch.randn(3))
    finally:
        _registry._OPS.pop("ref_only_family")


def test_register_rejects_unknown_backend():
    with pytest.raises(ValueError):
        _registry.register("x", "opencl")


@gpu
def test_cuda_tensor_prefers_fast_backends(family, monkeypatch):
    monkeypatch.delenv("GANOPS_IMPL", raising=False)
    assert _registry.choose(family, None, torch.randn(3, device="cuda")) in ("cuda", "triton")


@pytest.mark.parametrize("backend", ["triton", "cuda"])
def test_family_declares_an_unbuilt_backend_with_its_reason(backend):
    """_family.register wires a fast backend only when its ops exist; otherwise the registry keeps the
    reason, and an explicit impl reports it instead of failing inside the op."""
    from ganops.ops import _family

    kernels = _family.register("test_unbuilt", {backend: _family.FastBackend({"no_such_op": lambda x: x})})
    try:
        assert backend not in kernels
        with pytest.raises(BackendUnavailableError, match=f"no_such_op_{backend}|not built|not installed|without"):
            _registry.choose("test_unbuilt", backend, torch.randn(3))
    finally:
        _registry._OPS.pop("test_unbuilt")


def test_every_usable_fast_backend_of_the_ops_is_wired():
    """A backend the registry would choose for a family has its custom ops wired (no KeyError inside)."""
    import importlib

    from ganops.ops import _family

    for family in ("bias_act", "upfirdn2d", "modulated_conv2d", "filtered_lrelu", "grid_sample", "sum_squares"):
        kernels = importlib.import_module(f"ganops.ops._{family}_fast").KERNELS
        for backend in _family.FAST_BACKENDS:
            usable = _registry._OPS[family][backend].unusable is None
            assert usable == (backend in kernels), (family, backend)
