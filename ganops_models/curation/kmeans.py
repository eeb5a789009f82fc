"""MiniBatch K-means (scikit-learn) on image descriptors, and the k sweep behind ``--k auto``."""
from dataclasses import dataclass
from typing import List

import numpy as np

from ganops_models.errors import DatasetError
from ganops_models.extras import require

SILHOUETTE_SAMPLE = 2000   # silhouette on at most this many images (it is O(n^2))


@dataclass
class Clustering:
    labels: np.ndarray     # int [N]
    centers: np.ndarray    # [k, D]
    inertia: float


def check_k(k: int, n: int) -> None:
    if k < 1:
        raise DatasetError(f"--k must be >= 1, got {k}")
    if k > n:
        raise DatasetError(f"--k {k} is larger than the number of readable images ({n}); choose k <= {n}")


def kmeans(features: np.ndarray, k: int, seed: int = 0) -> Clustering:
    """MiniBatchKMeans with k clusters (k-means++ init, one run as scikit-learn's default, fixed seed)."""
    check_k(k, len(features))
    cluster = require("sklearn.cluster", "curation", "clustering (k-means)")
    model = cluster.MiniBatchKMeans(n_clusters=k, random_state=seed, batch_size=1024)
    labels = model.fit_predict(features)
    return Clustering(labels=labels, centers=model.cluster_centers_, inertia=float(model.inertia_))


def silhouette(features: np.ndarray, labels: np.ndarray, seed: int = 0) -> float:
    """Mean silhouette (sampled above SILHOUETTE_SAMPLE images); nan for a single cluster."""
    if len(np.unique(labels)) < 2 or len(np.unique(labels)) >= len(labels):
        return float("nan")
    size = min(len(labels), SILHOUETTE_SAMPLE)
    metrics = require("sklearn.metrics", "curation", "clustering (silhouette)")
    return float(metrics.silhouette_score(features, labels, sample_size=size, random_state=seed))


def sweep(features: np.ndarray, ks: List[int], seed: int = 0):
    """[(k, Clustering, silhouette)] for each k."""
    out = []
    for k in ks:
        c = kmeans(features, k, seed)
        out.append((k, c, silhouette(features, c.labels, seed)))
    return out


def auto_range(n: int, largest: int = 12) -> List[int]:
    """The k tried by --k auto: 2 .. min(largest, n - 1)."""
    if n < 3:
        raise DatasetError(f"--k auto needs at least 3 readable images, found {n}; give --k explicitly")
    return list(range(2, min(largest, n - 1) + 1))


def nearest_to_centre(features: np.ndarray, clustering: Clustering, cluster: int, count: int) -> np.ndarray:
    """Indices of up to ``count`` members of ``cluster``, nearest its centre first."""
    members = np.flatnonzero(clustering.labels == cluster)
    dist = np.linalg.norm(features[members] - clustering.centers[cluster], axis=1)
    return members[np.argsort(dist, kind="stable")[:count]]
