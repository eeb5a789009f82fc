"""Training-step benchmarks of the DCGAN recipe (see :mod:`benchmarks.training_step`).

GPU: dcgan-64 at batch 128 with the preset's widths, in fp32 and bf16 autocast. CPU: tiny widths.
"""
from benchmarks.training_step import training_step_test

# (case id, model, cfg, resolution, batch, z_dim, widths) on the GPU and on the CPU.
GPU_CASES = [("dcgan64-b128", "dcgan", "dcgan-64", 64, 128, 100, 64)]
CPU_CASES = [("dcgan32-b8-tiny", "dcgan", "dcgan-lite", 32, 8, 16, 4)]

test_training_step = training_step_test(GPU_CASES, CPU_CASES)
