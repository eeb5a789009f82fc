"""The built-in dataset: 64x64 images of one large coloured shape (disc, square, triangle) on a gradient.

Generated deterministically from a seed (no download), written once as a dataset_tool-style zip
(``00000/img00000000.png`` ... plus ``dataset.json``) to ``$GANOPS_CACHE`` or ``~/.cache/ganops``,
atomically, and used when ``--data`` is omitted. Every image has a two-colour linear-gradient
background and one large shape near the centre (its class is the label: 0 disc, 1 square, 2
triangle) in a palette colour that contrasts with the background: a structure simple enough that the
default CPU run draws recognisable shapes in a few minutes (version 1 also had a small disc and a thin
stroke in every image; at 32x32 a few-minute run learnt only the colours of that).
"""
import json
import os
import zipfile

import numpy as np
from PIL import Image, ImageDraw

from ganops_models.files import atomic_write
from ganops_models.data.archive import add_entry
from ganops_models.images import png_bytes
from ganops_models.files import cache_root

VERSION = 2
RESOLUTION = 64
DEFAULT_NUM_IMAGES = 3000
DEFAULT_SEED = 0
CLASSES = ("disc", "square", "triangle")
_SUPERSAMPLE = 2
_PALETTE = np.array([
    (230, 57, 70), (244, 162, 97), (233, 196, 106), (42, 157, 143), (38, 70, 83),
    (69, 123, 157), (168, 218, 220), (131, 56, 236), (255, 190, 11), (241, 250, 238),
], dtype=np.float64)


def _gradient(rng: np.random.Generator, size: int) -> np.ndarray:
    """float [size, size, 3]: a linear blend between two palette colours along a random direction."""
    c0, c1 = _PALETTE[rng.choice(len(_PALETTE), 2, replace=False)]
    angle = rng.uniform(0, 2 * np.pi)
    coords = (np.arange(size) + 0.5) / size - 0.5
    t = np.cos(angle) * coords[None, :] + np.sin(angle) * coords[:, None]
    t = (t - t.min()) / (t.max() - t.min())
    return c0 * (1 - t[..., None]) + c1 * t[..., None]


def _contrasting_colour(rng: np.random.Generator, background: np.ndarray):
    """One of the three palette colours farthest from the background's mean colour, at random."""
    distance = np.linalg.norm(_PALETTE - background.reshape(-1, 3).mean(0), axis=1)
    return tuple(int(v) for v in _PALETTE[rng.choice(np.argsort(distance)[-3:])])


def draw_image(rng: np.random.Generator) -> tuple:
    """One composition: (uint8 [64, 64, 3], class label)."""
    s = RESOLUTION * _SUPERSAMPLE
    background = _gradient(rng, s)
    canvas = Image.fromarray(background.round().astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(canvas)
    label = int(rng.integers(len(CLASSES)))
    cx, cy = rng.uniform(0.4, 0.6, 2) * s
    r = rng.uniform(0.24, 0.34) * s
    colour = _contrasting_colour(rng, background)
    if label == 0:
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
    else:
        corners = 4 if label == 1 else 3
        # An axis-aligned square and an upright triangle, their circumradius enlarged to look as big as the disc.
        a, rc = (np.pi / 4, 1.25 * r) if corners == 4 else (-np.pi / 2, 1.2 * r)
        draw.polygon([(cx + rc * np.cos(a + k * 2 * np.pi / corners), cy + rc * np.sin(a + k * 2 * np.pi / corners))
                      for k in range(corners)], fill=colour)
    img = canvas.resize((RESOLUTION, RESOLUTION), Image.Resampling.BOX)
    return np.asarray(img), label


def write_zip(path: str, seed: int = DEFAULT_SEED, num_images: int = DEFAULT_NUM_IMAGES) -> None:
    """Generate the dataset into the zip ``path`` (atomically: temp file + rename). Same seed -> same bytes."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if not isinstance(num_images, int) or num_images < 1:
        raise ValueError(f"num_images must be a positive int, got {num_images!r}")
    with atomic_write(path) as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED) as zf:
        labels = []
        for i in range(num_images):
            arr, label = draw_image(np.random.default_rng([seed, i]))
            name = f"{i // 1000:05d}/img{i:08d}.png"
            add_entry(zf, name, png_bytes(arr))
            labels.append([name, label])
        add_entry(zf, "dataset.json", json.dumps({"labels": labels}))


def ensure(seed: int = DEFAULT_SEED, num_images: int = DEFAULT_NUM_IMAGES, directory=None) -> str:
    """Path of the built-in dataset zip, generating it on first use."""
    directory = directory or cache_root()
    path = os.path.join(directory, f"builtin-shapes-v{VERSION}-{RESOLUTION}px-seed{seed}-n{num_images}.zip")
    if not os.path.isfile(path):
        write_zip(path, seed=seed, num_images=num_images)
    return path
