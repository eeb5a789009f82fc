"""Near-duplicate groups from a :class:`~.scan.Scan`.

Two images are duplicates when their files are byte-identical (same SHA-1) or the 64-bit perceptual
hash of one whole image differs in at most ``threshold`` bits from a hash of the other (whole, or one
of its 95% crops, see ``scan.CROPS``). Pairs are found with a ball tree over all hashes (Hamming
radius queries, no all-pairs comparison); groups are the connected components of the pair
graph. Each group keeps its largest image (most pixels; ties: first by path) and drops the others.
"""
from typing import List, Tuple

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.neighbors import NearestNeighbors

from .scan import HASH_BITS

DEFAULT_THRESHOLD = 6


def _pairs(scan, threshold: int):
    """(i, j) index arrays of the duplicate pairs."""
    n = len(scan.names)
    rows, cols = [], []
    by_sha = {}
    for i, digest in enumerate(scan.sha1):
        if digest in by_sha:
            rows.append(by_sha[digest])
            cols.append(i)
        else:
            by_sha[digest] = i
    if threshold > 0 and n > 1:
        tree = NearestNeighbors(radius=(threshold + 0.5) / HASH_BITS, metric="hamming", algorithm="ball_tree")
        views = scan.phash.shape[1]
        tree.fit(scan.phash.reshape(n * views, HASH_BITS))
        for i, hits in enumerate(tree.radius_neighbors(scan.phash[:, 0], return_distance=False)):
            for j in np.unique(hits // views):
                if j != i:
                    rows.append(i)
                    cols.append(int(j))
    return np.asarray(rows, np.int64), np.asarray(cols, np.int64)


def hash_distance(a: np.ndarray, b: np.ndarray) -> int:
    """Fewest differing bits between the whole-image hash of one and any hash of the other; a, b: [views, 64]."""
    return int(min(np.count_nonzero(a[0] != b, axis=1).min(), np.count_nonzero(b[0] != a, axis=1).min()))


def find_duplicates(scan, threshold: int = DEFAULT_THRESHOLD) -> List[Tuple[str, str, int]]:
    """[(kept, dropped, distance)] with distance = differing hash bits between the two (0 for exact
    copies), sorted by kept then dropped name."""
    if not 0 <= threshold < HASH_BITS // 2:
        raise ValueError(f"--dedupe-threshold must be between 0 and {HASH_BITS // 2 - 1} bits, got {threshold}")
    n = len(scan.names)
    rows, cols = _pairs(scan, threshold)
    if rows.size == 0:
        return []
    graph = coo_matrix((np.ones(rows.size), (rows, cols)), shape=(n, n))
    _, group = connected_components(graph, directed=False)
    area = np.array([w * h for w, h in scan.sizes], np.int64)
    report = []
    for g in np.unique(group[np.concatenate([rows, cols])]):
        members = np.flatnonzero(group == g)
        keep = members[np.argmax(area[members])]   # argmax takes the first (lowest path) on ties
        for m in members:
            if m != keep:
                distance = hash_distance(scan.phash[keep], scan.phash[m])
                report.append((scan.names[keep], scan.names[m], distance))
    return sorted(report)
