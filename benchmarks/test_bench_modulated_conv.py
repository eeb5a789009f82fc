"""modulated_conv2d: every synthesis layer of a StyleGAN2 256x256 generator (paper256 channels,
batch 32; tiny channels and batch 2 on the CPU), bf16 and fp16, NCHW and channels_last, forward and
forward+backward, as the trainer calls it (lrelu, bias, per-sample noise on conv layers; linear
ToRGB without demodulation).

FLOPs count the convolution's multiply-adds (2 per MAC): N*O*I*k*k per output pixel of the direct
conv, per input pixel for up=2 (the stride-2 transposed conv); forward+backward is 3x (dx and dw).
Bytes moved: x read + y written (forward); forward+backward adds dy read, x read again and dx written.
"""
import pytest
import torch

import ganops
from benchmarks.common import DEVICE, ON_GPU, backend_fn, backend_params, bench, randn, rotations
from benchmarks.shapes import BATCH, CPU_SYNTHESIS_CHANNELS, PAPER256_CHANNELS, synthesis_layers

LAYERS = synthesis_layers(PAPER256_CHANNELS, BATCH) if ON_GPU else synthesis_layers(CPU_SYNTHESIS_CHANNELS, 2)
LAYOUTS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _layer_inputs(layer, dtype, memory_format, requires_grad):
    n, i, o, res, k, up = (layer[key] for key in ("batch", "in_ch", "out_ch", "in_res", "k", "up"))
    torgb = layer["name"].endswith("torgb")
    out_res = res * up
    inputs = dict(
        x=randn((n, i, res, res), dtype, memory_format, requires_grad=requires_grad),
        weight=randn((o, i, k, k), requires_grad=requires_grad),
        styles=randn((n, i), requires_grad=requires_grad),
        bias=randn((o,), requires_grad=requires_grad),
    )
    if not torgb:
        inputs["noise"] = randn((n, 1, out_res, out_res), dtype, scale=0.1)
    options = dict(up=up, act="linear" if torgb else "lrelu", demodulate=not torgb)
    if up > 1:
        options["resample_filter"] = ganops.setup_filter([1, 3, 3, 1], device=DEVICE)
    return inputs, options


def _flops(layer) -> int:
    pixels = layer["in_res"] ** 2 if layer["up"] > 1 else (layer["in_res"] * layer["up"]) ** 2
    return 2 * layer["batch"] * layer["out_ch"] * layer["in_ch"] * layer["k"] ** 2 * pixels


@pytest.mark.parametrize("backend", backend_params("modulated_conv2d"))
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pass_", ["forward", "forward_backward"])
@pytest.mark.parametrize("layer", LAYERS, ids=[layer["name"] for layer in LAYERS])
def test_synthesis_layer(benchmark, layer, pass_, dtype, layout, backend):
    training = pass_ == "forward_backward"
    inputs, options = _layer_inputs(layer, DTYPES[dtype], LAYOUTS[layout], training)
    x_bytes = inputs["x"].numel() * inputs["x"].element_size()
    copies = [inputs] + [_layer_inputs(layer, DTYPES[dtype], LAYOUTS[layout], training)[0]
                         for _ in range(rotations(x_bytes) - 1)]
    fn = backend_fn(ganops.modulated_conv2d, backend)

    def make_call(run, args):
        if not training:
            return lambda: run(**args, **options)
        params = [v for v in args.values() if v.requires_grad]

        def call():
            y = run(**args, **options)
            torch.autograd.grad(y, params, torch.ones_like(y))
        return call

    with torch.no_grad() if not training else torch.enable_grad():
        out = fn(**inputs, **options)
    y_bytes = out.numel() * out.element_size()
    moved = x_bytes + y_bytes if not training else 3 * x_bytes + 2 * y_bytes
    flops = _flops(layer) * (3 if training else 1)
    benchmark.extra_info.update(layer=layer["name"], pass_=pass_, dtype=dtype, layout=layout,
                                x_shape=list(inputs["x"].shape), out_shape=list(out.shape))

    def calls_for(run):
        return [make_call(run, args) for args in copies]

    reference = None
    if backend != "ref":
        reference = calls_for(lambda **kw: ganops.modulated_conv2d(**kw, impl="ref"))
    if not training:
        with torch.no_grad():
            bench(benchmark, calls_for(fn), bytes_moved=moved, flops=flops, reference=reference)
    else:
        bench(benchmark, calls_for(fn), bytes_moved=moved, flops=flops, reference=reference)
