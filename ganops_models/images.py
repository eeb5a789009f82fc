"""Image helpers shared by training and the tools: [-1, 1] float <-> uint8, grids, PNG files.

Images in the networks are float [N, C, H, W] in [-1, 1] with C in {1, 3}; on disk they are uint8
PNG, written whole or not at all (:func:`ganops_models.files.atomic_write`).
"""
import io

import numpy as np
import torch
from PIL import Image

from ganops_models.errors import NonFiniteOutputError
from ganops_models.files import atomic_write


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float -> uint8 [0, 255] (round to nearest, clamp)."""
    return (images.detach().float() * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def check_finite(images: torch.Tensor, source: str) -> torch.Tensor:
    """``images`` when every value is finite, else :class:`NonFiniteOutputError` naming ``source`` (a
    network whose weights are NaN would otherwise give black pictures)."""
    if not bool(torch.isfinite(images).all()):
        raise NonFiniteOutputError(f"{source} produced NaN or infinite pixels: its weights are not finite (a "
                                   f"diverged run?) or --trunc is out of range; use an earlier checkpoint")
    return images


def make_grid(images: torch.Tensor, grid) -> np.ndarray:
    """Tile N = cols*rows images ([N, C, H, W] in [-1, 1], C in {1, 3}) into an HxWx3 uint8 array."""
    return tile_uint8(to_uint8(images).cpu(), grid)


def tile_uint8(u8: torch.Tensor, grid) -> np.ndarray:
    """Tile N = cols*rows uint8 images [N, C, H, W] (C in {1, 3}), row-major, into an HxWx3 uint8 array."""
    cols, rows = grid
    n, c, h, w = u8.shape
    if n != cols * rows:
        raise ValueError(f"images: expected {cols}x{rows}={cols * rows} images for the grid, got {n}")
    if c == 1:
        u8 = u8.expand(n, 3, h, w)
    u8 = u8.reshape(rows, cols, 3, h, w).permute(0, 3, 1, 4, 2).reshape(rows * h, cols * w, 3)
    return u8.numpy()


def png_bytes(arr: np.ndarray, compress_level: int = 6) -> bytes:
    """PNG encoding of a uint8 array [H, W, 3] (RGB), [H, W, 1] or [H, W] (grey)."""
    arr = arr[:, :, 0] if arr.ndim == 3 and arr.shape[2] == 1 else arr
    buf = io.BytesIO()
    Image.fromarray(arr, "L" if arr.ndim == 2 else "RGB").save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def save_png(image, path: str) -> None:
    """Write a uint8 image (array [H, W, C] / [H, W], or tensor [C, H, W]) to ``path`` as PNG, atomically."""
    if isinstance(image, torch.Tensor):
        image = image.permute(1, 2, 0).numpy()
    data = png_bytes(np.ascontiguousarray(image))
    with atomic_write(path) as f:
        f.write(data)
