"""Dispatch rules of ganops._registry: default order, forced backends and clear errors."""
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
