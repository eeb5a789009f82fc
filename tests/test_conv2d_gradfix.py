"""conv2d_gradfix: same values as torch.nn.functional, gradients of first and second order, and
no_weight_gradients skipping the weight gradient without breaking the double-backward graph."""
import pytest
import torch
import torch.nn.functional as F

import ganops
from ganops.ref import conv2d_gradfix
from helpers import assert_close, make_input

CONV_CASES = [  # (stride, padding, dilation, groups)
    (1, 0, 1, 1), (2, 1, 1, 1), ((1, 2), (2, 0), 1, 2), (1, 2, 2, 1),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_conv2d_matches_torch(case, layout):
    stride, padding, dilation, groups = case
    x = make_input((2, 4, 9, 7), torch.float64, layout=layout)
    w = make_input((6, 4 // groups, 3, 3), torch.float64)
    b = make_input((6,), torch.float64)
    out = conv2d_gradfix.conv2d(x, w, b, stride, padding, dilation, groups)
    assert_close(out, F.conv2d(x, w, b, stride, padding, dilation, groups), torch.float64)


@pytest.mark.parametrize("case", [(2, 1, 1, 1), (2, 0, 0, 2), (1, 1, 0, 1)], ids=str)
def test_conv_transpose2d_matches_torch(case):
    stride, padding, output_padding, groups = case
    x = make_input((2, 4, 5, 6), torch.float64)
    w = make_input((4, 6 // groups, 3, 3), torch.float64)
    out = conv2d_gradfix.conv_transpose2d(x, w, None, stride, padding, output_padding, groups)
    assert_close(out, F.conv_transpose2d(x, w, None, stride, padding, output_padding, groups), torch.float64)


@pytest.mark.parametrize("transpose", [False, True])
def test_gradcheck_and_gradgradcheck(transpose):
    x = make_input((1, 2, 4, 3), torch.float64, requires_grad=True)
    w = make_input((2, 2, 3, 3), torch.float64, requires_grad=True)
    b = make_input((2,), torch.float64, requires_grad=True)
    if transpose:
        fn = lambda x, w, b: conv2d_gradfix.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1)
    else:
        w = make_input((2, 2, 3, 3), torch.float64, requires_grad=True)
        fn = lambda x, w, b: conv2d_gradfix.conv2d(x, w, b, stride=2, padding=1)
    assert torch.autograd.gradcheck(fn, (x, w, b), fast_mode=True)
    assert torch.autograd.gradgradcheck(fn, (x, w, b), fast_mode=True)


def test_no_weight_gradients_skips_weight_grad_only():
    x = make_input((2, 3, 6, 6), torch.float64, requires_grad=True)
    w = make_input((4, 3, 3, 3), torch.float64, requires_grad=True)
    with ganops.no_weight_gradients():
        gx, gw = torch.autograd.grad(conv2d_gradfix.conv2d(x, w, padding=1).square().sum(), [x, w],
                                     allow_unused=True)
    assert gw is None
    expected_gx, = torch.autograd.grad(F.conv2d(x, w, padding=1).square().sum(), [x])
    assert_close(gx, expected_gx, torch.float64, "grad x")
    # Outside the context the weight gradient is back.
    gw = torch.autograd.grad(conv2d_gradfix.conv2d(x, w, padding=1).sum(), [w])[0]
    assert_close(gw, torch.autograd.grad(F.conv2d(x, w, padding=1).sum(), [w])[0], torch.float64, "grad w")


def test_r1_style_double_backward_reaches_weights():
    """grad wrt the input with create_graph inside the context, the penalty's backward outside."""
    x = make_input((2, 3, 6, 5), torch.float64, requires_grad=True)
    w = make_input((4, 3, 3, 3), torch.float64, requires_grad=True)
    with ganops.no_weight_gradients():
        gx, = torch.autograd.grad(conv2d_gradfix.conv2d(x, w, padding=1).square().sum(), [x], create_graph=True)
    penalty_grad_w, = torch.autograd.grad(gx.square().sum(), [w])
    gx_ref, = torch.autograd.grad(F.conv2d(x, w, padding=1).square().sum(), [x], create_graph=True)
    expected, = torch.autograd.grad(gx_ref.square().sum(), [w])
    assert_close(penalty_grad_w, expected, torch.float64, "penalty grad w")


def test_context_nesting_and_disable_false():
    with ganops.no_weight_gradients():
        with ganops.no_weight_gradients(disable=False):
            assert conv2d_gradfix.weight_gradients_disabled()
        assert conv2d_gradfix.weight_gradients_disabled()
    assert not conv2d_gradfix.weight_gradients_disabled()


def test_enabled_flag_off_uses_torch(monkeypatch):
    monkeypatch.setattr(conv2d_gradfix, "enabled", False)
    x = make_input((1, 2, 5, 5), torch.float64, requires_grad=True)
    w = make_input((3, 2, 3, 3), torch.float64, requires_grad=True)
    y = conv2d_gradfix.conv2d(x, w)
    assert y.grad_fn.name() == "ConvolutionBackward0"
    assert_close(y, F.conv2d(x, w), torch.float64)


def test_bad_input():
    x, w = torch.randn(1, 2, 5, 5), torch.randn(3, 2, 3, 3)
    with pytest.raises(ValueError, match="input must be 4-D"):
        conv2d_gradfix.conv2d(x[0], w)
    with pytest.raises(ValueError, match="weight must be 4-D"):
        conv2d_gradfix.conv_transpose2d(x, w[0])
    with pytest.raises(ValueError, match="stride must be >= 1"):
        conv2d_gradfix.conv2d(x, w, stride=0)
    with pytest.raises(TypeError, match="padding must be an int or a pair"):
        conv2d_gradfix.conv2d(x, w, padding="same")
