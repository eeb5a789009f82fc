"""``torch_utils.ops.grid_sample_gradfix`` API on ganops: bilinear, zeros padding, align_corners=False.

With ``enabled`` (False by default, as in StyleGAN2-ADA) the call goes to :func:`ganops.grid_sample`,
whose backward is itself differentiable; otherwise to ``torch.nn.functional.grid_sample``.
"""
import torch

from ...ops.grid_sample import grid_sample as _grid_sample

enabled = False


def grid_sample(input, grid):
    if enabled:
        return _grid_sample(input, grid)
    return torch.nn.functional.grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
