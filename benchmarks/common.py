"""Shared machinery of the benchmark suites: backends, inputs, device ceilings and timing.

``bench`` times a list of equivalent calls (each on its own input buffers, rotated so small inputs
are not served from L2), synchronising the GPU inside the timed call, and records in
``benchmark.extra_info``: bytes moved and FLOPs by formula, achieved GB/s and TFLOP/s, the % of
roofline (memory: the time of a plain copy of the same number of bytes, on as many rotated buffers
and timed the same way, over the case's time, so caches help both alike; compute: the fraction of
the dense matrix rate measured once per session by :func:`device_ceilings`), peak memory, and the
speed-up against the reference backend on the same inputs.
"""
import functools
import math
import statistics
import time
from typing import Callable, Optional, Sequence

import pytest
import torch

ON_GPU = torch.cuda.is_available()
DEVICE = torch.device("cuda" if ON_GPU else "cpu")
L2_BYTES = 50 * 2**20 if not ON_GPU else getattr(torch.cuda.get_device_properties(0), "L2_cache_size", 50 * 2**20)

BACKENDS = ("ref", "ref-compile", "triton", "cuda")


def _cuda_kernels_usable() -> bool:
    from ganops import _extension

    return _extension.status().cuda_usable


def backend_params(family: str):
    """pytest params for the backends of ``family``; the ones that cannot run here skip with a reason."""
    from ganops import _registry

    import ganops  # noqa: F401  (registers the op families)

    have = _registry.op_families().get(family, ())
    params = []
    for backend in BACKENDS:
        impl = "ref" if backend == "ref-compile" else backend
        reason = None
        if impl not in have:
            reason = f"{family} has no {impl} backend"
        elif backend == "ref-compile" and not ON_GPU:
            reason = "torch.compile of the reference is benchmarked on the GPU only (CPU compile time dominates)"
        elif impl == "triton" and not ON_GPU:
            reason = "Triton is timed on the GPU only (the CPU interpreter is for correctness)"
        elif impl == "cuda" and not (ON_GPU and _cuda_kernels_usable()):
            reason = "needs a GPU and ganops._C built with CUDA"
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        params.append(pytest.param(backend, id=backend, marks=marks))
    return params


def backend_fn(op: Callable, backend: str) -> Callable:
    """``op`` bound to ``backend`` ('ref-compile' = the reference under torch.compile)."""
    if backend == "ref-compile":
        return torch.compile(functools.partial(op, impl="ref"), dynamic=False)
    return functools.partial(op, impl=backend)


def randn(shape, dtype=torch.float32, memory_format=torch.contiguous_format, requires_grad=False, scale=1.0):
    """Random input on the benchmark device (never zeros: zeros can run faster than real data)."""
    x = (torch.randn(shape, device=DEVICE) * scale).to(dtype).contiguous(memory_format=memory_format)
    return x.requires_grad_(requires_grad)


def rotations(input_bytes: int) -> int:
    """How many copies of the inputs to rotate through so that consecutive calls miss in L2."""
    if not ON_GPU or input_bytes >= 2 * L2_BYTES:
        return 1
    return min(8, math.ceil(4 * L2_BYTES / max(input_bytes, 1)))


def _sync():
    if ON_GPU:
        torch.cuda.synchronize()


def _median_seconds(calls: Sequence[Callable], rounds: int) -> float:
    times = []
    for i in range(rounds):
        call = calls[i % len(calls)]
        _sync()
        start = time.perf_counter()
        call()
        _sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@functools.lru_cache(maxsize=None)
def device_ceilings() -> dict:
    """Measured copy bandwidth (GB/s, bytes read + written) and dense matrix rate (TFLOP/s)."""
    if ON_GPU:
        n_bytes, mm, mm_dtype = 2 * 2**30, 8192, torch.bfloat16
    else:
        n_bytes, mm, mm_dtype = 128 * 2**20, 1024, torch.float32
    src = torch.randn(n_bytes // 4, device=DEVICE)
    dst = torch.empty_like(src)
    copy_s = _median_seconds([lambda: dst.copy_(src)] * 2, rounds=10)
    a = torch.randn(mm, mm, device=DEVICE, dtype=mm_dtype)
    b = torch.randn(mm, mm, device=DEVICE, dtype=mm_dtype)
    for _ in range(2):
        a @ b
    mm_s = _median_seconds([lambda: a @ b], rounds=10)
    del src, dst, a, b
    return {
        "copy_gbps": 2 * n_bytes / copy_s / 1e9,
        "matmul_tflops": 2 * mm**3 / mm_s / 1e12,
        "matmul_dtype": str(mm_dtype).replace("torch.", ""),
        "device": torch.cuda.get_device_name(0) if ON_GPU else "cpu",
    }


def _copy_seconds(bytes_moved: int, buffers: int, rounds: int) -> float:
    """Median time of copying ``bytes_moved / 2`` bytes (read + write = bytes_moved), rotating over
    ``buffers`` source/destination pairs as the case rotates its inputs."""
    n = max(bytes_moved // 8, 1)
    pairs = [(torch.randn(n, device=DEVICE), torch.empty(n, device=DEVICE)) for _ in range(buffers)]
    calls = [lambda src=src, dst=dst: dst.copy_(src) for src, dst in pairs]
    for call in calls:
        call()
    return _median_seconds(calls, rounds)


def bench(benchmark, calls: Sequence[Callable], *, bytes_moved: int = 0, flops: int = 0,
          reference: Optional[Sequence[Callable]] = None, rounds: Optional[int] = None) -> None:
    """Time ``calls`` (equivalent calls on rotated inputs) and record roofline figures.

    ``bytes_moved``: the fewest bytes one call must read + write; ``flops``: its arithmetic;
    ``reference``: the same calls on the reference backend, for the speed-up figure.
    """
    rounds = rounds or (50 if ON_GPU else 5)
    for call in calls:  # warm-up (compilation, autotuning, allocator) outside the timing
        call()
    _sync()
    if ON_GPU:
        torch.cuda.reset_peak_memory_stats()
    counter = iter(range(10**9))

    def timed():
        calls[next(counter) % len(calls)]()
        _sync()

    benchmark.pedantic(timed, rounds=rounds, iterations=1, warmup_rounds=1)
    seconds = benchmark.stats.stats.median if benchmark.stats is not None else _median_seconds(calls, rounds)
    ceilings = device_ceilings()
    info = benchmark.extra_info
    info["device"] = ceilings["device"]
    info["bytes_moved"] = int(bytes_moved)
    info["flops"] = int(flops)
    info["median_ms"] = seconds * 1e3
    if bytes_moved:
        info["gbps"] = bytes_moved / seconds / 1e9
        info["copy_fraction"] = _copy_seconds(bytes_moved, len(calls), rounds) / seconds
    if flops:
        info["tflops"] = flops / seconds / 1e12
        info["matmul_fraction"] = info["tflops"] / ceilings["matmul_tflops"]
    info["peak_mem_bytes"] = torch.cuda.max_memory_allocated() if ON_GPU else None
    if reference is not None:
        for call in reference:
            call()
        info["speedup_vs_ref"] = _median_seconds(reference, rounds) / seconds
