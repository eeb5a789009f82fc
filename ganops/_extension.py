"""Loading of the compiled extension ``ganops._C`` and what it was built against.

``import ganops`` never fails because of the extension: when it is missing, fails to load or was
built for another torch, :func:`status` says why, a warning is issued once, and the ops that need it
report it as unavailable so dispatch moves on to the next backend.
"""
import dataclasses
import importlib
import json
import warnings
from typing import Optional

import torch

REBUILD_COMMAND = "pip install --no-build-isolation -e .  (from the ganops checkout)"


@dataclasses.dataclass(frozen=True)
class ExtensionStatus:
    loaded: bool
    with_cuda: bool
    reason: Optional[str]  # why it is not usable; None when loaded
    build_info: dict

    @property
    def cuda_usable(self) -> bool:
        return self.loaded and self.with_cuda


_status: Optional[ExtensionStatus] = None
_warned = False


def _base_version(version: str) -> str:
    return version.split("+")[0]


def _load() -> ExtensionStatus:
    try:
        module = importlib.import_module("ganops._C")
    except ImportError as exc:
        missing = isinstance(exc, ModuleNotFoundError) and exc.name == "ganops._C"
        why = "is not built" if missing else f"failed to load ({exc})"
        return ExtensionStatus(False, False, f"ganops._C {why}; build it with: {REBUILD_COMMAND}", {})
    info = json.loads(module.BUILD_INFO)
    built_for = info.get("torch_version", "?")
    if _base_version(built_for) != _base_version(torch.__version__):
        return ExtensionStatus(
            False, bool(info.get("with_cuda")),
            f"ganops._C was built for torch {built_for} but torch {torch.__version__} is installed; "
            f"rebuild it with: {REBUILD_COMMAND}",
            info,
        )
    return ExtensionStatus(True, bool(info.get("with_cuda")), None, info)


def status() -> ExtensionStatus:
    """The extension's state, loaded once per process."""
    global _status
    if _status is None:
        _status = _load()
    return _status


def warn_if_unusable() -> None:
    """Warn once per process when the extension cannot be used (``import ganops`` calls this)."""
    global _warned
    current = status()
    if current.reason is not None and not _warned:
        _warned = True
        warnings.warn(f"{current.reason}. Ops fall back to Triton or the reference path.",
                      RuntimeWarning, stacklevel=3)


def reset_for_tests() -> None:
    """Forget the cached state so tests can simulate a missing or stale build."""
    global _status, _warned
    _status = None
    _warned = False
