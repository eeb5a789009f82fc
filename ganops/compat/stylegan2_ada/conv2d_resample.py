"""``torch_utils.ops.conv2d_resample`` API on ganops."""
from ...ops.conv2d_resample import conv2d_resample

__all__ = ["conv2d_resample"]
