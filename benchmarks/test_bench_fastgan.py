"""Training-step benchmarks of the FastGAN recipe (see :mod:`benchmarks.training_step`).

GPU: fastgan-256 at batch 8 and 32 with the preset's widths, in fp32 and bf16 autocast. CPU: tiny
widths and batch so the case finishes in seconds.
"""
from benchmarks.training_step import training_step_test

# (case id, model, cfg, resolution, batch, z_dim, widths) on the GPU and on the CPU.
GPU_CASES = [("fastgan256-b8", "fastgan", "fastgan-256", 256, 8, 256, 64),
             ("fastgan256-b32", "fastgan", "fastgan-256", 256, 32, 256, 64)]
CPU_CASES = [("fastgan64-b2-tiny", "fastgan", "fastgan-lite", 64, 2, 16, 4)]

test_training_step = training_step_test(GPU_CASES, CPU_CASES)
