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
"""
import torch
import torch.nn.functional as F


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
    x = _pad_or_crop(_zero_insert(x, upx, upy), px0, px1, py0, py1)
    g = f.to(x.dtype)
    if not flip_filter:
        g = g.flip(list(range(g.ndim)))
    if g.ndim == 2:
        w = (g * gain).expand(channels, 1, *g.shape)
        return F.conv2d(x, w, stride=(downy, downx), groups=channels)
    g = g * (abs(gain) ** 0.5)
    wx = g.reshape(1, 1, 1, -1).expand(channels, 1, 1, g.numel())
    wy = (g if gain >= 0 else -g).reshape(1, 1, -1, 1).expand(channels, 1, g.numel(), 1)
    x = F.conv2d(x, wx, stride=(1, downx), groups=channels)
    return F.conv2d(x, wy, stride=(downy, 1), groups=channels)
