"""Triton kernels of bias_act: one kernel family for the forward and both derivative orders.

A dense tensor (any permutation of a contiguous layout) is viewed as a row-major matrix [R, K]:
  * stride(dim) == 1 (channels_last, fully connected):  K = C, channel = column;
  * stride(dim) == S > 1 (NCHW: S = H*W):               K = S, channel = row % C.
Each program handles ITERS [BR, BK] tiles along the reduction axis; the bias gradient is summed in
registers and added to a float32 buffer with one atomic per row (or column) of the tile, so no
extra pass over dy is made.

MODE 0: out = clamp(gain * act(s + b))                               (s = x)
MODE 1: out = g * gain * act'(.) * keep                               (first derivative)
MODE 2: out = g * h * d(gain * act'(.))/ds * keep                      (second derivative)
where (.) is recovered from s = y (S_IS_Y) or recomputed from s = x and b; keep = |y| < clamp.
At the kinks the derivatives follow PyTorch: relu'(0) = 0, lrelu'(0) = alpha, elu'(0) = 1,
selu'(0) = lambda*alpha, and the second derivative of elu/selu is taken as 0 at 0.
"""
import torch
import triton
import triton.language as tl

from .. import _alloc
from ._launch import launch


@triton.jit
def _sigmoid(v):
    return 1.0 / (1.0 + tl.exp(-v))


@triton.jit
def _tanh(v):
    t = tl.exp(-2.0 * tl.abs(v))
    r = (1.0 - t) / (1.0 + t)
    return tl.where(v < 0, -r, r)


@triton.jit
def _act(v, alpha, ACT: tl.constexpr):
    if ACT == 0:
        r = v
    elif ACT == 1:
        r = tl.where(v > 0, v, 0.0)
    elif ACT == 2:
        r = tl.where(v > 0, v, v * alpha)
    elif ACT == 3:
        r = _tanh(v)
    elif ACT == 4:
        r = _sigmoid(v)
    elif ACT == 5:
        r = tl.where(v > 0, v, tl.exp(tl.minimum(v, 0.0)) - 1.0)
    elif ACT == 6:
        r = 1.0507009873554805 * tl.where(v > 0, v, 1.6732632423543772 * (tl.exp(tl.minimum(v, 0.0)) - 1.0))
    elif ACT == 7:
        r = tl.where(v > 20.0, v, tl.maximum(v, 0.0) + tl.log(1.0 + tl.exp(-tl.abs(v))))
    else:
        r = v * _sigmoid(v)
    return r


@triton.jit
def _deriv_x(v, alpha, ACT: tl.constexpr, ORDER: tl.constexpr):
    """act'(v) (ORDER 1) or act''(v) (ORDER 2)."""
    one = tl.full(v.shape, 1.0, tl.float32)
    zero = tl.zeros(v.shape, tl.float32)
    e = tl.exp(tl.minimum(v, 0.0))
    if ACT == 0:
        r = one if ORDER == 1 else zero
    elif ACT == 1:
        r = tl.where(v > 0, one, zero) if ORDER == 1 else zero
    elif ACT == 2:
        r = tl.where(v > 0, one, zero + alpha) if ORDER == 1 else zero
    elif ACT == 3:
        t = _tanh(v)
        r = 1.0 - t * t if ORDER == 1 else -2.0 * t * (1.0 - t * t)
    elif ACT == 4:
        s = _sigmoid(v)
        r = s * (1.0 - s) if ORDER == 1 else s * (1.0 - s) * (1.0 - 2.0 * s)
    elif ACT == 5:
        r = tl.where(v > 0, one, e) if ORDER == 1 else tl.where(v < 0, e, zero)
    elif ACT == 6:
        if ORDER == 1:
            r = tl.where(v > 0, one * 1.0507009873554805, 1.7580993408473766 * e)
        else:
            r = tl.where(v < 0, 1.7580993408473766 * e, zero)
    elif ACT == 7:
        s = _sigmoid(v)
        r = tl.where(v > 20.0, one, s) if ORDER == 1 else tl.where(v > 20.0, zero, s * (1.0 - s))
    else:
        s = _sigmoid(v)
        if ORDER == 1:
            r = s * (1.0 + v * (1.0 - s))
        else:
            r = s * (1.0 - s) * (2.0 + v * (1.0 - 2.0 * s))
    return r


@triton.jit
def _deriv_y(t, alpha, ACT: tl.constexpr, ORDER: tl.constexpr):
    """act'(.) (ORDER 1) or d act'(.)/d t (ORDER 2) as functions of the activation value t."""
    one = tl.full(t.shape, 1.0, tl.float32)
    zero = tl.zeros(t.shape, tl.float32)
    if ACT == 0:
        r = one if ORDER == 1 else zero
    elif ACT == 1:
        r = tl.where(t > 0, one, zero) if ORDER == 1 else zero
    elif ACT == 2:
        r = tl.where(t > 0, one, zero + alpha) if ORDER == 1 else zero
    elif ACT == 3:
        r = 1.0 - t * t if ORDER == 1 else -2.0 * t
    elif ACT == 4:
        r = t * (1.0 - t) if ORDER == 1 else 1.0 - 2.0 * t
    elif ACT == 5:
        r = tl.where(t > 0, one, t + 1.0) if ORDER == 1 else tl.where(t < 0, one, zero)
    elif ACT == 6:
        if ORDER == 1:
            r = tl.where(t > 0, one * 1.0507009873554805, t + 1.7580993408473766)
        else:
            r = tl.where(t < 0, one, zero)
    else:  # softplus: act' = sigmoid(x) = 1 - exp(-t)
        r = 1.0 - tl.exp(-t) if ORDER == 1 else tl.exp(-t)
    return r


@triton.jit
def _tile(out_ptr, s_ptr, b_ptr, g_ptr, h_ptr, rows, cols, R, K, C, alpha, gain, clamp,
          MODE: tl.constexpr, ACT: tl.constexpr, S_IS_Y: tl.constexpr, HAS_BIAS: tl.constexpr,
          CLAMP: tl.constexpr, CH_ROW: tl.constexpr):
    """Computes and stores one [rows, cols] tile; returns it in float32 (0 outside the matrix)."""
    row_ok = rows < R
    col_ok = cols < K
    mask = row_ok[:, None] & col_ok[None, :]
    offs = rows[:, None] * K + cols[None, :]
    s = tl.load(s_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    if HAS_BIAS:
        if CH_ROW:
            bias = tl.load(b_ptr + rows % C, mask=row_ok, other=0.0).to(tl.float32)[:, None]
        else:
            bias = tl.load(b_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
        v = s + bias
    else:
        v = s
    if MODE == 0:
        out = _act(v, alpha, ACT) * gain
        if CLAMP:
            out = tl.minimum(tl.maximum(out, -clamp), clamp)
    else:
        g = tl.load(g_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        if S_IS_Y:
            d = _deriv_y(s / gain, alpha, ACT, MODE)
            if MODE == 1:
                d = d * gain
            if CLAMP:
                d = tl.where(tl.abs(s) < clamp, d, 0.0)
        else:
            d = _deriv_x(v, alpha, ACT, MODE) * gain
            if CLAMP:
                d = tl.where(tl.abs(_act(v, alpha, ACT) * gain) < clamp, d, 0.0)
        out = g * d
        if MODE == 2:
            out = out * tl.load(h_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        out = tl.where(mask, out, 0.0)
    tl.store(out_ptr + offs, out.to(out_ptr.dtype.element_ty), mask=mask)
    return out


@triton.jit(do_not_specialize=["R", "C", "ITERS"])  # fewer JIT variants: only K's divisibility matters
def _bias_act_kernel(out_ptr, db_ptr, s_ptr, b_ptr, g_ptr, h_ptr, R, K, C, alpha, gain, clamp, ITERS,
                     MODE: tl.constexpr, ACT: tl.constexpr, S_IS_Y: tl.constexpr, HAS_BIAS: tl.constexpr,
                     CLAMP: tl.constexpr, CH_ROW: tl.constexpr, REDUCE: tl.constexpr,
                     BR: tl.constexpr, BK: tl.constexpr):
    """Each program walks ITERS tiles along the reduction axis (columns when CH_ROW, else rows),
    summing the bias gradient in registers, then issues one atomic per row / column."""
    pid = tl.program_id(0)
    if CH_ROW:
        n_kb = tl.cdiv(K, BK * ITERS)
        rows = (pid // n_kb) * BR + tl.arange(0, BR)
        col0 = (pid % n_kb) * (BK * ITERS)
        acc = tl.zeros([BR], tl.float32)
        for it in range(ITERS):
            cols = col0 + it * BK + tl.arange(0, BK)
            out = _tile(out_ptr, s_ptr, b_ptr, g_ptr, h_ptr, rows, cols, R, K, C, alpha, gain, clamp,
                        MODE, ACT, S_IS_Y, HAS_BIAS, CLAMP, CH_ROW)
            if REDUCE:
                acc += tl.sum(out, axis=1)
        if REDUCE:
            tl.atomic_add(db_ptr + rows % C, acc, mask=rows < R, sem="relaxed")
    else:
        n_kb = tl.cdiv(K, BK)
        row0 = (pid // n_kb) * (BR * ITERS)
        cols = (pid % n_kb) * BK + tl.arange(0, BK)
        acc = tl.zeros([BK], tl.float32)
        for it in range(ITERS):
            rows = row0 + it * BR + tl.arange(0, BR)
            out = _tile(out_ptr, s_ptr, b_ptr, g_ptr, h_ptr, rows, cols, R, K, C, alpha, gain, clamp,
                        MODE, ACT, S_IS_Y, HAS_BIAS, CLAMP, CH_ROW)
            if REDUCE:
                acc += tl.sum(out, axis=0)
        if REDUCE:
            tl.atomic_add(db_ptr + cols, acc, mask=cols < K, sem="relaxed")


def is_dense(t: torch.Tensor) -> bool:
    """True when t's elements fill a contiguous block in some dimension order (no gaps, no overlap)."""
    expected = 1
    for stride, size in sorted((st, sz) for st, sz in zip(t.stride(), t.shape) if sz != 1):
        if stride != expected:
            return False
        expected *= size
    return True


def dense(t: torch.Tensor, like: torch.Tensor = None) -> torch.Tensor:
    """t when it is dense (and, given ``like``, has its strides), else a copy with the strides
    ``torch.empty_like`` gives (so the fake kernels can predict output strides)."""
    if like is None:
        return t if is_dense(t) else torch.empty_like(t).copy_(t)
    return t if t.stride() == like.stride() else torch.empty_like(like, dtype=t.dtype).copy_(t)


def _geometry(t: torch.Tensor, dim: int, per_channel: bool):
    """(R, K, C, CH_ROW) of the matrix view described in the module docstring."""
    n, c = t.numel(), t.shape[dim]
    if not per_channel or c == 1:
        return 1, n, 1, True
    stride = t.stride(dim)
    if stride == 1:
        return n // c, c, c, False
    return n // stride, stride, c, True


MIN_PROGRAMS = 1024  # enough programs to fill an H100 several times over


def _iters(extent: int, block: int, other_programs: int, reduce: bool) -> int:
    """Tiles per program along the reduction axis: up to 64 (fewer atomics) while keeping at
    least MIN_PROGRAMS programs; 1 when nothing is reduced."""
    iters = min(64, triton.next_power_of_2(triton.cdiv(extent, block))) if reduce else 1
    while iters > 1 and other_programs * triton.cdiv(extent, block * iters) < MIN_PROGRAMS:
        iters //= 2
    return iters


def _launch(out, db, s, b, g, h, dim, act, alpha, gain, clamp, mode, s_is_y):
    r, k, c, ch_row = _geometry(s, dim, b is not None or db is not None)
    bk = min(triton.next_power_of_2(k), 1024)
    br = min(triton.next_power_of_2(r), max(1, 2048 // bk))
    if ch_row:
        iters = _iters(k, bk, triton.cdiv(r, br), db is not None)
        grid = (triton.cdiv(r, br) * triton.cdiv(k, bk * iters),)
    else:
        iters = _iters(r, br, triton.cdiv(k, bk), db is not None)
        grid = (triton.cdiv(r, br * iters) * triton.cdiv(k, bk),)
    launch(
        _bias_act_kernel, grid, s.device, out, db, s, b, g, h, r, k, c, alpha, gain, clamp, iters,
        MODE=mode, ACT=act, S_IS_Y=s_is_y, HAS_BIAS=b is not None, CLAMP=clamp >= 0, CH_ROW=ch_row,
        REDUCE=db is not None, BR=br, BK=bk)


def forward(x, b, dim, act, alpha, gain, clamp):
    """y = clamp(gain * act(x + b)) with x's (dense) strides."""
    x = dense(x)
    y = _alloc.empty_like(x)
    if x.numel():
        _launch(y, None, x, b, None, None, dim, act, alpha, gain, clamp, 0, False)
    return y


def grad(g, h, s, b, dim, act, alpha, gain, clamp, s_is_y, reduce_db):
    """(out, db): out = g * D(s) (h None) or g * h * D'(s); db = out summed over all but dim."""
    s = dense(s)
    g = dense(g, like=s)
    h = None if h is None else dense(h, like=s)
    out = _alloc.empty_like(s)
    db32 = torch.zeros([s.shape[dim]], dtype=torch.float32, device=s.device) if reduce_db else None
    if s.numel():
        _launch(out, db32, s, b, g, h, dim, act, alpha, gain, clamp, 1 if h is None else 2, s_is_y)
    db = db32.to(s.dtype) if reduce_db else s.new_empty([0])
    return out, db
