"""Device ceilings: the copy bandwidth and matrix rate every roofline fraction is measured against."""
import torch

from benchmarks.common import DEVICE, bench, device_ceilings, randn


def test_copy(benchmark):
    n = (256 * 2**20 // 4) if DEVICE.type == "cuda" else (16 * 2**20 // 4)
    src, dst = randn((n,)), torch.empty(n, device=DEVICE)
    bench(benchmark, [lambda: dst.copy_(src)], bytes_moved=2 * 4 * n)
    benchmark.extra_info.pop("copy_fraction")   # the copy is the memory roofline itself
    benchmark.extra_info.update(device_ceilings())


def test_matmul(benchmark):
    n, dtype = (8192, torch.bfloat16) if DEVICE.type == "cuda" else (512, torch.float32)
    a, b = randn((n, n), dtype), randn((n, n), dtype)
    bench(benchmark, [lambda: a @ b], flops=2 * n**3)
    benchmark.extra_info.pop("matmul_fraction")   # measured like the ceiling, at another size: not a fraction of it
