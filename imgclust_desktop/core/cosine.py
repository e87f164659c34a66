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
