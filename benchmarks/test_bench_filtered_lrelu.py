"""filtered_lrelu family at the layer shapes of StyleGAN3-T/-R 256 and 1024 (NVIDIA's schedule, see
benchmarks/shapes.stylegan3_layers): per configuration, the largest layer of each kind (up/down factors,
radial down filter), in the layer's own dtype (fp16 for the high-resolution layers), forward alone and
forward + backward (training). Bytes moved by formula: forward = input + output; with gradients also the
2-bit sign codes written and read, dy and dx. Speed-up is against the reference backend."""
import pytest
import torch

import ganops
from benchmarks.common import ON_GPU, backend_fn, backend_params, bench, randn, rotations
from benchmarks.shapes import stylegan3_layers

CONFIGS = {  # name: (resolution, channel_base, channel_max, radial, batch)
    "sg3t-256": (256, 32768, 512, False, 32),
    "sg3r-256": (256, 65536, 1024, True, 32),
    "sg3t-1024": (1024, 32768, 512, False, 8),
    "sg3r-1024": (1024, 65536, 1024, True, 8),
}


def _largest_of_each_kind(config):
    resolution, cbase, cmax, radial, batch = CONFIGS[config]
    kinds = {}
    for layer in stylegan3_layers(resolution, cbase, cmax, radial, batch):
        key = (layer["up"], layer["down"], layer["radial"])
        n, c, h, w = layer["shape"]
        if key not in kinds or n * c * h * w > _numel(kinds[key]["shape"]):
            kinds[key] = layer
    return [(config, layer) for layer in kinds.values()]


def _numel(shape):
    n, c, h, w = shape
    return n * c * h * w


if ON_GPU:
    LAYERS = [case for config in CONFIGS for case in _largest_of_each_kind(config)]
else:  # CPU: one small StyleGAN3-T layer, the reference only
    LAYERS = [("cpu", dict(name="L11-like", shape=(2, 8, 38, 38), up=2, down=2, up_taps=12, down_taps=12,
                           padding=(9, 8, 9, 8), radial=False, fp16=False, gain=2 ** 0.5, slope=0.2))]
IDS = [f"{config}-{layer['name']}" for config, layer in LAYERS]


def _filters(layer):
    device = "cuda" if ON_GPU else "cpu"
    fu = ganops.setup_filter(torch.rand(layer["up_taps"]) + 0.5, device=device, separable=True)
    fd_shape = (layer["down_taps"],) * (2 if layer["radial"] else 1)
    fd = torch.rand(fd_shape) + 0.5
    return fu, (fd / fd.sum()).to(device)


def _call(fn, x, b, fu, fd, layer):
    return fn(x, fu, fd, b, up=layer["up"], down=layer["down"], padding=layer["padding"], gain=layer["gain"],
              slope=layer["slope"], clamp=256.0)


def _run(benchmark, backend, config, layer, train):
    dtype = torch.float16 if layer["fp16"] else torch.float32
    fu, fd = _filters(layer)
    x0 = randn(layer["shape"], dtype, requires_grad=train)
    copies = [x0] + [randn(layer["shape"], dtype, requires_grad=train)
                     for _ in range(rotations(x0.numel() * x0.element_size()) - 1)]
    b = randn((layer["shape"][1],), dtype, requires_grad=train)
    out = _call(ganops.filtered_lrelu, x0.detach(), b.detach(), fu, fd, layer)
    moved = x0.numel() * x0.element_size() + out.numel() * out.element_size()
    if train:
        n, c, h, w = layer["shape"]
        mid_h = h * layer["up"] + sum(layer["padding"][2:]) - layer["up_taps"] + 1
        mid_w = w * layer["up"] + sum(layer["padding"][:2]) - layer["up_taps"] + 1
        moved *= 2  # dy and dx
        moved += 2 * n * c * mid_h * ((mid_w + 3) // 4)  # sign codes written, then read
    dy = torch.randn_like(out)

    def make(fn):
        if not train:
            return [lambda x=x: _call(fn, x, b, fu, fd, layer) for x in copies]
        return [lambda x=x: torch.autograd.grad(_call(fn, x, b, fu, fd, layer), [x, b], dy) for x in copies]

    reference = make(lambda *a, **k: ganops.filtered_lrelu(*a, impl="ref", **k)) if backend != "ref" else None
    benchmark.extra_info.update(config=config, layer=layer["name"], shape=list(layer["shape"]),
                                dtype=str(dtype).replace("torch.", ""), out_shape=list(out.shape), train=train)
    bench(benchmark, make(backend_fn(ganops.filtered_lrelu, backend)), bytes_moved=moved, reference=reference)


@pytest.mark.cpu_benchmark
@pytest.mark.parametrize("backend", backend_params("filtered_lrelu"))
@pytest.mark.parametrize("case", LAYERS, ids=IDS)
def test_forward(benchmark, case, backend):
    _run(benchmark, backend, *case, train=False)


@pytest.mark.cpu_benchmark
@pytest.mark.parametrize("backend", backend_params("filtered_lrelu"))
@pytest.mark.parametrize("case", LAYERS, ids=IDS)
def test_forward_backward(benchmark, case, backend):
    _run(benchmark, backend, *case, train=True)
