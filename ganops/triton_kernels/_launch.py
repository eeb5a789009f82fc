"""The one way a Triton kernel is launched in ganops: ``launch(kernel, grid, device, *args, **meta)``.

It enforces the CUDA grid limits (x <= 2**31 - 1, y and z <= 65535) with an error that names the
kernel, instead of the GPU refusing the launch (the interpreter does not check them), and runs the
kernel under a device guard for ``device`` (the tensors' device), as the C++ bindings do: a tensor on
cuda:1 while cuda:0 is current is launched on cuda:1.

Under Triton's interpreter (``TRITON_INTERPRET=1``) ``GANOPS_TRITON_PROGRAM_ORDER=forward|reverse|random:SEED``
runs the grid's programs in that order (forward, the interpreter's own, by default), so a result that
depends on the order programs run in (overlapping non-atomic stores: a race on a GPU) shows up as a
difference between orders (tests/schedule_check.py compares them). A GPU schedules programs itself.

``intercept(record)`` replaces the launch by ``record(Launch)`` inside the device guard (which is then a
stand-in that notes the device): the resource report (benchmarks/resources.py) and the grid-limit
tests drive the real launchers with fake CUDA tensors and collect what would be launched.
"""
import contextlib
import os
import random
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple

import torch

GRID_LIMITS = (2**31 - 1, 65535, 65535)
PROGRAM_ORDER_ENV = "GANOPS_TRITON_PROGRAM_ORDER"


@dataclass
class Launch:
    kernel: Any  # the triton.jit function
    grid: Tuple[int, int, int]
    device: Optional[torch.device]  # the device the guard had made current at launch
    args: tuple
    meta: Dict[str, Any]


def grid_within_limits(grid) -> bool:
    return all(1 <= g <= limit for g, limit in zip(grid, GRID_LIMITS)) or any(g == 0 for g in grid)


def _as_grid(grid) -> Tuple[int, int, int]:
    grid = tuple(int(g) for g in grid)
    if not 1 <= len(grid) <= 3:
        raise ValueError(f"a launch grid has 1 to 3 axes, got {grid}")
    return grid + (1,) * (3 - len(grid))


def check_grid(kernel, grid) -> None:
    """Raise a clear error when ``grid`` exceeds the CUDA launch limits."""
    if not grid_within_limits(grid):
        name = getattr(kernel, "__name__", None) or getattr(getattr(kernel, "fn", None), "__name__", str(kernel))
        raise ValueError(f"{name}: launch grid {grid} exceeds the CUDA limits {GRID_LIMITS} (x, y, z); the launcher "
                         f"must fold axes or loop inside the program for this shape. Please report it with the shapes.")


def _cuda_guard(device: torch.device):
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def _permutation(order: str, count: int) -> list:
    """Program k of the interpreter's loop runs program permutation[k] (linear indices)."""
    if order == "reverse":
        return list(range(count - 1, -1, -1))
    if order.startswith("random:") and order[7:].isdigit():
        permutation = list(range(count))
        random.Random(int(order[7:])).shuffle(permutation)
        return permutation
    raise ValueError(f"{PROGRAM_ORDER_ENV} must be forward, reverse or random:SEED (a decimal seed), got {order!r}")


@contextlib.contextmanager
def program_order(order: str):
    """Within the block, Triton's interpreter runs a launch's programs in ``order`` ('forward', 'reverse',
    'random:SEED'), by renumbering the program ids its grid loop hands out; 'forward' changes nothing."""
    if order in ("", "forward"):
        yield
        return
    _permutation(order, 1)  # reject a bad order before anything runs
    from triton.runtime import interpreter

    builder = interpreter.interpreter_builder
    set_grid_dim, set_grid_idx = builder.set_grid_dim, builder.set_grid_idx
    dims, permutation = [(1, 1, 1)], [[]]

    def permuted_dim(nx, ny, nz):
        dims[0], permutation[0] = (nx, ny, nz), _permutation(order, nx * ny * nz)
        set_grid_dim(nx, ny, nz)

    def permuted_idx(x, y, z):  # the loop runs x outermost, z innermost
        _, ny, nz = dims[0]
        k = permutation[0][(x * ny + y) * nz + z]
        set_grid_idx(k // (ny * nz), k // nz % ny, k % nz)

    builder.set_grid_dim, builder.set_grid_idx = permuted_dim, permuted_idx
    try:
        yield
    finally:
        del builder.set_grid_dim, builder.set_grid_idx


def _run(kernel, grid, args, meta) -> None:
    check_grid(kernel, grid)
    order = os.environ.get(PROGRAM_ORDER_ENV, "forward") if os.environ.get("TRITON_INTERPRET") == "1" else "forward"
    with program_order(order):
        kernel[grid](*args, **meta)


_guard: Callable = _cuda_guard
_launcher: Callable = _run


def launch(kernel, grid, device: torch.device, *args, **meta) -> None:
    """kernel[grid](*args, **meta) on ``device`` after checking the grid limits (see module docstring)."""
    grid = _as_grid(grid)
    with _guard(device):
        _launcher(kernel, grid, args, meta)


@contextlib.contextmanager
def intercept(record: Callable[[Launch], None]):
    """Within the block, launches call ``record(Launch(...))`` instead of running; not thread-safe."""
    global _guard, _launcher
    current = [None]

    @contextlib.contextmanager
    def fake_guard(device):
        previous, current[0] = current[0], device
        try:
            yield
        finally:
            current[0] = previous

    def fake_run(kernel, grid, args, meta):
        record(Launch(kernel, grid, current[0], args, dict(meta)))

    saved = _guard, _launcher
    _guard, _launcher = fake_guard, fake_run
    try:
        yield
    finally:
        _guard, _launcher = saved


def multiprocessor_count(device) -> int:
    """SM count of a CUDA device (132 = H100 SXM where it cannot be queried, e.g. ahead-of-time)."""
    try:
        return torch.cuda.get_device_properties(device).multi_processor_count
    except (RuntimeError, AssertionError, ValueError):
        return 132
