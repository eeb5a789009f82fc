"""Checkpoints: atomic save, validated load, and finding the newest valid one.

A checkpoint is a ``torch.save`` of a dict::

    {"format": FORMAT, "model": recipe name, "arch": recipe.arch_spec(), "options": options dict,
     "data": DataInfo fields, "progress": {"cur_nimg", "step", "tick"}, "state": recipe.state_dict(),
     "rng": rng states, "integrity": {"sha256": payload_digest of the rest}}

It is written to a temporary file in the same folder, fsynced and renamed over the target, so a
kill at any moment leaves either the old or the new file, never a half-written one under the final
name. Loading uses ``weights_only=True`` (tensors and plain containers only) and turns any failure
into a :class:`CheckpointError` that names the file; a disallowed object is named as such.

Each checkpoint carries ``integrity``: the SHA-256 of everything else in it (tensors' names, dtypes,
shapes and bytes, and the other values, :func:`payload_digest`), written at save time and compared
at load; and every floating-point weight must be finite. So a file corrupted on disk or holding NaNs
is never "valid" (checkpoints written before the digest still load, with a note).

Entries of the wrong type, nesting past the bounds of
:func:`~ganops_models.formats.safe_pickle.check_structure` and network sizes past
:mod:`~ganops_models.formats.limits` are refused before anything is built. In a run folder only
names ``checkpoint-NNNNNN.NNN.pt`` are checkpoints; skipped ones are named with the reason.
"""
import contextlib
import errno
import hashlib
import os
import random
import re
import sys
from typing import Callable, List, Optional

import numpy as np
import torch

from ganops_models.files import atomic_write, regular_file
from ganops_models.errors import CheckpointError, CheckpointWriteError
from ganops_models.formats.limits import check_settings
from ganops_models.formats.safetensors import is_safetensors
from ganops_models.formats.safe_pickle import check_structure, torch_load_weights

FORMAT = "ganops-checkpoint-v1"
NAME_RE = re.compile(r"^checkpoint-(\d{6})\.(\d{3})\.pt$")
ORPHAN_RE = re.compile(r"^\.checkpoint-.*\.tmp$")    # atomic_write's temporary files of checkpoints
_REQUIRED = ("format", "model", "arch", "options", "data", "progress", "state")
# checkpoint options that size the networks -> the settings of ganops_models.formats.limits
_OPTION_SETTINGS = {"resolution": "resolution", "z_dim": "z_dim", "w_dim": "w_dim", "cbase": "channel_base",
                    "cmax": "channel_max", "map": "mapping_layers", "d_map": "mapping_layers",
                    "ngf": "channel_max", "ndf": "channel_max"}
_NOTED = set()   # files already noted as written without an integrity check


def kimg_tag(cur_nimg: int) -> str:
    """File-name tag for a point in training, in kimg with 3 decimals: 12345 -> '000012.345'."""
    return f"{cur_nimg // 1000:06d}.{cur_nimg % 1000:03d}"


def checkpoint_name(cur_nimg: int) -> str:
    return f"checkpoint-{kimg_tag(cur_nimg)}.pt"


def _leaves(obj, prefix: str = ""):
    """(name, value) of every tensor and plain value in nested dicts and lists, in a fixed order."""
    if isinstance(obj, dict):
        for key in sorted(obj, key=repr):
            yield from _leaves(obj[key], f"{prefix}/{key}")
    elif isinstance(obj, (list, tuple)):
        for i, item in enumerate(obj):
            yield from _leaves(item, f"{prefix}/{i}")
    else:
        yield prefix, obj


def _tensors(obj):
    return ((name, t) for name, t in _leaves(obj) if isinstance(t, torch.Tensor))


def payload_digest(ckpt: dict) -> str:
    """SHA-256 over every entry of a checkpoint but ``integrity``: the names, dtypes, shapes and bytes of
    its tensors and the values of everything else (options, progress, ...)."""
    h = hashlib.sha256()
    for name, value in _leaves({k: v for k, v in ckpt.items() if k != "integrity"}):
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu().contiguous()
            h.update(f"{name}|{t.dtype}|{list(t.shape)}|".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy() if t.numel() else b"")   # no copy
        else:
            h.update(f"{name}|{type(value).__name__}|{value!r}|".encode())
    return h.hexdigest()


def _disk_full(e: BaseException) -> bool:
    while e is not None:
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):   # a full disk or quota
            return True
        e = e.__cause__ or e.__context__
    return False


def atomic_save(obj, path: str) -> None:
    """torch.save to ``path`` atomically (see :func:`ganops_models.files.atomic_write`). A full disk is a
    :class:`CheckpointWriteError` naming the folder and the space needed (``path`` is left as it was)."""
    try:
        with atomic_write(path) as f:
            torch.save(obj, f)
    except (OSError, RuntimeError) as e:
        if not _disk_full(e):
            raise
        needed = sum(t.numel() * t.element_size() for _, t in _tensors(obj))
        raise CheckpointWriteError(f"no space left on the disk of {os.path.dirname(os.path.abspath(path))} to "
                                   f"write {os.path.basename(path)} (needs about {needed / 2 ** 20:,.1f} MiB); "
                                   f"free some space") from None


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
    ckpt = {"format": FORMAT, "model": model, "arch": arch, "options": options, "data": data,
            "progress": progress, "state": state, "rng": rng_state()}
    atomic_save({**ckpt, "integrity": {"sha256": payload_digest(ckpt)}}, path)


def remove_orphans(run_dir: str) -> List[str]:
    """Remove the temporary files of checkpoint writes that were killed before their rename
    (``.checkpoint-*.tmp``); returns their names."""
    removed = []
    for name in sorted(os.listdir(run_dir)) if os.path.isdir(run_dir) else []:
        if ORPHAN_RE.match(name):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(run_dir, name))
                removed.append(name)
    return removed


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
    if is_safetensors(path):
        return ("a safetensors network: weights only, for generate, metrics and export; training resumes from a "
                "checkpoint-*.pt")
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


def _note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr)


def _check_entries(ckpt: dict, path: str) -> None:
    """Types of the entries the loader and the loop use, and the network sizes of the options."""
    types = {"model": str, "arch": dict, "options": dict, "data": dict, "progress": dict, "state": dict}
    for key, kind in types.items():
        if not isinstance(ckpt[key], kind):
            raise CheckpointError(f"checkpoint {path!r}: {key!r} is a {type(ckpt[key]).__name__}, expected a "
                                  f"{kind.__name__} (a damaged or hand-made file)")
    for key in ("cur_nimg", "step", "tick"):
        value = ckpt["progress"].get(key, 0 if key == "tick" else None)   # tick: absent in some converted files
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise CheckpointError(f"checkpoint {path!r}: progress[{key!r}] is {value!r}, expected a whole number >= 0")
    check_network_record(ckpt["options"], ckpt["data"], f"checkpoint {path!r}")


def check_network_record(opts: dict, data: dict, where: str) -> None:
    """The entries of ``data`` (DataInfo fields) and the network sizes of ``opts`` (options) that a
    network is built from, read from a file (a checkpoint, a safetensors network): right types and
    within :mod:`~ganops_models.formats.limits`; ``where`` names the file in the
    :class:`CheckpointError`."""
    for key, kind in (("num_channels", int), ("label_dim", int), ("name", str)):
        if not isinstance(data.get(key), kind) or isinstance(data.get(key), bool):
            raise CheckpointError(f"{where}: data[{key!r}] is {data.get(key)!r}, expected a {kind.__name__}")
    check_settings(f"{where} data", {"resolution": data.get("resolution"),
                                     "img_channels": data["num_channels"], "c_dim": data["label_dim"]},
                   {"resolution": "data.resolution", "img_channels": "data.num_channels", "c_dim": "data.label_dim"})
    if data.get("resolution") is None:
        raise CheckpointError(f"{where}: data has no 'resolution'")
    for key, setting in _OPTION_SETTINGS.items():
        if opts.get(key) is not None:
            check_settings(f"{where} options", {setting: opts[key]}, {setting: key})
    if opts.get("cbase") is not None:   # the implied size of a style-based network
        sizes = {"resolution": opts.get("resolution") or data["resolution"], "channel_base": opts["cbase"],
                 "channel_max": opts.get("cmax"), "w_dim": opts.get("w_dim"), "mapping_layers": opts.get("map")}
        check_settings(f"{where} options", sizes,
                       {"channel_base": "cbase", "channel_max": "cmax", "mapping_layers": "map"})


def _check_weights(ckpt: dict, path: str, note: Callable[[str], None]) -> None:
    """The state's digest (when the file has one) and finite floating-point weights."""
    integrity = ckpt.get("integrity")
    if integrity is None:
        if path not in _NOTED:
            _NOTED.add(path)
            note(f"{path} was written without an integrity check (an older ganops); its weights are checked "
                 f"for NaN/inf only")
    elif not isinstance(integrity, dict) or integrity.get("sha256") != payload_digest(ckpt):
        raise CheckpointError(f"checkpoint {path!r} is corrupt: its tensor data do not match the SHA-256 written "
                              f"when it was saved (damaged on disk or in a copy, or edited)")
    for name, t in _tensors(ckpt["state"]):
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise CheckpointError(f"checkpoint {path!r} holds non-finite weights (NaN or inf) in state{name}; "
                                  f"it cannot be a good checkpoint")


def load_checkpoint(path: str, map_location="cpu", note: Callable[[str], None] = _note) -> dict:
    """Load and validate a checkpoint; any problem is a :class:`CheckpointError` naming the file and
    what was expected (never advice to load unsafely). ``note`` receives remarks that are not errors."""
    try:
        regular_file(path, "checkpoint")
    except (FileNotFoundError, ValueError) as e:
        raise CheckpointError(str(e)) from None
    if is_safetensors(path):      # torch.load would read its tensors too, but it is no checkpoint
        raise CheckpointError(f"{path!r} is {describe_unloadable(path)}")
    try:
        ckpt = torch_load_weights(path, f"{path!r}", map_location=map_location)
    except CheckpointError:
        raise
    except Exception:  # truncated zip, text, other pickles: all mean "not a valid checkpoint"
        raise CheckpointError(f"{path!r} is {describe_unloadable(path)}; expected {EXPECTED}") from None
    check_structure(ckpt, f"checkpoint {path!r}")
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path!r} is a torch file but not a ganops checkpoint (no format {FORMAT!r}); "
                              f"expected {EXPECTED}")
    missing = [k for k in _REQUIRED if k not in ckpt]
    if missing:
        raise CheckpointError(f"checkpoint {path!r} lacks the entries {missing}")
    _check_entries(ckpt, path)
    _check_weights(ckpt, path, note)
    return ckpt


def load_state(recipe, ckpt: dict, path: str) -> None:
    """``recipe.load_state_dict(ckpt['state'])``; a state that does not fit the recipe (wrong keys or
    types) is a :class:`CheckpointError` naming the file."""
    try:
        recipe.load_state_dict(ckpt["state"])
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as e:
        detail = str(e).splitlines()[0][:300] if str(e) else ""
        raise CheckpointError(f"checkpoint {path!r}: its state does not fit a {ckpt['model']} network "
                              f"({type(e).__name__}: {detail})") from None


def check_compatible(ckpt: dict, model: str, arch: dict, path: str = "checkpoint") -> None:
    """Clear error when a checkpoint belongs to another model or architecture."""
    if ckpt["model"] != model:
        raise CheckpointError(f"{path} holds a {ckpt['model']!r} model, but this run trains {model!r}")
    if ckpt["arch"] != arch:
        diff = sorted(k for k in set(arch) | set(ckpt["arch"]) if arch.get(k) != ckpt["arch"].get(k))
        details = ", ".join(f"{k}: checkpoint {ckpt['arch'].get(k)!r} vs run {arch.get(k)!r}" for k in diff)
        raise CheckpointError(f"{path} has another architecture than this run ({details})")


def list_checkpoints(run_dir: str) -> List[str]:
    """Checkpoints in a run directory, oldest first: the files named ``checkpoint-NNNNNN.NNN.pt`` (other
    names, e.g. 'checkpoint-000000.020 (copy).pt', are not checkpoints and are ignored)."""
    if not os.path.isdir(run_dir):
        return []
    found = [(int(m.group(1)) * 1000 + int(m.group(2)), name) for name in os.listdir(run_dir)
             if (m := NAME_RE.match(name))]
    return [os.path.join(run_dir, name) for _, name in sorted(found)]


def newest_valid_checkpoint(run_dir: str, note: Callable[[str], None] = _note) -> Optional[str]:
    """Newest checkpoint in ``run_dir`` that loads and validates; each one skipped is named with the
    reason through ``note``."""
    for path in reversed(list_checkpoints(run_dir)):
        try:
            load_checkpoint(path, note=note)
        except CheckpointError as e:
            note(f"skipped {path}: {e}")
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
        passed = []
        for run in reversed(run_dirs(outdir)):
            path = newest_valid_checkpoint(run)
            if path is not None:
                why = f" (passed over the newer {', '.join(passed)}: no valid checkpoint)" if passed else ""
                _note(f"{flag} latest: run {run}, checkpoint {os.path.basename(path)}{why}")
                return path
            passed.append(os.path.basename(run))
        raise CheckpointError(f"{flag} latest: no valid checkpoint in any run under {outdir!r}")
    if os.path.isdir(resume):
        path = newest_valid_checkpoint(resume)
        if path is None:
            raise CheckpointError(f"{flag} {resume!r}: the folder holds no valid checkpoint")
        return path
    load_checkpoint(resume)
    return resume
