"""filtered_lrelu fast backends as torch.library custom ops with first-order autograd.

``ganops::filtered_lrelu_triton`` (defined here) and ``ganops::filtered_lrelu_cuda`` (csrc/cuda/
filtered_lrelu.cpp) share one schema:
    (Tensor x, Tensor fu, Tensor fd, Tensor? b, Tensor si, int up, int down, int px0, int px1, int py0,
     int py1, int sx, int sy, float gain, float slope, float clamp, bool write_signs) -> (Tensor y, Tensor so)
x: fp16/bf16/fp32 [N, C, H, W] of any strides; fu, fd: contiguous float32 *correlation* filters
(flipped by the caller for a convolution; fu carries the up**2 gain), 2-D [fh, fw] or 1-D [k]
(separable: applied once per axis); b: None or [C]; clamp < 0: no clamp. The intermediate m = fu (*) (x + b) zero-inserted and padded has size
[H*up + py0 + py1 - fuh + 1, W*up + px0 + px1 - fuw + 1]; y = fd (*) act(m) strided by ``down``, in
x's dtype and memory format. With write_signs, so = [N, C, MH, ceil(MW / 4)] uint8 holds 2 bits per
m value (bit 0: negative, bit 1: clamped); with a non-empty si the activation is replaced by the
derivative read from si at (i + sy, j + sx) (the backward). The backward of a forward call is the same
op with up/down swapped, the filters flipped and exchanged, reading the forward's signs. A second
backward raises: these backends give first-order gradients only.
"""
import torch

from .. import _alloc
from . import _family

NO_CLAMP = -1.0


def mid_size(x_size: int, up: int, pad0: int, pad1: int, fu_taps: int) -> int:
    """One axis of the intermediate (upsampled, padded, up-filtered) plane."""
    return x_size * up + pad0 + pad1 - fu_taps + 1


def _shapes(x, fu, fd, up, down, px0, px1, py0, py1, write_signs):
    n, c, h, w = x.shape
    mh, mw = mid_size(h, up, py0, py1, fu.shape[0]), mid_size(w, up, px0, px1, fu.shape[-1])
    out = (n, c, (mh - fd.shape[0]) // down + 1, (mw - fd.shape[-1]) // down + 1)
    signs = (n, c, mh, (mw + 3) // 4) if write_signs else (0,)
    return out, signs, mw


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    if x.is_contiguous() or not x.is_contiguous(memory_format=torch.channels_last):
        return torch.contiguous_format
    return torch.channels_last


@torch.library.custom_op("ganops::filtered_lrelu_triton", mutates_args=())
def filtered_lrelu_triton(x: torch.Tensor, fu: torch.Tensor, fd: torch.Tensor, b: torch.Tensor | None,
                          si: torch.Tensor, up: int, down: int, px0: int, px1: int, py0: int, py1: int, sx: int,
                          sy: int, gain: float, slope: float, clamp: float,
                          write_signs: bool) -> tuple[torch.Tensor, torch.Tensor]:
    from ..triton_kernels import filtered_lrelu as kernels

    out_shape, sign_shape, mw = _shapes(x, fu, fd, up, down, px0, px1, py0, py1, write_signs)
    y = _alloc.empty(out_shape, dtype=x.dtype, device=x.device, memory_format=_memory_format(x))
    so = torch.zeros(sign_shape, dtype=torch.uint8, device=x.device)
    if si.numel():
        mode, signs, sign_w = kernels.SIGNS_READ, si, si.shape[3] * 4
    elif write_signs:
        mode, signs, sign_w = kernels.SIGNS_WRITE, so, mw
    else:
        mode, signs, sign_w = kernels.SIGNS_NONE, None, 0
    kernels.filtered_lrelu(x, fu, fd, b, signs, sign_w, y, mode, up, down, px0, py0, sx, sy, gain, slope, clamp)
    return y, so


def _fake(x, fu, fd, b, si, up, down, px0, px1, py0, py1, sx, sy, gain, slope, clamp, write_signs):
    out_shape, sign_shape, _ = _shapes(x, fu, fd, up, down, px0, px1, py0, py1, write_signs)
    y = torch.empty(out_shape, dtype=x.dtype, device=x.device, memory_format=_memory_format(x))
    return y, x.new_empty(sign_shape, dtype=torch.uint8)


def _setup_context(ctx, inputs, output):
    x, fu, fd, b, si, up, down, px0, px1, py0, py1, sx, sy, gain, slope, clamp, write_signs = inputs
    ctx.is_backward = si.numel() > 0
    ctx.save_for_backward(fu, fd, output[1])
    ctx.params = (up, down, px0, py0, gain, slope)
    ctx.sizes = (x.shape[2], x.shape[3], output[0].shape[2], output[0].shape[3])
    ctx.has_bias = b is not None


def _autograd(ops):
    """First-order autograd: the backward is the same op with up/down swapped, reading the signs."""
    op = ops["filtered_lrelu"]

    def backward(ctx, dy, _dso):
        if ctx.is_backward:
            raise NotImplementedError(
                "filtered_lrelu: the 'triton' and 'cuda' backends give first-order gradients only (StyleGAN3 "
                "needs no more); use impl='ref' for higher-order gradients")
        fu, fd, so = ctx.saved_tensors
        if so.numel() == 0:
            raise RuntimeError("filtered_lrelu: no signs were saved because no input required grad at forward "
                               "time; call the op with x (or b) requiring grad")
        up, down, px0, py0, gain, slope = ctx.params
        dx, _ = op(dy, *backward_arguments(fu, fd, so, up, down, px0, py0, ctx.sizes), gain, slope, NO_CLAMP, False)
        db = dx.sum(dim=(0, 2, 3), dtype=torch.float32).to(dx.dtype) if ctx.has_bias and ctx.needs_input_grad[3] \
            else None
        return (dx if ctx.needs_input_grad[0] else None, None, None, db) + (None,) * 13

    torch.library.register_autograd(op, backward, setup_context=_setup_context)


def backward_arguments(fu, fd, signs, up: int, down: int, px0: int, py0: int, sizes):
    """(filters, signs, up, down, padding, sign offsets) of the pass that computes dx from dy: the same
    kernel with up/down swapped and the filters flipped, reading the forward's signs. sizes: (H, W, OH, OW)."""
    h, w, oh, ow = sizes
    (fuh, fuw), (fdh, fdw) = (fu.shape[0], fu.shape[-1]), (fd.shape[0], fd.shape[-1])
    pad = ((fuw - 1) + (fdw - 1) - px0, w * up - ow * down + px0 - (up - 1),
           (fuh - 1) + (fdh - 1) - py0, h * up - oh * down + py0 - (up - 1))
    return (_flip(fd), _flip(fu), None, signs, down, up, *pad, px0 - (fuw - 1), py0 - (fuh - 1))


def _flip(f: torch.Tensor) -> torch.Tensor:
    return f.flip(list(range(f.ndim))).contiguous()


_FAST = _family.FastBackend({"filtered_lrelu": _fake}, _autograd, _family.fast_input_reason)
KERNELS = _family.register("filtered_lrelu", {"triton": _FAST, "cuda": _FAST})


def correlation_filter(f: torch.Tensor, flip_filter: bool, gain: float) -> torch.Tensor:
    """A validated filter as the contiguous float32 correlation filter the kernels take, with ``gain``
    (split evenly over the axes of a separable filter)."""
    f = f.float()
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    return (f * gain ** (f.ndim / 2)).contiguous()


def apply(backend: str, x, fu, fd, b, up, down, px0, px1, py0, py1, gain, slope, clamp, flip_filter):
    """Run a validated call on ``backend`` ('triton' or 'cuda'); fu, fd are the user's filters."""
    write_signs = torch.is_grad_enabled() and (x.requires_grad or (b is not None and b.requires_grad))
    y, _ = KERNELS[backend]["filtered_lrelu"](x, correlation_filter(fu, flip_filter, float(up * up)),
                         correlation_filter(fd, flip_filter, 1.0), b, x.new_empty([0], dtype=torch.uint8), up, down,
                         px0, px1, py0, py1, 0, 0, gain, slope, NO_CLAMP if clamp is None else clamp, write_signs)
    return y
