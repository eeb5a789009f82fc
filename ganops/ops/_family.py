"""The one way an op family wires its fused backends.

A family's fast module defines its Triton custom ops (``ganops::<name>_triton``; the CUDA ones,
``ganops::<name>_cuda``, come from ganops._C) and calls :func:`register` once with, per fast backend,
the ops' fake kernels, a function that registers their autograd, and the backend's input check.
:func:`register` declares 'ref' and every fast backend that is usable here (``_registry.build_reason``:
triton importable, ganops._C loaded with CUDA kernels that define the ops); a backend that is not is
declared with the reason, so an explicit ``impl`` for it says why instead of failing inside. The fake
kernels of every op that is defined are registered here, at import, usable backend or not, so
tracing (torch.compile, torch.export) never meets a custom op without one.
"""
import dataclasses
from typing import Callable, Dict, Optional

import torch

from .. import _registry

FAST_BACKENDS = ("triton", "cuda")
FAST_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
MAX_NUMEL = 2**31 - 1   # most kernels index with 32-bit integers


@dataclasses.dataclass(frozen=True)
class FastBackend:
    """One fast backend of a family: ``fakes`` maps each op's name without the ``_<backend>`` suffix
    (e.g. 'bias_act_grad') to its fake kernel; ``autograd(ops)`` registers the autograd of the ops it
    receives ({name: op}); ``check`` tells why an input cannot be served (None: it can)."""
    fakes: Dict[str, Callable]
    autograd: Optional[Callable[[Dict[str, torch._ops.OpOverload]], None]] = None
    check: Optional[_registry.Check] = None


def register(family: str, backends: Dict[str, FastBackend]) -> Dict[str, Dict[str, torch._ops.OpOverload]]:
    """Declare ``family``'s backends and wire the usable fast ones; returns {backend: {name: op}}."""
    _registry.register(family, "ref")
    kernels = {}
    for backend, spec in backends.items():
        if backend not in FAST_BACKENDS:
            raise ValueError(f"{family}: fast backends are {FAST_BACKENDS}, got {backend!r}")
        names = {name: f"{name}_{backend}" for name in spec.fakes}
        for name, fake in spec.fakes.items():   # every defined op gets its fake kernel now, usable or not
            if hasattr(torch.ops.ganops, names[name]):
                torch.library.register_fake(f"ganops::{names[name]}", fake)
        reason = _registry.build_reason(backend, list(names.values()))
        if reason is not None:
            _registry.register(family, backend, unusable=reason)
            continue
        ops = {name: getattr(torch.ops.ganops, op_name).default for name, op_name in names.items()}
        if spec.autograd is not None:
            spec.autograd(ops)
        _registry.register(family, backend, check=spec.check)
        kernels[backend] = ops
    return kernels


def fast_input_reason(x: torch.Tensor) -> Optional[str]:
    """Why the fused kernels cannot take ``x`` (dtype or size), or None if they can."""
    if x.dtype not in FAST_DTYPES:
        return f"{x.dtype} is not supported by the fused kernels (float32, float16, bfloat16 are)"
    if x.numel() > MAX_NUMEL:
        return f"tensors with more than {MAX_NUMEL} elements are not supported by the fused kernels"
    return None
