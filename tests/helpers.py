"""Shared test helpers: backend cases, input layouts, tolerance-aware comparison to float64 and a counter of
host synchronisations."""
import collections
import importlib.util
import os

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

HAS_GPU = torch.cuda.is_available()
HAS_TRITON = importlib.util.find_spec("triton") is not None
TRITON_ON_CPU = os.environ.get("TRITON_INTERPRET") == "1"
# The CUDA kernels built for the CPU by tests/cuda_emulator (installed by conftest.py); on a GPU
# machine the real kernels are tested instead.
CUDA_EMULATED = os.environ.get("GANOPS_TEST_CUDA_EMULATOR") in ("1", "asan") and not HAS_GPU

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)

# Relative error ||out - ref|| / ||ref|| allowed against a float64 reference, by compute dtype.
REL_TOL = {torch.float64: 1e-10, torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}

# One skip reason per cause, true on the machine that prints it.
NO_GPU = "no CUDA GPU on this machine; this case runs on a GPU only"
NO_GPU_FOR_CUDA = ("no CUDA GPU on this machine; run on a GPU, or emulate the CUDA kernels on the CPU with "
                   "GANOPS_TEST_CUDA_EMULATOR=1")
NO_CUDA_BUILD = ("ganops._C was built without its CUDA kernels (no CUDA toolkit at build time); rebuild it with "
                 "one (README, Install)")
NO_TRITON = "triton is not installed (pip install triton)"

gpu = pytest.mark.skipif(not HAS_GPU, reason=NO_GPU)
# For tests that CUDA kernels refuse CPU tensors: under the emulator they accept them.
not_emulated = pytest.mark.skipif(CUDA_EMULATED, reason="the CUDA emulator runs impl='cuda' on CPU tensors")


def _cuda_built() -> bool:
    from ganops import _extension

    return _extension.status().cuda_usable


def cuda_kernels_available() -> bool:
    """The CUDA kernels can run here: on a GPU with ganops._C built, or under the emulator."""
    return CUDA_EMULATED or (HAS_GPU and _cuda_built())


def _cuda_kernels_mark():
    """skipif for the CUDA kernel cases, with the reason that holds on this machine."""
    return pytest.mark.skipif(not cuda_kernels_available(), reason=NO_GPU_FOR_CUDA if not HAS_GPU else NO_CUDA_BUILD)


def where_it_ran(params: dict, gpu_only: bool) -> str:
    """Where a test that ran here executed, from its parameters ('backend': (impl, device) of
    :func:`backend_cases`, or 'impl'): 'GPU', 'CUDA emulator', 'Triton interpreter' or 'CPU reference'
    (reference ops and everything that is not a kernel case)."""
    backend = params.get("backend")
    impl = backend[0] if isinstance(backend, tuple) else params.get("impl")
    if HAS_GPU:
        on_gpu = gpu_only or (backend[1] == "cuda" if isinstance(backend, tuple) else impl in ("cuda", "triton"))
        return "GPU" if on_gpu else "CPU reference"
    return {"cuda": "CUDA emulator", "triton": "Triton interpreter"}.get(impl, "CPU reference")


def impl_device(impl: str) -> str:
    """The device a large-shape fast-path test of ``impl`` runs on: Triton's is the GPU (too slow for
    its interpreter), the CUDA kernels' is the GPU or, under the emulator, the CPU."""
    return "cpu" if impl == "cuda" and CUDA_EMULATED else "cuda"


def gpu_impls():
    """``impl`` parameters for the large-shape fast-path tests, each skipped where it cannot run."""
    return [pytest.param("triton", id="triton", marks=gpu),
            pytest.param("cuda", id="cuda", marks=_cuda_kernels_mark())]


def backend_cases(ref_device: str = "cpu"):
    """(impl, device) pairs to test: the reference, Triton (interpreted on the CPU or on the GPU)
    and the CUDA kernels (on the GPU, or emulated on the CPU); those that cannot run here are skipped
    with the reason."""
    cases = [pytest.param(("ref", ref_device), id="ref")]
    if HAS_GPU:
        cases.append(pytest.param(("triton", "cuda"), id="triton-cuda",
                                  marks=pytest.mark.skipif(not HAS_TRITON, reason=NO_TRITON)))
    else:
        cases.append(pytest.param(("triton", "cpu"), id="triton-interpret",
                                  marks=pytest.mark.skipif(not (HAS_TRITON and TRITON_ON_CPU), reason=(
                                      NO_TRITON if not HAS_TRITON else "TRITON_INTERPRET=1 is not set (the test "
                                      "suite's conftest.py sets it on machines without a GPU)"))))
    if CUDA_EMULATED:
        cases.append(pytest.param(("cuda", "cpu"), id="cuda-emulated"))
    else:
        cases.append(pytest.param(("cuda", "cuda"), id="cuda", marks=_cuda_kernels_mark()))
    return cases


def make_input(shape, dtype=torch.float32, device="cpu", layout="contiguous", requires_grad=False, scale=1.0):
    """Random normal input (never zeros) in one of the layouts 'contiguous', 'channels_last'
    (4-D only) or 'noncontig' (a strided view into a larger tensor)."""
    if layout == "noncontig":
        big = torch.randn(*shape[:-1], shape[-1] * 2, device=device) * scale
        x = big.to(dtype)[..., ::2]
        assert not x.is_contiguous()
    else:
        x = (torch.randn(shape, device=device) * scale).to(dtype)
        if layout == "channels_last":
            x = x.contiguous(memory_format=torch.channels_last)
    return x.requires_grad_(requires_grad)


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    out64, ref64 = out.detach().double().cpu(), ref.detach().double().cpu()
    denom = ref64.norm().item()
    return (out64 - ref64).norm().item() / max(denom, 1e-30)


def assert_close(out: torch.Tensor, ref: torch.Tensor, dtype: torch.dtype, what: str = "output", factor: float = 1.0):
    """Assert out ≈ ref (a float64 reference) in relative norm, with no NaN/Inf anywhere in out."""
    assert out.shape == ref.shape, f"{what}: shape {tuple(out.shape)} != reference {tuple(ref.shape)}"
    assert torch.isfinite(out).all(), f"{what}: non-finite values (unwritten output or overflow)"
    err = rel_err(out, ref)
    tol = REL_TOL[dtype] * factor
    assert err <= tol, f"{what}: relative error {err:.3g} > {tol:.3g} for {dtype}"


def write_image_folder(path, n: int = 4, res: int = 16, seed: int = 0):
    """An image-folder dataset of ``n`` random RGB PNGs of res x res pixels; returns ``path``."""
    import numpy as np
    from PIL import Image

    path.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (res, res, 3), dtype=np.uint8)).save(path / f"{i}.png")
    return path


class HostSyncs(TorchDispatchMode):
    """Counts ops that make the host wait for the device, with the op's name."""

    def __init__(self):
        super().__init__()
        self.found = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = str(func.overloadpacket)
        if name == "aten._local_scalar_dense":
            self.found[name] += 1
        elif name in ("aten._to_copy", "aten.copy_"):
            src = args[1] if name == "aten.copy_" else args[0]
            dst = args[0] if name == "aten.copy_" else out
            if src.device.type != "cpu" and dst.device.type == "cpu":
                self.found[f"{name} to the CPU"] += 1
        return out


def count_host_syncs(fn) -> dict:
    mode = HostSyncs()
    with mode:
        fn()
    return dict(mode.found)
