"""Triton kernels of bias_act: one forward and one gradient kernel for every activation and order.

A dense tensor (any permutation of a contiguous layout) is viewed as a row-major matrix [R, K]:
  * stride(dim) == 1 (channels_last, fully connected):  K = C, channel = column;
  * stride(dim) == S > 1 (NCHW: S = H*W):               K = S, channel = row % C.
Each program handles ITERS [BR, BK] tiles along the reduction axis; the bias gradient is summed in
registers and added to a float32 buffer with one relaxed atomic per row (or column), so no extra pass
over dy is made.

Forward:  out = clamp(gain * act(s + b))                             (s = x)
Gradient: out = g * gain * act'(.) * keep                            (order 1)
          out = g * h * d(gain * act'(.))/ds * keep                  (order 2)
where (.) is recovered from s = y (s_is_y) or recomputed from s = x and b; keep = |y| < clamp.
At the kinks the derivatives follow PyTorch: relu'(0) = 0, lrelu'(0) = alpha, elu'(0) = 1,
selu'(0) = lambda*alpha, and the second derivative of elu/selu is taken as 0 at 0.

JIT volume: the activation, the order, s_is_y, the bias / reduction / clamp switches and the sizes are
runtime arguments (uniform branches, a few scalar instructions per tile of 2048 elements; not yet
timed on a GPU), so a process compiles one kernel per dtype, forward/gradient, layout (CH_ROW), tile
shape and alignment of K (`_tile_shape`) instead of one per combination: 858 -> 104 variants in the
resource report, 24 -> 12 per paper256 training process (benchmarks.jit_variants).
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
def _act(v, alpha, act):
    """act(v) for the activation code ``act`` (ganops.ref.activations.ACTIVATIONS[name].code)."""
    if act == 0:
        r = v
    elif act == 1:
        r = tl.where(v > 0, v, 0.0)
    elif act == 2:
        r = tl.where(v > 0, v, v * alpha)
    elif act == 3:
        r = _tanh(v)
    elif act == 4:
        r = _sigmoid(v)
    elif act == 5:
        r = tl.where(v > 0, v, tl.exp(tl.minimum(v, 0.0)) - 1.0)
    elif act == 6:
        r = 1.0507009873554805 * tl.where(v > 0, v, 1.6732632423543772 * (tl.exp(tl.minimum(v, 0.0)) - 1.0))
    elif act == 7:
        r = tl.where(v > 20.0, v, tl.maximum(v, 0.0) + tl.log(1.0 + tl.exp(-tl.abs(v))))
    else:
        r = v * _sigmoid(v)
    return r


@triton.jit
def _deriv_piecewise_linear(u, alpha, act, first):
    """linear / relu / lrelu (act 0-2): act' (first) or act'' = 0; u has the sign of the activation's input."""
    one = tl.full(u.shape, 1.0, tl.float32)
    zero = tl.zeros(u.shape, tl.float32)
    if act == 0:
        r = one
    elif act == 1:
        r = tl.where(u > 0, one, zero)
    else:
        r = tl.where(u > 0, one, zero + alpha)
    return tl.where(first, r, zero)


@triton.jit
def _deriv_x(v, alpha, act, order):
    """act'(v) (order 1) or act''(v) (order 2)."""
    first = order == 1
    one = tl.full(v.shape, 1.0, tl.float32)
    zero = tl.zeros(v.shape, tl.float32)
    if act <= 2:
        r = _deriv_piecewise_linear(v, alpha, act, first)
    elif act == 3:
        t = _tanh(v)
        r = (1.0 - t * t) * tl.where(first, one, -2.0 * t)
    elif act == 4:
        s = _sigmoid(v)
        r = s * (1.0 - s) * tl.where(first, one, 1.0 - 2.0 * s)
    elif act == 5:
        e = tl.exp(tl.minimum(v, 0.0))
        r = tl.where(first, tl.where(v > 0, one, e), tl.where(v < 0, e, zero))
    elif act == 6:
        e = 1.7580993408473766 * tl.exp(tl.minimum(v, 0.0))
        r = tl.where(first, tl.where(v > 0, one * 1.0507009873554805, e), tl.where(v < 0, e, zero))
    elif act == 7:
        s = _sigmoid(v)
        r = tl.where(v > 20.0, tl.where(first, one, zero), tl.where(first, s, s * (1.0 - s)))
    else:
        s = _sigmoid(v)
        r = tl.where(first, s * (1.0 + v * (1.0 - s)), s * (1.0 - s) * (2.0 + v * (1.0 - 2.0 * s)))
    return r


@triton.jit
def _deriv_y(t, alpha, act, order):
    """act'(.) (order 1) or d act'(.)/d t (order 2) as functions of the activation value t (not swish)."""
    first = order == 1
    one = tl.full(t.shape, 1.0, tl.float32)
    zero = tl.zeros(t.shape, tl.float32)
    if act <= 2:
        r = _deriv_piecewise_linear(t, alpha, act, first)
    elif act == 3:
        r = tl.where(first, 1.0 - t * t, -2.0 * t)
    elif act == 4:
        r = tl.where(first, t * (1.0 - t), 1.0 - 2.0 * t)
    elif act == 5:
        r = tl.where(first, tl.where(t > 0, one, t + 1.0), tl.where(t < 0, one, zero))
    elif act == 6:
        r = tl.where(first, tl.where(t > 0, one * 1.0507009873554805, t + 1.7580993408473766),
                     tl.where(t < 0, one, zero))
    else:  # softplus: act' = sigmoid(x) = 1 - exp(-t)
        e = tl.exp(-t)
        r = tl.where(first, 1.0 - e, e)
    return r


@triton.jit
def _tile(out_ptr, s_ptr, b_ptr, g_ptr, h_ptr, rows, cols, R, K, C, act, alpha, gain, clamp, order, s_is_y,
          has_bias, GRAD: tl.constexpr, CH_ROW: tl.constexpr):
    """Computes and stores one [rows, cols] tile; returns it in float32 (0 outside the matrix)."""
    row_ok = rows < R
    col_ok = cols < K
    mask = row_ok[:, None] & col_ok[None, :]
    offs = rows[:, None] * K + cols[None, :]
    s = tl.load(s_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    v = s
    if has_bias:
        if CH_ROW:
            v = s + tl.load(b_ptr + rows % C, mask=row_ok, other=0.0).to(tl.float32)[:, None]
        else:
            v = s + tl.load(b_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
    if GRAD:
        g = tl.load(g_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        if s_is_y:
            d = _deriv_y(s / gain, alpha, act, order)
            if order == 1:
                d = d * gain
            if clamp >= 0:
                d = tl.where(tl.abs(s) < clamp, d, 0.0)
        else:
            d = _deriv_x(v, alpha, act, order) * gain
            if clamp >= 0:
                d = tl.where(tl.abs(_act(v, alpha, act) * gain) < clamp, d, 0.0)
        out = g * d
        if order == 2:
            out = out * tl.load(h_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        out = tl.where(mask, out, 0.0)
    else:
        out = _act(v, alpha, act) * gain
        if clamp >= 0:
            out = tl.minimum(tl.maximum(out, -clamp), clamp)
    tl.store(out_ptr + offs, out.to(out_ptr.dtype.element_ty), mask=mask)
    return out


@triton.jit(do_not_specialize=["R", "C", "act", "order", "s_is_y", "has_bias", "reduce", "ITERS"])
def _bias_act_kernel(out_ptr, db_ptr, s_ptr, b_ptr, g_ptr, h_ptr, R, K, C, act, alpha, gain, clamp, order, s_is_y,
                     has_bias, reduce, ITERS, GRAD: tl.constexpr, CH_ROW: tl.constexpr, BR: tl.constexpr,
                     BK: tl.constexpr):
    """Each program walks ITERS tiles along the reduction axis (columns when CH_ROW, else rows),
    summing the bias gradient of GRAD in a [BR, BK] register tile, then issues one atomic per row /
    column when ``reduce``. Only K (its divisibility by 16: vector loads) and the pointers' dtypes
    and alignment are specialised."""
    pid = tl.program_id(0)
    acc = tl.zeros([BR, BK], tl.float32)
    if CH_ROW:
        n_kb = tl.cdiv(K, BK * ITERS)
        rows = (pid // n_kb) * BR + tl.arange(0, BR)
        col0 = (pid % n_kb) * (BK * ITERS)
        for it in range(ITERS):
            cols = col0 + it * BK + tl.arange(0, BK)
            acc += _tile(out_ptr, s_ptr, b_ptr, g_ptr, h_ptr, rows, cols, R, K, C, act, alpha, gain, clamp, order,
                         s_is_y, has_bias, GRAD, CH_ROW)
        if GRAD:
            if reduce:
                tl.atomic_add(db_ptr + rows % C, tl.sum(acc, axis=1), mask=rows < R, sem="relaxed")
    else:
        n_kb = tl.cdiv(K, BK)
        row0 = (pid // n_kb) * (BR * ITERS)
        cols = (pid % n_kb) * BK + tl.arange(0, BK)
        for it in range(ITERS):
            rows = row0 + it * BR + tl.arange(0, BR)
            acc += _tile(out_ptr, s_ptr, b_ptr, g_ptr, h_ptr, rows, cols, R, K, C, act, alpha, gain, clamp, order,
                         s_is_y, has_bias, GRAD, CH_ROW)
        if GRAD:
            if reduce:
                tl.atomic_add(db_ptr + cols, tl.sum(acc, axis=0), mask=cols < K, sem="relaxed")


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


TILE = 2048  # elements per [BR, BK] tile (8 per thread at NUM_WARPS): one 16-byte vector per tensor in 16-bit dtypes
NUM_WARPS = 8
BLOCK_K = 64  # the tile's row length below a full tile: 128-256 contiguous bytes per row


def _tile_shape(k: int, ch_row: bool):
    """(BR, BK): rows of BLOCK_K (K rounded up to a power of two when shorter), or of a whole tile when
    the NCHW rows are that long (H*W >= TILE: one long contiguous run, whatever the batch); BR fills the
    tile. When K is not a multiple of 16 the rows are not 16-byte aligned, every element needs its own
    64-bit addresses and the tile is halved (the full tile spilled on sm_90). The shape depends on K
    alone (not on the batch), so the StyleGAN feature maps need a few shapes."""
    tile = TILE if k % 16 == 0 else TILE // 2
    bk = tile if ch_row and k >= tile else min(triton.next_power_of_2(k), BLOCK_K)
    return tile // bk, bk


MIN_PROGRAMS = 1024  # enough programs to fill an H100 several times over


def _iters(extent: int, block: int, other_programs: int, reduce: bool) -> int:
    """Tiles per program along the reduction axis: up to 64 (fewer atomics) while keeping at
    least MIN_PROGRAMS programs; 1 when nothing is reduced."""
    iters = min(64, triton.next_power_of_2(triton.cdiv(extent, block))) if reduce else 1
    while iters > 1 and other_programs * triton.cdiv(extent, block * iters) < MIN_PROGRAMS:
        iters //= 2
    return iters


def _launch(out, db, s, b, g, h, dim, act, alpha, gain, clamp, order, s_is_y):
    """Launches the forward (order 0) or gradient kernel; absent tensors are passed as ``s`` (the
    kernel does not read them), so that None never becomes a compile-time constant."""
    r, k, c, ch_row = _geometry(s, dim, b is not None or db is not None)
    br, bk = _tile_shape(k, ch_row)
    reduce = db is not None
    if ch_row:
        iters = _iters(k, bk, triton.cdiv(r, br), reduce)
        grid = (triton.cdiv(r, br) * triton.cdiv(k, bk * iters),)
    else:
        iters = _iters(r, br, triton.cdiv(k, bk), reduce)
        grid = (triton.cdiv(r, br * iters) * triton.cdiv(k, bk),)
    if order and not reduce:
        db = out.new_empty([1], dtype=torch.float32)  # never written: reduce is 0
    launch(
        _bias_act_kernel, grid, s.device, out, out if db is None else db, s, s if b is None else b,
        s if g is None else g, s if h is None else h, r, k, c, act, alpha, gain, clamp, order, int(s_is_y),
        int(b is not None), int(reduce), iters, GRAD=order > 0, CH_ROW=ch_row, BR=br, BK=bk, num_warps=NUM_WARPS)


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
