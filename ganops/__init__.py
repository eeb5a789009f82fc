"""ganops: fused GAN kernels for PyTorch (CUDA, Triton and reference backends).

Every public op takes ``impl=None|'cuda'|'triton'|'ref'``; ``None`` picks the best backend for the
input's device and ``GANOPS_IMPL`` forces one. ``python -m ganops`` shows what is built and used.
"""
from . import _extension

_extension.warn_if_unusable()

from ._registry import BACKENDS, BackendUnavailableError  # noqa: E402

__version__ = "0.1.0"

__all__ = ["BACKENDS", "BackendUnavailableError", "__version__"]
