"""Drop-in for rosinality's ``op/`` folder (stylegan2-pytorch and the many repos that vendor it):

    from ganops.compat.rosinality import FusedLeakyReLU, fused_leaky_relu, upfirdn2d, conv2d_gradfix
"""
from . import conv2d_gradfix
from .fused_act import FusedLeakyReLU, fused_leaky_relu
from .upfirdn2d import upfirdn2d

__all__ = ["FusedLeakyReLU", "conv2d_gradfix", "fused_leaky_relu", "upfirdn2d"]
