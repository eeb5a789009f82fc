"""Backend registry: which implementations an op family has and which one serves a call.

Op modules declare their backends with :func:`register` (through ``ganops.ops._family``, which
declares a fast backend usable only when :func:`build_reason` finds it built); public ops call
:func:`choose` with the user's ``impl`` and a representative input tensor, and composite ops pass the
backend it returned to every op they call inside.

Rules
  * ``impl`` given explicitly ('cuda' | 'triton' | 'ref'): that backend or a
    :class:`BackendUnavailableError` that says why. Never a quiet substitution.
  * ``impl=None`` and ``GANOPS_IMPL`` set: the forced backend for every op family that has it
    (again an error when it cannot serve the call); families without it use their default order.
  * otherwise the best available for the input's device: CUDA tensors try cuda, triton, ref;
    CPU tensors use ref (Triton on CPU only runs through its interpreter, on request).
"""
import contextlib
import dataclasses
import importlib.util
import os
from typing import Callable, Dict, Optional, Sequence

import torch

from . import _extension

BACKENDS = ("cuda", "triton", "ref")
ENV_FORCE = "GANOPS_IMPL"

# An op-specific check takes the representative input tensor and returns why the backend cannot
# serve it (e.g. "float64 is not supported"), or None.
Check = Callable[[torch.Tensor], Optional[str]]


class BackendUnavailableError(RuntimeError):
    """An explicitly requested backend cannot serve this call."""


@dataclasses.dataclass(frozen=True)
class _Entry:
    check: Optional[Check]
    unusable: Optional[str]   # why this backend is not usable in this installation (None: it is)


_OPS: Dict[str, Dict[str, _Entry]] = {}


def register(op: str, backend: str, check: Optional[Check] = None, unusable: Optional[str] = None) -> None:
    """Declare that op family ``op`` has an implementation on ``backend``; ``unusable``: why it cannot
    run in this installation (never chosen, an explicit request reports it)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    _OPS.setdefault(op, {})[backend] = _Entry(check, unusable)


def op_families() -> Dict[str, tuple]:
    """Registered op families and their backends, in preference order."""
    return {op: tuple(b for b in BACKENDS if b in entries) for op, entries in _OPS.items()}


def triton_interpret() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


# Looked up once at import: choose() runs inside torch.compile'd code, and torch 2.11's Dynamo cannot
# trace importlib.util.find_spec (a fullgraph compile fails on it; newer Dynamo constant-folds it).
_TRITON_MISSING: Optional[str] = (
    "triton is not installed (pip install triton)" if importlib.util.find_spec("triton") is None else None)


def triton_missing_reason() -> Optional[str]:
    return _TRITON_MISSING


def build_reason(backend: str, op_names: Sequence[str]) -> Optional[str]:
    """Why ``backend`` cannot run the custom ops ``torch.ops.ganops.<name>`` here (not installed, not
    built, built without them), or None when it can: the one "is this backend built" check."""
    if backend == "triton" and _TRITON_MISSING:
        return _TRITON_MISSING
    if backend == "cuda" and _cuda_build_reason():
        return _cuda_build_reason()
    missing = [name for name in op_names if not hasattr(torch.ops.ganops, name)]
    if missing:
        return (f"ganops._C has no {', '.join(missing)} (built before it was added); rebuild it with: "
                f"{_extension.REBUILD_COMMAND}")
    return None


_NO_CUDA_KERNELS = ("ganops._C was built without CUDA kernels (no CUDA toolkit or CPU-only torch at build "
                    "time); install a CUDA toolkit and rebuild with GANOPS_BUILD_CUDA=1")


def _cuda_build_reason() -> Optional[str]:
    """Why ganops._C cannot run CUDA kernels (not loaded, or built without them), or None."""
    ext = _extension.status()
    if not ext.loaded:
        return ext.reason
    return None if ext.with_cuda else _NO_CUDA_KERNELS


def _device_reason(backend: str, device: torch.device) -> Optional[str]:
    """Why ``backend`` cannot run on ``device`` in general, or None."""
    if backend == "cuda":
        reason = _cuda_build_reason()
        if reason:
            return reason
        if device.type != "cuda":
            return f"the CUDA kernels need CUDA tensors, got a tensor on {device}"
        return None
    if backend == "triton":
        missing = triton_missing_reason()
        if missing:
            return missing
        if device.type == "cuda":
            return None
        if device.type == "cpu" and triton_interpret():
            return None
        return (f"Triton kernels need CUDA tensors, got a tensor on {device} "
                "(set TRITON_INTERPRET=1 to run them on the CPU through Triton's interpreter)")
    return None


def unavailable_reason(op: str, backend: str, x: torch.Tensor) -> Optional[str]:
    """Why ``backend`` cannot serve ``op`` for input ``x``, or None when it can."""
    entries = _OPS.get(op)
    if entries is None:
        raise KeyError(f"unknown op family {op!r}")
    if backend not in entries:
        return f"{op} has no {backend} implementation"
    if entries[backend].unusable is not None:
        return entries[backend].unusable
    reason = _device_reason(backend, x.device)
    if reason is None and entries[backend].check is not None:
        reason = entries[backend].check(x)
    return reason


def _validate_name(impl: str, source: str) -> None:
    if impl not in BACKENDS:
        raise ValueError(f"{source} must be None or one of {BACKENDS}, got {impl!r}")


@contextlib.contextmanager
def forced_impl(backend: str):
    """``GANOPS_IMPL=backend`` within the block: every op called without an explicit ``impl`` uses that
    backend (e.g. ``forced_impl("ref")`` to trace or time the pure-PyTorch reference); the previous
    value is restored on exit."""
    _validate_name(backend, "forced_impl")
    old = os.environ.get(ENV_FORCE)
    os.environ[ENV_FORCE] = backend
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(ENV_FORCE, None)
        else:
            os.environ[ENV_FORCE] = old


def choose(op: str, impl: Optional[str], x: torch.Tensor) -> str:
    """The backend that serves ``op`` for input ``x`` under the rules in the module docstring."""
    entries = _OPS[op]
    if impl is None:
        forced = os.environ.get(ENV_FORCE) or None
        if forced is not None:
            _validate_name(forced, f"environment variable {ENV_FORCE}")
            if forced in entries:
                impl = forced
    else:
        _validate_name(impl, "impl")
    if impl is not None:
        reason = unavailable_reason(op, impl, x)
        if reason is not None:
            raise BackendUnavailableError(f"{op}: impl={impl!r} cannot serve this call: {reason}")
        return impl
    order = ("cuda", "triton", "ref") if x.device.type == "cuda" else ("ref",)
    for backend in order:
        if backend in entries and unavailable_reason(op, backend, x) is None:
            return backend
    raise BackendUnavailableError(f"{op}: no backend can serve a tensor on {x.device} of dtype {x.dtype}")
