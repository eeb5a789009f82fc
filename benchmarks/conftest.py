"""Benchmarks run on the GPU when there is one; Triton kernels are never timed in the interpreter."""
import os

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
