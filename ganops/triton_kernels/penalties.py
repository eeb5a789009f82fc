"""Triton kernels of the per-sample sum of squares and its backward.

forward:  out[n] = scale * sum_i x[n, i]^2     (two passes: partial sums per chunk, then per sample,
                                               deterministic; float32 accumulation, float64 for float64)
backward: grad_x[n, i] = 2 * scale * grad_out[n] * x[n, i]
(scale is passed in a one-element tensor of the compute dtype: Triton would round a Python float to fp32)

``x`` must be batch-dense: sample n occupies x.data_ptr() + n * stride(0) + [0, M) (contiguous or
channels_last tensors are); the launchers get such a tensor from ganops.ops.penalties.
"""
import torch
import triton
import triton.language as tl

from .. import _alloc
from ._launch import launch

BLOCK = 1024
ITERS = 8  # elements per partial sum: BLOCK * ITERS
FINAL_BLOCK = 128


@triton.jit
def _partial_kernel(x_ptr, part_ptr, M, s_n, num_chunks,
                    COMPUTE: tl.constexpr, BLOCK: tl.constexpr, ITERS: tl.constexpr):
    chunk = tl.program_id(0)
    n = tl.program_id(1).to(tl.int64)
    base = x_ptr + n * s_n
    start = chunk.to(tl.int64) * (BLOCK * ITERS)
    acc = tl.zeros([BLOCK], dtype=COMPUTE)
    for it in tl.static_range(ITERS):
        offs = start + it * BLOCK + tl.arange(0, BLOCK)
        v = tl.load(base + offs, mask=offs < M, other=0.0).to(COMPUTE)
        acc += v * v
    tl.store(part_ptr + n * num_chunks + chunk, tl.sum(acc, axis=0))


@triton.jit
def _final_kernel(part_ptr, out_ptr, num_chunks, scale_ptr, COMPUTE: tl.constexpr, BLOCK: tl.constexpr):
    n = tl.program_id(0).to(tl.int64)
    acc = tl.zeros([BLOCK], dtype=COMPUTE)
    for start in range(0, num_chunks, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        acc += tl.load(part_ptr + n * num_chunks + offs, mask=offs < num_chunks, other=0.0)
    tl.store(out_ptr + n, tl.sum(acc, axis=0) * tl.load(scale_ptr))


@triton.jit
def _backward_kernel(x_ptr, gy_ptr, gx_ptr, M, s_n, two_scale_ptr, COMPUTE: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    n = tl.program_id(1).to(tl.int64)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < M
    coef = tl.load(gy_ptr + n).to(COMPUTE) * tl.load(two_scale_ptr)
    v = tl.load(x_ptr + n * s_n + offs, mask=mask, other=0.0).to(COMPUTE)
    tl.store(gx_ptr + n * s_n + offs, (coef * v).to(gx_ptr.dtype.element_ty), mask=mask)


def _compute(dtype: torch.dtype):
    return (tl.float64, torch.float64) if dtype == torch.float64 else (tl.float32, torch.float32)


def sum_squares(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Batch-dense x [N, ...] -> [N] (float32, float64 for float64 x)."""
    n = x.shape[0]
    m = x.numel() // n if n else 0
    compute, acc_dtype = _compute(x.dtype)
    out = _alloc.empty((n,), dtype=acc_dtype, device=x.device)
    if n == 0:
        return out
    num_chunks = max(1, triton.cdiv(m, BLOCK * ITERS))
    partial = torch.empty((n, num_chunks), dtype=acc_dtype, device=x.device)
    launch(_partial_kernel, (num_chunks, n), x.device, x, partial, m, x.stride(0), num_chunks,
                                     COMPUTE=compute, BLOCK=BLOCK, ITERS=ITERS)
    scale_t = torch.full((1,), scale, dtype=acc_dtype, device=x.device)
    launch(_final_kernel, (n,), x.device, partial, out, num_chunks, scale_t, COMPUTE=compute, BLOCK=FINAL_BLOCK)
    return out


def sum_squares_backward(x: torch.Tensor, grad_out: torch.Tensor, scale: float) -> torch.Tensor:
    """grad_x = 2 * scale * grad_out[n] * x, same dtype and layout as the batch-dense x."""
    n = x.shape[0]
    m = x.numel() // n if n else 0
    compute, acc_dtype = _compute(x.dtype)
    grad_x = _alloc.empty_like(x)
    if x.numel() == 0:
        return grad_x
    grad_out = grad_out.contiguous()
    two_scale = torch.full((1,), 2.0 * scale, dtype=acc_dtype, device=x.device)
    launch(_backward_kernel, (triton.cdiv(m, BLOCK), n), x.device, x, grad_out, grad_x, m, x.stride(0), two_scale,
                                                  COMPUTE=compute, BLOCK=BLOCK)
    return grad_x
