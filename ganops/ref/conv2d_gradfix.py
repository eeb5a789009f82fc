"""conv2d / conv_transpose2d whose weight gradient can be switched off (regularisation passes).

``conv2d`` and ``conv_transpose2d`` take the arguments of their ``torch.nn.functional``
namesakes and return the same values. Their backward is written with differentiable ATen ops
(``aten.convolution_backward``), so double backward works; while :func:`no_weight_gradients`
is active *at backward time*, the weight gradient is not computed (returned as ``None``).
This is what R1 and path-length regularisation need: ``autograd.grad(..., inputs=[images or ws],
create_graph=True)`` inside the context, then the penalty's own ``backward()`` outside it, which
reaches the weights through the double-backward graph.

``enabled`` (module flag, default True): when False the functions call ``torch.nn.functional``
directly and :func:`no_weight_gradients` has no effect.

Inside torch.compile'd code they call ``torch.nn.functional`` too: Dynamo traces an
autograd.Function's backward without its own derivative, which would drop the double-backward
terms a penalty's gradient needs, and the compiled graph computes only the gradients asked for
(``autograd.grad(..., inputs=[images])`` has no weight gradient to skip).
"""
import contextlib
import dataclasses
from typing import Optional, Tuple

import torch

enabled = True
_weight_gradients_disabled = False


@contextlib.contextmanager
def no_weight_gradients(disable: bool = True):
    """Skip weight gradients of ganops convolutions whose backward runs inside this context."""
    global _weight_gradients_disabled
    previous = _weight_gradients_disabled
    _weight_gradients_disabled = previous or bool(disable)
    try:
        yield
    finally:
        _weight_gradients_disabled = previous


def weight_gradients_disabled() -> bool:
    """Whether :func:`no_weight_gradients` is active now (fused ops consult it in their backward)."""
    return _weight_gradients_disabled


def _pair(value, name: str, minimum: int) -> Tuple[int, int]:
    if isinstance(value, int):
        value = (value, value)
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(value) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {tuple(value)}")
    return tuple(value)


@dataclasses.dataclass(frozen=True)
class _Spec:
    transposed: bool
    stride: Tuple[int, int]
    padding: Tuple[int, int]
    output_padding: Tuple[int, int]
    dilation: Tuple[int, int]
    groups: int


class _Conv(torch.autograd.Function):
    """y = convolution(x, w, b) per spec; backward via aten.convolution_backward (differentiable)."""

    @staticmethod
    def forward(ctx, x, w, b, spec: _Spec):
        ctx.spec = spec
        ctx.has_bias = b is not None
        ctx.save_for_backward(x, w)
        return torch.ops.aten.convolution(x, w, b, list(spec.stride), list(spec.padding), list(spec.dilation),
                                          spec.transposed, list(spec.output_padding), spec.groups)

    @staticmethod
    def backward(ctx, gy):
        x, w = ctx.saved_tensors
        spec = ctx.spec
        want_x = ctx.needs_input_grad[0]
        want_w = ctx.needs_input_grad[1] and not _weight_gradients_disabled
        want_b = ctx.has_bias and ctx.needs_input_grad[2]
        gx = gw = gb = None
        if want_x or want_w:
            gx, gw, _ = torch.ops.aten.convolution_backward(
                gy, x, w, None, list(spec.stride), list(spec.padding), list(spec.dilation), spec.transposed,
                list(spec.output_padding), spec.groups, [want_x, want_w, False])
        if want_b:
            gb = gy.sum(dim=(0, 2, 3))
        return gx, gw, gb, None


def _validate(x: torch.Tensor, w: torch.Tensor, b: Optional[torch.Tensor], what: str) -> None:
    for name, t in (("input", x), ("weight", w)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{what}: {name} must be a tensor, got {type(t).__name__}")
        if t.ndim != 4:
            raise ValueError(f"{what}: {name} must be 4-D, got shape {tuple(t.shape)}")
    if b is not None and (not isinstance(b, torch.Tensor) or b.ndim != 1):
        raise ValueError(f"{what}: bias must be None or a 1-D tensor")


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """torch.nn.functional.conv2d (cross-correlation, NCHW [N,I,H,W] * [O,I/groups,kh,kw]) with
    switchable weight gradient. ``padding`` must be an int or pair (no 'same')."""
    _validate(input, weight, bias, "conv2d")
    spec = _Spec(False, _pair(stride, "stride", 1), _pair(padding, "padding", 0), (0, 0),
                 _pair(dilation, "dilation", 1), int(groups))
    if not enabled or torch.compiler.is_compiling():
        return torch.nn.functional.conv2d(input, weight, bias, spec.stride, spec.padding, spec.dilation, spec.groups)
    return _Conv.apply(input, weight, bias, spec)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """torch.nn.functional.conv_transpose2d ([N,I,H,W] with weight [I,O/groups,kh,kw]) with
    switchable weight gradient."""
    _validate(input, weight, bias, "conv_transpose2d")
    spec = _Spec(True, _pair(stride, "stride", 1), _pair(padding, "padding", 0),
                 _pair(output_padding, "output_padding", 0), _pair(dilation, "dilation", 1), int(groups))
    if not enabled or torch.compiler.is_compiling():
        return torch.nn.functional.conv_transpose2d(input, weight, bias, spec.stride, spec.padding,
                                                    spec.output_padding, spec.groups, spec.dilation)
    return _Conv.apply(input, weight, bias, spec)
