"""Inception pool features of uint8 image batches, computed in float32 with TF32 disabled.

``InceptionFeatures(net, resize)(images_uint8) -> float32 [N, 2048]`` where ``resize`` picks the
reference pipeline (see ``resize.py``).  ``iterate_dataset`` / ``iterate_generator`` give the uint8
batches of a dataset or of a generator function.
"""
import numpy as np
import torch

from ganops_models.metrics import resize as _resize
from ganops_models.metrics.inception import load_inception
from ganops_models.metrics.precision import full_fp32


class InceptionFeatures:
    """Callable: uint8 [N,C,H,W] (any device) -> float32 [N,2048] on the CPU."""

    def __init__(self, net, resize="tf"):
        self.resize = _resize.check_mode(resize)
        self.net = net.eval()
        self.device = next(net.parameters()).device

    @classmethod
    def load(cls, inception_path=None, device="cpu", resize="tf"):
        _resize.check_mode(resize)
        return cls(load_inception(inception_path, device), resize)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = _resize.preprocess(images.to(self.device), self.resize)
        with full_fp32():
            feats = self.net(x)
        return feats.float().cpu()


def iterate_dataset(dataset, count, batch_size):
    """uint8 [B,C,H,W] batches of the first ``count`` items of ``dataset`` (items: uint8 [C,H,W]
    tensors or arrays, or tuples whose first element is one)."""
    for start in range(0, count, batch_size):
        items = []
        for i in range(start, min(start + batch_size, count)):
            item = dataset[i]
            if isinstance(item, (tuple, list)):
                item = item[0]
            items.append(torch.as_tensor(np.asarray(item)) if not isinstance(item, torch.Tensor) else item)
        yield torch.stack(items)


def iterate_generator(generator_fn, count, batch_size, seed=0):
    """Batches ``generator_fn(n, seed + k)`` for k = 0, 1, ... until ``count`` images were made."""
    for k, start in enumerate(range(0, count, batch_size)):
        n = min(batch_size, count - start)
        images = generator_fn(n, seed + k)
        images = _resize.to_rgb_uint8(images, "generator_fn output")
        if images.shape[0] != n:
            raise ValueError(f"generator_fn output: asked for {n} images, got {images.shape[0]}")
        yield images
