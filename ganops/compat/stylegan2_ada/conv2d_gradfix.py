"""``torch_utils.ops.conv2d_gradfix`` API on ganops, built on public PyTorch APIs only.

As in StyleGAN2-ADA, ``enabled`` starts False (plain ``torch.nn.functional`` convolutions) and the
training loop sets it to True; ``no_weight_gradients()`` then skips weight gradients inside R1 and
path-length passes, while double backward keeps working.
"""
from .. import _gradfix

enabled = False
no_weight_gradients = _gradfix.no_weight_gradients


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return _gradfix.conv2d(enabled, input, weight, bias, stride, padding, dilation, groups)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    return _gradfix.conv_transpose2d(enabled, input, weight, bias, stride, padding, output_padding, groups, dilation)


__getattr__ = _gradfix.module_getattr
