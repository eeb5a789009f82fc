"""Output allocation for the fast backends.

Every CUDA and Triton launcher allocates its outputs here. With ``GANOPS_POISON_OUTPUTS=1`` (the
tests set it) outputs are filled with NaN before the kernel runs, so an element the kernel forgot
to write shows up as NaN instead of passing by luck. The C++ launchers honour the same variable.
"""
import os

import torch

POISON_ENV = "GANOPS_POISON_OUTPUTS"


def poisoning() -> bool:
    return os.environ.get(POISON_ENV) == "1"


def _poison(t: torch.Tensor) -> torch.Tensor:
    if poisoning():
        t.fill_(float("nan") if t.is_floating_point() else -1)
    return t


def empty(shape, *, dtype: torch.dtype, device, memory_format=torch.contiguous_format) -> torch.Tensor:
    return _poison(torch.empty(shape, dtype=dtype, device=device, memory_format=memory_format))


def empty_like(x: torch.Tensor, *, dtype=None, memory_format=torch.preserve_format) -> torch.Tensor:
    return _poison(torch.empty_like(x, dtype=dtype, memory_format=memory_format))
