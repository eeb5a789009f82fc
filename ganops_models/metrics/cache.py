"""On-disk cache of real-image Inception statistics.

An entry is ``<cache_dir>/<sha256>.npz`` where the hash covers the dataset fingerprint
(``sources.fingerprint``) and the settings (resize mode, number of images, weights file
identity).  It holds ``mu`` and ``sigma`` (float64) and, when KID needs them, ``features``
(float32).  Writes are atomic (temp file + rename).  Default directory:
``$GANOPS_CACHE/metrics`` or ``~/.cache/ganops/metrics``.
"""
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ganops_models.files import atomic_write
from ganops_models.files import cache_root


def default_cache_dir() -> Path:
    return Path(cache_root()) / "metrics"


def weights_identity(path) -> list:
    """(absolute path, size, mtime) of the Inception weights file: a new file invalidates entries."""
    st = os.stat(path)
    return [os.path.abspath(path), st.st_size, st.st_mtime_ns]


def entry_path(cache_dir, dataset_fingerprint: str, settings: dict) -> Path:
    key = json.dumps({"dataset": dataset_fingerprint, **settings}, sort_keys=True)
    return Path(cache_dir) / (hashlib.sha256(key.encode()).hexdigest() + ".npz")


def load(path, need_features: bool):
    """The cached dict (mu, sigma[, features]) or None if absent, unreadable or lacking features."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path) as data:
            out = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError):
        return None
    if "mu" not in out or "sigma" not in out or (need_features and "features" not in out):
        return None
    return out


def store(path, mu, sigma, features=None):
    """Atomically write an entry."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"mu": np.asarray(mu, np.float64), "sigma": np.asarray(sigma, np.float64)}
    if features is not None:
        arrays["features"] = np.asarray(features, np.float32)
    with atomic_write(path) as fh:
        np.savez(fh, **arrays)
