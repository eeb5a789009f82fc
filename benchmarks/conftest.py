"""Benchmarks run on the GPU when there is one; Triton kernels are never timed in the interpreter.
At the end of the session a compact table per family follows pytest-benchmark's own (whose JSON,
``--benchmark-json``, is unchanged for tools)."""
import os

import pytest

os.environ.pop("GANOPS_POISON_OUTPUTS", None)  # poisoning is a test aid; it would distort timings
os.environ.pop("TRITON_INTERPRET", None)


def pytest_benchmark_update_machine_info(config, machine_info):
    """Record the software and GPU in the JSON, so the report header is read from it, not typed."""
    import subprocess

    import torch

    machine_info["torch_version"] = torch.__version__
    machine_info["cuda_version"] = torch.version.cuda
    try:
        import triton

        machine_info["triton_version"] = triton.__version__
    except ImportError:
        machine_info["triton_version"] = None
    if torch.cuda.is_available():
        machine_info["gpu"] = torch.cuda.get_device_name(0)
        try:
            machine_info["gpu_driver"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=30).stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            machine_info["gpu_driver"] = None


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, config):
    session = getattr(config, "_benchmarksession", None)
    benchmarks = [b.as_dict(include_data=False) for b in getattr(session, "benchmarks", None) or []]
    if benchmarks:
        from benchmarks.report import compact

        terminalreporter.write_sep("-", "ganops benchmarks (median time; roofline: a copy of the same bytes, "
                                        "or the measured matrix rate)")
        terminalreporter.write_line(compact({"benchmarks": benchmarks}))
