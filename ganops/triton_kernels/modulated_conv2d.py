"""Triton kernels of the modulated convolution.

Geometry shared by both kernels ("direct" or "transposed", factor R, padding (PY, PX)):
  direct:      out[oy, ox] = sum_{c,ky,kx} w[o, c, ky, kx] * in[c, oy*R + ky - PY, ox*R + kx - PX]
  transposed:  out[p] = sum over (q, k) with q*R - P + k = p of w[o, c, k] * in[c, q]
               (torch's conv_transpose2d with weight w.transpose(0, 1)).
The adjoint of one geometry is the other with the same R and P and the weight transposed (0, 1).

``modconv_fwd``: implicit GEMM (M = output pixels of one sample, N = output channels, K = input
channels per tap) on tensor cores. The weight is packed once per call as [KH*KW, C, O] in the compute
dtype (``pack_weight``), so a [BLOCK_K, BLOCK_N] weight tile is a row-major block read with 16-byte
vectors (when O % 8 == 0 for 16-bit, O % 4 == 0 for float32). Prologue: in[n, c] * s_in[n, c] while
loading (float32 product rounded to the compute dtype; the style stays out of the packed weight so the
weight is read once for all N samples rather than N per-sample copies). Epilogue: * s_out[n, o]
(demodulation), + noise[n, oy, ox], + bias[o], linear or leaky ReLU(alpha), * gain, clamp; y written
once in its dtype. Transposed geometry runs one output phase (oy % R, ox % R) per program so only the
taps that hit that phase are computed.

``modconv_wgrad``: a GEMM with M = CA, N = CB*KH*KW (column j = (b, tap), dW's own memory order) and
K = the pixels q of every sample, split over programs along K (sample ranges, or parts of one sample's
pixels when the batch is small). Per sample n (or part of it), for all taps at once,
  T_n[a, (b, k)] = sum_q A[n, a, q] * B[n, b, q*R + k - P]
(A = dz and B = in for the direct geometry, A = in and B = dz for the transposed one; the B tile is an
im2col gather) is reduced in registers three ways: dW[a, b, k] = sum_n sa[n,a] sb[n,b] T_n,
dsa[n, a] = sum_{b,k} W sb T_n, dsb[n, b] = sum_{a,k} W sa T_n (partial sums per tile and part,
summed by the launcher, so the result does not depend on scheduling).

Dots: float16/bfloat16 on tensor cores with float32 accumulation; float32 in TF32 only when the
caller allows it (``allow_tf32``, as cuDNN's convolutions do) and else exact IEEE float32 dots.
Under the CPU interpreter bfloat16 operands are rounded to bfloat16 and multiplied in float32
(the interpreter multiplies raw bfloat16 bits as integers, triton 3.x).

Integer sizes that only bound loops and masks, and the row strides, are not specialised
(``do_not_specialize``), so one compiled variant serves every resolution of a network; channel counts
and the other strides keep Triton's divisibility-by-16 specialisation, which the 16-byte vector loads
need (the launcher tells the forward when the pixel offsets are multiples of 16: X_ROWS16, Y_ROWS16).

Where the loads cannot be 16-byte vectors: the NCHW input tile of the forward, whose contiguous axis is
the pixel axis M, flattened over (oy, ox) with a runtime width, shifted by kx - PX per tap (2 of 3 taps
off the 16-byte grid) and masked at the runtime image border; and the im2col B tile of ``modconv_wgrad``
([pixels, (channel, tap)]: along j the taps wrap every KW elements, along q the same shifted, flattened
pixels). channels_last inputs read C contiguously in both kernels.
"""
import triton
import triton.language as tl

from .. import _alloc
from ._launch import launch, multiprocessor_count

ACT_LINEAR, ACT_LRELU = 0, 1
DOT_IEEE, DOT_TF32, DOT_TENSOR_CORE, DOT_EMULATED_BF16 = 0, 1, 2, 3


@triton.jit
def _dot(a, b, acc, DOT: tl.constexpr):
    """acc + a @ b in float32 (a, b in the compute dtype; see DOT_* and the module docstring)."""
    if DOT == 0:
        out = tl.dot(a, b, acc, input_precision="ieee")
    elif DOT == 1:
        out = tl.dot(a, b, acc, input_precision="tf32")
    elif DOT == 3:
        out = tl.dot(a.to(tl.float32), b.to(tl.float32), acc, input_precision="ieee")
    else:
        out = tl.dot(a, b, acc)
    return out


@triton.jit(do_not_specialize=["H", "W", "OH", "OW", "QH", "QW", "TILES_PER_SAMPLE", "sxh", "snn", "snh", "snw", "syh"])
def _modconv_fwd_kernel(
    x_ptr, w_ptr, sin_ptr, sout_ptr, noise_ptr, bias_ptr, y_ptr,
    C, H, W, O, OH, OW, QH, QW, TILES_PER_SAMPLE,
    sxn, sxc, sxh, sxw,
    snn, snh, snw,
    syn, syc, syh, syw,
    alpha, gain, clamp,
    KH: tl.constexpr, KW: tl.constexpr, R: tl.constexpr, PY: tl.constexpr, PX: tl.constexpr,
    TRANSPOSED: tl.constexpr, HAS_NOISE: tl.constexpr, HAS_BIAS: tl.constexpr, ACT: tl.constexpr,
    HAS_CLAMP: tl.constexpr, DOT: tl.constexpr, X_ROWS16: tl.constexpr, Y_ROWS16: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    phase = tl.program_id(2)
    n = pid_m // TILES_PER_SAMPLE
    offs_m = (pid_m % TILES_PER_SAMPLE) * BLOCK_M + tl.arange(0, BLOCK_M)
    qy = offs_m // QW
    qx = offs_m % QW
    if TRANSPOSED:
        py = phase // R
        px = phase % R
        oy = qy * R + py
        ox = qx * R + px
    else:
        oy = qy
        ox = qx
    m_mask = (offs_m < QH * QW) & (oy < OH) & (ox < OW)
    offs_o = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    o_mask = offs_o < O
    offs_k = tl.arange(0, BLOCK_K)
    x_n = x_ptr + n.to(tl.int64) * sxn
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for ky in tl.static_range(KH):
        for kx in tl.static_range(KW):
            if TRANSPOSED:
                ty = py + PY - ky
                tx = px + PX - kx
                hit = ((ty % R) == 0) & ((tx % R) == 0)
                iy = qy + ty // R
                ix = qx + tx // R
            else:
                hit = True
                iy = oy * R + ky - PY
                ix = ox * R + kx - PX
            if hit:
                pix_mask = m_mask & (iy >= 0) & (iy < H) & (ix >= 0) & (ix < W)
                pix_off = iy * sxh + ix * sxw
                if X_ROWS16:
                    pix_off = tl.multiple_of(pix_off, 16)
                w_tap = w_ptr + (ky * KW + kx) * C * O
                for c0 in range(0, C, BLOCK_K):
                    offs_c = c0 + offs_k
                    c_mask = offs_c < C
                    a = tl.load(x_n + pix_off[:, None] + offs_c[None, :] * sxc,
                                mask=pix_mask[:, None] & c_mask[None, :], other=0.0)
                    style = tl.load(sin_ptr + n * C + offs_c, mask=c_mask, other=0.0)
                    a = (a.to(tl.float32) * style[None, :]).to(w_ptr.dtype.element_ty)
                    b = tl.load(w_tap + offs_c[:, None] * O + offs_o[None, :],
                                mask=c_mask[:, None] & o_mask[None, :], other=0.0)
                    acc = _dot(a, b, acc, DOT)
    demod = tl.load(sout_ptr + n * O + offs_o, mask=o_mask, other=0.0)
    acc = acc * demod[None, :]
    if HAS_NOISE:
        noise = tl.load(noise_ptr + n * snn + oy * snh + ox * snw, mask=m_mask, other=0.0).to(tl.float32)
        acc = acc + noise[:, None]
    if HAS_BIAS:
        bias = tl.load(bias_ptr + offs_o, mask=o_mask, other=0.0).to(tl.float32)
        acc = acc + bias[None, :]
    if ACT == 1:
        acc = tl.where(acc >= 0, acc, acc * alpha)
    acc = acc * gain
    if HAS_CLAMP:
        acc = tl.minimum(tl.maximum(acc, -clamp), clamp)
    y_pix = oy * syh + ox * syw
    if Y_ROWS16:
        y_pix = tl.multiple_of(y_pix, 16)
    y_off = n.to(tl.int64) * syn + offs_o[None, :] * syc + y_pix[:, None]
    tl.store(y_ptr + y_off, acc.to(y_ptr.dtype.element_ty), mask=m_mask[:, None] & o_mask[None, :])


@triton.jit(do_not_specialize=["N", "QH", "QW", "BH", "BW", "PARTS", "Q_PER_PART", "UNITS_PER_PROGRAM", "TILES_J",
                               "s_ah", "s_bh"])
def _modconv_wgrad_kernel(
    a_ptr, b_ptr, w_ptr, sa_ptr, sb_ptr, dw_ptr, dsa_ptr, dsb_ptr,
    N, CA, CB, QH, QW, BH, BW, PARTS, Q_PER_PART, UNITS_PER_PROGRAM, TILES_J,
    s_an, s_ac, s_ah, s_aw,
    s_bn, s_bc, s_bh, s_bw,
    sw_a, sw_b, sw_h, sw_w,
    KH: tl.constexpr, KW: tl.constexpr, R: tl.constexpr, PY: tl.constexpr, PX: tl.constexpr,
    A_FLAT: tl.constexpr, DOT: tl.constexpr,
    BLOCK_A: tl.constexpr, BLOCK_J: tl.constexpr, BLOCK_Q: tl.constexpr,
):
    pid_a = tl.program_id(0) // TILES_J
    pid_j = tl.program_id(0) % TILES_J
    split = tl.program_id(1)
    taps: tl.constexpr = KH * KW
    cols = CB * taps
    offs_a = pid_a * BLOCK_A + tl.arange(0, BLOCK_A)
    offs_j = pid_j * BLOCK_J + tl.arange(0, BLOCK_J)
    a_mask = offs_a < CA
    j_mask = offs_j < cols
    aj_mask = a_mask[:, None] & j_mask[None, :]
    cb = offs_j // taps
    ky = (offs_j % taps) // KW
    kx = offs_j % KW
    wt = tl.load(w_ptr + offs_a[:, None] * sw_a + (cb * sw_b + ky * sw_h + kx * sw_w)[None, :],
                 mask=aj_mask, other=0.0).to(tl.float32)
    dw = tl.zeros((BLOCK_A, BLOCK_J), dtype=tl.float32)
    offs_q0 = tl.arange(0, BLOCK_Q)
    q_count = QH * QW
    unit_start = split * UNITS_PER_PROGRAM
    unit_stop = tl.minimum(unit_start + UNITS_PER_PROGRAM, N * PARTS)
    for unit in range(unit_start, unit_stop):
        n = unit // PARTS
        part = unit % PARTS
        q_start = part * Q_PER_PART
        q_stop = tl.minimum(q_start + Q_PER_PART, q_count)
        a_n = a_ptr + n.to(tl.int64) * s_an
        b_n = b_ptr + n.to(tl.int64) * s_bn
        t = tl.zeros((BLOCK_A, BLOCK_J), dtype=tl.float32)
        for q0 in range(q_start, q_stop, BLOCK_Q):
            offs_q = q0 + offs_q0
            q_mask = offs_q < q_stop
            qy = offs_q // QW
            qx = offs_q % QW
            if A_FLAT:
                a_pix = offs_q * s_aw
            else:
                a_pix = qy * s_ah + qx * s_aw
            a = tl.load(a_n + offs_a[:, None] * s_ac + a_pix[None, :],
                        mask=a_mask[:, None] & q_mask[None, :], other=0.0)
            by = qy[:, None] * R + ky[None, :] - PY
            bx = qx[:, None] * R + kx[None, :] - PX
            b_inside = q_mask[:, None] & j_mask[None, :] & (by >= 0) & (by < BH) & (bx >= 0) & (bx < BW)
            b = tl.load(b_n + cb[None, :] * s_bc + by * s_bh + bx * s_bw, mask=b_inside, other=0.0)
            t = _dot(a, b, t, DOT)
        sa = tl.load(sa_ptr + n * CA + offs_a, mask=a_mask, other=0.0)
        sb = tl.load(sb_ptr + n * CB + cb, mask=j_mask, other=0.0)
        dw += t * sa[:, None] * sb[None, :]
        tw = t * wt
        row = part * N + n
        tl.store(dsa_ptr + (pid_j * PARTS * N + row) * CA + offs_a, tl.sum(tw * sb[None, :], axis=1), mask=a_mask)
        tl.store(dsb_ptr + (pid_a * PARTS * N + row) * cols + offs_j, tl.sum(tw * sa[:, None], axis=0), mask=j_mask)
    dw_off = (split * CA + offs_a[:, None]) * cols + offs_j[None, :]
    tl.store(dw_ptr + dw_off, dw, mask=aj_mask)


def dot_mode(x, allow_tf32: bool) -> int:
    """The DOT_* constant for inputs like x: TF32 only for float32 CUDA tensors when allowed."""
    import torch

    if x.dtype == torch.float32:
        return DOT_TF32 if (allow_tf32 and x.is_cuda) else DOT_IEEE
    if x.dtype == torch.bfloat16 and not x.is_cuda:
        return DOT_EMULATED_BF16
    return DOT_TENSOR_CORE


def pack_weight(w, dtype):
    """w [O, C, KH, KW] (any strides) -> [KH, KW, C, O] contiguous in dtype (the forward's B operand)."""
    return w.permute(2, 3, 1, 0).to(dtype).contiguous()


def _fwd_tiles(x, c: int, o: int, strided: bool, transposed: bool, dot: int):
    """(BLOCK_M, BLOCK_N, BLOCK_K, num_warps, num_stages) of the forward; ``strided``: the direct
    geometry with R > 1 (the input gradient of a 2x-up layer); ``transposed``: the 2x-up geometry. On the GPU: tiles that compile without
    register spills on sm_80 and sm_90 for every variant StyleGAN launches (checked with the real
    compilers ahead of time: float32 64x64x32 tiles spilled with 4 warps; exact float32 dots, which
    run on FMA units, spilled with 8 warps, where ptxas held the transposed geometry to 128
    registers; the strided 16-bit 128x64 tile spilled with 8 warps on sm_80); BLOCK_N / BLOCK_K
    shrink to the channel counts (ToRGB: O = 3). The CPU interpreter pays per program and per op, not per element: few large
    programs."""
    import torch

    if not x.is_cuda:
        return 64, 32, 32, 4, 1
    block_n = 16 if o <= 16 else (32 if o <= 32 else 64)
    block_k = 16 if c <= 16 else 32
    if dot == DOT_IEEE:   # 64-row tiles spilled: transposed 8-48 B on sm_90, direct 8-36 B on sm_80
        return 32, block_n, 16, 4, 2
    if x.dtype == torch.float32:
        return 64, block_n, block_k, 8, 2
    if strided:
        return 64, block_n, block_k, 4, 2
    return 128, block_n, block_k, 8, 2


def _rows16(t) -> bool:
    """Whether every pixel offset h*stride(2) + w*stride(3) of t is a multiple of 16 elements (the
    row strides are not specialised, so the kernel is told; channels_last with C % 16 == 0)."""
    return t.stride(2) % 16 == 0 and t.stride(3) % 16 == 0


def _noise_strides(noise, n, oh, ow):
    if noise is None:
        return 0, 0, 0
    e = noise.expand(n, 1, oh, ow)
    return e.stride(0), e.stride(2), e.stride(3)


def modconv_fwd(x, w, s_in, s_out, noise, bias, transposed: bool, r: int, py: int, px: int, oh: int, ow: int,
                act: int, alpha: float, gain: float, clamp: float, allow_tf32: bool):
    """y [N, O, oh, ow] in x.dtype and x's memory format; see the module docstring.

    w: [O, C, KH, KW] (any strides, any float dtype; packed here); s_in [N, C], s_out [N, O] float32
    contiguous; noise None or broadcastable to [N, 1, oh, ow]; bias None or [O]; clamp < 0 means none.
    """
    import torch

    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    y = _alloc.empty((n, o, oh, ow), dtype=x.dtype, device=x.device,
                     memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    w_packed = pack_weight(w, x.dtype)
    qh, qw = (triton.cdiv(oh, r), triton.cdiv(ow, r)) if transposed else (oh, ow)
    dot = dot_mode(x, allow_tf32)
    bm, bn, bk, warps, stages = _fwd_tiles(x, c, o, r > 1 and not transposed, transposed, dot)
    tiles = triton.cdiv(qh * qw, bm)
    grid = (n * tiles, triton.cdiv(o, bn), r * r if transposed else 1)
    launch(
        _modconv_fwd_kernel, grid, x.device,
        x, w_packed, s_in, s_out, noise if noise is not None else y, bias if bias is not None else y, y,
        c, h, wd, o, oh, ow, qh, qw, tiles,
        *x.stride(), *_noise_strides(noise, n, oh, ow), *y.stride(),
        float(alpha), float(gain), float(max(clamp, 0.0)),
        KH=kh, KW=kw, R=r, PY=py, PX=px, TRANSPOSED=bool(transposed), HAS_NOISE=noise is not None,
        HAS_BIAS=bias is not None, ACT=act, HAS_CLAMP=clamp >= 0, DOT=dot,
        X_ROWS16=_rows16(x), Y_ROWS16=_rows16(y),
        BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, num_warps=warps, num_stages=stages,
    )
    return y


def _wgrad_split(n: int, q_count: int, tiles: int, block_q: int, target: int):
    """(parts per sample, pixels per part, units per program, programs along K) so that about
    ``target`` programs run in all (``tiles`` per K-slice): a unit is one part of one sample; whole
    samples (one part each) are shared out evenly when the batch has enough of them, else each
    sample's pixels are cut into parts of at least 4*BLOCK_Q, one per program, so a small batch
    does not leave most of the GPU idle behind a few long programs."""
    want = max(1, triton.cdiv(target, tiles))
    if want <= n:
        per = triton.cdiv(n, want)
        return 1, q_count, per, triton.cdiv(n, per)
    parts = max(1, min(triton.cdiv(want, n), q_count // (4 * block_q)))
    q_per_part = triton.cdiv(triton.cdiv(q_count, parts), block_q) * block_q
    parts = triton.cdiv(q_count, q_per_part)
    return parts, q_per_part, 1, n * parts


def _wgrad_tiles(a, dot: int):
    """(BLOCK_A, BLOCK_J, BLOCK_Q, num_warps, num_stages) of the weight gradient (see _fwd_tiles;
    exact float32 dots spilled with BLOCK_Q = 32, and with BLOCK_A = 64, on sm_80)."""
    if not a.is_cuda:
        return 32, 64, 64, 4, 1
    if dot == DOT_IEEE:  # 64 x 64 x 16 spilled 36-52 B on sm_80 (255 registers)
        return 32, 64, 16, 8, 2
    return 64, 64, 32, 8, 2


def modconv_wgrad(a, b, w_ab, sa, sb, r: int, py: int, px: int, allow_tf32: bool):
    """(dW_ab [CA, CB, KH, KW], dsa [N, CA], dsb [N, CB]) in float32; see the module docstring.

    a: [N, CA, QH, QW] (summed over its pixels q), b: [N, CB, BH, BW] (read at q*R + k - P),
    w_ab: [CA, CB, KH, KW] view of the weight, sa [N, CA], sb [N, CB] float32 contiguous.
    """
    import torch

    n, ca, qh, qw = a.shape
    _, cb, bh, bw = b.shape
    kh, kw = w_ab.shape[2], w_ab.shape[3]
    cols = cb * kh * kw
    if b.dtype != a.dtype:
        b = b.to(a.dtype)
    dot = dot_mode(a, allow_tf32)
    block_a, block_j, block_q, warps, stages = _wgrad_tiles(a, dot)
    tiles_a, tiles_j = triton.cdiv(ca, block_a), triton.cdiv(cols, block_j)
    target = 4 * multiprocessor_count(a.device) if a.is_cuda else 1
    parts, q_per_part, per_program, programs = _wgrad_split(n, qh * qw, tiles_a * tiles_j, block_q, target)
    dw = _alloc.empty((programs, ca, cols), dtype=torch.float32, device=a.device)
    dsa = _alloc.empty((tiles_j, parts, n, ca), dtype=torch.float32, device=a.device)
    dsb = _alloc.empty((tiles_a, parts, n, cols), dtype=torch.float32, device=a.device)
    a_flat = a.stride(2) == qw * a.stride(3)
    launch(
        _modconv_wgrad_kernel, (tiles_a * tiles_j, programs), a.device,
        a, b, w_ab, sa, sb, dw, dsa, dsb,
        n, ca, cb, qh, qw, bh, bw, parts, q_per_part, per_program, tiles_j,
        *a.stride(), *b.stride(), *w_ab.stride(),
        KH=kh, KW=kw, R=r, PY=py, PX=px, A_FLAT=a_flat, DOT=dot,
        BLOCK_A=block_a, BLOCK_J=block_j, BLOCK_Q=block_q, num_warps=warps, num_stages=stages,
    )
    dsb = dsb.sum((0, 1)).view(n, cb, kh * kw).sum(2)
    return dw.sum(0).view(ca, cb, kh, kw), dsa.sum((0, 1)), dsb
