"""Reference upfirdn2d in plain PyTorch: zero insertion, pad/crop, depthwise conv2d, stride.

For x [N, C, H, W] and filter f ([fh, fw], or [k] applied once per axis):

    xu[u, v]  = x[u / upy, v / upx] where upy | u and upx | v, else 0      (size H*upy x W*upx)
    xp        = xu padded by (px0, px1, py0, py1); negative values crop
    y[i, j]   = gain * sum_{a, b} xp[i*downy + a, j*downx + b] * g[a, b]

with g = f flipped in both axes (a true convolution) unless ``flip_filter`` (then g = f, a
correlation). A 1-D filter g is applied as g[a] * g[b]. Output size per axis:
(in*up + pad0 + pad1 - taps + down) // down. Every step is differentiable PyTorch, so gradients
of any order come from autograd. Arguments must already be validated and normalised
(see ganops.ops.upfirdn2d).

Two evaluations of the same sums: a 1-D filter on images with both sides <= ``DENSE_MAX`` is one
[in, out] matrix per axis (zero insertion, padding, taps, stride and gain folded in, see
:func:`axis_matrix`), y = My^T x Mx as two GEMMs, which need no zero-inserted intermediate and run
faster on the CPU than the depthwise convolutions (StyleGAN3-T/-R filtered_lrelu layers at 32 px,
batch 32, forward + backward: 1.0-1.8x with malloc reusing memory, 2.6-3.6x without);
everything else goes through zero insertion + depthwise conv2d. The matrices multiply
every input of a row by a coefficient, most of them 0, so a non-finite input makes its whole row
and column NaN there, where the convolution keeps it within the filter's support.
"""
import functools

import numpy as np
import torch
import torch.nn.functional as F

DENSE_MAX = 256   # longest image side for the matrix form (a GEMM of `side` MACs per output sample)


@functools.lru_cache(maxsize=256)
def _tap_index(length: int, up: int, down: int, pad0: int, pad1: int, taps: int) -> torch.Tensor:
    """[length, out] int64 (CPU, shared: read only): the tap j*up + pad0 - i*down of input j in output i,
    or ``taps`` (the index of a 0 appended to the filter) where that tap does not exist."""
    out = (length * up + pad0 + pad1 - taps + down) // down
    tap = np.arange(length)[:, None] * up + pad0 - np.arange(out)[None, :] * down
    return torch.from_numpy(np.where((tap >= 0) & (tap < taps), tap, taps))


def axis_matrix(g: torch.Tensor, length: int, up: int, down: int, pad0: int, pad1: int,
                gain: float) -> torch.Tensor:
    """[length, out] matrix of one axis: M[j, i] = gain * g[j*up + pad0 - i*down] where that tap
    exists (else 0), g the taps in correlation order; out = (length*up + pad0 + pad1 - taps + down) // down."""
    # torch.compile traces the function itself (it would warn that it ignores the cache)
    tap_index = _tap_index.__wrapped__ if torch.compiler.is_compiling() else _tap_index
    index = tap_index(length, up, down, pad0, pad1, g.shape[0])
    return F.pad(g * gain, [0, 1]).index_select(0, index.flatten().to(g.device)).view(index.shape)


def _zero_insert(x: torch.Tensor, upx: int, upy: int) -> torch.Tensor:
    """[N, C, H, W] -> [N, C, H*upy, W*upx] with the samples at multiples of the factors."""
    if upx == 1 and upy == 1:
        return x
    n, c, h, w = x.shape
    x = x.reshape(n, c, h, 1, w, 1)
    x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
    return x.reshape(n, c, h * upy, w * upx)


def _pad_or_crop(x: torch.Tensor, px0: int, px1: int, py0: int, py1: int) -> torch.Tensor:
    if min(px0, px1, py0, py1) < 0:
        h, w = x.shape[2], x.shape[3]
        x = x[:, :, max(-py0, 0): h - max(-py1, 0), max(-px0, 0): w - max(-px1, 0)]
    if max(px0, px1, py0, py1) > 0:
        x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    return x


def upfirdn2d_ref(x: torch.Tensor, f: torch.Tensor, upx: int, upy: int, downx: int, downy: int,
                  px0: int, px1: int, py0: int, py1: int, flip_filter: bool, gain: float) -> torch.Tensor:
    """The reference upfirdn2d (see the module docstring); computes in x.dtype, returns x.dtype."""
    channels = x.shape[1]
    g = f.to(x.dtype)
    if not flip_filter:
        g = g.flip(list(range(g.ndim)))
    if g.ndim == 1 and max(x.shape[2], x.shape[3]) <= DENSE_MAX:
        mx = axis_matrix(g, x.shape[3], upx, downx, px0, px1, gain)
        my = axis_matrix(g, x.shape[2], upy, downy, py0, py1, 1.0)
        return torch.matmul(my.t(), torch.matmul(x, mx))
    x = _pad_or_crop(_zero_insert(x, upx, upy), px0, px1, py0, py1)
    if g.ndim == 2:
        w = (g * gain).expand(channels, 1, *g.shape)
        return F.conv2d(x, w, stride=(downy, downx), groups=channels)
    g = g * (abs(gain) ** 0.5)
    wx = g.reshape(1, 1, 1, -1).expand(channels, 1, 1, g.numel())
    wy = (g if gain >= 0 else -g).reshape(1, 1, -1, 1).expand(channels, 1, g.numel(), 1)
    x = F.conv2d(x, wx, stride=(1, downx), groups=channels)
    return F.conv2d(x, wy, stride=(downy, 1), groups=channels)
