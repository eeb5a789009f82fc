"""Triton upfirdn2d: a polyphase direct kernel for any up/down factors, filter sizes and strides.

  y[n, c, oy, ox] = gain * sum_{ky, kx} xu[oy*downy + ky - py0, ox*downx + kx - px0] * g[ky, kx]
(xu = x with up-1 zeros after every sample, g the filter, flipped unless flip_filter).

Output pixels are split into up_y*up_x phases: oy = phy + upy*qy (likewise x). Within one phase the
taps that land on real (non-inserted-zero) samples are the same for every pixel,
ky = ky0 + j*upy with ky0 = (py0 - phy*downy) mod upy, and the input row is iy = qy*downy + by + j
(by = (phy*downy - py0 + ky0) / upy, exact), so an up-2 4-tap filter costs 2x2 taps, not 4x4.
Each program computes one [BLOCK_C, TILE_H, TILE_W] tile of one phase of one sample: the filter taps
are scalars loaded once per program (not per pixel), row/column indices are 1-D vectors (no
per-element division), and the tap loops unroll at compile time (up/down factors and filter sizes are
constexprs, so the StyleGAN cases up2/down2 with 4 and 12 taps are specialised). Tiles run along W
for NCHW outputs (BLOCK_C = 1) and along C for channels_last, so loads and stores are coalesced in
both layouts. Loads outside the input read 0 (the padding). Accumulation is float32; gain is applied
once at the end. All programs are on grid axis 0 (sample, channel block, phase, tile row, tile
column), so no launch exceeds the 65535 limit of axes 1 and 2.

Loads are 16-byte vectors for channels_last tensors with C % 16 == 0 (along C, see `_warps`). The NCHW
tiles cannot have them: a tap's input columns ix = qx*DOWNX + bx + i are shifted by the runtime phase and
padding offset bx + i (another alignment per tap, and Triton cannot shift a register tile to reuse one
aligned load), and down-2 loads and up-2 stores are stride 2; nor can RGB (3 channels, 6-12 bytes a pixel).

Separable (1-D) filters are fused (weight f[ky]*f[kx]) when that visits few taps, otherwise run as a
horizontal then a vertical pass through an intermediate in x's dtype (as StyleGAN2-ADA's kernel).
"""
import torch
import triton
import triton.language as tl

from .. import _alloc
from ._launch import launch

MAX_FUSED_TAPS = 16


@triton.jit
def _offset(i, OFF64: tl.constexpr):
    """Index vectors within one sample in int32 (fewer registers) unless a sample spans 2**31 elements."""
    if OFF64:
        return i.to(tl.int64)
    return i


@triton.jit(do_not_specialize=["C", "H", "W", "OH", "OW", "C_BLOCKS", "TILES_Y", "TILES_X", "px0", "py0"])
def _upfirdn2d_kernel(x_ptr, f_ptr, y_ptr, C, H, W, OH, OW, C_BLOCKS, TILES_Y, TILES_X,
                      sxn, sxc, sxh, sxw, syn, syc, syh, syw, px0, py0, gain,
                      UPX: tl.constexpr, UPY: tl.constexpr, DOWNX: tl.constexpr, DOWNY: tl.constexpr,
                      FH: tl.constexpr, FW: tl.constexpr, FLIP: tl.constexpr, SEPARABLE: tl.constexpr,
                      BLOCK_C: tl.constexpr, TILE_H: tl.constexpr, TILE_W: tl.constexpr, OFF64: tl.constexpr,
                      MASK_C: tl.constexpr):
    pid = tl.program_id(0)
    tile_x = pid % TILES_X
    pid = pid // TILES_X
    tile_y = pid % TILES_Y
    pid = pid // TILES_Y
    phx = pid % UPX
    pid = pid // UPX
    phy = pid % UPY
    pid = pid // UPY
    pid_c = pid % C_BLOCKS
    n = (pid // C_BLOCKS).to(tl.int64)
    # Per-program (scalar) polyphase geometry.
    ky0 = ((py0 - phy * DOWNY) % UPY + UPY) % UPY
    kx0 = ((px0 - phx * DOWNX) % UPX + UPX) % UPX
    by = (phy * DOWNY - py0 + ky0) // UPY
    bx = (phx * DOWNX - px0 + kx0) // UPX
    qy = tile_y * TILE_H + tl.arange(0, TILE_H)
    qx = tile_x * TILE_W + tl.arange(0, TILE_W)
    c = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)
    oy = phy + UPY * qy
    ox = phx + UPX * qx
    if MASK_C:
        cmask = (c < C)[:, None, None]
    else:  # C % BLOCK_C == 0: a mask constant along C, so channel runs load as vectors
        cmask = tl.full((BLOCK_C, 1, 1), True, tl.int1)
    x_base = x_ptr + n * sxn + _offset(c, OFF64)[:, None, None] * sxc
    acc = tl.zeros((BLOCK_C, TILE_H, TILE_W), dtype=tl.float32)
    for j in tl.static_range((FH + UPY - 1) // UPY):
        ky = ky0 + j * UPY
        iy = qy * DOWNY + by + j
        vy = (iy >= 0) & (iy < H) & (oy < OH) & (ky < FH)
        if FLIP:
            fy = ky
        else:
            fy = FH - 1 - ky
        fy = tl.minimum(tl.maximum(fy, 0), FH - 1)  # ky >= FH is masked; keep the address valid
        if SEPARABLE:
            wy = tl.load(f_ptr + fy)
        row = x_base + (_offset(iy, OFF64) * sxh)[None, :, None]
        for i in tl.static_range((FW + UPX - 1) // UPX):
            kx = kx0 + i * UPX
            ix = qx * DOWNX + bx + i
            vx = (ix >= 0) & (ix < W) & (ox < OW) & (kx < FW)
            if FLIP:
                fx = kx
            else:
                fx = FW - 1 - kx
            fx = tl.minimum(tl.maximum(fx, 0), FW - 1)
            if SEPARABLE:
                w = wy * tl.load(f_ptr + fx)
            else:
                w = tl.load(f_ptr + fy * FW + fx)
            m = cmask & vy[None, :, None] & vx[None, None, :]
            xv = tl.load(row + (_offset(ix, OFF64) * sxw)[None, None, :], mask=m, other=0.0)
            acc += w * xv.to(tl.float32)
    out = acc * gain
    y_off = (_offset(c, OFF64)[:, None, None] * syc + (_offset(oy, OFF64) * syh)[None, :, None]
             + (_offset(ox, OFF64) * syw)[None, None, :])
    omask = cmask & (oy < OH)[None, :, None] & (ox < OW)[None, None, :]
    tl.store(y_ptr + n * syn + y_off, out.to(y_ptr.dtype.element_ty), mask=omask)


def tiling(out: torch.Tensor, upx: int, upy: int):
    """(BLOCK_C, TILE_H, TILE_W) for one phase of ``out``, 256 elements (no spills): along C (up to 16 channels,
    at least 16 pixels) when channels are the innermost dimension, else 256 pixels along W."""
    c, oh, ow = out.shape[1], out.shape[2], out.shape[3]
    qh, qw = triton.next_power_of_2(triton.cdiv(oh, upy)), triton.next_power_of_2(triton.cdiv(ow, upx))
    if out.stride(1) == 1 and c > 1:
        block_c = min(triton.next_power_of_2(c), 16)
        pixels, max_w = max(256 // block_c, 16), 16
    else:
        block_c, pixels, max_w = 1, 256, 128
    tile_w = min(qw, max_w, pixels)
    tile_h = min(qh, pixels // tile_w)
    return block_c, tile_h, tile_w


def _warps(x: torch.Tensor, out: torch.Tensor, block_c: int, tile_h: int, tile_w: int) -> int:
    """4, or for channels_last tiles of C % 16 == 0 channels (no channel mask: MASK_C) as few warps as give
    each thread a 16-byte vector of channels per tap: the loads and stores are then 16-byte vectors (the
    tile, and so the grid, stay the same)."""
    if x.stride(1) != 1 or out.stride(1) != 1 or out.shape[1] % 16:
        return 4
    return max(1, min(4, block_c * tile_h * tile_w * out.element_size() // (16 * 32)))


def _sample_span(t: torch.Tensor) -> int:
    """Elements between the first and last address of one sample, plus one."""
    return 1 + sum((size - 1) * stride for size, stride in zip(t.shape[1:], t.stride()[1:]))


def _pass(x, f, out, upx, upy, downx, downy, px0, py0, fh, fw, flip, separable, gain):
    if out.numel() == 0:
        return out
    n, c, h, w = x.shape
    oh, ow = out.shape[2], out.shape[3]
    block_c, tile_h, tile_w = tiling(out, upx, upy)
    c_blocks = triton.cdiv(c, block_c)
    tiles_y, tiles_x = triton.cdiv(triton.cdiv(oh, upy), tile_h), triton.cdiv(triton.cdiv(ow, upx), tile_w)
    grid = (n * c_blocks * upy * upx * tiles_y * tiles_x,)
    launch(_upfirdn2d_kernel, grid, x.device,
           x, f, out, c, h, w, oh, ow, c_blocks, tiles_y, tiles_x, *x.stride(), *out.stride(), px0, py0,
           float(gain), UPX=upx, UPY=upy, DOWNX=downx, DOWNY=downy, FH=fh, FW=fw, FLIP=flip,
           SEPARABLE=separable, BLOCK_C=block_c, TILE_H=tile_h, TILE_W=tile_w,
           OFF64=max(_sample_span(x), _sample_span(out)) >= 2**31, MASK_C=c % block_c != 0,
           num_warps=_warps(x, out, block_c, tile_h, tile_w))
    return out


def upfirdn2d(x: torch.Tensor, f: torch.Tensor, out: torch.Tensor, upx: int, upy: int, downx: int, downy: int,
              px0: int, px1: int, py0: int, py1: int, flip_filter: bool, gain: float) -> torch.Tensor:
    """Write upfirdn2d(x, f) into ``out`` (preallocated [N, C, OH, OW], any strides).

    f: contiguous float32, [fh, fw] or separable [k]; x: fp16/bf16/fp32 of any strides.
    """
    if f.ndim == 2:
        fh, fw = f.shape
        return _pass(x, f, out, upx, upy, downx, downy, px0, py0, fh, fw, flip_filter, False, gain)
    k = f.shape[0]
    if use_two_passes(k, upx, upy):
        # A 1-D filter read as [1, k] filters along x only, read as [k, 1] along y only.
        n, c, h, _ = x.shape
        mid = _alloc.empty((n, c, h, out.shape[3]), dtype=x.dtype, device=x.device,
                           memory_format=torch.channels_last if out.stride(1) == 1 and c > 1 else torch.contiguous_format)
        _pass(x, f, mid, upx, 1, downx, 1, px0, 0, 1, k, flip_filter, False, 1.0)
        return _pass(mid, f, out, 1, upy, 1, downy, 0, py0, k, 1, flip_filter, False, gain)
    return _pass(x, f, out, upx, upy, downx, downy, px0, py0, k, k, flip_filter, True, gain)


def use_two_passes(taps: int, upx: int, upy: int) -> bool:
    """Separable filters run as two 1-D passes when the fused 2-D pass would visit many taps."""
    return triton.cdiv(taps, upx) * triton.cdiv(taps, upy) > MAX_FUSED_TAPS
