"""``torch_utils.ops.fma``: ``fma(a, b, c) = a * b + c`` with broadcasting, gradients summed back to
each argument's shape (differentiable to any order)."""
import torch


def fma(a, b, c):
    return torch.addcmul(c, a, b)
