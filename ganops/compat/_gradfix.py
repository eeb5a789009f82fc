"""The conv2d_gradfix behaviour shared by both compat families, switched by each module's ``enabled``."""
import torch

from ..ref import conv2d_gradfix as _gradfix


def conv2d(enabled, input, weight, bias, stride, padding, dilation, groups):
    if enabled:
        return _gradfix.conv2d(input, weight, bias, stride, padding, dilation, groups)
    return torch.nn.functional.conv2d(input, weight, bias, stride, padding, dilation, groups)


def conv_transpose2d(enabled, input, weight, bias, stride, padding, output_padding, groups, dilation):
    if enabled:
        return _gradfix.conv_transpose2d(input, weight, bias, stride, padding, output_padding, groups, dilation)
    return torch.nn.functional.conv_transpose2d(input, weight, bias, stride, padding, output_padding, groups, dilation)


no_weight_gradients = _gradfix.no_weight_gradients


def module_getattr(name):
    """``weight_gradients_disabled`` as a module attribute, as the vendored modules expose it."""
    if name == "weight_gradients_disabled":
        return _gradfix.weight_gradients_disabled()
    raise AttributeError(name)
