"""Launch cases of the Triton kernels for the resource report (benchmarks/resources.py).

A family registers a generator with ``@cases("family")``; it yields ``(label, thunk)`` where the thunk
calls the real launcher (ganops.triton_kernels.*) on tensors made with ``fake(...)``. The report runs the
thunks under FakeTensorMode with launches intercepted, so nothing is allocated or executed: each launch
yields (kernel, grid, arguments), which the report compiles for the target GPU. New kernels or variants
only need a case here. The cases cover the StyleGAN2-ADA / FastGAN presets at 64-1024 px (shapes from
benchmarks/shapes.py), fp32/fp16/bf16, NCHW/NHWC, and the small odd shapes of the tests.
"""
import math
from typing import Callable, Dict, Iterator, Tuple

import torch

from .shapes import FASTGAN256_CHANNELS, PAPER1024_CHANNELS, PAPER256_CHANNELS, synthesis_layers

Case = Tuple[str, Callable[[], object]]
CASES: Dict[str, Callable[[], Iterator[Case]]] = {}

DTYPES = (torch.float32, torch.float16, torch.bfloat16)
LAYOUTS = ("nchw", "nhwc")
RESOLUTIONS = (64, 128, 256, 512, 1024)
TEST_SHAPES = ((1, 3, 5, 7), (2, 5, 9, 6))  # batch 1, odd sizes, as in the tests
DTYPE_NAMES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16", torch.float64: "fp64"}


def cases(family: str):
    """Register a generator of (label, thunk) launch cases for ``family``."""
    def register(fn):
        CASES[family] = fn
        return fn
    return register


def fake(shape, dtype=torch.float32, layout: str = "nchw") -> torch.Tensor:
    """An uninitialised CUDA tensor (a fake one under the report's FakeTensorMode)."""
    t = torch.empty(shape, dtype=dtype, device="cuda")
    return t.contiguous(memory_format=torch.channels_last) if layout == "nhwc" and len(shape) == 4 else t


def _channels():
    """(C, res) of the presets' feature maps at 64-1024 px, plus RGB images."""
    seen = set()
    for table in (PAPER256_CHANNELS, PAPER1024_CHANNELS, FASTGAN256_CHANNELS):
        seen.update((c, r) for r, c in table.items() if r >= 8)
    seen.update((3, r) for r in RESOLUTIONS)
    return sorted(seen)


# --- upfirdn2d ------------------------------------------------------------------------------------

def _upfirdn2d_case(n, c, h, w, dtype, layout, taps, up, down, pad, gain=1.0, flip=False, filter_2d=None):
    from ganops.triton_kernels import upfirdn2d as K

    def run():
        x = fake((n, c, h, w), dtype, layout)
        f = fake(filter_2d if filter_2d else (taps,))
        fh, fw = filter_2d if filter_2d else (taps, taps)
        oh = (h * up + pad[2] + pad[3] - fh) // down + 1
        ow = (w * up + pad[0] + pad[1] - fw) // down + 1
        out = fake((n, c, oh, ow), dtype, layout)
        K.upfirdn2d(x, f, out, up, up, down, down, pad[0], pad[1], pad[2], pad[3], flip, gain)
    return run


@cases("upfirdn2d")
def _upfirdn2d_cases():
    for dtype in DTYPES:
        for layout in LAYOUTS:
            for c, res in _channels():
                tag = f"{DTYPE_NAMES[dtype]} {layout} C={c} {res}px"
                # StyleGAN2 resampling (4 taps): up2 (and its gradient down2), filter-only (conv2d_resample down).
                yield f"up2 4tap {tag}", _upfirdn2d_case(4, c, res // 2, res // 2, dtype, layout, 4, 2, 1, (2, 1, 2, 1), 4.0)
                yield f"down2 4tap {tag}", _upfirdn2d_case(4, c, res, res, dtype, layout, 4, 1, 2, (1, 1, 1, 1), flip=True)
                yield f"fir 4tap {tag}", _upfirdn2d_case(4, c, res, res, dtype, layout, 4, 1, 1, (2, 2, 2, 2))
            for res in RESOLUTIONS:  # ADA's 12-tap wavelet filter on RGB images
                tag = f"{DTYPE_NAMES[dtype]} {layout} C=3 {res}px"
                yield f"up2 12tap {tag}", _upfirdn2d_case(4, 3, res, res, dtype, layout, 12, 2, 1, (6, 5, 6, 5), 4.0)
                yield f"down2 12tap {tag}", _upfirdn2d_case(4, 3, res * 2, res * 2, dtype, layout, 12, 1, 2, (5, 5, 5, 5))
            for shape in TEST_SHAPES:
                tag = f"{DTYPE_NAMES[dtype]} {layout} {shape} (tests)"
                yield f"up3 down2 2-D 3x5 {tag}", _upfirdn2d_case(*shape, dtype, layout, None, 3, 2, (1, 2, 2, 0),
                                                                   filter_2d=(3, 5))
                yield f"up2 4tap {tag}", _upfirdn2d_case(*shape, dtype, layout, 4, 2, 1, (2, 1, 2, 1), 4.0)
    # The large shapes (grid limits).
    yield "up2 4tap fp16 nhwc C=64 to 1024px", _upfirdn2d_case(4, 64, 512, 512, torch.float16, "nhwc", 4, 2, 1, (2, 1, 2, 1), 4.0)
    yield "up2 4tap fp32 nhwc C=3 to 4096px", _upfirdn2d_case(1, 3, 2048, 2048, torch.float32, "nhwc", 4, 2, 1, (2, 1, 2, 1), 4.0)
    yield "up2 4tap fp32 nchw C=3 to 8192px", _upfirdn2d_case(1, 3, 4096, 4096, torch.float32, "nchw", 4, 2, 1, (2, 1, 2, 1), 4.0)


# --- grid_sample ----------------------------------------------------------------------------------

def _grid_sample_case(n, c, res, dtype, layout, dx, dy, scatter):
    from ganops.triton_kernels import grid_sample as K

    def run():
        grid = fake((n, res, res, 2), dtype)
        if scatter:
            K.scatter(fake((n, c, res, res), dtype, layout), grid, res, res, dx, dy)
        else:
            K.gather(fake((n, c, res, res), dtype, layout), grid, dx, dy)
    return run


@cases("grid_sample")
def _grid_sample_cases():
    """ADA's geometric augmentation samples RGB images (and its higher-order gradients)."""
    for dtype in DTYPES + (torch.float64,):
        for layout in LAYOUTS:
            for c, res in [(3, r) for r in RESOLUTIONS] + [(5, 9), (32, 16)]:
                for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
                    for scatter in (False, True):
                        kind = "scatter" if scatter else "gather"
                        yield (f"{kind} d=({dx},{dy}) {DTYPE_NAMES[dtype]} {layout} C={c} {res}px",
                               _grid_sample_case(4, c, res, dtype, layout, dx, dy, scatter))


# --- bias_act -------------------------------------------------------------------------------------

def _bias_act_input(shape, dtype, layout):
    """x as the tests make it: NCHW / channels_last, the 2-D analogue of channels_last (a transposed
    column-major matrix: "t") or one element past a 16-byte boundary ("misaligned")."""
    if layout == "t":
        return fake(shape[::-1], dtype).t()
    if layout == "misaligned":
        return fake((math.prod(shape) + 1,), dtype)[1:].view(shape)
    return fake(shape, dtype, layout)


def _bias_act_case(shape, dim, dtype, layout):
    """Forward and gradient, with a bias (per-channel view) and without (flat view): what fixes a variant.
    The activation, clamp, order, s_is_y and the bias reduction are runtime arguments of the kernel."""
    from ganops.ref.activations import ACTIVATIONS
    from ganops.triton_kernels import bias_act as K

    LRELU = ACTIVATIONS["lrelu"].code

    def run():
        x = _bias_act_input(shape, dtype, layout)
        b = fake((shape[dim],), dtype)
        for bias in (b, None):
            K.forward(x, bias, dim, LRELU, 0.2, math.sqrt(2), 256.0)
        g = fake(x.shape, dtype)
        K.grad(g, None, x, b, dim, LRELU, 0.2, math.sqrt(2), 256.0, False, True)  # first order, bias gradient
        K.grad(g, fake(x.shape, dtype), x, None, dim, LRELU, 0.2, math.sqrt(2), -1.0, True, False)  # second, no bias
    return run


# The shapes of tests/test_bias_act.py: (shape, dim, layouts, dtypes).
_BIAS_ACT_TEST_SHAPES = [
    ((2, 5, 3, 7), 1, ("nchw", "nhwc"), DTYPES), ((3, 16, 4, 8), 1, ("nchw", "nhwc"), DTYPES),
    ((3, 37), 1, ("nchw", "t"), DTYPES), ((1, 3, 6, 8), -2, ("nchw", "nhwc"), DTYPES),
    ((2, 6, 3, 5), 1, ("nchw",), DTYPES[:1]), ((2, 8, 4, 4), 1, ("nhwc",), DTYPES[1:2]), ((3, 1, 5), 1, ("nchw",), DTYPES[:1]),
    ((2, 3), 1, ("nchw",), DTYPES[:1]), ((2, 4, 5, 6), 1, ("nchw",), DTYPES[:1]), ((2, 4, 3, 3), 1, ("nhwc",), DTYPES[:1]),
    ((2, 8, 40, 50), 1, ("nchw",), DTYPES[:1]), ((3, 8, 30, 30), 1, ("nhwc",), DTYPES[:1]),
    ((4, 64, 96, 96), 1, ("nchw", "nhwc"), DTYPES), ((2048, 520), 1, ("nchw",), DTYPES),
    ((3, 7, 33, 65), 1, ("nchw",), DTYPES), ((5, 24, 40, 16), 3, ("nchw",), DTYPES),
    ((2, 32, 64, 64), 1, ("misaligned",), DTYPES), ((3, 5, 129, 257), 1, ("nchw",), DTYPES[1:2]),
]


@cases("bias_act")
def _bias_act_cases():
    """Every preset feature map (4-1024 px; the kernel variant depends on the channels, or on H*W while
    that is below one tile, not on the batch), the mapping network's fully connected layers, one channel,
    and the tests' shapes."""
    presets = sorted({(c, min(res, 64)) for table in (PAPER256_CHANNELS, PAPER1024_CHANNELS, FASTGAN256_CHANNELS)
                      for res, c in table.items()} | {(3, 64)})
    shapes = [((4, c, res, res), 1, LAYOUTS, DTYPES) for c, res in presets]
    shapes += [((4, 512), 1, ("nchw",), DTYPES), ((4, 1, 64, 64), 1, ("nchw",), DTYPES)] + _BIAS_ACT_TEST_SHAPES
    for shape, dim, layouts, dtypes in shapes:
        for dtype in dtypes:
            for layout in layouts:
                yield f"{DTYPE_NAMES[dtype]} {layout} {shape} dim={dim}", _bias_act_case(shape, dim, dtype, layout)


# --- penalties ------------------------------------------------------------------------------------

def _penalties_case(shape, dtype, layout, backward):
    from ganops.triton_kernels import penalties as K

    def run():
        x = fake(shape, dtype, layout)
        if backward:
            K.sum_squares_backward(x, fake((shape[0],), torch.float32), 0.5)
        else:
            K.sum_squares(x, 0.5)
    return run


@cases("penalties")
def _penalties_cases():
    """R1 (sum of squared image gradients) and path length (squared generator gradients)."""
    for dtype in DTYPES + (torch.float64,):
        for layout in LAYOUTS:
            for shape in [(32, 3, r, r) for r in RESOLUTIONS] + [(4, 512, 512)] + list(TEST_SHAPES):
                for backward in (False, True):
                    yield (f"{'backward' if backward else 'forward'} {DTYPE_NAMES[dtype]} {layout} {shape}",
                           _penalties_case(shape, dtype, layout, backward))


# --- modulated_conv2d -----------------------------------------------------------------------------

def _modconv_geometry(k: int, up: int):
    """(transposed, r, py, px, out_res_of(in_res)) as ganops.ops.modulated_conv2d launches the layer."""
    from ganops.ref.conv2d_resample import resample_padding, transposed_split

    if up == 1:
        p = k // 2
        return False, 1, p, p, lambda res: res
    f = torch.ones(4)
    (pxt, pyt), _ = transposed_split(k, k, up, resample_padding(f, up, 1, [k // 2] * 4))
    return True, up, pyt, pxt, lambda res: (res - 1) * up - 2 * pyt + k


def _modconv_case(layer, dtype, layout, allow_tf32):
    from ganops.triton_kernels import modulated_conv2d as K

    n, c, o, k, res = layer["batch"], layer["in_ch"], layer["out_ch"], layer["k"], layer["in_res"]
    transposed, r, py, px, out_res = _modconv_geometry(k, layer["up"])

    def run():
        x = fake((n, c, res, res), dtype, layout)
        w = fake((o, c, k, k))
        s_in, s_out = fake((n, c)), fake((n, o))
        oh = out_res(res)
        fused = not transposed
        K.modconv_fwd(x, w, s_in, s_out, fake((n, 1, oh, oh)) if fused else None, fake((o,)) if fused else None,
                      transposed, r, py, px, oh, oh, 1 if fused else 0, 0.2, math.sqrt(2), 256.0 if fused else -1.0,
                      allow_tf32)
        dz = fake((n, o, oh, oh), dtype, layout)  # the weight/style gradient, as the backward launches it
        if transposed:
            K.modconv_wgrad(x, dz, w.transpose(0, 1), s_in, s_out, r, py, px, allow_tf32)
        else:
            K.modconv_wgrad(dz, x, w, s_out, s_in, r, py, px, allow_tf32)
    return run


@cases("modulated_conv2d")
def _modconv_cases():
    layers = synthesis_layers(PAPER256_CHANNELS, batch=4) + synthesis_layers(PAPER1024_CHANNELS, batch=4)
    layers.append(dict(name="tests", batch=1, in_ch=5, out_ch=7, in_res=9, k=3, up=1))
    layers.append(dict(name="tests-up", batch=2, in_ch=5, out_ch=3, in_res=7, k=3, up=2))
    seen = set()
    for layer in layers:
        key = tuple(sorted(layer.items() - {("name", layer["name"])}))
        if key in seen:
            continue
        seen.add(key)
        for dtype in DTYPES:
            for layout in LAYOUTS:
                for tf32 in ((False, True) if dtype == torch.float32 else (False,)):
                    yield (f"{layer['name']} {layer['in_ch']}->{layer['out_ch']} k{layer['k']} up{layer['up']} "
                           f"{layer['in_res']}px {DTYPE_NAMES[dtype]} {layout} tf32={tf32}",
                           _modconv_case(layer, dtype, layout, tf32))


# --- filtered_lrelu (StyleGAN3) ---------------------------------------------------------------------

def _filtered_lrelu_case(layer, dtype, layout, clamp):
    from ganops.ops import _filtered_lrelu_fast as F

    def run():
        op = F.filtered_lrelu_triton._init_fn          # the launcher body, not the custom op's fake kernel
        n, c, h, w = layer["shape"]
        x = fake((n, c, h, w), dtype, layout)
        fu = fake((layer["up_taps"],))
        fd = fake((layer["down_taps"],) * (2 if layer["radial"] else 1))
        px0, px1, py0, py1 = layer["padding"]
        y, signs = op(x, fu, fd, fake((c,), dtype), x.new_empty([0], dtype=torch.uint8), layer["up"], layer["down"],
                      px0, px1, py0, py1, 0, 0, layer["gain"], layer["slope"], clamp, True)
        args = F.backward_arguments(fu, fd, signs, layer["up"], layer["down"], px0, py0, (h, w, *y.shape[2:]))
        op(fake(y.shape, dtype, layout), *args, layer["gain"], layer["slope"], -1.0, False)
    return run


@cases("filtered_lrelu")
def _filtered_lrelu_cases():
    """Forward (writing signs) and backward (reading them) of every StyleGAN3-T/-R 256 and 1024 layer, plus the
    tests' small odd shape; the low-precision layers in fp16/bf16 with clamp 256, the others in fp32."""
    from .shapes import stylegan3_layers
    layers = [layer for res in (256, 1024) for radial in (False, True)
              for layer in stylegan3_layers(res, channel_base=65536 if radial else 32768,
                                            channel_max=1024 if radial else 512, radial=radial, batch=4)]
    layers.append(dict(name="tests", shape=(1, 5, 9, 11), up=2, down=2, up_taps=12, down_taps=12,
                       padding=(5, 4, 6, 5), radial=False, fp16=True, gain=2 ** 0.5, slope=0.2))
    seen = set()
    for layer in layers:
        key = (layer["shape"], layer["up"], layer["down"], layer["up_taps"], layer["down_taps"], layer["padding"],
               layer["radial"], layer["fp16"], layer["gain"])
        if key in seen:
            continue
        seen.add(key)
        for dtype in ((torch.float16, torch.bfloat16) if layer["fp16"] else (torch.float32,)):
            for layout in LAYOUTS:
                clamp = 256.0 if dtype != torch.float32 else -1.0
                yield (f"{layer['name']} {layer['shape'][1]}ch {layer['shape'][2]}px up{layer['up']} "
                       f"down{layer['down']} {'radial' if layer['radial'] else 'separable'} "
                       f"{DTYPE_NAMES[dtype]} {layout}", _filtered_lrelu_case(layer, dtype, layout, clamp))
