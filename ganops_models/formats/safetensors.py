"""safetensors files: named tensors plus a string metadata record, with no pickle anywhere.

A safetensors file is an 8-byte little-endian header length, a JSON header (each tensor's dtype,
shape and byte range, and a ``__metadata__`` map of strings to strings) and the raw tensor bytes
(https://huggingface.co/docs/safetensors). :func:`save` writes one atomically
(:func:`ganops_models.files.atomic_write`) with the ``safetensors`` package; :func:`load` reads one
back after checking its header itself, so a hostile file is refused with a
:class:`~ganops_models.errors.CheckpointError` naming what is wrong before any tensor is allocated:

* the header must be at most :data:`MAX_HEADER_BYTES` and fit in the file, be UTF-8 JSON of an object
  nested at most a few levels, list at most :data:`MAX_TENSORS` tensors, each with a known dtype
  (:data:`DTYPES`), a shape of whole numbers >= 0 and a byte range inside the file whose length is
  the shape's; the byte ranges must tile the data without gaps or overlaps (as the format requires);
* the metadata values must be strings.

Shared tensors: ``safetensors`` refuses to write two names that share memory, and networks share
buffers (StyleGAN2's resampling filters: one tensor held by several layers). :func:`save` writes
each such tensor once, under the first of its names in sorted order, and records the others in the
metadata entry ``aliases`` (JSON: name -> written name); :func:`load` gives every alias the very
tensor of its written name, so the sharing is restored. Only exact aliases (the same storage,
offset, shape, strides and dtype) are folded; tensors overlapping otherwise are refused.

This module knows no model: what the metadata means is up to its users
(:mod:`ganops_models.network_loader` reads and :mod:`ganops_models.tools.convert` writes networks).
"""
import json
import os
import struct
from typing import Dict, Tuple

import torch

from ganops_models.errors import CheckpointError
from ganops_models.extras import require
from ganops_models.files import atomic_write, regular_file

MAX_HEADER_BYTES = 16 * 2 ** 20      # a network of 100,000 tensors has a header of about 10 MiB
MAX_TENSORS = 100_000
SUFFIX = ".safetensors"
ALIASES = "aliases"                  # the metadata entry of the shared tensors
# safetensors dtype name -> bytes per element
DTYPES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
_MAX_DIMS = 8


def _library():
    return require("safetensors.torch", "safetensors", "reading and writing .safetensors files")


def _key(t: torch.Tensor) -> tuple:
    """Identity of a tensor view: two names with the same key are the same tensor."""
    return (t.device.type, t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.stride(), t.dtype)


def _fold_aliases(tensors: Dict[str, torch.Tensor]) -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    """(the tensors to write, {alias: written name}): each tensor once, under its first name in sorted order."""
    first: Dict[tuple, str] = {}
    written, aliases = {}, {}
    for name in sorted(tensors):
        t = tensors[name]
        key = _key(t)
        if t.numel() and key in first:
            aliases[name] = first[key]
        else:
            first.setdefault(key, name)
            written[name] = t
    return written, aliases


def save(path: str, tensors: Dict[str, torch.Tensor], metadata: Dict[str, str]) -> None:
    """Write ``tensors`` (name -> tensor, any device) and ``metadata`` (str -> str; ``aliases`` is
    reserved) to ``path`` atomically; shared tensors are written once (see the module docstring)."""
    if ALIASES in metadata:
        raise ValueError(f"the metadata entry {ALIASES!r} is reserved")
    written, aliases = _fold_aliases(tensors)
    cpu = {name: t.detach().to("cpu").contiguous() for name, t in written.items()}
    try:
        data = _library().save(cpu, metadata={**metadata, ALIASES: json.dumps(aliases, sort_keys=True)})
    except ValueError as e:   # e.g. tensors that overlap without being the same view
        raise CheckpointError(f"cannot write {path!r} as safetensors: {e}") from None
    with atomic_write(path) as f:
        f.write(data)


def _fail(path: str, problem: str) -> CheckpointError:
    return CheckpointError(f"{path!r} is not a valid safetensors file: {problem}")


def read_header(data: bytes, path: str) -> Tuple[dict, Dict[str, str]]:
    """(tensor entries, metadata) of the safetensors file ``data``, checked as the module docstring says."""
    if len(data) < 8:
        raise _fail(path, f"it has {len(data)} bytes, fewer than the 8 of the header length")
    (size,) = struct.unpack("<Q", data[:8])
    if size > MAX_HEADER_BYTES:
        raise _fail(path, f"its header would be {size:,} bytes (limit {MAX_HEADER_BYTES:,})")
    if size > len(data) - 8:
        raise _fail(path, f"its header of {size:,} bytes runs past the end of the file ({len(data):,} bytes; "
                          f"truncated?)")
    try:
        header = json.loads(data[8:8 + size].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise _fail(path, f"its header is not JSON ({type(e).__name__})") from None
    if not isinstance(header, dict):
        raise _fail(path, f"its header is a JSON {type(header).__name__}, expected an object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in metadata.items()):
        raise _fail(path, "its __metadata__ is not a map of strings to strings")
    if len(header) > MAX_TENSORS:
        raise _fail(path, f"it lists {len(header):,} tensors (limit {MAX_TENSORS:,})")
    body = len(data) - 8 - size
    ranges = []
    for name, entry in header.items():
        ranges.append((*_check_entry(name, entry, body, path), name))
    end = 0
    for begin, stop, name in sorted(ranges):
        if begin != end:
            raise _fail(path, f"tensor {name!r} starts at byte {begin} of the data, expected {end} (gaps or "
                              f"overlaps between tensors)")
        end = stop
    if end != body:
        raise _fail(path, f"its tensors cover {end:,} bytes of data but the file holds {body:,} (truncated or "
                          f"padded?)")
    return header, metadata


def _check_entry(name: str, entry, body: int, path: str) -> Tuple[int, int]:
    """(begin, end) of one tensor entry after checking its dtype, shape and byte range."""
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise _fail(path, f"tensor {name!r} is not an entry of dtype, shape and data_offsets")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype not in DTYPES:
        raise _fail(path, f"tensor {name!r} has the dtype {dtype!r} (known: {', '.join(DTYPES)})")
    if (not isinstance(shape, list) or len(shape) > _MAX_DIMS
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)):
        raise _fail(path, f"tensor {name!r} has the shape {shape!r}, expected at most {_MAX_DIMS} whole numbers >= 0")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= body):
        raise _fail(path, f"tensor {name!r} has the byte range {offsets!r}, outside the {body:,} bytes of data")
    numel = 1
    for s in shape:
        numel *= s
    if numel * DTYPES[dtype] != offsets[1] - offsets[0]:
        raise _fail(path, f"tensor {name!r} of shape {shape} and dtype {dtype} needs {numel * DTYPES[dtype]:,} "
                          f"bytes, its byte range holds {offsets[1] - offsets[0]:,}")
    return offsets[0], offsets[1]


def load(path: str) -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    """(tensors, metadata) of the safetensors file ``path`` on the CPU, the aliases resolved (an alias is
    the very tensor of its written name) and the entry ``aliases`` removed from the metadata. Any problem
    is a :class:`CheckpointError` naming the file."""
    try:
        regular_file(path, "safetensors file")
    except (FileNotFoundError, ValueError) as e:
        raise CheckpointError(str(e)) from None
    with open(path, "rb") as f:
        data = f.read()
    header, metadata = read_header(data, path)
    metadata = dict(metadata)
    try:
        aliases = json.loads(metadata.pop(ALIASES, "{}"))
    except (ValueError, RecursionError):
        raise _fail(path, f"its metadata entry {ALIASES!r} is not JSON") from None
    if not isinstance(aliases, dict) or not all(isinstance(v, str) for v in aliases.values()):
        raise _fail(path, f"its metadata entry {ALIASES!r} is not a map of names to names")
    for alias, name in aliases.items():
        if alias in header or name not in header:
            raise _fail(path, f"the alias {alias!r} -> {name!r} must name a tensor of the file and not be one itself")
    try:
        tensors = _library().load(data)
    except Exception as e:   # the library's own checks; read_header should have caught every problem first
        raise _fail(path, f"{type(e).__name__}: {str(e)[:200]}") from None
    tensors.update({alias: tensors[name] for alias, name in aliases.items()})
    return tensors, metadata


def is_safetensors(path: str) -> bool:
    """True for a file named ``*.safetensors`` or starting like one (the format has no magic number: a
    header length that fits in the file, then ``{``)."""
    if os.fspath(path).lower().endswith(SUFFIX):
        return True
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] <= os.path.getsize(path) - 8


__all__ = ["ALIASES", "DTYPES", "MAX_HEADER_BYTES", "MAX_TENSORS", "SUFFIX", "is_safetensors", "load", "read_header",
           "save"]
