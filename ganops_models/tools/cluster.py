"""Cluster a dataset into visually similar groups: ``python -m ganops_models.cluster --source DIR|ZIP
--k K|auto [--features auto|inception|color] --outdir DIR``.

Decodes every image (in ``--workers`` processes; unreadable files are listed and skipped), describes
it (``curation/features.py``: FID Inception pool features, or the weight-free colour/texture
descriptor; ``auto`` uses Inception when its weights are found, like the metrics), runs MiniBatch
K-means and writes ``DIR/clusters.csv`` (path,cluster; paths relative to the source),
``DIR/cluster_<k>.png`` per cluster (its images nearest the centre) and, with ``--k auto``,
``DIR/elbow.png`` (inertia and silhouette for k = 2..12; the k with the best silhouette is used).
Pack a selection with ``python -m ganops_models.dataset_tool --clusters DIR/clusters.csv --keep-clusters 0,3``.
"""
import argparse
import os
import shlex

from ganops_models.curation import features as feats, kmeans, sheets, tables
from ganops_models.curation.scan import scan
from ganops_models.data.notes import skipped_message
from ganops_models.data.source import IMAGE_EXTENSIONS, open_source, shown
from ganops_models.errors import DatasetError
from ganops_models.files import output_folder
from ganops_models.metrics.inception import find_weights
from ganops_models.tools.cli import ArgumentParser, check_device, run_command

SHEET_IMAGES = 36


def _feature_kind(kind: str, inception_path, log) -> str:
    if kind != "auto":
        return kind
    try:
        find_weights(inception_path)
        return "inception"
    except FileNotFoundError:
        log("features: the FID Inception weights were not found (see python -m ganops_models.metrics --help), "
            "using the weight-free colour/texture descriptor")
        return "color"


def run(source: str, outdir: str, k="auto", features: str = "auto", inception_path=None, device="cpu",
        workers: int = 2, seed: int = 0, log=print):
    """Cluster ``source`` and write the outputs to ``outdir``; returns {path: cluster}."""
    src = open_source(source)
    names, skipped = src.listing()
    for name, reason in skipped:
        log(f"skipping {shown(name)}: {reason}")
    if not names:
        raise DatasetError(f"no readable images found in {source!r} (searched recursively for "
                           f"{', '.join(IMAGE_EXTENSIONS)})" + (f"; {skipped_message(skipped)}" if skipped else ""))
    if k != "auto":
        kmeans.check_k(k, len(names))
    kind = _feature_kind(features, inception_path, log)
    result = scan(src, names, thumb=128 if kind == "inception" else 64, workers=workers, hashes=False)
    for name, reason in result.failed:
        log(f"skipping unreadable {shown(name)}: {reason}")
    skipped += result.failed
    if not result.names:
        raise DatasetError(f"none of the {len(names)} image files in {source!r} could be decoded")
    x = feats.inception_features(result.thumbs, inception_path, device) if kind == "inception" \
        else feats.color_features(result.thumbs)
    output_folder(outdir, "--outdir")
    if k == "auto":
        results = kmeans.sweep(x, kmeans.auto_range(len(x)), seed)
        sheets.elbow_plot(results, os.path.join(outdir, "elbow.png"))
        k, clustering, score = max(results, key=lambda r: (r[2], -r[0]))
        log(f"--k auto: k={k} has the best silhouette ({score:.3f}); see {os.path.join(outdir, 'elbow.png')}")
    else:
        clustering = kmeans.kmeans(x, k, seed)
    tables.write_csv(os.path.join(outdir, "clusters.csv"), tables.CLUSTERS_HEADER,
                     [(n, int(c)) for n, c in zip(result.names, clustering.labels)])
    for c in range(k):
        best = kmeans.nearest_to_centre(x, clustering, c, SHEET_IMAGES)
        sheets.contact_sheet(src, [result.names[i] for i in best], os.path.join(outdir, f"cluster_{c}.png"))
    sizes = [int((clustering.labels == c).sum()) for c in range(k)]
    log(f"{len(result.names)} images in {k} clusters ({kind} features), sizes {sizes}; wrote "
        f"{os.path.join(outdir, 'clusters.csv')} and cluster_<k>.png\npack a selection: python -m "
        f"ganops_models.dataset_tool --source {shlex.quote(source)} --dest OUT.zip --clusters "
        f"{shlex.quote(os.path.join(outdir, 'clusters.csv'))} --keep-clusters 0"
        + (f"\n{skipped_message(skipped)}" if skipped else ""))
    return dict(zip(result.names, (int(c) for c in clustering.labels)))


def _k(text: str):
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--k must be a number of clusters or 'auto', got {text!r}") from None


def main(argv=None) -> int:
    parser = ArgumentParser(prog="python -m ganops_models.cluster", description=__doc__.split("\n")[0])
    parser.add_argument("--source", required=True, help="folder of images (recursive) or zip")
    parser.add_argument("--k", type=_k, required=True, help="number of clusters, or 'auto' (k=2..12, elbow.png)")
    parser.add_argument("--features", choices=("auto", "inception", "color"), default="auto",
                        help="auto: Inception when its weights are found, else color (default: auto)")
    parser.add_argument("--inception", default=None, help="path of the FID Inception weights (else $GANOPS_INCEPTION, "
                                                          "then the torch hub cache)")
    parser.add_argument("--outdir", required=True, help="folder for clusters.csv and the pictures")
    parser.add_argument("--device", default="cpu", help="device for the Inception features (default: cpu)")
    parser.add_argument("--workers", type=int, default=2, help="decode processes (default: 2)")
    parser.add_argument("--seed", type=int, default=0, help="K-means seed (default: 0)")
    args = parser.parse_args(argv)

    def run_command_body() -> int:
        run(args.source, args.outdir, args.k, args.features, args.inception, check_device(args.device),
            args.workers, args.seed)
        return 0
    return run_command(run_command_body)
