"""What every fused (CUDA / Triton) kernel requires of its main input."""
from typing import Optional

import torch

FAST_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
MAX_NUMEL = 2**31 - 1   # the kernels index with 32-bit integers


def unsupported_reason(x: torch.Tensor) -> Optional[str]:
    """Why the fused kernels cannot take ``x`` (dtype or size), or None if they can."""
    if x.dtype not in FAST_DTYPES:
        return f"{x.dtype} is not supported by the fused kernels (float32, float16, bfloat16 are)"
    if x.numel() > MAX_NUMEL:
        return f"tensors with more than {MAX_NUMEL} elements are not supported by the fused kernels"
    return None
