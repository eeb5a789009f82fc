"""Full float32 precision on the GPU for metric computations."""
import contextlib

import torch


@contextlib.contextmanager
def full_fp32():
    """Disable TF32 for convolutions and matmuls (it would perturb features ~1e-3); restores the flags."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
