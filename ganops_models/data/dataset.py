"""Image datasets for training: index a folder/zip, fit images to the resolution, labels, mirror.

``dataset[i]`` -> (image uint8 [3, H, W], label float32 [label_dim]) as numpy arrays. Indices
>= the number of images (with ``mirror``) give the x-flipped copies. Unreadable files are reported by
name and skipped: when the source is listed (links read twice, FIFOs and other non-regular files,
files too large: see ``source.py``), at index time by reading each file's header, at load time by
substituting the next readable image (each failure is logged once per process and remembered).
Images are turned upright by their EXIF orientation unless ``exif_transpose=False``.
"""
import logging
import os
from typing import List, Optional, Tuple

import numpy as np
import torch
from PIL import Image

from ganops_models.data import image as im
from ganops_models.errors import DatasetError
from ganops_models.data.source import IMAGE_EXTENSIONS, LABELS_FILE, open_source, shown

log = logging.getLogger("ganops_models.data")


class ImageDataset(torch.utils.data.Dataset):
    """Readable images of a source at a fixed resolution (H, W), RGB uint8, with optional labels."""

    def __init__(self, source, names: List[str], resolution: Tuple[int, int], transform: str = "center-crop",
                 mirror: bool = False, labels: Optional[np.ndarray] = None, skipped=(), sizes=None,
                 exif_transpose: bool = True):
        self.source = source
        self.names = list(names)
        self.resolution = tuple(resolution)
        self.transform = transform
        self.mirror = bool(mirror)
        self.labels = labels if labels is not None else np.zeros([len(self.names), 0], np.float32)
        self.skipped = list(skipped)   # (name, reason) of files left out when listing and indexing
        self.exif_transpose = bool(exif_transpose)
        self.sizes = list(sizes) if sizes is not None else None   # (W, H) of each file, None if unknown
        self.load_failures = {}        # name -> reason, files that failed to decode in this process
        self.name = source.name

    num_channels = 3

    @property
    def label_dim(self) -> int:
        return int(self.labels.shape[1])

    @property
    def has_labels(self) -> bool:
        return self.label_dim > 0

    @property
    def num_images(self) -> int:
        return len(self.names)

    def __len__(self) -> int:
        return self.num_images * (2 if self.mirror else 1)

    def load(self, index: int) -> np.ndarray:
        """Image ``index`` (< num_images) as uint8 [H, W, 3]; raises if the file cannot be decoded."""
        name = self.names[index]
        with self.source.open(name) as fh:
            return im.fit(im.decode(fh, self.exif_transpose), self.resolution, self.transform)

    def __getitem__(self, idx: int):
        n = self.num_images
        if not 0 <= idx < len(self):
            raise IndexError(f"index {idx} out of range for a dataset of {len(self)} samples")
        base, flip = idx % n, idx >= n
        for attempt in range(n):
            i = (base + attempt) % n
            name = self.names[i]
            if name in self.load_failures:
                continue
            try:
                img = self.load(i)
            except Exception as exc:  # noqa: BLE001 - any decode failure must not end a long run
                self.load_failures[name] = f"{type(exc).__name__}: {exc}"
                log.warning("%s: cannot load %s (%s); using another image instead", self.name, shown(name),
                            self.load_failures[name])
                continue
            if flip:
                img = img[:, ::-1]
            return np.ascontiguousarray(img.transpose(2, 0, 1)), self.labels[i].copy()
        raise DatasetError(f"{self.name}: none of the {n} images could be loaded; first failure: "
                           f"{next(iter(self.load_failures.items()))}")

    def __repr__(self) -> str:
        h, w = self.resolution
        return (f"ImageDataset({self.name!r}, {self.num_images} images, {w}x{h}, mirror={self.mirror}, "
                f"label_dim={self.label_dim})")


def _index(source, names: List[str], exif_transpose: bool = True):
    """(readable names, (W, H) sizes as decoded, skipped [(name, reason)]) by opening every file's header."""
    good, sizes, skipped = [], [], []
    for name in names:
        try:
            with source.open(name) as fh, Image.open(fh) as img:
                size = im.oriented_size(img, exif_transpose)
        except Exception as exc:  # noqa: BLE001 - reported and skipped, see module docstring
            skipped.append((name, f"{type(exc).__name__}: {exc}"))
            continue
        good.append(name)
        sizes.append(size)
    return good, sizes, skipped


def _labels(source, names: List[str]) -> np.ndarray:
    """float32 [len(names), label_dim] from dataset.json: int labels -> one-hot, lists -> vectors."""
    meta = source.read_json(LABELS_FILE)
    raw = None if meta is None else meta.get("labels")
    if raw is None:
        raise DatasetError(f"use_labels=True but {source.name} has no labels: add a {LABELS_FILE} next to the "
                           f"images holding {{\"labels\": [[\"relative/path.png\", 0], ...]}}, or train "
                           f"unconditionally")
    try:
        table = {str(k).replace("\\", "/"): v for k, v in raw}
    except (TypeError, ValueError):
        raise DatasetError(f"{LABELS_FILE} of {source.name}: 'labels' must be a list of [path, label] pairs") from None
    missing = [n for n in names if n not in table]
    if missing:
        raise DatasetError(f"{LABELS_FILE} of {source.name} has no label for {len(missing)} image(s), e.g. "
                           f"{missing[:3]}; give every image a label")
    values = [table[n] for n in names]
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        if min(values) < 0:
            raise DatasetError(f"{LABELS_FILE} of {source.name}: class labels must be >= 0, found {min(values)}")
        onehot = np.zeros([len(values), max(values) + 1], np.float32)
        onehot[np.arange(len(values)), values] = 1
        return onehot
    try:
        arr = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.ndim != 2:
        raise DatasetError(f"{LABELS_FILE} of {source.name}: labels must all be class ints or all be equal-length "
                           f"lists of numbers")
    return arr


def open_dataset(path=None, resolution=None, mirror: bool = False, use_labels: bool = False,
                 transform: str = "center-crop", max_images: Optional[int] = None,
                 exif_transpose: bool = True) -> ImageDataset:
    """Open a training dataset.

    path: a folder of images (recursive), a zip of images, a dataset made by dataset_tool, or None
    for the built-in dataset (generated once into the cache). resolution: None (the first readable
    image's size, which must be a power of two) or an int / 'WxH' string / (H, W) tuple; images of
    another size are resized and centre-cropped on the fly. mirror: add x-flipped copies.
    use_labels: read one-hot/vector labels from dataset.json (DatasetError if absent).
    max_images: keep only the first N images (sorted by path). exif_transpose: turn photos upright
    by their EXIF orientation (False: the stored pixels, as NVIDIA's dataset_tool).
    """
    if path is None:
        from ganops_models.data import builtin as builtin_dataset
        path = builtin_dataset.ensure()
    if transform not in im.TRANSFORMS:
        raise ValueError(f"transform must be one of {im.TRANSFORMS}, got {transform!r}")
    if max_images is not None and (not isinstance(max_images, int) or max_images < 1):
        raise ValueError(f"max_images must be a positive int or None, got {max_images!r}")
    hw = im.parse_resolution(resolution)
    source = open_source(path)
    names, skipped = source.listing()
    if not names and not skipped:
        raise DatasetError(f"no images found in {os.fspath(path)!r} (searched recursively for "
                           f"{', '.join(IMAGE_EXTENSIONS)}); point --data at a folder or zip with images")
    names, sizes, unreadable = _index(source, names, exif_transpose)
    skipped += unreadable
    for name, reason in skipped:
        log.warning("%s: skipping %s (%s)", source.name, shown(name), reason)
    if not names:
        raise DatasetError(f"none of the image files in {os.fspath(path)!r} could be read (first: "
                           f"{shown(skipped[0][0])}: {skipped[0][1]}); check that they are valid images")
    if max_images is not None:
        names, sizes = names[:max_images], sizes[:max_images]
    if hw is None:
        w, h = sizes[0]
        if not (im.is_power_of_two(w) and im.is_power_of_two(h) and w >= 4 and h >= 4):
            raise DatasetError(f"the images of {os.fspath(path)!r} are {w}x{h} (e.g. {shown(names[0])}), not a power of "
                               f"two; pass a resolution (e.g. --resolution 256) to resize them on the fly, or "
                               f"prepare them with `python -m ganops_models.dataset_tool --resolution 256`")
        hw = (h, w)
    upscaled = im.upscaled_message(names, sizes, hw, transform)
    if upscaled:
        log.warning("%s: %s", source.name, upscaled)
    labels = _labels(source, names) if use_labels else None
    return ImageDataset(source, names, hw, transform=transform, mirror=mirror, labels=labels, skipped=skipped,
                        sizes=sizes, exif_transpose=exif_transpose)


def reconfigure(dataset: ImageDataset, resolution=None, mirror: bool = False, use_labels: bool = False,
                max_images: Optional[int] = None, transform: Optional[str] = None) -> ImageDataset:
    """The images of an opened dataset with other settings, without indexing the files again (so
    unreadable files are reported once). resolution, max_images, transform: as for :func:`open_dataset`;
    None keeps the dataset's."""
    hw = im.parse_resolution(resolution) or dataset.resolution
    names, sizes = dataset.names, dataset.sizes
    if max_images is not None:
        names, sizes = names[:max_images], (sizes[:max_images] if sizes is not None else None)
    labels = _labels(dataset.source, names) if use_labels else None
    return ImageDataset(dataset.source, names, hw, transform=transform or dataset.transform, mirror=mirror, labels=labels,
                        skipped=dataset.skipped, sizes=sizes, exif_transpose=dataset.exif_transpose)


def resized_count(dataset: ImageDataset):
    """(number of images whose file size differs from the dataset resolution, one such (W, H)), or
    (0, None); from the sizes read at index time."""
    h, w = dataset.resolution
    other = [size for size in (dataset.sizes or []) if tuple(size) != (w, h)]
    return len(other), (other[0] if other else None)
