"""Image sets for metrics: folders / zips (read with ganops_models.data) or dataset objects.

``open_images(path)`` returns a ``ganops_models.data.ImageDataset`` of every image at the size of
the first image (no power-of-two restriction, no resizing of images already that size; other
sizes are centre-cropped/resized by the data module).  Items are (uint8 [3,H,W], label).
``fingerprint(dataset)`` identifies the exact image set for the statistics cache: the absolute
path, the sorted file list with sizes and mtimes (a zip: its size and mtime), resolution,
transform and mirroring; None for dataset objects it cannot identify (no caching).
"""
import hashlib
import json
import os

from PIL import Image

from ganops_models.data import ImageDataset
from ganops_models.errors import DatasetError
from ganops_models.data.source import FolderSource, ZipSource, open_source


def open_images(path, what="real") -> ImageDataset:
    source = open_source(path)
    names = source.list_images()
    if not names:
        raise DatasetError(f"{what}: no images found in {os.fspath(path)!r}")
    with source.open(names[0]) as fh, Image.open(fh) as img:
        w, h = img.size
    return ImageDataset(source, names, (h, w))


def fingerprint(dataset):
    """A hex digest identifying the image set (see module docstring), or None."""
    if not isinstance(dataset, ImageDataset):
        return None
    source = dataset.source
    entry = {"names": dataset.names, "resolution": list(dataset.resolution), "transform": dataset.transform,
             "mirror": dataset.mirror, "skipped": [n for n, _ in dataset.skipped]}
    if isinstance(source, FolderSource):
        entry["path"] = source.root
        stats = [os.stat(os.path.join(source.root, *n.split("/"))) for n in dataset.names]
        entry["files"] = [[s.st_size, s.st_mtime_ns] for s in stats]
    elif isinstance(source, ZipSource):
        entry["path"] = source.path
        st = os.stat(source.path)
        entry["files"] = [st.st_size, st.st_mtime_ns]
    else:
        return None
    return hashlib.sha256(json.dumps(entry, sort_keys=True).encode()).hexdigest()
