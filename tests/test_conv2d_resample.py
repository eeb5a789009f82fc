"""conv2d_resample: every fast ordering equals the defining composition (FIR-up, conv, FIR-down),
box filters reduce it to nearest-upsample / average-pool around a conv (an independent check of the
padding arithmetic), gradients of both orders, low precision vs float64, no_weight_gradients, bad input."""
import itertools

import pytest
import torch
import torch.nn.functional as F

import ganops
from ganops.ops.conv2d_resample import parse_padding
from ganops.ref.conv2d_resample import conv2d_resample_generic
from helpers import assert_close, make_input

FIR = [1, 3, 3, 1]


def generic(x, w, f, up, down, padding, groups, flip_weight, flip_filter):
    """The composition with conv2d_resample's padding split, written out independently."""
    fw = fh = 1 if f is None else f.shape[0]
    px0, px1, py0, py1 = parse_padding(padding)
    if up > 1:
        px0, px1, py0, py1 = px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2, py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2
    if down > 1:
        px0, px1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2
        py0, py1 = py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2
    return conv2d_resample_generic(x, w, f, up, down, [px0, px1, py0, py1], groups, flip_weight, flip_filter)


ORDER_CASES = [(k, ud, padding, 2 if k == 3 else 1)
               for k, ud, padding in itertools.product([1, 3, 2], [(1, 1), (2, 1), (1, 2), (2, 2)], [0, (2, 1), (1, 0, 2, -1)])]


@pytest.mark.parametrize("case", ORDER_CASES, ids=str)
def test_fast_orderings_match_generic(case):
    k, (up, down), padding, groups = case
    f = ganops.setup_filter([1, 2, 4, 1])  # asymmetric: flip_filter matters
    x = make_input((2, 4, 7, 6), torch.float64)
    w = make_input((6, 4 // groups, k, k), torch.float64)
    for flip_weight, flip_filter in [(True, False), (False, True)]:
        out = ganops.conv2d_resample(x, w, f, up, down, padding, groups, flip_weight, flip_filter)
        assert_close(out, generic(x, w, f, up, down, padding, groups, flip_weight, flip_filter), torch.float64)


@pytest.mark.parametrize("k", [1, 3])
def test_box_filter_up_is_nearest_upsample_then_conv(k):
    x, w = make_input((2, 3, 5, 4), torch.float64), make_input((4, 3, k, k), torch.float64)
    out = ganops.conv2d_resample(x, w, ganops.setup_filter([1, 1]), up=2, padding=k // 2)
    expected = F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), w, padding=k // 2)
    assert_close(out, expected, torch.float64)


@pytest.mark.parametrize("k", [1, 3])
def test_box_filter_down_is_conv_then_average_pool(k):
    x, w = make_input((2, 3, 8, 6), torch.float64), make_input((4, 3, k, k), torch.float64)
    out = ganops.conv2d_resample(x, w, ganops.setup_filter([1, 1]), down=2, padding=k // 2)
    expected = F.avg_pool2d(F.conv2d(x, w, padding=k // 2), 2)
    assert_close(out, expected, torch.float64)


def test_flip_weight_false_is_true_convolution():
    x, w = make_input((1, 2, 6, 6), torch.float64), make_input((3, 2, 3, 3), torch.float64)
    out = ganops.conv2d_resample(x, w, padding=1, flip_weight=False)
    assert_close(out, F.conv2d(x, w.flip([2, 3]), padding=1), torch.float64)


@pytest.mark.parametrize("up,down", [(2, 1), (1, 2), (1, 1)])
def test_gradcheck_and_gradgradcheck(up, down):
    f = ganops.setup_filter(FIR)
    x = make_input((1, 2, 4, 4), torch.float64, requires_grad=True)
    w = make_input((2, 2, 3, 3), torch.float64, requires_grad=True)
    fn = lambda x, w: ganops.conv2d_resample(x, w, f, up=up, down=down, padding=1)
    assert torch.autograd.gradcheck(fn, (x, w), fast_mode=True)
    assert torch.autograd.gradgradcheck(fn, (x, w), fast_mode=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("up,down,layout", [(2, 1, "channels_last"), (1, 2, "contiguous"), (1, 1, "noncontig")])
def test_low_precision_vs_float64(dtype, up, down, layout):
    f = ganops.setup_filter(FIR)
    x = make_input((2, 5, 6, 6), dtype, layout=layout)
    w = make_input((3, 5, 3, 3), dtype)
    out = ganops.conv2d_resample(x, w, f, up=up, down=down, padding=1)
    assert out.dtype == dtype
    expected = ganops.conv2d_resample(x.double(), w.double(), f, up=up, down=down, padding=1)
    assert_close(out, expected, dtype, factor=2)


def test_no_weight_gradients_applies_inside():
    f = ganops.setup_filter(FIR)
    x = make_input((1, 2, 4, 4), torch.float64, requires_grad=True)
    w = make_input((3, 2, 3, 3), torch.float64, requires_grad=True)
    with ganops.no_weight_gradients():
        gx, gw = torch.autograd.grad(ganops.conv2d_resample(x, w, f, up=2, padding=1).sum(), [x, w],
                                     allow_unused=True)
    assert gw is None and torch.isfinite(gx).all() and gx.abs().sum() > 0


def test_bad_input():
    x, w, f = torch.randn(1, 4, 6, 6), torch.randn(3, 4, 3, 3), ganops.setup_filter(FIR)
    with pytest.raises(ValueError, match="x has 4 channels"):
        ganops.conv2d_resample(x, torch.randn(3, 5, 3, 3))
    with pytest.raises(ValueError, match="f must be given"):
        ganops.conv2d_resample(x, w, None, up=2)
    with pytest.raises(ValueError, match="divisible by groups"):
        ganops.conv2d_resample(x, torch.randn(3, 2, 3, 3), f, groups=2)
    with pytest.raises(ValueError, match="up must be >= 1"):
        ganops.conv2d_resample(x, w, f, up=0)
    with pytest.raises(TypeError, match="w must have the dtype of x"):
        ganops.conv2d_resample(x, w.double())
    with pytest.raises(TypeError, match="padding must be"):
        ganops.conv2d_resample(x, w, f, padding=(1, 2, 3))
