"""upfirdn2d family: StyleGAN2 resampling (upsample2d / downsample2d with [1,3,3,1]) and ADA's 12-tap
separable filter at 256 px, forward only; bytes moved = input + output (the minimum), so GB/s is
directly comparable to copy bandwidth."""
import pytest
import torch

import ganops
from benchmarks.common import DEVICE, ON_GPU, backend_fn, backend_params, bench, randn, rotations
from benchmarks.shapes import ADA_FILTER_SHAPE, BATCH, CPU_RESAMPLE_CH, RESAMPLE_CH
from ganops_models.augment._wavelets import SYM6  # ADA's Hz_geom

CH = RESAMPLE_CH if ON_GPU else CPU_RESAMPLE_CH
N = BATCH if ON_GPU else 2
ADA_SHAPE = ADA_FILTER_SHAPE if ON_GPU else (2, 3, 32, 32)
LAYOUTS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def _run(benchmark, backend, op, shape, dtype, memory_format, f, **kw):
    x0 = randn(shape, dtype, memory_format)
    copies = [x0] + [randn(shape, dtype, memory_format) for _ in range(rotations(x0.numel() * x0.element_size()) - 1)]
    fn = backend_fn(op, backend)
    out = fn(copies[0], f, **kw)
    moved = x0.numel() * x0.element_size() + out.numel() * out.element_size()
    calls = [lambda x=x: fn(x, f, **kw) for x in copies]
    reference = [lambda x=x: op(x, f, impl="ref", **kw) for x in copies] if backend != "ref" else None
    benchmark.extra_info.update(shape=list(shape), dtype=str(dtype).replace("torch.", ""), out_shape=list(out.shape))
    bench(benchmark, calls, bytes_moved=moved, reference=reference)


@pytest.mark.parametrize("backend", backend_params("upfirdn2d"))
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ch", CH, ids=[f"C{c}-H{h}" for c, h in CH])
@pytest.mark.parametrize("op", ["upsample2d", "downsample2d"])
def test_resample_1331(benchmark, op, ch, dtype, layout, backend):
    c, h = ch
    f = ganops.setup_filter([1, 3, 3, 1], device=DEVICE)
    _run(benchmark, backend, getattr(ganops, op), (N, c, h, h), DTYPES[dtype], LAYOUTS[layout], f)


@pytest.mark.parametrize("backend", backend_params("upfirdn2d"))
@pytest.mark.parametrize("op", ["upsample2d", "downsample2d"])
def test_ada_12tap_separable(benchmark, op, backend):
    f = ganops.setup_filter(list(SYM6), device=DEVICE)  # 12 taps: stays separable
    _run(benchmark, backend, getattr(ganops, op), ADA_SHAPE, torch.float32, torch.contiguous_format, f)

