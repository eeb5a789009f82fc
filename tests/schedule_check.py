"""The schedule-race check (issue #31): every kernel launch of a test also runs under other schedules,
and its results must be bit-identical, so a result that depends on the order threads, warps, blocks or
Triton programs run in (a race) fails the test that launched it.

- CUDA kernels on the emulator (tests/cuda_emulator): every ``ganops::*_cuda*`` op call also runs on
  copies of its inputs under ``GANOPS_EMU_SCHEDULE=reverse`` and ``random:SEED``; its outputs and its
  tensor arguments afterwards (in-place writes) are compared with the call itself.
- Triton kernels under the interpreter: every launch through ganops/triton_kernels/_launch.py also runs
  with its programs in reverse and seeded random order (``GANOPS_TRITON_PROGRAM_ORDER``).

Kernels that sum with float atomics in whatever order the schedule gives are compared within
ATOMIC_REL_TOL instead (see ATOMIC_CUDA_OPS; Triton kernels whose source uses ``tl.atomic_*``).
Enabled in conftest.py by ``GANOPS_TEST_SCHEDULE_CHECK=1``.
"""
import os
from typing import Dict, List, Sequence

import torch

ENV_FLAG = "GANOPS_TEST_SCHEDULE_CHECK"
# The schedules every launch also runs under; the launch itself runs under the current one (forward).
OTHER_SCHEDULES = ("reverse", "random:1", "random:2")

# CUDA ops that legitimately sum with float atomicAdd in schedule order, and why.
ATOMIC_CUDA_OPS = {
    "ganops::bias_act_grad_cuda": "db: one atomicAdd per chunk (row kernel) or per column (column kernel)",
    "ganops::grid_sample_scatter_cuda": "the input gradient: each sample scatters its 4 weights with atomicAdd",
}
# Atomic sums may differ between schedules by rounding: |a - b| <= ATOMIC_REL_TOL[dtype] * scale everywhere,
# where scale is the largest sum of magnitudes of any tensor the call read or wrote (a bound on the
# summed terms; a sum that cancels has a tiny result but the rounding of its terms), NaN in the same places.
ATOMIC_REL_TOL = {torch.float64: 1e-12, torch.float32: 1e-5, torch.float16: 4e-3, torch.bfloat16: 3e-2}


class ScheduleMismatch(AssertionError):
    """A kernel's results depend on the schedule: a race (or an unwritten read of shared memory)."""


def _bits(t: torch.Tensor) -> torch.Tensor:
    t = t.detach().contiguous().reshape(-1)
    return t.view(torch.uint8) if t.dtype != torch.bool else t


def differences(results: Dict[str, Sequence[torch.Tensor]], atomic: bool = False) -> List[str]:
    """The disagreements among ``{schedule: [result tensors]}``, each as 'result i: A != B (...)': empty
    when all are bit-identical (or, with ``atomic``, within ATOMIC_REL_TOL with NaN in the same places)."""
    (first, base), *rest = results.items()
    found = []
    scale = max((t.detach().double().nan_to_num(0.0, 0.0, 0.0).abs().sum().item() for t in base
                 if t.is_floating_point()), default=0.0)
    for name, values in rest:
        for i, (a, b) in enumerate(zip(base, values)):
            if a.shape != b.shape or a.dtype != b.dtype:
                found.append(f"result {i}: {first} gives {a.dtype}{tuple(a.shape)}, {name} {b.dtype}{tuple(b.shape)}")
            elif torch.equal(_bits(a), _bits(b)):
                continue
            elif atomic and a.is_floating_point():
                a64, b64 = a.detach().double(), b.detach().double()
                nan_same = torch.equal(a64.isnan(), b64.isnan())
                err = (a64.nan_to_num(0.0) - b64.nan_to_num(0.0)).abs().max().item()
                allowed = ATOMIC_REL_TOL[a.dtype] * scale
                if not nan_same or err > allowed:
                    found.append(f"result {i} ({a.dtype}): {first} and {name} differ by up to {err:.3g} > {allowed:.3g} "
                                 f"allowed for atomic sums" + ("" if nan_same else " (NaN in different places)"))
            else:
                where = (_bits(a) != _bits(b)).nonzero()
                found.append(f"result {i} ({a.dtype}{tuple(a.shape)}): {first} and {name} differ in "
                             f"{where.numel()} byte(s), the first at byte {where[0].item()}")
    return found


def _copy_tensors(values, memo):
    """``values`` with every tensor replaced by one with the same strides and offset over a copy of its
    storage (tensors sharing a storage share the copy), so a kernel sees exactly the same layout."""
    if isinstance(values, torch.Tensor):
        key = values.untyped_storage().data_ptr()
        if key not in memo:
            memo[key] = values.untyped_storage().clone()
        copy = torch.empty(0, dtype=values.dtype, device=values.device)
        return copy.set_(memo[key], values.storage_offset(), values.size(), values.stride())
    if isinstance(values, (list, tuple)):
        return type(values)(_copy_tensors(v, memo) for v in values)
    if isinstance(values, dict):
        return {k: _copy_tensors(v, memo) for k, v in values.items()}
    return values


def _tensors(values) -> List[torch.Tensor]:
    if isinstance(values, torch.Tensor):
        return [values]
    if isinstance(values, (list, tuple)):
        return [t for v in values for t in _tensors(v)]
    if isinstance(values, dict):
        return [t for v in values.values() for t in _tensors(v)]
    return []


def _with_env(name: str, value: str, run):
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        return run()
    finally:
        if previous is None:
            del os.environ[name]
        else:
            os.environ[name] = previous


def run_under_schedules(what: str, env: str, run, args, atomic: bool, describe) -> object:
    """Run ``run(args)`` on copies of ``args`` under each of OTHER_SCHEDULES (set in ``env``), then on
    ``args`` themselves under the current schedule; raise ScheduleMismatch naming ``what``, the
    ``describe()``d launch and the schedules when their outputs and arguments afterwards differ.
    Returns the result of the real run."""
    current = os.environ.get(env) or "forward"
    results = {}
    for schedule in OTHER_SCHEDULES:
        copied = _copy_tensors(args, {})
        out = _with_env(env, schedule, lambda: run(copied))
        results[schedule] = _tensors(out) + _tensors(copied)
    out = run(args)
    results = {current: _tensors(out) + _tensors(args), **results}
    found = differences(results, atomic=atomic)
    if found:
        raise ScheduleMismatch(f"{what}: results depend on the schedule (a race, or a read of memory no thread "
                               f"wrote); launch: {describe()}; " + "; ".join(found))
    return out


# --- CUDA kernels on the emulator ---------------------------------------------------------------------

def _is_real_cpu(t) -> bool:
    from torch._subclasses.fake_tensor import FakeTensor

    return type(t) is torch.Tensor and not isinstance(t, FakeTensor) and t.device.type == "cpu"


def cuda_emulator_mode():
    """A TorchDispatchMode that runs every emulated ``ganops::*_cuda*`` op call under the schedule check."""
    from torch.utils._python_dispatch import TorchDispatchMode

    import cuda_emulator

    class EmulatorScheduleCheck(TorchDispatchMode):
        @classmethod
        def ignore_compile_internals(cls) -> bool:  # off while torch.compile traces; the eager calls are checked
            return True

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            name = func._schema.name
            if not (name.startswith("ganops::") and "_cuda" in name) or not all(
                    _is_real_cpu(t) for t in _tensors((args, kwargs))):
                return func(*args, **kwargs)
            cuda_emulator.launches()  # clears the log

            def describe():
                shapes = ", ".join(f"{t.dtype}{tuple(t.shape)} strides {t.stride()}" if isinstance(t, torch.Tensor)
                                   else repr(t) for t in args)
                log = cuda_emulator.launches().strip().splitlines()
                return f"{name}({shapes}) -> emulated launches: " + " | ".join(dict.fromkeys(log))

            return run_under_schedules(name, cuda_emulator.SCHEDULE_ENV, lambda a: func(*a[0], **a[1]),
                                       (args, kwargs), name in ATOMIC_CUDA_OPS, describe)

    return EmulatorScheduleCheck()


# --- Triton kernels under the interpreter ---------------------------------------------------------------

def _kernel_name(kernel) -> str:
    return getattr(getattr(kernel, "fn", None), "__name__", None) or getattr(kernel, "__name__", str(kernel))


def uses_atomics(kernel) -> bool:
    """Whether a triton.jit kernel's source calls tl.atomic_* (sums in program order)."""
    import inspect

    source = getattr(kernel, "src", None) or inspect.getsource(kernel.fn)
    return "atomic_" in source


def triton_launcher(run):
    """A launcher for ganops.triton_kernels._launch (same signature as its ``_run``) that runs each
    launch under the other program orders on copies of its tensors first, and compares."""
    from ganops.triton_kernels import _launch

    def launcher(kernel, grid, args, meta):
        if not hasattr(kernel, "fn"):  # not a triton.jit kernel (a test's stand-in): just run it
            return run(kernel, grid, args, meta)

        def describe():
            shapes = ", ".join(f"{t.dtype}{tuple(t.shape)}" if isinstance(t, torch.Tensor) else repr(t) for t in args)
            return f"grid {grid} ({shapes}) meta {meta}"

        run_under_schedules(_kernel_name(kernel), _launch.PROGRAM_ORDER_ENV,
                            lambda a: run(kernel, grid, a[0], a[1]), (args, meta), uses_atomics(kernel), describe)

    return launcher
