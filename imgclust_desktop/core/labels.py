"""Cluster labels are small non-negative integers (noise -1): count them and find them by lookup.

np.unique and np.searchsorted sort or search 100,000 labels; a re-cut asks such questions a dozen times, so
these answer with one bincount or one table lookup instead.
"""

from __future__ import annotations

import numpy as np


def label_counts(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cluster ids, images in each) of the non-noise labels, ids sorted: np.unique's answer."""
    # without noise every label counts as it is: no mask and no copy of the labels (half the time at 1M)
    kept = labels if labels.size and labels.min() >= 0 else labels[labels >= 0]
    if kept.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    counts = np.bincount(kept)
    ids = np.flatnonzero(counts)
    return ids, counts[ids]


def slots(ids: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Position of each label in the sorted ids (-1 for a label not among them)."""
    ids = np.asarray(ids, np.int64)
    labels = np.asarray(labels, np.int64)
    if ids.size == 0 or labels.size == 0:
        return np.full(labels.shape, -1, np.int64)
    low = min(int(labels.min()), int(ids[0]))
    table = np.full(max(int(labels.max()), int(ids[-1])) - low + 1, -1, np.int64)
    table[ids - low] = np.arange(len(ids))
    return table[labels - low]


def code_runs(code: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(distinct codes sorted, the first position of each, how many): np.unique(code, return_index=True,
    return_counts=True) for non-negative integer codes. Code and position are sorted as one integer, with
    numpy's plain sort (a re-cut into 25,000 groups counts 100,000 (cluster, folder) pairs: np.unique's
    stable argsort took 6 ms, this 1.5 ms). Falls back to np.unique where the two do not fit in 63 bits."""
    code = np.asarray(code, np.int64).ravel()
    n = len(code)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    if int(code.max()) >= (1 << 62) // max(n, 1):
        return np.unique(code, return_index=True, return_counts=True)
    key = np.sort(code * n + np.arange(n))
    codes = key // n
    start = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    counts = np.diff(np.r_[start, n])
    return codes[start], key[start] % n, counts
