"""ganops.grid_sample: bilinear sampling (zeros padding, align_corners=False), differentiable to any order.

Same values as ``torch.nn.functional.grid_sample(input, grid, 'bilinear', 'zeros', align_corners=False)``,
but its backward is itself differentiable (w.r.t. the incoming gradient, the input and the grid),
so ADA's geometric augmentation can sit inside an R1 / path-length pass.

Fast paths (CUDA, Triton): two custom ops per backend, ``gather`` (the forward, and derivatives of
the bilinear weights) and ``scatter`` (its transpose). Their autograd formulas are made of the same
two ops, so first, second and higher orders all run on the kernels:
  d gather_k(x, g) / dx      = scatter_k(.)            d gather_k / d grid = sum_c(. * gather_{k+1}(x))
  d scatter_k(y, g) / dy     = gather_k(.)             d scatter_k / d grid = sum_c(y * gather_{k+1}(.))
where k = (DX, DY) are derivative orders of the bilinear weights w.r.t. the pixel coordinates.
"""
from typing import Optional

import torch

from .. import _registry
from ..ref import grid_sample as _ref
from ._grid_sample_fast import KERNELS

_FAMILY = "grid_sample"
_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _validate(input, grid) -> None:
    for name, t in (("input", input), ("grid", grid)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"grid_sample: {name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dtype not in _FLOAT_DTYPES:
            raise TypeError(f"grid_sample: {name} must be float16, bfloat16, float32 or float64, got {t.dtype}")
    if input.dim() != 4:
        raise ValueError(f"grid_sample: input must be 4-D [N, C, H, W], got shape {tuple(input.shape)}")
    if grid.dim() != 4 or grid.shape[3] != 2:
        raise ValueError(f"grid_sample: grid must be 4-D [N, Ho, Wo, 2], got shape {tuple(grid.shape)}")
    if grid.shape[0] != input.shape[0]:
        raise ValueError(f"grid_sample: grid batch {grid.shape[0]} must equal input batch {input.shape[0]}")
    if grid.device != input.device:
        raise ValueError(f"grid_sample: grid must be on the input's device {input.device}, got {grid.device}")
    if input.shape[2] == 0 or input.shape[3] == 0:
        raise ValueError(f"grid_sample: input must have H, W >= 1, got shape {tuple(input.shape)}")
    if grid.dtype != input.dtype:
        raise TypeError(f"grid_sample: grid dtype must equal the input dtype {input.dtype}, got {grid.dtype}")


# --- public op -------------------------------------------------------------------------------------

def grid_sample(input: torch.Tensor, grid: torch.Tensor, impl: Optional[str] = None) -> torch.Tensor:
    """Bilinear grid sampling, zeros padding, align_corners=False; differentiable to any order.

    input [N, C, H, W] and grid [N, Ho, Wo, 2] (x, y in [-1, 1]) of the same float dtype and device
    -> [N, C, Ho, Wo]. ``impl``: None | 'cuda' | 'triton' | 'ref' (see ganops._registry).
    A NaN or infinite coordinate gives what torch gives on every backend: NaN in that output sample, no
    contribution to the input's gradient, a grid gradient of NaN along the other axis and 0 along its own.
    """
    _validate(input, grid)
    backend = _registry.choose(_FAMILY, impl, input)
    if backend == "ref":
        return _ref.grid_sample(input, grid)
    return KERNELS[backend]["grid_sample_gather"](input, grid, 0, 0)
