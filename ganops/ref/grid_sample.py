"""Reference bilinear grid_sample (zeros padding, align_corners=False) from differentiable torch ops.

out[n, c, i, j] = sum over the 4 neighbours (yy, xx) of (ix, iy) of
    wy(yy) * wx(xx) * input[n, c, yy, xx]   (0 outside the image)
with ix = ((grid[n, i, j, 0] + 1) * W - 1) / 2 and iy = ((grid[n, i, j, 1] + 1) * H - 1) / 2,
wx(x0) = 1 - (ix - x0), wx(x0 + 1) = ix - x0 (x0 = floor(ix)), likewise wy.

Built from gather, where, multiply and add only, so autograd differentiates it to any order w.r.t.
the input, the grid and (through its backward) the incoming gradient; torch's own grid_sampler backward
has no derivative. floor() is treated as constant (zero derivative), like torch's kernels do.

Taps outside the image read 0 (they are masked, not gathered), so, as in torch, a NaN or infinite
coordinate (whose weights are NaN) gives NaN in that output sample and adds nothing to the input's
gradient; its grid gradient is 0 * (the weight's derivative): NaN along the other axis, 0 along its own.
"""
import torch


def bilinear_taps(grid: torch.Tensor, height: int, width: int):
    """The 4 taps of every grid point: a list of (flat index [N, P] long, inside [N, P] bool, weight [N, P])
    with P = Ho * Wo; taps outside the image (every tap of a NaN or infinite coordinate) have index 0."""
    n = grid.shape[0]
    ix = ((grid[..., 0] + 1) * width - 1) * 0.5
    iy = ((grid[..., 1] + 1) * height - 1) * 0.5
    x0 = ix.detach().floor()
    y0 = iy.detach().floor()
    fx = ix - x0
    fy = iy - y0
    taps = []
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            xx = x0 + dx
            yy = y0 + dy
            inside = (xx >= 0) & (xx <= width - 1) & (yy >= 0) & (yy <= height - 1)
            # Only in-image (so finite) coordinates are converted to integers.
            index = torch.where(inside, yy, 0).long() * width + torch.where(inside, xx, 0).long()
            taps.append((index.reshape(n, -1), inside.reshape(n, -1), (wy * wx).reshape(n, -1)))
    return taps


def grid_sample(input: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """input [N, C, H, W], grid [N, Ho, Wo, 2] (x, y in [-1, 1]) -> [N, C, Ho, Wo] in input.dtype.

    fp16 / bf16 are computed in float32 (like the kernels) and rounded once at the end."""
    n, c, h, w = input.shape
    ho, wo = grid.shape[1], grid.shape[2]
    compute = torch.float64 if input.dtype == torch.float64 else torch.float32
    flat = input.to(compute).reshape(n, c, h * w)
    out = None
    for index, inside, weight in bilinear_taps(grid.to(compute), h, w):
        values = flat.gather(2, index[:, None, :].expand(n, c, index.shape[1]))
        term = torch.where(inside[:, None, :], values, 0) * weight[:, None, :]
        out = term if out is None else out + term
    return out.reshape(n, c, ho, wo).to(input.dtype)
