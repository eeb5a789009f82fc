"""Prepare a training dataset: ``python -m ganops_models.dataset_tool --source DIR|ZIP --dest DIR|ZIP``.

Reads every image of the source (folder searched recursively, or zip), converts it to RGB, fits it to
``--resolution`` ('W' or 'WxH', powers of two; default: the first image's size) with ``--transform``
and writes PNGs ``00000/img00000000.png`` ... plus ``dataset.json`` ({"labels": [[path, label], ...]}
from the source's dataset.json, or null). Unreadable files are reported and left out. A zip
destination is written atomically; a folder destination must not exist or be empty.
"""
import argparse
import contextlib
import json
import os
import shlex
import sys
import zipfile
from typing import Optional

from .atomic import atomic_write
from .data import DatasetError, TRANSFORMS, open_dataset
from .data.archive import add_entry, png_bytes
from .data.source import LABELS_FILE


def _raw_labels(dataset):
    """The source's labels for the kept images in order, or None when it has no dataset.json labels."""
    meta = dataset.source.read_json(LABELS_FILE)
    if meta is None or meta.get("labels") is None:
        return None
    table = {str(k).replace("\\", "/"): v for k, v in meta["labels"]}
    missing = [n for n in dataset.names if n not in table]
    if missing:
        raise DatasetError(f"{LABELS_FILE} of the source has no label for {len(missing)} image(s), e.g. {missing[:3]}")
    return [table[n] for n in dataset.names]


def _is_zip_dest(dest: str) -> bool:
    return dest.lower().endswith(".zip")


def _write_images(dataset, dest: str, archive, labels, log):
    """Every readable image as ``00000/img00000000.png``..., into ``archive`` or the folder ``dest``;
    returns (count, [[name, label], ...])."""
    out_labels, written = [], 0
    for i in range(dataset.num_images):
        try:
            arr = dataset.load(i)
        except Exception as exc:  # noqa: BLE001 - reported and left out
            log(f"skipping {dataset.names[i]!r}: {type(exc).__name__}: {exc}")
            continue
        name = f"{written // 1000:05d}/img{written:08d}.png"
        if archive is not None:
            add_entry(archive, name, png_bytes(arr))
        else:
            os.makedirs(os.path.join(dest, name.split("/")[0]), exist_ok=True)
            with open(os.path.join(dest, *name.split("/")), "wb") as fh:
                fh.write(png_bytes(arr))
        if labels is not None:
            out_labels.append([name, labels[i]])
        written += 1
    return written, out_labels


def convert(source: str, dest: str, resolution=None, transform: str = "center-crop",
            max_images: Optional[int] = None, log=print) -> int:
    """Write the prepared dataset to ``dest`` (folder, or zip when it ends in .zip); returns the image count."""
    dataset = open_dataset(source, resolution=resolution, transform=transform, max_images=max_images)
    if os.path.abspath(dest) == os.path.abspath(source):
        raise DatasetError("--dest must differ from --source")
    labels = _raw_labels(dataset)
    is_zip = _is_zip_dest(dest)
    if not is_zip and os.path.exists(dest) and (not os.path.isdir(dest) or os.listdir(dest)):
        raise DatasetError(f"--dest {dest!r} exists and is not an empty folder; choose a new path")
    with contextlib.ExitStack() as stack:
        archive = None
        if not is_zip:
            os.makedirs(dest, exist_ok=True)
        else:
            archive = stack.enter_context(zipfile.ZipFile(stack.enter_context(atomic_write(dest)), "w",
                                                          zipfile.ZIP_STORED))
        written, out_labels = _write_images(dataset, dest, archive, labels, log)
        meta = json.dumps({"labels": out_labels if labels is not None else None})
        if archive is not None:
            add_entry(archive, LABELS_FILE, meta)
        else:
            with open(os.path.join(dest, LABELS_FILE), "w", encoding="utf-8") as fh:
                fh.write(meta)
    h, w = dataset.resolution
    skipped = len(dataset.skipped) + dataset.num_images - written
    log(f"wrote {written} images at {w}x{h} to {dest}" + (" with labels" if labels is not None else "")
        + (f"; skipped {skipped} unreadable file(s) (named in the warnings above)" if skipped else "")
        + f"\ntrain on it: python -m ganops_models.train --data {shlex.quote(dest)}")
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ganops_models.dataset_tool", description=__doc__.split("\n")[0])
    parser.add_argument("--source", required=True, help="folder of images (recursive) or zip")
    parser.add_argument("--dest", required=True, help="output folder, or a path ending in .zip")
    parser.add_argument("--resolution", default=None, help="'W' or 'WxH', powers of two (default: first image's size)")
    parser.add_argument("--transform", choices=TRANSFORMS, default="center-crop")
    parser.add_argument("--max-images", type=int, default=None, help="keep only the first N images (sorted by path)")
    args = parser.parse_args(argv)
    try:
        convert(args.source, args.dest, resolution=args.resolution, transform=args.transform,
                max_images=args.max_images)
    except (DatasetError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
