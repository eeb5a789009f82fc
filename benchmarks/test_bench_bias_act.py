"""bias_act: lrelu + bias + gain + clamp (StyleGAN2's conv epilogue) on the activations of the
highest-resolution blocks and one large fp16 tensor (256 MiB on the GPU; the small CPU shape on a
CPU); forward and forward + backward. Case ids give the shape and size.

Bytes moved are the minimum a fused kernel needs: forward reads x and writes y (2 x size); forward +
backward adds reading dy and the saved y and writing dx (5 x size); the bias is negligible.
"""
import functools

import pytest
import torch

import ganops
from benchmarks.common import ON_GPU, backend_fn, backend_params, bench, randn, rotations
from benchmarks.shapes import BIAS_ACT_256MB_FP16, BIAS_ACT_SHAPES, CPU_BIAS_ACT_SHAPES

SHAPES = BIAS_ACT_SHAPES if ON_GPU else CPU_BIAS_ACT_SHAPES
BIG = BIAS_ACT_256MB_FP16 if ON_GPU else CPU_BIAS_ACT_SHAPES[0]
LAYOUTS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
KW = dict(act="lrelu", clamp=256.0)


def _calls(fn, inputs, backward):
    def forward(x, b, dy):
        return fn(x, b, **KW)

    def forward_backward(x, b, dy):
        return torch.autograd.grad(fn(x, b, **KW), (x, b), dy)

    step = forward_backward if backward else forward
    return [lambda args=args: step(*args) for args in inputs]


def _run(benchmark, backend, shape, dtype, memory_format, backward):
    size = torch.Size(shape).numel() * dtype.itemsize
    inputs = [(randn(shape, dtype, memory_format, requires_grad=backward),
               randn(shape[1:2], dtype, requires_grad=backward),
               randn(shape, dtype, memory_format) if backward else None)
              for _ in range(rotations((3 if backward else 1) * size))]
    fn = backend_fn(ganops.bias_act, backend)
    calls = _calls(fn, inputs, backward)
    reference = _calls(functools.partial(ganops.bias_act, impl="ref"), inputs, backward) if backend != "ref" else None
    benchmark.extra_info.update({
        "shape": list(shape), "dtype": str(dtype).replace("torch.", ""), "pass": "fwd+bwd" if backward else "fwd",
        "layout": "channels_last" if memory_format == torch.channels_last else "nchw", **KW})
    bench(benchmark, calls, bytes_moved=(5 if backward else 2) * size, reference=reference)


@pytest.mark.parametrize("backend", backend_params("bias_act"))
@pytest.mark.parametrize("backward", [False, True], ids=["fwd", "fwd+bwd"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=["x".join(map(str, s)) for s in SHAPES])
def test_stylegan2_shapes(benchmark, shape, dtype, layout, backward, backend):
    _run(benchmark, backend, shape, DTYPES[dtype], LAYOUTS[layout], backward)


def _size_id(shape, dtype) -> str:
    size = torch.Size(shape).numel() * dtype.itemsize
    return "x".join(map(str, shape)) + (f"-{size / 2**20:g}MiB" if size >= 2**20 else f"-{size / 2**10:g}KiB")


@pytest.mark.parametrize("backend", backend_params("bias_act"))
@pytest.mark.parametrize("backward", [False, True], ids=["fwd", "fwd+bwd"])
@pytest.mark.parametrize("shape", [BIG], ids=[_size_id(BIG, torch.float16)])
def test_one_tensor_fp16(benchmark, shape, backward, backend):
    _run(benchmark, backend, shape, torch.float16, torch.contiguous_format, backward)
