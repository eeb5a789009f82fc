"""Near-duplicate groups from a :class:`~.scan.Scan`.

Two images are duplicates when their files are byte-identical (same SHA-1) or the 64-bit perceptual
hash of one whole image differs in at most ``threshold`` bits from a hash of the other (whole, or one
of its 95% crops, see ``scan.CROPS``). Pairs are found by multi-index hashing (hash buckets, see
:func:`_near_pairs`; no all-pairs comparison); groups are the connected components of the pair
graph. Each group keeps its largest image (most pixels; ties: first by path) and drops the others.
"""
from typing import List, Tuple

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ganops_models.curation.scan import HASH_BITS

DEFAULT_THRESHOLD = 6
MAX_THRESHOLD = 12   # beyond it unrelated images match and the hash buckets get too coarse


_POPCOUNT = np.array([bin(v).count("1") for v in range(256)], np.uint8)
BLOCK_PAIRS = 4_000_000   # candidate pairs compared at once


def _pack(bits: np.ndarray) -> np.ndarray:
    """bool [..., 64] -> uint64 [...]."""
    return np.packbits(bits, axis=-1).view(">u8")[..., 0].astype(np.uint64)


def _popcount(x: np.ndarray) -> np.ndarray:
    return _POPCOUNT[x.view(np.uint8)].reshape(len(x), 8).sum(1)


def _near_pairs(queries: np.ndarray, stored: np.ndarray, owner: np.ndarray, threshold: int):
    """(i, j) with hamming(queries[i], stored[s]) <= threshold for some s of owner j != i.

    Multi-index hashing: split the 64 bits into threshold + 1 chunks; two hashes within ``threshold``
    bits agree exactly on at least one chunk, so only hashes sharing a chunk value are compared."""
    found = []
    bounds = np.linspace(0, HASH_BITS, threshold + 2).astype(np.uint64)
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        mask = np.uint64((1 << int(hi - lo)) - 1)
        skey, qkey = (stored >> lo) & mask, (queries >> lo) & mask
        order = np.argsort(skey, kind="stable")
        left = np.searchsorted(skey[order], qkey, "left")
        counts = np.searchsorted(skey[order], qkey, "right") - left
        start = 0
        while start < len(queries):
            stop = start + max(1, int(np.searchsorted(np.cumsum(counts[start:]), BLOCK_PAIRS)))
            qi = np.repeat(np.arange(start, stop), counts[start:stop])
            offsets = np.arange(len(qi)) - np.repeat(np.cumsum(counts[start:stop]) - counts[start:stop],
                                                     counts[start:stop])
            si = order[np.repeat(left[start:stop], counts[start:stop]) + offsets]
            close = (_popcount(queries[qi] ^ stored[si]) <= threshold) & (owner[si] != qi)
            found.append(np.stack([qi[close], owner[si][close]]))
            start = stop
    pairs = np.unique(np.sort(np.concatenate(found, 1), axis=0), axis=1) if found else np.zeros((2, 0), np.int64)
    return pairs[0], pairs[1]


def _pairs(scan, threshold: int):
    """(i, j) index arrays of the duplicate pairs."""
    first, exact = {}, []
    for i, digest in enumerate(scan.sha1):
        if digest in first:
            exact.append((first[digest], i))
        else:
            first[digest] = i
    exact = np.array(exact, np.int64).reshape(-1, 2)
    rows, cols = [exact[:, 0]], [exact[:, 1]]
    n, views = scan.phash.shape[:2]
    if n > 1:
        packed = _pack(scan.phash)
        i, j = _near_pairs(packed[:, 0], packed.reshape(-1), np.repeat(np.arange(n), views), threshold)
        rows.append(i)
        cols.append(j)
    return np.concatenate(rows).astype(np.int64), np.concatenate(cols).astype(np.int64)


def hash_distance(a: np.ndarray, b: np.ndarray) -> int:
    """Fewest differing bits between the whole-image hash of one and any hash of the other; a, b: [views, 64]."""
    return int(min(np.count_nonzero(a[0] != b, axis=1).min(), np.count_nonzero(b[0] != a, axis=1).min()))


def find_duplicates(scan, threshold: int = DEFAULT_THRESHOLD) -> List[Tuple[str, str, int]]:
    """[(kept, dropped, distance)] with distance = differing hash bits between the two (0 for exact
    copies), sorted by kept then dropped name."""
    if not 0 <= threshold <= MAX_THRESHOLD:
        raise ValueError(f"--dedupe-threshold must be between 0 and {MAX_THRESHOLD} bits, got {threshold}")
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
