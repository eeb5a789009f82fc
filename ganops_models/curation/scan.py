"""One parallel pass over the images of a source: size, content hash, perceptual hash, thumbnail.

``scan(source, names, thumb=64, workers=2)`` decodes every file in a process pool and returns a
:class:`Scan`: for the readable images their names, original (w, h) sizes, SHA-1 of the file bytes,
64-bit DCT perceptual hashes (imagehash.phash: 32x32 grayscale, top-left 8x8 DCT coefficients against
their median, so robust to resizing, recompression and brightness shifts) of the whole image and of
the crops in :data:`CROPS` (centre and the four corners at 95%, so that a copy cropped by a few percent
matches one of them), and RGB uint8
thumbnails [thumb, thumb, 3] of the whole image (no crop); plus ``failed`` = [(name, reason)] for the
files that could not be decoded. JPEGs are decoded at reduced scale (``draft``) when only a thumbnail
is needed, which makes the pass several times faster on large photos. Images are turned upright by
their EXIF orientation (sizes too) unless ``exif_transpose=False``.
"""
import functools
import hashlib
import io
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import List, Tuple

import numpy as np
from PIL import Image

from ganops_models.data.image import oriented_size, to_rgb, upright
from ganops_models.extras import require

HASH_BITS = 64
# (left, top, right, bottom) fractions: the whole image first, then the centre and four corner crops.
CROPS = ((0, 0, 1, 1), (0.025, 0.025, 0.975, 0.975), (0, 0, 0.95, 0.95), (0.05, 0, 1, 0.95), (0, 0.05, 0.95, 1),
         (0.05, 0.05, 1, 1))


def phash(image):
    """imagehash.phash of a PIL image (the curation extra)."""
    return require("imagehash", "curation", "near-duplicate detection").phash(image)


@dataclass
class Scan:
    names: List[str]
    sizes: List[Tuple[int, int]]
    sha1: List[str]
    phash: np.ndarray       # bool [N, len(CROPS), 64] (or [N, 0, 64] without hashes)
    thumbs: np.ndarray      # uint8 [N, thumb, thumb, 3]
    failed: List[Tuple[str, str]] = field(default_factory=list)


def _scan_one(source, thumb: int, hashes: bool, exif_transpose: bool, name: str):
    """(name, size, sha1, phash bits, thumbnail) or (name, reason) when the file cannot be decoded."""
    try:
        with source.open(name) as fh:
            data = fh.read()
        with Image.open(io.BytesIO(data)) as img:
            size = oriented_size(img, exif_transpose)
            img.draft("RGB", (max(thumb or 0, 32) * 2,) * 2)
            img.load()
            rgb = to_rgb(upright(img, exif_transpose))
        w, h = rgb.size
        bits = np.zeros([0, HASH_BITS], bool) if not hashes else np.stack([phash(rgb.crop((round(l * w), round(t * h), round(r * w), round(b * h))))
                         .hash.reshape(-1) for l, t, r, b in CROPS])
        small = None if not thumb else np.asarray(rgb.resize((thumb, thumb), Image.Resampling.BILINEAR,
                                                             reducing_gap=2.0), np.uint8)
        return name, size, hashlib.sha1(data).hexdigest(), bits, small
    except Exception as exc:  # noqa: BLE001 - every unreadable file is listed, never a crash halfway
        return name, f"{type(exc).__name__}: {exc}"


def scan(source, names, thumb: int = 64, workers: int = 2, hashes: bool = True, exif_transpose: bool = True) -> Scan:
    """Scan ``names`` of ``source`` with ``workers`` processes (0 or 1: in this process); ``hashes=False``
    skips the perceptual hashes (``phash`` is then [N, 0, 64]), ``thumb=0`` the thumbnails ([N, 0, 0, 3]);
    ``exif_transpose=False`` reads the stored pixels without turning them by their EXIF orientation."""
    work = functools.partial(_scan_one, source, thumb, hashes, exif_transpose)
    if workers > 1 and len(names) > 1:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(work, names, chunksize=max(1, min(64, len(names) // (4 * workers)))))
    else:
        results = [work(n) for n in names]
    ok = [r for r in results if len(r) == 5]
    failed = [r for r in results if len(r) == 2]
    return Scan(names=[r[0] for r in ok], sizes=[r[1] for r in ok], sha1=[r[2] for r in ok],
                phash=np.array([r[3] for r in ok], bool).reshape(len(ok), len(CROPS) if hashes else 0, HASH_BITS),
                thumbs=np.array([r[4] for r in ok] if thumb else [], np.uint8).reshape(len(ok), thumb, thumb, 3),
                failed=failed)
