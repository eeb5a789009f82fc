"""Prepare a training dataset: ``python -m ganops_models.dataset_tool --source DIR|ZIP --dest DIR|ZIP``.

Reads every image of the source (folder searched recursively, or zip), converts it to RGB, fits it to
``--resolution`` ('W' or 'WxH', powers of two; default: the first image's size) with ``--transform``
and writes PNGs ``00000/img00000000.png`` ... plus ``dataset.json`` ({"labels": [[path, label], ...]}
from the source's dataset.json, or null). Files that are left out (unreadable, not regular files,
links to a file or folder already read, too large, zip entries of the same name: see
``data/source.py``) are each named in a warning and counted, with the first few, at the end. Photos
are turned upright by their EXIF orientation; ``--no-exif-transpose`` packs the stored pixels instead,
as NVIDIA's dataset_tool does. A zip destination is written atomically; a folder destination must not
exist or be empty.

``--crop center|letterbox|pad|none`` picks the fit (see ``data/image.py``). ``--clusters clusters.csv
--keep-clusters 0,3`` packs only those clusters' images (from ``python -m ganops_models.cluster``).
``--dedupe`` keeps one image (the largest) of each group of exact or near duplicates (see
``curation/dedupe.py``; ``--dedupe-threshold`` in hash bits) and writes ``OUT.duplicates.csv``
(kept,dropped,distance) next to the destination.
"""
import contextlib
import json
import os
import shlex
import zipfile
from typing import Optional

from ganops_models.files import output_folder
from ganops_models.tools.cli import ArgumentParser, finishing, run_command
from ganops_models.files import atomic_write
from ganops_models.curation import dedupe, tables
from ganops_models.curation.scan import scan
from ganops_models.data import CROP_MODES, TRANSFORMS, open_dataset
from ganops_models.errors import DatasetError
from ganops_models.data.archive import add_entry
from ganops_models.images import png_bytes
from ganops_models.data.notes import skipped_message
from ganops_models.data.source import LABELS_FILE, shown


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
    returns (count, [[name, label], ...], [(name, reason)] of the images that failed to decode)."""
    out_labels, written, failed = [], 0, []
    for i in range(dataset.num_images):
        try:
            arr = dataset.load(i)
        except Exception as exc:  # noqa: BLE001 - reported and left out
            failed.append((dataset.names[i], f"{type(exc).__name__}: {exc}"))
            log(f"skipping {shown(dataset.names[i])}: {failed[-1][1]}")
            continue
        name = f"{written // 1000:05d}/img{written:08d}.png"
        data = png_bytes(arr)
        if archive is not None:
            add_entry(archive, name, data)
        else:
            with finishing(f"wrote {written + 1} image(s) to {dest}"), \
                    atomic_write(os.path.join(dest, *name.split("/"))) as fh:
                fh.write(data)
        if labels is not None:
            out_labels.append([name, labels[i]])
        written += 1
    return written, out_labels, failed


def _keep_clusters(dataset, clusters_csv: str, keep_clusters: str, log) -> None:
    """Restrict ``dataset.names`` to the images of the kept clusters."""
    kept, unlisted = tables.select_clusters(dataset.names, tables.read_clusters(clusters_csv),
                                            tables.parse_keep(keep_clusters), clusters_csv)
    if unlisted:
        log(f"note: {unlisted} image(s) of the source are not in {clusters_csv} and are left out")
    if not kept:
        raise DatasetError(f"clusters {keep_clusters} of {clusters_csv} hold no image of this --source; nothing to pack")
    log(f"packing {len(kept)} image(s) of clusters {keep_clusters} (of {dataset.num_images})")
    dataset.names = kept


def _dedupe(dataset, dest: str, threshold: int, workers: int, log):
    """Drop the near duplicates from ``dataset.names``; writes the report beside ``dest``; returns
    [(name, reason)] of the images that failed to decode."""
    result = scan(dataset.source, dataset.names, thumb=0, workers=workers, exif_transpose=dataset.exif_transpose)
    for name, reason in result.failed:
        log(f"skipping unreadable {shown(name)}: {reason}")
    rows = dedupe.find_duplicates(result, threshold)
    if not result.names:
        raise DatasetError(f"none of the {len(result.failed)} selected image(s) could be decoded; nothing to pack")
    dropped = {row[1] for row in rows}
    dataset.names = [n for n in result.names if n not in dropped]
    report = tables.duplicates_path(dest)
    tables.write_csv(report, tables.DUPLICATES_HEADER, rows)
    groups = len({row[0] for row in rows})
    log(f"dedupe: {len(result.names)} readable images, {len(dropped)} duplicate(s) dropped in {groups} group(s) "
        f"(threshold {threshold} bits); kept {len(dataset.names)}; report: {report}")
    return result.failed


def convert(source: str, dest: str, resolution=None, transform: str = "center-crop",
            max_images: Optional[int] = None, log=print, dedupe_threshold: Optional[int] = None,
            clusters_csv: Optional[str] = None, keep_clusters: Optional[str] = None, workers: int = 2,
            exif_transpose: bool = True) -> int:
    """Write the prepared dataset to ``dest`` (folder, or zip when it ends in .zip); returns the image count.

    ``clusters_csv`` + ``keep_clusters`` ('0,3') select clusters first; ``dedupe_threshold`` (bits, or
    None for no dedupe) then removes near duplicates. ``exif_transpose=False``: pack the stored pixels,
    not the photos turned upright by their EXIF orientation."""
    dataset = open_dataset(source, resolution=resolution, transform=transform, max_images=max_images,
                           exif_transpose=exif_transpose)
    if os.path.abspath(dest) == os.path.abspath(source):
        raise DatasetError("--dest must differ from --source")
    is_zip = _is_zip_dest(dest)
    if not is_zip and os.path.exists(dest) and (not os.path.isdir(dest) or os.listdir(dest)):
        raise DatasetError(f"--dest {dest!r} exists and is not an empty folder; choose a new path")
    if (clusters_csv is None) != (keep_clusters is None):
        raise DatasetError("--clusters and --keep-clusters go together: give both, e.g. "
                           "--clusters DIR/clusters.csv --keep-clusters 0,3")
    if clusters_csv is not None:
        _keep_clusters(dataset, clusters_csv, keep_clusters, log)
    skipped = list(dataset.skipped)
    if dedupe_threshold is not None:
        skipped += _dedupe(dataset, dest, dedupe_threshold, workers, log)
    labels = _raw_labels(dataset)
    with contextlib.ExitStack() as stack:
        archive = None
        if not is_zip:
            output_folder(dest, "--dest")
        else:
            archive = stack.enter_context(zipfile.ZipFile(stack.enter_context(atomic_write(dest)), "w",
                                                          zipfile.ZIP_STORED))
        written, out_labels, failed = _write_images(dataset, dest, archive, labels, log)
        meta = json.dumps({"labels": out_labels if labels is not None else None})
        if archive is not None:
            add_entry(archive, LABELS_FILE, meta)
        else:
            with atomic_write(os.path.join(dest, LABELS_FILE)) as fh:
                fh.write(meta.encode("utf-8"))
    h, w = dataset.resolution
    skipped += failed
    log(f"wrote {written} images at {w}x{h} to {dest}" + (" with labels" if labels is not None else "")
        + (f"; {skipped_message(skipped)}" if skipped else "")
        + f"\ntrain on it: python -m ganops_models.train --data {shlex.quote(dest)}")
    return written


def main(argv=None) -> int:
    parser = ArgumentParser(prog="python -m ganops_models.dataset_tool", description=__doc__.split("\n")[0])
    parser.add_argument("--source", required=True, help="folder of images (recursive) or zip")
    parser.add_argument("--dest", required=True, help="output folder, or a path ending in .zip")
    parser.add_argument("--resolution", default=None, help="'W' or 'WxH', powers of two (default: first image's size)")
    parser.add_argument("--transform", choices=TRANSFORMS, default="center-crop")
    parser.add_argument("--crop", choices=sorted(CROP_MODES), default=None,
                        help="center (default, same as --transform center-crop), letterbox (NVIDIA's wide crop), "
                             "pad (to the aspect with the edge colour) or none (resize without cropping)")
    parser.add_argument("--dedupe", action="store_true",
                        help="keep one (the largest) of each group of exact/near duplicates; writes OUT.duplicates.csv")
    parser.add_argument("--dedupe-threshold", type=int, default=dedupe.DEFAULT_THRESHOLD,
                        help="max perceptual-hash distance in bits (0..12 of 64) for near duplicates (default: %(default)s; "
                             "8 also catches one-sided crops of ~3%%)")
    parser.add_argument("--clusters", default=None, help="clusters.csv from python -m ganops_models.cluster")
    parser.add_argument("--keep-clusters", default=None, help="with --clusters: pack only these clusters, e.g. 0,3")
    parser.add_argument("--workers", type=int, default=2, help="decode processes for --dedupe (default: 2)")
    parser.add_argument("--max-images", type=int, default=None, help="keep only the first N images (sorted by path)")
    parser.add_argument("--no-exif-transpose", action="store_true",
                        help="pack the stored pixels, not the photos turned upright by their EXIF orientation "
                             "(byte for byte as NVIDIA's dataset_tool)")
    args = parser.parse_args(argv)

    def run() -> int:
        transform = CROP_MODES[args.crop] if args.crop else args.transform
        convert(args.source, args.dest, resolution=args.resolution, transform=transform, max_images=args.max_images,
                dedupe_threshold=args.dedupe_threshold if args.dedupe else None, clusters_csv=args.clusters,
                keep_clusters=args.keep_clusters, workers=args.workers,
                exif_transpose=not args.no_exif_transpose)
        return 0
    return run_command(run, "partial files were removed (every image written is whole; --dest is incomplete)")
