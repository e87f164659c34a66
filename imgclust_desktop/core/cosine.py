"""Cosines over the stored features without a normalised copy of them.

The medoids of a re-cut and the cluster grid's order (by similarity to the medoid) read many rows. At
100,000 images of 1,280 numbers a normalised copy of those rows is hundreds of MB; here the row norms are
computed once per features array, and rows are read in blocks (float16 memory maps too), as slices where
they follow each other.
"""

from __future__ import annotations

import weakref

import numpy as np

from .mapped import release

BLOCK = 8192  # rows read at a time
_NORMS: list = []  # [(weak reference to a features array, its row norms)]: the last array asked


def feature_rows(features: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """float32 features of these (sorted) rows: a slice, not a gathered copy, when they follow each other."""
    if len(rows) and rows[-1] - rows[0] + 1 == len(rows):
        return np.asarray(features[rows[0] : rows[-1] + 1], np.float32)
    return np.asarray(features[rows], np.float32)


def row_norms(features: np.ndarray) -> np.ndarray:
    """float32 [n]: the length of every row (computed once per features array)."""
    if _NORMS and _NORMS[0][0]() is features:
        return _NORMS[0][1]
    norms = np.empty(len(features), np.float32)
    for start in range(0, len(features), BLOCK):
        block = np.asarray(features[start : start + BLOCK], np.float32)
        norms[start : start + BLOCK] = np.sqrt(np.einsum("ij,ij->i", block, block))
        release(features)  # a memory-mapped features.npy leaves the resident set block by block
    _NORMS[:] = [(weakref.ref(features), norms)]
    return norms


def cosine_to(features: np.ndarray, rows: np.ndarray, row: int) -> np.ndarray:
    """float32 [len(rows)]: the cosine similarity of each of these rows to `row`."""
    target = np.asarray(features[row], np.float32)
    if len(rows) * 4 >= len(features):  # a big share of the rows: reading every row in order is faster
        dots = np.empty(len(features), np.float32)
        for start in range(0, len(features), BLOCK):
            dots[start : start + BLOCK] = np.asarray(features[start : start + BLOCK], np.float32) @ target
            release(features)
        dots = dots[rows]
    else:
        dots = np.empty(len(rows), np.float32)
        for start in range(0, len(rows), BLOCK):
            dots[start : start + BLOCK] = feature_rows(features, rows[start : start + BLOCK]) @ target
    norms = row_norms(features)
    return dots / np.maximum(norms[rows] * norms[row], 1e-12)


def cosine_silhouettes(x: np.ndarray, labels: np.ndarray, *, block: int = 1024) -> np.ndarray:
    """float64 [n]: each row's silhouette under the cosine distance (1 - cosine, clipped to [0, 2]), as
    sklearn.metrics.silhouette_samples(x, labels, metric="cosine") defines it: (b - a) / max(a, b), with a
    the mean distance to the rest of its own cluster and b the smallest mean distance to another cluster;
    0 for a row alone in its cluster, and 0 everywhere when there are fewer than 2 clusters or no row
    shares one (where sklearn raises). Rows are compared `block` at a time; no scikit-learn import (the
    report's silhouettes imported it into `imgclust update`: 0.9 s)."""
    x = np.asarray(x, np.float64)
    labels = np.asarray(labels)
    n = len(labels)
    ids, cluster = np.unique(labels, return_inverse=True)
    cluster = cluster.ravel()
    out = np.zeros(n, np.float64)
    if len(ids) < 2 or len(ids) >= n:
        return out
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-300)
    order = np.argsort(cluster, kind="stable")
    counts = np.bincount(cluster, minlength=len(ids))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    sorted_unit, where = unit[order], _position(order)
    for begin in range(0, n, block):
        rows = np.arange(begin, min(begin + block, n))
        distance = np.clip(1.0 - unit[rows] @ sorted_unit.T, 0.0, 2.0)
        distance[np.arange(len(rows)), where[rows]] = 0.0  # a row's distance to itself
        sums = np.add.reduceat(distance, starts, axis=1)  # [rows, clusters]: distances summed per cluster
        own = cluster[rows]
        with np.errstate(divide="ignore", invalid="ignore"):
            a = sums[np.arange(len(rows)), own] / (counts[own] - 1)
            means = sums / counts
            means[np.arange(len(rows)), own] = np.inf
            b = means.min(axis=1)
            out[rows] = np.nan_to_num((b - a) / np.maximum(a, b))
    return out


def _position(order: np.ndarray) -> np.ndarray:
    """Where each row sits in `order` (the inverse permutation)."""
    where = np.empty_like(order)
    where[order] = np.arange(len(order))
    return where
