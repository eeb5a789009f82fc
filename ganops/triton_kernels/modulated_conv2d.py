"""Triton kernels of the modulated convolution.

Geometry shared by both kernels ("direct" or "transposed", factor R, padding (PY, PX)):
  direct:      out[oy, ox] = sum_{c,ky,kx} w[o, c, ky, kx] * in[c, oy*R + ky - PY, ox*R + kx - PX]
  transposed:  out[p] = sum over (q, k) with q*R - P + k = p of w[o, c, k] * in[c, q]
               (torch's conv_transpose2d with weight w.transpose(0, 1)).
The adjoint of one geometry is the other with the same R and P and the weight transposed (0, 1).

``modconv_fwd``: implicit GEMM (M = output pixels of one sample, N = output channels, K = input
channels per tap) on tensor cores. Prologue: in[n, c] * s_in[n, c] while loading. Epilogue:
* s_out[n, o] (demodulation), + noise[n, oy, ox], + bias[o], linear or leaky ReLU(alpha), * gain,
clamp; y written once in its dtype. Transposed geometry runs one output phase (oy % R, ox % R)
per program so only the taps that hit that phase are computed.

``modconv_wgrad``: for one tap and tiles of channels (a, b), per sample n
  T_n[a, b] = sum_q A[n, a, q] * B[n, b, q*R + k - P]
(A = dz and B = in for the direct geometry, A = in and B = dz for the transposed one) reduced in
registers three ways: dW[a, b, k] = sum_n sa[n,a] sb[n,b] T_n, dsa[n, a] = sum_{b,k} W sb T_n,
dsb[n, b] = sum_{a,k} W sa T_n (partial sums per tile, summed by the launcher).
All arithmetic in float32; tensor-core inputs in the input dtype (TF32 for float32 when allowed;
bfloat16 operands are multiplied in float32 under the CPU interpreter, see _emulate_dot).
"""
import triton
import triton.language as tl

from .. import _alloc
from ._launch import launch

ACT_LINEAR, ACT_LRELU = 0, 1


@triton.jit
def _modconv_fwd_kernel(
    x_ptr, w_ptr, sin_ptr, sout_ptr, noise_ptr, bias_ptr, y_ptr,
    C, H, W, O, OH, OW, QH, QW, TILES_PER_SAMPLE,
    sxn, sxc, sxh, sxw,
    swo, swc, swh, sww,
    snn, snh, snw,
    syn, syc, syh, syw,
    alpha, gain, clamp,
    KH: tl.constexpr, KW: tl.constexpr, R: tl.constexpr, PY: tl.constexpr, PX: tl.constexpr,
    TRANSPOSED: tl.constexpr, HAS_NOISE: tl.constexpr, HAS_BIAS: tl.constexpr, ACT: tl.constexpr,
    HAS_CLAMP: tl.constexpr, DOT_F32: tl.constexpr, DOT_EMULATE: tl.constexpr, ALLOW_TF32: tl.constexpr,
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
                for c0 in range(0, C, BLOCK_K):
                    offs_c = c0 + offs_k
                    c_mask = offs_c < C
                    a = tl.load(x_n + pix_off[:, None] + offs_c[None, :] * sxc,
                                mask=pix_mask[:, None] & c_mask[None, :], other=0.0).to(tl.float32)
                    style = tl.load(sin_ptr + n * C + offs_c, mask=c_mask, other=0.0).to(tl.float32)
                    a = a * style[None, :]
                    b = tl.load(w_ptr + offs_c[:, None] * swc + offs_o[None, :] * swo + ky * swh + kx * sww,
                                mask=c_mask[:, None] & o_mask[None, :], other=0.0)
                    if DOT_F32:
                        if ALLOW_TF32:
                            acc = tl.dot(a, b.to(tl.float32), acc, input_precision="tf32")
                        else:
                            acc = tl.dot(a, b.to(tl.float32), acc, input_precision="ieee")
                    elif DOT_EMULATE:
                        a = a.to(x_ptr.dtype.element_ty).to(tl.float32)
                        b = b.to(x_ptr.dtype.element_ty).to(tl.float32)
                        acc = tl.dot(a, b, acc, input_precision="ieee")
                    else:
                        acc = tl.dot(a.to(x_ptr.dtype.element_ty), b.to(x_ptr.dtype.element_ty), acc)
    demod = tl.load(sout_ptr + n * O + offs_o, mask=o_mask, other=0.0).to(tl.float32)
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
    y_off = n.to(tl.int64) * syn + offs_o[None, :] * syc + oy[:, None] * syh + ox[:, None] * syw
    tl.store(y_ptr + y_off, acc.to(y_ptr.dtype.element_ty), mask=m_mask[:, None] & o_mask[None, :])


@triton.jit
def _modconv_wgrad_kernel(
    a_ptr, b_ptr, w_ptr, sa_ptr, sb_ptr, dw_ptr, dsa_ptr, dsb_ptr,
    N, CA, CB, QH, QW, BH, BW, N_PER_SPLIT, TILES_B,
    s_an, s_ac, s_ah, s_aw,
    s_bn, s_bc, s_bh, s_bw,
    sw_a, sw_b, sw_h, sw_w,
    KH: tl.constexpr, KW: tl.constexpr, R: tl.constexpr, PY: tl.constexpr, PX: tl.constexpr,
    DOT_F32: tl.constexpr, DOT_EMULATE: tl.constexpr, ALLOW_TF32: tl.constexpr,
    BLOCK_A: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_Q: tl.constexpr,
):
    pid_a = tl.program_id(0) // TILES_B
    pid_b = tl.program_id(0) % TILES_B
    tap = tl.program_id(1)
    split = tl.program_id(2)
    ky = tap // KW
    kx = tap % KW
    offs_a = pid_a * BLOCK_A + tl.arange(0, BLOCK_A)
    offs_b = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)
    a_mask = offs_a < CA
    b_mask = offs_b < CB
    ab_mask = a_mask[:, None] & b_mask[None, :]
    wt = tl.load(w_ptr + offs_a[:, None] * sw_a + offs_b[None, :] * sw_b + ky * sw_h + kx * sw_w,
                 mask=ab_mask, other=0.0).to(tl.float32)
    dw = tl.zeros((BLOCK_A, BLOCK_B), dtype=tl.float32)
    offs_q0 = tl.arange(0, BLOCK_Q)
    n_start = split * N_PER_SPLIT
    n_stop = tl.minimum(n_start + N_PER_SPLIT, N)
    taps = KH * KW
    for n in range(n_start, n_stop):
        a_n = a_ptr + n * s_an  # < 2**31 elements per tensor (checked by the op)
        b_n = b_ptr + n * s_bn
        t = tl.zeros((BLOCK_A, BLOCK_B), dtype=tl.float32)
        for q0 in range(0, QH * QW, BLOCK_Q):
            offs_q = q0 + offs_q0
            qy = offs_q // QW
            qx = offs_q % QW
            q_mask = offs_q < QH * QW
            by = qy * R + ky - PY
            bx = qx * R + kx - PX
            bq_mask = q_mask & (by >= 0) & (by < BH) & (bx >= 0) & (bx < BW)
            a = tl.load(a_n + offs_a[:, None] * s_ac + qy[None, :] * s_ah + qx[None, :] * s_aw,
                        mask=a_mask[:, None] & q_mask[None, :], other=0.0)
            b = tl.load(b_n + offs_b[None, :] * s_bc + by[:, None] * s_bh + bx[:, None] * s_bw,
                        mask=bq_mask[:, None] & b_mask[None, :], other=0.0)
            if DOT_F32:
                if ALLOW_TF32:
                    t = tl.dot(a.to(tl.float32), b.to(tl.float32), t, input_precision="tf32")
                else:
                    t = tl.dot(a.to(tl.float32), b.to(tl.float32), t, input_precision="ieee")
            elif DOT_EMULATE:
                t = tl.dot(a.to(tl.float32), b.to(tl.float32), t, input_precision="ieee")
            else:
                t = tl.dot(a, b, t)
        sa = tl.load(sa_ptr + n * CA + offs_a, mask=a_mask, other=0.0).to(tl.float32)
        sb = tl.load(sb_ptr + n * CB + offs_b, mask=b_mask, other=0.0).to(tl.float32)
        dw += t * sa[:, None] * sb[None, :]
        tw = t * wt
        dsa = tl.sum(tw * sb[None, :], axis=1)
        dsb = tl.sum(tw * sa[:, None], axis=0)
        tl.store(dsa_ptr + ((pid_b * taps + tap) * N + n) * CA + offs_a, dsa, mask=a_mask)
        tl.store(dsb_ptr + ((pid_a * taps + tap) * N + n) * CB + offs_b, dsb, mask=b_mask)
    dw_off = ((split * CA + offs_a[:, None]) * CB + offs_b[None, :]) * taps + tap
    tl.store(dw_ptr + dw_off, dw, mask=ab_mask)


def _blocks(device_is_cuda: bool, dtype_is_f32: bool):
    """(BLOCK_M, BLOCK_N, BLOCK_K) for the forward. The CPU interpreter pays per program and per
    op, not per element: large tiles, few programs."""
    if not device_is_cuda:
        return 64, 32, 32
    return (64, 64, 32) if dtype_is_f32 else (128, 64, 32)


def _emulate_dot(x) -> bool:
    """Triton's CPU interpreter multiplies bfloat16 dot operands as raw integers (triton 3.x): there,
    round the operands to bfloat16 and multiply them in float32 instead (same products)."""
    import torch

    return (not x.is_cuda) and x.dtype == torch.bfloat16


def _noise_strides(noise, n, oh, ow):
    if noise is None:
        return 0, 0, 0
    e = noise.expand(n, 1, oh, ow)
    return e.stride(0), e.stride(2), e.stride(3)


def modconv_fwd(x, w, s_in, s_out, noise, bias, transposed: bool, r: int, py: int, px: int, oh: int, ow: int,
                act: int, alpha: float, gain: float, clamp: float, allow_tf32: bool):
    """y [N, O, oh, ow] in x.dtype and x's memory format; see the module docstring.

    w: [O, C, KH, KW] (any strides, any float dtype); s_in [N, C], s_out [N, O] float32; noise None
    or broadcastable to [N, 1, oh, ow]; bias None or [O]; clamp < 0 means none.
    """
    import torch

    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    y = _alloc.empty((n, o, oh, ow), dtype=x.dtype, device=x.device,
                     memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    qh, qw = (triton.cdiv(oh, r), triton.cdiv(ow, r)) if transposed else (oh, ow)
    bm, bn, bk = _blocks(x.is_cuda, x.dtype == torch.float32)
    tiles = triton.cdiv(qh * qw, bm)
    grid = (n * tiles, triton.cdiv(o, bn), r * r if transposed else 1)
    sn = _noise_strides(noise, n, oh, ow)
    launch(
        _modconv_fwd_kernel, grid, x.device, x, w, s_in, s_out, noise if noise is not None else y, bias if bias is not None else y, y,
        c, h, wd, o, oh, ow, qh, qw, tiles,
        *x.stride(), *w.stride(), *sn, *y.stride(),
        float(alpha), float(gain), float(max(clamp, 0.0)),
        KH=kh, KW=kw, R=r, PY=py, PX=px, TRANSPOSED=bool(transposed), HAS_NOISE=noise is not None,
        HAS_BIAS=bias is not None, ACT=act, HAS_CLAMP=clamp >= 0, DOT_F32=x.dtype == torch.float32,
        DOT_EMULATE=_emulate_dot(x),
        ALLOW_TF32=bool(allow_tf32), BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk,
    )
    return y


def modconv_wgrad(a, b, w_ab, sa, sb, r: int, py: int, px: int, allow_tf32: bool):
    """(dW_ab [CA, CB, KH, KW], dsa [N, CA], dsb [N, CB]) in float32; see the module docstring.

    a: [N, CA, QH, QW] (summed over its pixels q), b: [N, CB, BH, BW] (read at q*R + k - P),
    w_ab: [CA, CB, KH, KW] view of the weight, sa [N, CA], sb [N, CB].
    """
    import torch

    n, ca, qh, qw = a.shape
    _, cb, bh, bw = b.shape
    kh, kw = w_ab.shape[2], w_ab.shape[3]
    taps = kh * kw
    if a.is_cuda:
        block_a, block_b, block_q = 64, 64, 32
    else:
        block_a, block_b, block_q = 32, 32, 64
    tiles_a, tiles_b = triton.cdiv(ca, block_a), triton.cdiv(cb, block_b)
    programs = tiles_a * tiles_b * taps
    splits = max(1, min(n, triton.cdiv(512, programs))) if a.is_cuda else 1
    per_split = triton.cdiv(n, splits)
    splits = triton.cdiv(n, per_split)
    dw = _alloc.empty((splits, ca, cb, kh, kw), dtype=torch.float32, device=a.device)
    dsa = _alloc.empty((tiles_b * taps, n, ca), dtype=torch.float32, device=a.device)
    dsb = _alloc.empty((tiles_a * taps, n, cb), dtype=torch.float32, device=a.device)
    if b.dtype != a.dtype:
        b = b.to(a.dtype)
    grid = (tiles_a * tiles_b, taps, splits)
    launch(
        _modconv_wgrad_kernel, grid, a.device, a, b, w_ab, sa, sb, dw, dsa, dsb,
        n, ca, cb, qh, qw, bh, bw, per_split, tiles_b,
        *a.stride(), *b.stride(), *w_ab.stride(),
        KH=kh, KW=kw, R=r, PY=py, PX=px, DOT_F32=a.dtype == torch.float32, DOT_EMULATE=_emulate_dot(a),
        ALLOW_TF32=bool(allow_tf32),
        BLOCK_A=block_a, BLOCK_B=block_b, BLOCK_Q=block_q,
    )
    return dw.sum(0), dsa.sum(0), dsb.sum(0)
