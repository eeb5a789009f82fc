"""Triton kernels of bilinear grid_sample (zeros padding, align_corners=False) and its transpose.

Both kernels take derivative orders (DX, DY) of the bilinear weights w.r.t. the pixel coordinates
(ix, iy): order 0 uses wx = 1 - fx / fx for the left / right tap, order 1 uses d wx / d ix = -1 / +1
(likewise in y). With them every derivative of grid_sample of any order is a gather or a scatter:

  gather(input, grid, DX, DY)[n, c, p]  = sum_taps wy * wx * input[n, c, tap]          (forward)
  scatter(grad, grid, DX, DY)[n, c, tap] += wy * wx * grad[n, c, p]           (its transpose)

Compute is float32 for fp16 / bf16 / fp32 data and float64 for float64 data. The scatter accumulates
with relaxed atomics (only the sum matters, not the order) into a zeroed buffer of the compute dtype
(an accumulator, not a poisoned output).

Programs own [BLOCK_P pixels, BLOCK_C channels] tiles with BLOCK_C = next_pow2(C) up to 16 (so an RGB
image wastes 1 of 4 lanes, not 13 of 16) and BLOCK_P * BLOCK_C = 1024. Grid: axis 0 = sample and pixel
block (up to 2**31 - 1), axis 1 = channel block (C <= 65535 * 16).

The image loads cannot be 16-byte vectors: each tap's address depends on the grid values (a gather), and
the only contiguous run, the channels of one pixel in channels_last, is 3 elements (6-12 bytes) for RGB.
"""
import torch
import triton
import triton.language as tl

from .. import _alloc
from ._launch import launch

MAX_BLOCK_C = 16
TILE = 1024  # BLOCK_P * BLOCK_C


@triton.jit
def _taps(grid_ptr, n, p, pmask, Wo, H, W, s_gn, s_gh, s_gw, s_gk, DX: tl.constexpr, DY: tl.constexpr,
          COMPUTE: tl.constexpr):
    """(x0, y0, fx, fy, nan): the top-left tap, the fractions, and where the sum is NaN.

    A NaN or infinite coordinate has both its taps outside the image and NaN order-0 weights (its
    order-1 weights are +-1): torch's grid_sample multiplies them by the 0 that outside taps read, so the
    sample is NaN exactly where such a weight is used (``nan``), and adds nothing to a scatter."""
    ho = p // Wo
    wo = p % Wo
    base = grid_ptr + n * s_gn + ho * s_gh + wo * s_gw
    gx = tl.load(base, mask=pmask, other=0.0).to(COMPUTE)
    gy = tl.load(base + s_gk, mask=pmask, other=0.0).to(COMPUTE)
    ix = ((gx + 1) * W - 1) * 0.5
    iy = ((gy + 1) * H - 1) * 0.5
    nan = tl.zeros_like(pmask)
    if DX == 0:
        nan = nan | ~(tl.abs(ix) < float("inf"))
    if DY == 0:
        nan = nan | ~(tl.abs(iy) < float("inf"))
    # Clamp before the integer conversion (NaN to -2, not tl.maximum, whose NaN result is backend
    # dependent): far-away and non-finite coordinates sample zeros.
    ix = tl.where(ix > -2.0, tl.where(ix < W + 1.0, ix, W + 1.0), -2.0)
    iy = tl.where(iy > -2.0, tl.where(iy < H + 1.0, iy, H + 1.0), -2.0)
    x0f = tl.floor(ix)
    y0f = tl.floor(iy)
    return x0f.to(tl.int32), y0f.to(tl.int32), ix - x0f, iy - y0f, nan


@triton.jit
def _weight(frac, right: tl.constexpr, ORDER: tl.constexpr):
    if ORDER == 0:
        if right:
            w = frac
        else:
            w = 1 - frac
    else:
        if right:
            w = frac * 0 + 1
        else:
            w = frac * 0 - 1
    return w


@triton.jit(do_not_specialize=["C", "H", "W", "P", "Wo", "P_BLOCKS"])
def _gather_kernel(inp_ptr, grid_ptr, out_ptr, C, H, W, P, Wo,
                   s_in, s_ic, s_ih, s_iw, s_gn, s_gh, s_gw, s_gk, P_BLOCKS,
                   DX: tl.constexpr, DY: tl.constexpr, COMPUTE: tl.constexpr,
                   BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):
    pid_p = tl.program_id(0) % P_BLOCKS
    n = (tl.program_id(0) // P_BLOCKS).to(tl.int64)
    pid_c = tl.program_id(1)
    p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
    pmask = p < P
    c = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)
    cmask = c < C
    x0, y0, fx, fy, nan = _taps(grid_ptr, n, p, pmask, Wo, H, W, s_gn, s_gh, s_gw, s_gk, DX, DY, COMPUTE)
    acc = tl.zeros([BLOCK_P, BLOCK_C], dtype=COMPUTE)
    chan = inp_ptr + n * s_in + c.to(tl.int64)[None, :] * s_ic
    for dy in tl.static_range(2):
        wy = _weight(fy, dy == 1, DY)
        yy = y0 + dy
        for dx in tl.static_range(2):
            wx = _weight(fx, dx == 1, DX)
            xx = x0 + dx
            ok = pmask & (xx >= 0) & (xx < W) & (yy >= 0) & (yy < H)
            offs = yy.to(tl.int64) * s_ih + xx.to(tl.int64) * s_iw
            v = tl.load(chan + offs[:, None], mask=ok[:, None] & cmask[None, :], other=0.0)
            acc += (wy * wx)[:, None] * v.to(COMPUTE)
    acc = tl.where(nan[:, None], float("nan"), acc)
    out_offs = (n * C + c.to(tl.int64)[None, :]) * P + p[:, None]
    tl.store(out_ptr + out_offs, acc.to(out_ptr.dtype.element_ty), mask=pmask[:, None] & cmask[None, :])


@triton.jit(do_not_specialize=["C", "H", "W", "P", "Wo", "P_BLOCKS"])
def _scatter_kernel(grad_ptr, grid_ptr, acc_ptr, C, H, W, P, Wo,
                    s_dn, s_dc, s_dh, s_dw, s_gn, s_gh, s_gw, s_gk, P_BLOCKS,
                    DX: tl.constexpr, DY: tl.constexpr, COMPUTE: tl.constexpr,
                    BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):
    pid_p = tl.program_id(0) % P_BLOCKS
    n = (tl.program_id(0) // P_BLOCKS).to(tl.int64)
    pid_c = tl.program_id(1)
    p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
    pmask = p < P
    c = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)
    cmask = c < C
    x0, y0, fx, fy, _ = _taps(grid_ptr, n, p, pmask, Wo, H, W, s_gn, s_gh, s_gw, s_gk, DX, DY, COMPUTE)
    ho = p // Wo
    wo = p % Wo
    g_offs = n * s_dn + c.to(tl.int64)[None, :] * s_dc + (ho.to(tl.int64) * s_dh + wo.to(tl.int64) * s_dw)[:, None]
    g = tl.load(grad_ptr + g_offs, mask=pmask[:, None] & cmask[None, :], other=0.0).to(COMPUTE)
    chan = acc_ptr + (n * C + c.to(tl.int64)[None, :]) * H * W
    for dy in tl.static_range(2):
        wy = _weight(fy, dy == 1, DY)
        yy = y0 + dy
        for dx in tl.static_range(2):
            wx = _weight(fx, dx == 1, DX)
            xx = x0 + dx
            ok = pmask & (xx >= 0) & (xx < W) & (yy >= 0) & (yy < H)
            offs = yy.to(tl.int64) * W + xx.to(tl.int64)
            tl.atomic_add(chan + offs[:, None], (wy * wx)[:, None] * g, mask=ok[:, None] & cmask[None, :], sem="relaxed")


def _compute_dtype(dtype: torch.dtype):
    return (tl.float64, torch.float64) if dtype == torch.float64 else (tl.float32, torch.float32)


def blocks(c: int):
    """(BLOCK_P, BLOCK_C) for C channels."""
    block_c = min(triton.next_power_of_2(max(c, 1)), MAX_BLOCK_C)
    return TILE // block_c, block_c


def _launch_geometry(n: int, c: int, p: int):
    """(grid, P_BLOCKS, BLOCK_P, BLOCK_C)."""
    block_p, block_c = blocks(c)
    p_blocks = triton.cdiv(p, block_p)
    return (n * p_blocks, triton.cdiv(c, block_c)), p_blocks, block_p, block_c


def gather(input: torch.Tensor, grid: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """[N, C, H, W], [N, Ho, Wo, 2] -> contiguous [N, C, Ho, Wo] in input.dtype (see module doc)."""
    n, c, h, w = input.shape
    ho, wo = grid.shape[1], grid.shape[2]
    out = _alloc.empty((n, c, ho, wo), dtype=input.dtype, device=input.device)
    if out.numel() == 0:
        return out
    compute, _ = _compute_dtype(input.dtype)
    launch_grid, p_blocks, block_p, block_c = _launch_geometry(n, c, ho * wo)
    launch(_gather_kernel, launch_grid, input.device,
           input, grid, out, c, h, w, ho * wo, wo, *input.stride(), *grid.stride(), p_blocks,
           DX=dx, DY=dy, COMPUTE=compute, BLOCK_P=block_p, BLOCK_C=block_c)
    return out


def scatter(grad: torch.Tensor, grid: torch.Tensor, height: int, width: int, dx: int, dy: int) -> torch.Tensor:
    """Transpose of :func:`gather`: [N, C, Ho, Wo], grid -> contiguous [N, C, height, width]."""
    n, c, ho, wo = grad.shape
    compute, acc_dtype = _compute_dtype(grad.dtype)
    acc = torch.zeros((n, c, height, width), dtype=acc_dtype, device=grad.device)
    if grad.numel() > 0 and acc.numel() > 0:
        launch_grid, p_blocks, block_p, block_c = _launch_geometry(n, c, ho * wo)
        launch(_scatter_kernel, launch_grid, grad.device,
               grad, grid, acc, c, height, width, ho * wo, wo, *grad.stride(), *grid.stride(), p_blocks,
               DX=dx, DY=dy, COMPUTE=compute, BLOCK_P=block_p, BLOCK_C=block_c)
    return acc if acc.dtype == grad.dtype else acc.to(grad.dtype)
