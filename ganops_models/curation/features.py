"""Per-image descriptors for clustering, from the thumbnails of a :class:`~.scan.Scan`.

``color``: a weight-free descriptor, three blocks, each standardised over the set (zero mean, unit
variance per dimension) and scaled by 1/sqrt(its size) so that every block weighs the same:
HSV colour histogram (8 hue x 3 saturation x 3 value bins, fractions of pixels), per-channel RGB mean
and standard deviation on a 2x2 grid of the image, and at three scales (64, 32, 16 px) the mean and
standard deviation of the grey-level gradient magnitude plus an 8-bin gradient-orientation histogram
weighted by magnitude (texture and structure).
``inception``: the 2048-d pool features of the FID Inception network (weights found as in the
metrics: ``--inception``, ``$GANOPS_INCEPTION``, the torch hub cache).
"""
import numpy as np
import torch
from PIL import Image

SCALES = (64, 32, 16)


def _hsv_histogram(thumbs: np.ndarray) -> np.ndarray:
    hsv = np.stack([np.asarray(Image.fromarray(t).convert("HSV")) for t in thumbs]).astype(np.int64)
    h, s, v = hsv[..., 0] * 8 // 256, hsv[..., 1] * 3 // 256, hsv[..., 2] * 3 // 256
    bins = (h * 9 + s * 3 + v).reshape(len(thumbs), -1)
    counts = np.stack([np.bincount(b, minlength=72) for b in bins]).astype(np.float64)
    return counts / bins.shape[1]


def _grid_moments(thumbs: np.ndarray) -> np.ndarray:
    n, hh, ww = thumbs.shape[:3]
    cells = thumbs.astype(np.float64).reshape(n, 2, hh // 2, 2, ww // 2, 3)
    return np.concatenate([cells.mean((2, 4)).reshape(n, -1), cells.std((2, 4)).reshape(n, -1)], 1) / 255.0


def _gradient_statistics(thumbs: np.ndarray) -> np.ndarray:
    grey = thumbs.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) / 255.0
    out = []
    for size in SCALES:
        g = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(grey)[:, None], size)[:, 0].numpy()
        gy, gx = np.gradient(g, axis=(1, 2))
        mag = np.hypot(gx, gy).reshape(len(g), -1)
        angle = ((np.arctan2(gy, gx) % np.pi) / np.pi * 8).astype(np.int64).clip(0, 7).reshape(len(g), -1)
        hist = np.stack([np.bincount(a, weights=m, minlength=8) for a, m in zip(angle, mag)])
        hist /= hist.sum(1, keepdims=True) + 1e-12
        out += [mag.mean(1, keepdims=True), mag.std(1, keepdims=True), hist]
    return np.concatenate(out, 1)


def _standardise(block: np.ndarray) -> np.ndarray:
    z = (block - block.mean(0)) / (block.std(0) + 1e-8)
    return z / np.sqrt(block.shape[1])


def color_features(thumbs: np.ndarray) -> np.ndarray:
    """float64 [N, 72 + 24 + 30] from uint8 thumbnails [N, S, S, 3] (S >= 16, even)."""
    blocks = [_hsv_histogram(thumbs), _grid_moments(thumbs), _gradient_statistics(thumbs)]
    return np.concatenate([_standardise(b) for b in blocks], 1)


def inception_features(thumbs: np.ndarray, inception_path=None, device="cpu", batch: int = 32) -> np.ndarray:
    """float64 [N, 2048] Inception pool features of uint8 thumbnails [N, S, S, 3]."""
    from ganops_models.metrics.features import InceptionFeatures
    net = InceptionFeatures.load(inception_path, device)
    images = torch.from_numpy(thumbs).permute(0, 3, 1, 2)
    return torch.cat([net(images[i:i + batch]) for i in range(0, len(images), batch)]).double().numpy()
