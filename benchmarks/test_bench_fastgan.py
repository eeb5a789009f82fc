"""Training-step benchmarks of the FastGAN recipe (see :mod:`benchmarks.training_step`).

GPU: fastgan-256 at batch 8 and 32 with the preset's widths, in fp32 and bf16 autocast. CPU: tiny
widths and batch so the case finishes in seconds.
"""
import pytest

from benchmarks.common import ON_GPU
from benchmarks.training_step import PRECISIONS, bench_training_step

# (case id, model, cfg, resolution, batch, z_dim, widths) on the GPU and on the CPU.
GPU_CASES = [("fastgan256-b8", "fastgan", "fastgan-256", 256, 8, 256, 64),
             ("fastgan256-b32", "fastgan", "fastgan-256", 256, 32, 256, 64)]
CPU_CASES = [("fastgan64-b2-tiny", "fastgan", "fastgan-lite", 64, 2, 16, 4)]
CASES = GPU_CASES if ON_GPU else CPU_CASES


@pytest.mark.cpu_benchmark
@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_training_step(benchmark, case, precision):
    bench_training_step(benchmark, case, precision)
