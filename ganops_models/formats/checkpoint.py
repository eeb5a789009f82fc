"""Checkpoints: atomic save, validated load, and finding the newest valid one.

A checkpoint is a ``torch.save`` of a dict::

    {"format": FORMAT, "model": recipe name, "arch": recipe.arch_spec(), "options": options dict,
     "data": DataInfo fields, "progress": {"cur_nimg", "step", "tick"}, "state": recipe.state_dict(),
     "rng": rng states}

It is written to a temporary file in the same folder, fsynced and renamed over the target, so a
kill at any moment leaves either the old or the new file, never a half-written one under the final
name. Loading uses ``weights_only=True`` (tensors and plain containers only) and turns any failure
into a :class:`CheckpointError` that names the file.
"""
import glob
import os
import random
import re
from typing import List, Optional

import numpy as np
import torch

from ganops_models.files import atomic_write
from ganops_models.errors import CheckpointError

FORMAT = "ganops-checkpoint-v1"
PATTERN = "checkpoint-*.pt"
_REQUIRED = ("format", "model", "arch", "options", "data", "progress", "state")


def kimg_tag(cur_nimg: int) -> str:
    """File-name tag for a point in training, in kimg with 3 decimals: 12345 -> '000012.345'."""
    return f"{cur_nimg // 1000:06d}.{cur_nimg % 1000:03d}"


def checkpoint_name(cur_nimg: int) -> str:
    return f"checkpoint-{kimg_tag(cur_nimg)}.pt"


def atomic_save(obj, path: str) -> None:
    """torch.save to ``path`` atomically (see :func:`ganops_models.files.atomic_write`)."""
    with atomic_write(path) as f:
        torch.save(obj, f)


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": _numpy_state(), "python": _python_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state((np_state["kind"], np_state["keys"].numpy().astype(np.uint32), int(np_state["pos"]),
                         int(np_state["has_gauss"]), float(np_state["cached"])))
    random.setstate((int(state["python"][0]), tuple(int(v) for v in state["python"][1:-1]), None))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def _numpy_state() -> dict:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached": float(cached)}


def _python_state() -> list:
    version, internal, _gauss = random.getstate()
    return [version, *internal, 0]


def save_checkpoint(path: str, *, model: str, arch: dict, options: dict, data: dict, progress: dict,
                    state: dict) -> None:
    atomic_save({"format": FORMAT, "model": model, "arch": arch, "options": options, "data": data,
                 "progress": progress, "state": state, "rng": rng_state()}, path)


EXPECTED = ("a ganops checkpoint (checkpoint-*.pt written by `python -m ganops_models.train`), "
            "a run folder holding one, 'latest', or an NVIDIA StyleGAN2(-ADA) network pickle (.pkl)")
_IMAGE_MAGIC = {b"\x89PNG": "PNG", b"\xff\xd8\xff": "JPEG", b"GIF8": "GIF", b"BM": "BMP", b"RIFF": "WebP"}


def describe_unloadable(path: str) -> str:
    """What a file that torch cannot load as a checkpoint is, from its first bytes (for messages)."""
    with open(path, "rb") as f:
        head = f.read(512)
    if head.startswith(b"PK"):
        return "a zip archive that is corrupt or truncated (an interrupted copy or download?)"
    if head[:1] == b"\x80":
        return ("a Python pickle but not a ganops checkpoint (NVIDIA network pickles are read where a network is "
                "taken: --network, train --resume X.pkl; other pickles are never loaded, as unpickling can run code)")
    if not head:
        return "empty"
    kind = next((name for magic, name in _IMAGE_MAGIC.items() if head.startswith(magic)), None)
    if kind is not None:
        return f"a {kind} image, not a network"
    try:
        if b"\x00" in head:
            raise UnicodeDecodeError("utf-8", head, 0, 1, "NUL byte")
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "binary data that is neither a ganops checkpoint nor an NVIDIA pickle (corrupt or truncated?)"
    return "a text file, not a ganops checkpoint"


def load_checkpoint(path: str, map_location="cpu") -> dict:
    """Load and validate a checkpoint; any problem is a :class:`CheckpointError` naming the file and
    what was expected (never advice to load unsafely)."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path!r} does not exist")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception:  # truncated zip, text, pickled objects: all mean "not a valid checkpoint"
        raise CheckpointError(f"{path!r} is {describe_unloadable(path)}; expected {EXPECTED}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path!r} is a torch file but not a ganops checkpoint (no format {FORMAT!r}); "
                              f"expected {EXPECTED}")
    missing = [k for k in _REQUIRED if k not in ckpt]
    if missing:
        raise CheckpointError(f"checkpoint {path!r} lacks the entries {missing}")
    return ckpt


def check_compatible(ckpt: dict, model: str, arch: dict, path: str = "checkpoint") -> None:
    """Clear error when a checkpoint belongs to another model or architecture."""
    if ckpt["model"] != model:
        raise CheckpointError(f"{path} holds a {ckpt['model']!r} model, but this run trains {model!r}")
    if ckpt["arch"] != arch:
        diff = sorted(k for k in set(arch) | set(ckpt["arch"]) if arch.get(k) != ckpt["arch"].get(k))
        details = ", ".join(f"{k}: checkpoint {ckpt['arch'].get(k)!r} vs run {arch.get(k)!r}" for k in diff)
        raise CheckpointError(f"{path} has another architecture than this run ({details})")


def list_checkpoints(run_dir: str) -> List[str]:
    """Checkpoints in a run directory, oldest first (by the nimg in the name)."""
    paths = glob.glob(os.path.join(run_dir, PATTERN))
    return sorted(paths, key=lambda p: float(os.path.basename(p)[len("checkpoint-"):-len(".pt")]))


def newest_valid_checkpoint(run_dir: str) -> Optional[str]:
    """Newest checkpoint in ``run_dir`` that loads and validates (corrupt ones are skipped)."""
    for path in reversed(list_checkpoints(run_dir)):
        try:
            load_checkpoint(path)
        except CheckpointError:
            continue
        return path
    return None


_RUN_RE = re.compile(r"^(\d{5})-")


def run_dirs(outdir: str) -> List[str]:
    """Run directories ``NNNNN-name`` in outdir, oldest (lowest number) first."""
    if not os.path.isdir(outdir):
        return []
    entries = [(int(m.group(1)), e) for e in os.listdir(outdir) if (m := _RUN_RE.match(e))
               and os.path.isdir(os.path.join(outdir, e))]
    return [os.path.join(outdir, e) for _, e in sorted(entries)]


def resolve_resume(resume: str, outdir: str, flag: str = "--resume") -> str:
    """Checkpoint path for ``--resume``: a file, a run directory, or 'latest' (the newest valid
    checkpoint of the newest run in outdir that has one). ``flag`` names the option in errors."""
    if resume == "latest":
        for run in reversed(run_dirs(outdir)):
            path = newest_valid_checkpoint(run)
            if path is not None:
                return path
        raise CheckpointError(f"{flag} latest: no valid checkpoint in any run under {outdir!r}")
    if os.path.isdir(resume):
        path = newest_valid_checkpoint(resume)
        if path is None:
            raise CheckpointError(f"{flag} {resume!r}: the folder holds no valid checkpoint")
        return path
    load_checkpoint(resume)
    return resume
