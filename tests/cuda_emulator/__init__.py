"""The CUDA kernels of csrc/cuda, built for the CPU through a small emulator, so their tests can run on
machines without a GPU (CI): ``GANOPS_TEST_CUDA_EMULATOR=1 pytest tests -k cuda``.

The kernel sources are compiled unmodified apart from three mechanical rewrites (``kernel<<<cfg>>>(args)``
becomes ``::emu::launch(Config(cfg), kernel, args)``, ``extern __shared__`` arrays become the
emulator's per-launch buffer, and a static ``__shared__`` declaration is followed by the call that
poisons it before each block) against the stand-in CUDA headers in ``include/`` (see emu_runtime.h for
what is and is not modelled). The torch bindings are compiled as they are, registered for CPU tensors
instead of CUDA tensors, and replace ``ganops._C`` in this process; the Python layer above them (fake
kernels, autograd, dispatch) is the real one. ``GANOPS_EMU_SCHEDULE=forward|reverse|random:SEED``
picks the order of blocks and of threads within barrier intervals (see emu_runtime.h;
tests/schedule_check.py compares them to find races). What this cannot show is speed, the memory
model and anything specific to real hardware: the GPU run of the same tests stays the final word.
``GANOPS_TEST_CUDA_EMULATOR=asan`` builds the same library with AddressSanitizer and alignment checks
(run with libasan preloaded, see README.md): every out-of-bounds or misaligned access then fails.
"""
import ctypes
import json
import os
import re
import sys
import types
from pathlib import Path

import torch

ENV_FLAG = "GANOPS_TEST_CUDA_EMULATOR"
_HERE = Path(__file__).resolve().parent
_REPO = _HERE.parents[1]
_CSRC = _REPO / "csrc" / "cuda"
_BUILD = _REPO / "build" / "cuda_emulator"
SCHEDULE_ENV = "GANOPS_EMU_SCHEDULE"
_library = []  # the loaded emulated library (ctypes), once build() ran

# kernel<template args><<<grid, block[, shared[, stream]]>>>(args);
_LAUNCH = re.compile(r"(?P<kernel>[A-Za-z_]\w*(?:<[^<>;]*>)?)\s*<<<(?P<config>.*?)>>>\s*\((?P<args>.*?)\);", re.S)
_EXTERN_SHARED = re.compile(r"extern __shared__ (?P<type>\w+) (?P<name>\w+)\[\];")
# __shared__ A warp_sums[kThreads / 32];  (a static array or scalar, declared inside a kernel)
_STATIC_SHARED = re.compile(r"(?m)^(?P<decl>[ \t]*__shared__\s[^;{}]*?(?P<name>\w+)\s*(?:\[[^;\]]*\]\s*)*;)")


def translate_kernels(text: str) -> str:
    """A .cu file's text with its launches and dynamic shared memory routed through the emulator, and
    each static ``__shared__`` declaration followed by the call that poisons it once per block."""
    text = _EXTERN_SHARED.sub(lambda m: f"{m['type']}* {m['name']} = ::emu::dynamic_shared<{m['type']}>();", text)
    text = _STATIC_SHARED.sub(
        lambda m: f"{m['decl']} ::emu::poison_static_shared(&{m['name']}, sizeof({m['name']}));", text)
    text = _LAUNCH.sub(lambda m: (f"::emu::launch(::emu::Config({m['config']}).named({json.dumps(m['kernel'])}), "
                                  f"{m['kernel']}, {m['args']});"), text)
    if "<<<" in text:
        raise RuntimeError("cuda_emulator: a kernel launch was not recognised")
    return text


def translate_binding(text: str) -> str:
    """A binding .cpp's text with its device checks and registration moved from CUDA to CPU tensors."""
    registration = "TORCH_LIBRARY_IMPL(ganops, CUDA, m)"
    if registration not in text:
        raise RuntimeError(f"cuda_emulator: expected {registration!r} in a binding file")
    return text.replace(registration, "TORCH_LIBRARY_IMPL(ganops, CPU, m)").replace(".is_cuda()", ".is_cpu()")


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def build(sanitize: bool = False) -> None:
    """Translate csrc/cuda into build/cuda_emulator/src and build (or reuse) the emulated library;
    loading it registers the ganops::*_cuda ops for CPU tensors. ``sanitize`` builds it with
    AddressSanitizer, which then reports every out-of-bounds access of the kernels (the process must
    be started with libasan preloaded; see README.md)."""
    from torch.utils import cpp_extension

    build_dir = _BUILD.with_name(_BUILD.name + "_asan") if sanitize else _BUILD
    src = build_dir / "src"
    src.mkdir(parents=True, exist_ok=True)
    sources = []
    for path in sorted(_CSRC.iterdir()):
        if path.suffix in (".h", ".cuh"):
            _write_if_changed(src / path.name, path.read_text())
        elif path.suffix == ".cu":
            target = src / (path.stem + ".cpp")
            _write_if_changed(target, translate_kernels(path.read_text()))
            sources.append(str(target))
        elif path.suffix == ".cpp":
            target = src / path.name
            _write_if_changed(target, translate_binding(path.read_text()))
            sources.append(str(target))
    sanitizers = ["-fsanitize=address,alignment", "-fno-sanitize-recover=alignment"]
    flags = ["-O1", "-g", "-fno-omit-frame-pointer", *sanitizers] if sanitize else ["-O2"]
    name = "ganops_cuda_emulated" + ("_asan" if sanitize else "")
    cpp_extension.load(
        name=name, sources=sources, build_directory=str(build_dir),
        extra_include_paths=[str(_HERE / "include"), str(src)], extra_cflags=flags,
        extra_ldflags=sanitizers if sanitize else [], is_python_module=False, verbose=False)
    _library[:] = [ctypes.CDLL(str(build_dir / f"{name}.so"))]


def launches() -> str:
    """The emulated launches since the last call ('kernel grid (x, y, z) block (x, y, z) shared N B' per
    line); empty before build()."""
    if not _library:
        return ""
    read = _library[0].ganops_emu_launches
    read.restype = ctypes.c_char_p
    return read().decode()


def install() -> None:
    """Build and load the emulated kernels and make them this process's ``ganops._C``; call before
    ``import ganops``."""
    if "ganops" in sys.modules:
        raise RuntimeError("cuda_emulator.install() must run before ganops is imported")
    build(sanitize=os.environ.get(ENV_FLAG) == "asan")
    fake = types.ModuleType("ganops._C")
    fake.BUILD_INFO = json.dumps({"torch_version": torch.__version__, "with_cuda": True, "cuda_emulator": True})
    sys.modules["ganops._C"] = fake

    from ganops import _registry

    device_reason = _registry._device_reason

    def emulated_device_reason(backend: str, device: torch.device):
        if backend == "cuda" and device.type == "cpu":
            return None
        return device_reason(backend, device)

    _registry._device_reason = emulated_device_reason
