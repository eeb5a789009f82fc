"""upfirdn2d fast backends as torch.library custom ops with any-order autograd.

``ganops::upfirdn2d_triton`` (defined here) and ``ganops::upfirdn2d_cuda`` (defined in
csrc/cuda/upfirdn2d.cpp) share one schema:
    (Tensor x, Tensor f, int upx, int upy, int downx, int downy, int px0, int px1, int py0, int py1,
     bool flip_filter, float gain) -> Tensor
x: fp16/bf16/fp32 [N, C, H, W] of any strides; f: contiguous float32 [fh, fw] or [k]. The output has
x's memory format. The backward of each op is the same op with up/down swapped, the filter flipped and
the adjoint padding, so it is differentiable again (gradients of any order). No gradient for f.
"""
import torch

from .. import _alloc
from . import _family
from . import _upfirdn2d_args as A


def _dtype_reason(x: torch.Tensor):
    if x.dtype not in _family.FAST_DTYPES:
        return f"{x.dtype} is not supported by the upfirdn2d kernels (float16, bfloat16, float32 only)"
    return None


def _empty_out(x, f, upx, upy, downx, downy, px0, px1, py0, py1):
    fw, fh = A.filter_size(f)
    shape = A.output_shape(x, fw, fh, upx, upy, downx, downy, px0, px1, py0, py1)
    return shape, A.same_memory_format(x)


@torch.library.custom_op("ganops::upfirdn2d_triton", mutates_args=())
def upfirdn2d_triton(x: torch.Tensor, f: torch.Tensor, upx: int, upy: int, downx: int, downy: int,
                     px0: int, px1: int, py0: int, py1: int, flip_filter: bool, gain: float) -> torch.Tensor:
    from ..triton_kernels import upfirdn2d as kernels

    shape, fmt = _empty_out(x, f, upx, upy, downx, downy, px0, px1, py0, py1)
    out = _alloc.empty(shape, dtype=x.dtype, device=x.device, memory_format=fmt)
    return kernels.upfirdn2d(x, f, out, upx, upy, downx, downy, px0, px1, py0, py1, flip_filter, gain)


def _fake(x, f, upx, upy, downx, downy, px0, px1, py0, py1, flip_filter, gain):
    shape, fmt = _empty_out(x, f, upx, upy, downx, downy, px0, px1, py0, py1)
    return torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=fmt)


def _setup_context(ctx, inputs, output):
    x, f, upx, upy, downx, downy, px0, px1, py0, py1, flip_filter, gain = inputs
    ctx.save_for_backward(f)
    ctx.params = (upx, upy, downx, downy, px0, py0, flip_filter, gain)
    ctx.sizes = ((x.shape[2], x.shape[3]), (output.shape[2], output.shape[3]))


def _autograd(ops):
    """Any-order autograd: the backward is the same op on the adjoint arguments."""
    op = ops["upfirdn2d"]

    def backward(ctx, dy):
        (f,) = ctx.saved_tensors
        upx, upy, downx, downy, px0, py0, flip_filter, gain = ctx.params
        fw, fh = A.filter_size(f)
        p = A.grad_padding(ctx.sizes[0], ctx.sizes[1], fw, fh, upx, upy, downx, downy, px0, py0)
        dx = op(dy, f, downx, downy, upx, upy, *p, not flip_filter, gain)
        return (dx,) + (None,) * 11

    torch.library.register_autograd(op, backward, setup_context=_setup_context)


_FAST = _family.FastBackend({"upfirdn2d": _fake}, _autograd, _dtype_reason)
KERNELS = _family.register("upfirdn2d", {"triton": _FAST, "cuda": _FAST})
