"""Cosine similarity of many rows of the stored features to one of them, without a normalised copy.

The cluster grid orders a cluster by similarity to its medoid after every re-cut. At 100,000 images of
1,280 numbers a normalised copy of a big cluster's rows is hundreds of MB; here the row norms are
computed once per features array and the dot products read the rows in blocks (float16 memory maps too).
"""

from __future__ import annotations

import weakref

import numpy as np

BLOCK = 8192  # rows read at a time
_NORMS: list = []  # [(weak reference to a features array, its row norms)]: the last array asked


def row_norms(features: np.ndarray) -> np.ndarray:
    """float32 [n]: the length of every row (computed once per features array)."""
    if _NORMS and _NORMS[0][0]() is features:
        return _NORMS[0][1]
    norms = np.empty(len(features), np.float32)
    for start in range(0, len(features), BLOCK):
        block = np.asarray(features[start : start + BLOCK], np.float32)
        norms[start : start + BLOCK] = np.sqrt(np.einsum("ij,ij->i", block, block))
    _NORMS[:] = [(weakref.ref(features), norms)]
    return norms


def cosine_to(features: np.ndarray, rows: np.ndarray, row: int) -> np.ndarray:
    """float32 [len(rows)]: the cosine similarity of each of these rows to `row`."""
    target = np.asarray(features[row], np.float32)
    if len(rows) * 4 >= len(features):  # a big share of the rows: reading every row in order is faster
        dots = np.empty(len(features), np.float32)
        for start in range(0, len(features), BLOCK):
            dots[start : start + BLOCK] = np.asarray(features[start : start + BLOCK], np.float32) @ target
        dots = dots[rows]
    else:
        dots = np.empty(len(rows), np.float32)
        for start in range(0, len(rows), BLOCK):
            dots[start : start + BLOCK] = (
                np.asarray(features[rows[start : start + BLOCK]], np.float32) @ target
            )
    norms = row_norms(features)
    return dots / np.maximum(norms[rows] * norms[row], 1e-12)
