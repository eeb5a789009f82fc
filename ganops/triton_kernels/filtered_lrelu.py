"""Triton filtered_lrelu: one fused pass per output tile (up-FIR, bias, lrelu, clamp, down-FIR).

Each program loops over (image, channel, output tile) work items. Per item it
  1. computes the intermediate tile m[i, j] = sum_{a,b} fu[a, b] * xu[i + a - py0, j + b - px0] for the
     [MY, MX] window of intermediate pixels the output tile reads, visiting only the taps that land on
     real samples of the zero-inserted input xu (xu = x + bias at multiples of ``up``, else 0);
  2. applies v = m * gain, leaky ReLU and clamp, and with SIGNS == 1 writes the bit-packed 2-bit code
     (bit 0: negative, bit 1: clamped) of each value, or with SIGNS == 2 reads that code at
     (i + sy, j + sx) instead and multiplies by the derivative gain * {1, slope, 0} (the backward;
     codes outside the sign plane read as "clamped", i.e. zero derivative);
  3. keeps the tile in a per-program float32 scratch slot (on-chip cache resident) and computes
     y[oy, ox] = sum_{a,b} fd[a, b] * v[oy*down + a, ox*down + b] for its TY x TX outputs.
Filters are float32 correlation filters (the caller flips them and folds up**2 into fu). Tiles start
at intermediate columns that are multiples of 4, so every program writes whole sign bytes (the
overlapping halos of neighbouring tiles write identical bytes).
"""

import torch
import triton
import triton.language as tl

from ._launch import launch, multiprocessor_count

SIGNS_NONE, SIGNS_WRITE, SIGNS_READ = 0, 1, 2


@triton.jit
def _up_fir_2d(x_base, fu_ptr, i, j, H, W, sxh, sxw, px0, py0, bias,
               UP: tl.constexpr, FUH: tl.constexpr, FUW: tl.constexpr, MY: tl.constexpr, MX: tl.constexpr):
    """m[i, j] = sum_{a,b} fu[a, b] * xu[i + a - py0, j + b - px0] over the real samples only."""
    uy = i - py0
    ux = j - px0
    ay0 = ((-uy) % UP + UP) % UP
    ax0 = ((-ux) % UP + UP) % UP
    acc = tl.zeros((MY, MX), dtype=tl.float32)
    for ka in range((FUH + UP - 1) // UP):
        a = ay0 + ka * UP
        iy = (uy + a) // UP
        vy = (a < FUH) & (iy >= 0) & (iy < H)
        for kb in range((FUW + UP - 1) // UP):
            b = ax0 + kb * UP
            ix = (ux + b) // UP
            m = vy[:, None] & ((b < FUW) & (ix >= 0) & (ix < W))[None, :]
            w = tl.load(fu_ptr + a[:, None] * FUW + b[None, :], mask=m, other=0.0)
            xv = tl.load(x_base + iy.to(tl.int64)[:, None] * sxh + ix.to(tl.int64)[None, :] * sxw, mask=m, other=0.0)
            acc += w * (xv.to(tl.float32) + bias)
    return acc


@triton.jit
def _up_fir_separable(x_base, fu_ptr, rows, i0, i, j, H, W, sxh, sxw, px0, py0, bias,
                      UP: tl.constexpr, FU: tl.constexpr, MY: tl.constexpr, MX: tl.constexpr, XR: tl.constexpr):
    """The same with a 1-D fu: an x pass over the XR input rows the window needs (into ``rows``),
    then a y pass."""
    iyb = (i0 - py0 - (UP - 1)) // UP  # a lower bound of the first input row, for either rounding of //
    xr = tl.arange(0, XR)
    iy = iyb + xr
    vy = (iy >= 0) & (iy < H)
    ux = j - px0
    ax0 = ((-ux) % UP + UP) % UP
    h = tl.zeros((XR, MX), dtype=tl.float32)
    for kb in range((FU + UP - 1) // UP):
        b = ax0 + kb * UP
        ix = (ux + b) // UP
        vx = (b < FU) & (ix >= 0) & (ix < W)
        w = tl.load(fu_ptr + b, mask=vx, other=0.0)
        m = vy[:, None] & vx[None, :]
        xv = tl.load(x_base + iy.to(tl.int64)[:, None] * sxh + ix.to(tl.int64)[None, :] * sxw, mask=m, other=0.0)
        h += w[None, :] * tl.where(m, xv.to(tl.float32) + bias, 0.0)
    tl.store(rows + xr[:, None] * MX + tl.arange(0, MX)[None, :], h)
    tl.debug_barrier()
    uy = i - py0
    ay0 = ((-uy) % UP + UP) % UP
    acc = tl.zeros((MY, MX), dtype=tl.float32)
    for ka in range((FU + UP - 1) // UP):
        a = ay0 + ka * UP
        r = (uy + a) // UP - iyb
        va = a < FU
        w = tl.load(fu_ptr + a, mask=va, other=0.0)
        acc += w[:, None] * tl.load(rows + r[:, None] * MX + tl.arange(0, MX)[None, :], mask=va[:, None], other=0.0)
    return acc


@triton.jit
def _filtered_lrelu_kernel(x_ptr, fu_ptr, fd_ptr, b_ptr, s_ptr, y_ptr, scratch_ptr,
                           C, H, W, OH, OW, SH, SW, SWB,
                           sxn, sxc, sxh, sxw, syn, syc, syh, syw,
                           px0, py0, sgx, sgy, tiles_x, tiles_per_plane, total,
                           gain, slope, clamp,
                           UP: tl.constexpr, DOWN: tl.constexpr, FUH: tl.constexpr, FUW: tl.constexpr,
                           FDH: tl.constexpr, FDW: tl.constexpr, SEP_U: tl.constexpr, SEP_D: tl.constexpr,
                           MY: tl.constexpr, MX: tl.constexpr, XR: tl.constexpr,
                           TY: tl.constexpr, TX: tl.constexpr, TYP: tl.constexpr, TXP: tl.constexpr,
                           HAS_BIAS: tl.constexpr, SIGNS: tl.constexpr, CLAMP: tl.constexpr):
    pid = tl.program_id(0)
    tile_v = scratch_ptr + pid.to(tl.int64) * (MY * MX + XR * MX + MY * TXP)
    rows = tile_v + MY * MX          # SEP_U: the x pass of the up-FIR
    cols = rows + XR * MX            # SEP_D: the x pass of the down-FIR
    r = tl.arange(0, MY)
    q = tl.arange(0, MX)
    ty = tl.arange(0, TYP)
    tx = tl.arange(0, TXP)
    for t in range(pid, total, tl.num_programs(0)):
        plane = t // tiles_per_plane
        tile = t % tiles_per_plane
        n = (plane // C).to(tl.int64)
        c = plane % C
        oy0 = (tile // tiles_x) * TY
        ox0 = (tile % tiles_x) * TX
        i = oy0 * DOWN + r
        j = ox0 * DOWN + q
        x_base = x_ptr + n * sxn + c.to(tl.int64) * sxc
        bias = 0.0
        if HAS_BIAS:
            bias = tl.load(b_ptr + c).to(tl.float32)
        # 1. up-FIR
        if SEP_U:
            acc = _up_fir_separable(x_base, fu_ptr, rows, oy0 * DOWN, i, j, H, W, sxh, sxw, px0, py0, bias,
                                    UP, FUH, MY, MX, XR)
        else:
            acc = _up_fir_2d(x_base, fu_ptr, i, j, H, W, sxh, sxw, px0, py0, bias, UP, FUH, FUW, MY, MX)
        # 2. gain, leaky ReLU, clamp, sign codes
        v = acc * gain
        if SIGNS == 2:
            si = i + sgy
            sj = j + sgx
            ok = ((si >= 0) & (si < SH))[:, None] & ((sj >= 0) & (sj < SW))[None, :]
            si = tl.where(si >= 0, si, 0)
            sj = tl.where(sj >= 0, sj, 0)
            byte = tl.load(s_ptr + plane.to(tl.int64) * SH * SWB + si[:, None] * SWB + (sj // 4)[None, :],
                           mask=ok, other=2).to(tl.int32)
            code = (byte >> ((sj % 4) * 2)[None, :]) & 3
            v = tl.where(code == 0, v, tl.where(code == 1, v * slope, 0.0))
        else:
            neg = v < 0
            v = tl.where(neg, v * slope, v)
            code = neg.to(tl.int32)
            if CLAMP:
                clamped = tl.abs(v) > clamp
                v = tl.where(clamped, tl.where(v < 0, -clamp, clamp), v)
                code = code | (clamped.to(tl.int32) << 1)
            if SIGNS == 1:
                inside = (i < SH)[:, None] & (j < SW)[None, :]
                code = tl.where(inside, code, 0) << ((q % 4) * 2)[None, :]
                packed = tl.sum(tl.reshape(code, (MY, MX // 4, 4)), axis=2)
                col = (ox0 * DOWN) // 4 + tl.arange(0, MX // 4)
                smask = (i < SH)[:, None] & (col < SWB)[None, :]
                tl.store(s_ptr + plane.to(tl.int64) * SH * SWB + i[:, None] * SWB + col[None, :],
                         packed.to(tl.uint8), mask=smask)
        tl.store(tile_v + r[:, None] * MX + q[None, :], v)
        tl.debug_barrier()
        # 3. down-FIR of the tile
        oy = oy0 + ty
        ox = ox0 + tx
        om = ((ty < TY) & (oy < OH))[:, None] & ((tx < TX) & (ox < OW))[None, :]
        out = tl.zeros((TYP, TXP), dtype=tl.float32)
        if SEP_D:
            h = tl.zeros((MY, TXP), dtype=tl.float32)
            hm = (tx < TX)[None, :] & (r < MY)[:, None]
            for b in range(FDW):
                h += tl.load(fd_ptr + b) * tl.load(tile_v + r[:, None] * MX + (tx * DOWN + b)[None, :], mask=hm,
                                                   other=0.0)
            tl.store(cols + r[:, None] * TXP + tx[None, :], h)
            tl.debug_barrier()
            for a in range(FDH):
                out += tl.load(fd_ptr + a) * tl.load(cols + (ty * DOWN + a)[:, None] * TXP + tx[None, :], mask=om,
                                                     other=0.0)
        else:
            for a in range(FDH):
                row = tile_v + (ty * DOWN + a)[:, None] * MX
                for b in range(FDW):
                    out += tl.load(fd_ptr + a * FDW + b) * tl.load(row + (tx * DOWN + b)[None, :], mask=om, other=0.0)
        y_off = n * syn + c.to(tl.int64) * syc + oy.to(tl.int64)[:, None] * syh + ox.to(tl.int64)[None, :] * syw
        tl.store(y_ptr + y_off, out.to(y_ptr.dtype.element_ty), mask=om)
        tl.debug_barrier()


def _window(taps: int, down: int, out: int, step: int):
    """(window, outputs) along one axis: 64 intermediate pixels (less halo overhead per output) unless
    32 already cover the whole output axis; outputs = (window - taps) // down + 1, rounded down to a
    multiple of ``step``."""
    for window in (32, 64):
        tile = (window - taps) // down + 1
        tile -= tile % step
        if tile >= 1 and (window > 32 or tile >= out):
            return window, tile
    raise ValueError(f"filtered_lrelu: a {taps}-tap down filter with down={down} does not fit the Triton kernel's "
                     f"64-pixel tile; use impl='ref'")


def tile_shape(fd_h: int, fd_w: int, down: int, oh: int, ow: int):
    """(MY, MX, TY, TX): the intermediate window and the output tile it serves. TX*down is a multiple
    of 4 so that tiles start on whole sign bytes."""
    my, ty = _window(fd_h, down, oh, 1)
    mx, tx = _window(fd_w, down, ow, max(4 // down, 1))
    return my, mx, ty, tx


def _warps(my: int, mx: int, dtype: torch.dtype, separable_down: bool, up: int) -> int:
    """Warps per program, from the sm_90 and sm_80 resource reports: 8 for 64x64 windows, except fp32
    with a separable down filter and up <= 2 (8 B spill at 8 warps on sm_90, none at 4; with up = 4,
    4 warps spilled 32 B on sm_80 and 8 do not spill on either); 4 for smaller windows. (fp32 with a
    2-D down filter spills at 4 warps and not at 8.)"""
    if my * mx < 4096 or (dtype == torch.float32 and separable_down and up <= 2):
        return 4
    return 8


def _programs(total: int, device: torch.device) -> int:
    if device.type != "cuda":
        return total
    return min(total, multiprocessor_count(device) * 8)


def filtered_lrelu(x, fu, fd, b, signs, sign_w, y, mode, up, down, px0, py0, sx, sy, gain, slope, clamp):
    """Write the fused pass into ``y`` (preallocated [N, C, OH, OW], any strides); returns y.

    fu, fd: contiguous float32 correlation filters, 2-D or 1-D (separable: applied once per axis; fu
    carries the up**2 gain); b: None or [C].
    mode SIGNS_WRITE writes the codes of the intermediate plane [SH, sign_w] into ``signs``
    ([N, C, SH, ceil(sign_w / 4)] uint8), SIGNS_READ reads them at offset (sx, sy), SIGNS_NONE
    ignores ``signs``. clamp < 0 means no clamp. Runs on x's device (device guard)."""
    n, c, h, w = x.shape
    oh, ow = y.shape[2], y.shape[3]
    fuh, fuw = fu.shape if fu.ndim == 2 else (fu.shape[0], fu.shape[0])
    fdh, fdw = fd.shape if fd.ndim == 2 else (fd.shape[0], fd.shape[0])
    my, mx, ty, tx = tile_shape(fdh, fdw, down, oh, ow)
    xr = triton.next_power_of_2((my + fuh - 2) // up + 3) if fu.ndim == 1 else 1
    tiles_x = triton.cdiv(ow, tx)
    tiles_per_plane = tiles_x * triton.cdiv(oh, ty)
    total = n * c * tiles_per_plane
    programs = _programs(total, x.device)
    scratch = torch.empty(programs * (my * mx + xr * mx + my * triton.next_power_of_2(tx)), dtype=torch.float32,
                          device=x.device)
    sh, swb = (signs.shape[2], signs.shape[3]) if mode != SIGNS_NONE else (0, 0)
    launch(
        _filtered_lrelu_kernel, (programs,), x.device,
        x, fu, fd, x if b is None else b, signs if mode != SIGNS_NONE else y, y, scratch,
        c, h, w, oh, ow, sh, sign_w, swb, *x.stride(), *y.stride(), px0, py0, sx, sy, tiles_x, tiles_per_plane,
        total, float(gain), float(slope), float(clamp),
        UP=up, DOWN=down, FUH=fuh, FUW=fuw, FDH=fdh, FDW=fdw, SEP_U=fu.ndim == 1, SEP_D=fd.ndim == 1,
        MY=my, MX=mx, XR=xr, TY=ty, TX=tx, TYP=triton.next_power_of_2(ty), TXP=triton.next_power_of_2(tx),
        HAS_BIAS=b is not None, SIGNS=mode, CLAMP=clamp >= 0, num_warps=_warps(my, mx, x.dtype, fd.ndim == 1, up))
    return y
