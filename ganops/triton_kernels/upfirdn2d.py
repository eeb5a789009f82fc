"""Triton upfirdn2d: a polyphase direct kernel for any up/down factors, filter sizes and strides.

Each program computes a [BLOCK_C channels, BLOCK_P output pixels] tile of one image (grid axis 0:
image and channel block, axis 1: pixel block). For output
pixel (oy, ox) only the taps that land on a real (non-inserted-zero) sample are visited:
ky = ky0 + j*upy with ky0 = (py0 - oy*downy) mod upy, so an up-2 4-tap filter costs 2x2 taps, not 4x4.
Input row iy = (oy*downy + ky - py0) / upy (exact). Loads outside the input read 0 (the padding).
Accumulation is float32; gain is applied once at the end. Tiles run along W for NCHW inputs and
along C for channels_last, so loads and stores are coalesced in both layouts.

Separable (1-D) filters are fused (weight f[ky]*f[kx]) when that visits few taps, otherwise run as a
horizontal then a vertical pass through an intermediate in x's dtype (as StyleGAN2-ADA's kernel).
"""
import torch
import triton
import triton.language as tl

from .. import _alloc

MAX_FUSED_TAPS = 16


@triton.jit
def _upfirdn2d_kernel(x_ptr, f_ptr, y_ptr, C, H, W, OH, OW,
                      sxn, sxc, sxh, sxw, syn, syc, syh, syw, px0, py0, gain,
                      UPX: tl.constexpr, UPY: tl.constexpr, DOWNX: tl.constexpr, DOWNY: tl.constexpr,
                      FH: tl.constexpr, FW: tl.constexpr, FLIP: tl.constexpr, SEPARABLE: tl.constexpr,
                      BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr):
    c_blocks = tl.cdiv(C, BLOCK_C)
    pid_c = tl.program_id(0) % c_blocks
    n = (tl.program_id(0) // c_blocks).to(tl.int64)
    pid_p = tl.program_id(1)
    p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
    c = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)
    pmask = p < OH * OW
    cmask = c < C
    oy = p // OW
    ox = p % OW
    ty = oy * DOWNY - py0  # upsampled coordinate under tap 0
    tx = ox * DOWNX - px0
    ky0 = ((-ty) % UPY + UPY) % UPY  # first tap that hits a real sample
    kx0 = ((-tx) % UPX + UPX) % UPX
    x_base = x_ptr + n * sxn + c.to(tl.int64)[:, None] * sxc
    acc = tl.zeros((BLOCK_C, BLOCK_P), dtype=tl.float32)
    for j in range((FH + UPY - 1) // UPY):
        ky = ky0 + j * UPY
        iy = (ty + ky) // UPY
        vy = (ky < FH) & (iy >= 0) & (iy < H) & pmask
        if FLIP:
            fy = ky
        else:
            fy = FH - 1 - ky
        for i in range((FW + UPX - 1) // UPX):
            kx = kx0 + i * UPX
            ix = (tx + kx) // UPX
            m = vy & (kx < FW) & (ix >= 0) & (ix < W)
            if FLIP:
                fx = kx
            else:
                fx = FW - 1 - kx
            if SEPARABLE:
                w = tl.load(f_ptr + fy, mask=m, other=0.0) * tl.load(f_ptr + fx, mask=m, other=0.0)
            else:
                w = tl.load(f_ptr + fy * FW + fx, mask=m, other=0.0)
            off = iy.to(tl.int64) * sxh + ix.to(tl.int64) * sxw
            xv = tl.load(x_base + off[None, :], mask=cmask[:, None] & m[None, :], other=0.0)
            acc += w[None, :] * xv.to(tl.float32)
    out = acc * gain
    y_off = n * syn + c.to(tl.int64)[:, None] * syc + (oy.to(tl.int64) * syh + ox.to(tl.int64) * syw)[None, :]
    tl.store(y_ptr + y_off, out.to(y_ptr.dtype.element_ty), mask=cmask[:, None] & pmask[None, :])


def _blocks(x: torch.Tensor):
    """(BLOCK_C, BLOCK_P): along C when channels are the innermost dimension, else along pixels."""
    if x.stride(1) == 1 and x.shape[1] > 1:
        block_c = min(triton.next_power_of_2(x.shape[1]), 64)
        return block_c, max(1024 // block_c, 16)
    return 1, 512


def _pass(x, f, out, upx, upy, downx, downy, px0, py0, fh, fw, flip, separable, gain):
    if out.numel() == 0:
        return out
    n, c, h, w = x.shape
    oh, ow = out.shape[2], out.shape[3]
    block_c, block_p = _blocks(out)
    grid = (n * triton.cdiv(c, block_c), triton.cdiv(oh * ow, block_p))
    _upfirdn2d_kernel[grid](
        x, f, out, c, h, w, oh, ow, *x.stride(), *out.stride(), px0, py0, float(gain),
        UPX=upx, UPY=upy, DOWNX=downx, DOWNY=downy, FH=fh, FW=fw, FLIP=flip, SEPARABLE=separable,
        BLOCK_C=block_c, BLOCK_P=block_p, num_warps=4)
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
