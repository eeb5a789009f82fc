"""The extension loader: a built, missing, broken or stale ganops._C and the warning it gives."""
import json
import subprocess
import sys
import types
import warnings

import pytest
import torch

from ganops import _extension, _registry
from helpers import not_emulated


@pytest.fixture
def fresh_extension_state():
    _extension.reset_for_tests()
    yield
    _extension.reset_for_tests()


def _fake_module(monkeypatch, info):
    module = types.ModuleType("ganops._C")
    module.BUILD_INFO = json.dumps(info)
    monkeypatch.setitem(sys.modules, "ganops._C", module)


def test_missing_extension_is_reported(fresh_extension_state, monkeypatch):
    monkeypatch.setitem(sys.modules, "ganops._C", None)  # import then raises ImportError
    status = _extension.status()
    assert not status.loaded and "pip install --no-build-isolation -e ." in status.reason
    with pytest.warns(RuntimeWarning, match="fall back"):
        _extension.warn_if_unusable()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _extension.warn_if_unusable()  # only once per process


def test_stale_extension_is_reported(fresh_extension_state, monkeypatch):
    _fake_module(monkeypatch, {"torch_version": "1.0.0", "with_cuda": True})
    status = _extension.status()
    assert not status.loaded
    assert "built for torch 1.0.0" in status.reason and torch.__version__ in status.reason


@not_emulated
def test_unusable_extension_disables_cuda_backend(fresh_extension_state, monkeypatch):
    _fake_module(monkeypatch, {"torch_version": "1.0.0", "with_cuda": True})
    _registry.register("ext_family", "cuda")
    _registry.register("ext_family", "ref")
    try:
        assert "built for torch 1.0.0" in _registry.unavailable_reason("ext_family", "cuda", torch.randn(2))
    finally:
        _registry._OPS.pop("ext_family")


def test_matching_build_loads(fresh_extension_state, monkeypatch):
    _fake_module(monkeypatch, {"torch_version": torch.__version__, "with_cuda": False})
    status = _extension.status()
    assert status.loaded and not status.cuda_usable and status.reason is None


def test_import_ganops_survives_missing_extension():
    code = "import sys; sys.modules['ganops._C'] = None\nimport warnings\nwarnings.simplefilter('always')\nimport ganops; print('ok')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")
    assert "not built" in result.stderr
