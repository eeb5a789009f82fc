"""Training-step benchmarks of the DCGAN recipe (see :mod:`benchmarks.training_step`).

GPU: dcgan-64 at batch 128 with the preset's widths, in fp32 and bf16 autocast. CPU: tiny widths.
"""
import pytest

from benchmarks.common import ON_GPU
from benchmarks.training_step import PRECISIONS, bench_training_step

# (case id, model, cfg, resolution, batch, z_dim, widths) on the GPU and on the CPU.
GPU_CASES = [("dcgan64-b128", "dcgan", "dcgan-64", 64, 128, 100, 64)]
CPU_CASES = [("dcgan32-b8-tiny", "dcgan", "dcgan-lite", 32, 8, 16, 4)]
CASES = GPU_CASES if ON_GPU else CPU_CASES


@pytest.mark.cpu_benchmark
@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_training_step(benchmark, case, precision):
    bench_training_step(benchmark, case, precision)
