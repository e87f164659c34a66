"""Place new images on an existing map and decide which existing cluster, if any, each one joins.

Nothing here moves an existing point or relabels an existing image: the old rows are only read.

- Neighbours: the k nearest EXISTING images of each new one (euclidean in the session's PCA space of
  L2-normalised features, i.e. cosine distance in effect).
- Joining: a new image joins cluster C when a majority of its neighbours are in C and its nearest member
  of C is as close as C's own members usually are to their nearest neighbour (C's 95th percentile, with
  a margin). An image from a group the session has never seen fails the second test even when its few
  nearest old images happen to agree, so whole new groups are not poured into old clusters.
- Position: the distance-weighted mean of the map positions of those neighbours (only the members of
  the joined cluster when it joined, so it lands inside its cluster), plus a small seeded jitter so
  several new images with the same neighbours do not sit on one pixel.
- The images that join nothing are grouped among themselves: a link between two of them when each is
  among the other's nearest new images and they are as close as cluster-mates usually are; every
  connected group of at least `min_group` images becomes one new cluster, the rest one "unsorted" group.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .progress import CancelFlag, check_cancel, never_cancelled

NEIGHBOURS = 10
JOIN_QUANTILE = 0.95  # of a cluster's own nearest-neighbour distances
JOIN_MARGIN = 1.25  # how much farther than that a new image may still be and join
REFERENCE_PER_CLUSTER = 64  # members sampled per cluster to learn its typical nearest-neighbour distance
REFERENCE_TOTAL = 5000
MIN_REFERENCE = 5  # fewer sampled members than this: the cluster uses the pooled threshold
_CHUNK = 2048
_CHUNK_VALUES = 1 << 24  # query x indexed-row distances held at once (64 MiB of float32)


@dataclass
class Placement:
    coords: np.ndarray  # float32 [m, 2] map position of each new image
    joined_cluster: np.ndarray  # int64 [m]: the existing cluster joined, -1 = none
    group: np.ndarray  # int64 [m]: 0.. index of the new group for images that joined nothing, -1 = joined
    unsorted: np.ndarray  # bool [m]: joined nothing and belongs to no group of min_group images
    outlier_score: np.ndarray  # float32 [m] in [0, 1], on the scale of the old images' scores
    nearest_old: np.ndarray  # int64 [m]: row of the nearest existing image
    nearest_distance: np.ndarray  # float32 [m]: distance to it (in the reduced space)
    thresholds: dict[int, float]  # cluster id -> join distance used


def place(
    old_data: np.ndarray,
    old_coords: np.ndarray,
    old_labels: np.ndarray,
    new_data: np.ndarray,
    *,
    k: int = NEIGHBOURS,
    min_group: int = 3,
    seed: int = 0,
    cancelled: CancelFlag = never_cancelled,
) -> Placement:
    """Positions, joined clusters and new groups for new rows; old_* are read only."""
    old_data = np.ascontiguousarray(old_data, dtype=np.float32)
    new_data = np.ascontiguousarray(new_data, dtype=np.float32)
    old_coords = np.asarray(old_coords, dtype=np.float32)
    old_labels = np.asarray(old_labels, dtype=np.int64)
    n_old, m = len(old_data), len(new_data)
    if n_old == 0:
        raise ValueError("placing new images needs at least one existing image")
    k = int(min(max(1, k), n_old))
    if m == 0:
        empty = np.zeros(0, np.int64)
        return Placement(np.zeros((0, 2), np.float32), empty, empty, np.zeros(0, bool),
                         np.zeros(0, np.float32), empty, np.zeros(0, np.float32), {})  # fmt: skip

    index = _index(old_data)
    dist, idx = _kneighbors(index, new_data, k, cancelled)
    ref_d1, ref_mean, ref_labels = _reference(index, old_data, old_labels, k, seed, cancelled)
    pooled = float(np.quantile(ref_d1, JOIN_QUANTILE)) * JOIN_MARGIN if len(ref_d1) else np.inf
    thresholds = {}
    sizes = dict(zip(*np.unique(old_labels[old_labels >= 0], return_counts=True), strict=True))
    for cid in sizes:
        own = ref_d1[ref_labels == cid]
        thresholds[int(cid)] = (
            float(np.quantile(own, JOIN_QUANTILE)) * JOIN_MARGIN if len(own) >= MIN_REFERENCE else pooled
        )

    neighbour_labels = old_labels[idx]
    joined = np.full(m, -1, np.int64)
    for i in range(m):
        votes = neighbour_labels[i][neighbour_labels[i] >= 0]
        if votes.size == 0:
            continue
        ids, counts = np.unique(votes, return_counts=True)
        best = int(ids[np.argmax(counts)])
        needed = 0.5 * min(k, int(sizes.get(best, 0)))
        nearest_in_best = float(dist[i][neighbour_labels[i] == best].min())
        if counts.max() >= needed and nearest_in_best <= thresholds.get(best, pooled):
            joined[i] = best

    coords = _positions(dist, idx, neighbour_labels, joined, old_coords, seed)
    group, unsorted = _group_unjoined(new_data, joined, pooled, min_group, cancelled)
    mean_dist = dist.mean(axis=1)
    outlier = (
        np.searchsorted(np.sort(ref_mean), mean_dist, side="right") / max(1, len(ref_mean))
        if len(ref_mean)
        else np.zeros(m)
    )
    return Placement(
        coords=coords,
        joined_cluster=joined,
        group=group,
        unsorted=unsorted,
        outlier_score=np.clip(outlier, 0, 1).astype(np.float32),
        nearest_old=idx[:, 0].astype(np.int64),
        nearest_distance=dist[:, 0].astype(np.float32),
        thresholds=thresholds,
    )


def _index(data: np.ndarray) -> np.ndarray:
    """The rows to search, as a float32 C array (the search is exact: a matrix product per chunk)."""
    return np.ascontiguousarray(data, dtype=np.float32)


def _kneighbors(index, queries: np.ndarray, k: int, cancelled: CancelFlag) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (distances, indices) of the k nearest indexed rows of each query, in cancellable chunks.

    Exact euclidean search in numpy (sklearn's brute search gave the same neighbours, but importing sklearn
    cost an update more CPU than placing its rows): candidates by |q|^2 - 2 q.x + |x|^2, then their
    distances recomputed from the differences, ties broken by row.
    """
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    dist = np.empty((len(queries), k), np.float32)
    idx = np.empty((len(queries), k), np.int64)
    squared_norms = np.einsum("ij,ij->i", index, index)
    step = max(1, min(_CHUNK, _CHUNK_VALUES // max(1, len(index))))
    for start in range(0, len(queries), step):
        check_cancel(cancelled)
        chunk = queries[start : start + step]
        scores = squared_norms[None, :] - 2.0 * (chunk @ index.T)  # |q|^2 is the same along each row
        near = np.argpartition(scores, k - 1, axis=1)[:, :k]
        exact = np.linalg.norm(chunk[:, None, :] - index[near], axis=2)
        order = np.lexsort((near, exact), axis=1)
        dist[start : start + len(chunk)] = np.take_along_axis(exact, order, axis=1)
        idx[start : start + len(chunk)] = np.take_along_axis(near, order, axis=1)
    return dist, idx


def _reference(index, old_data, old_labels, k, seed, cancelled):
    """Nearest-neighbour distance (d1) and mean k-NN distance of a per-cluster sample of old rows."""
    n = len(old_data)
    if n < 2:
        return np.zeros(0, np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)
    rng = np.random.default_rng(seed)
    picks = []
    for cid in np.unique(old_labels):
        rows = np.flatnonzero(old_labels == cid)
        picks.append(rng.choice(rows, min(len(rows), REFERENCE_PER_CLUSTER), replace=False))
    sample = np.sort(np.concatenate(picks))
    if len(sample) > REFERENCE_TOTAL:
        sample = np.sort(rng.choice(sample, REFERENCE_TOTAL, replace=False))
    kk = min(k + 1, n)
    dist, idx = _kneighbors(index, old_data[sample], kk, cancelled)
    # Drop each row itself (an exact duplicate may come first instead; then drop the farthest).
    own = idx == sample[:, None]
    drop = np.where(own.any(axis=1), own.argmax(axis=1), kk - 1)
    keep = np.ones_like(own)
    keep[np.arange(len(sample)), drop] = False
    others = dist[keep].reshape(len(sample), kk - 1)
    return others[:, 0], others.mean(axis=1), old_labels[sample]


def _positions(dist, idx, neighbour_labels, joined, old_coords, seed) -> np.ndarray:
    m = len(dist)
    use = np.where(joined[:, None] >= 0, neighbour_labels == joined[:, None], True)
    weights = use / np.maximum(dist, 1e-6)
    weights /= weights.sum(axis=1, keepdims=True)
    points = old_coords[idx]  # [m, k, 2]
    centre = (weights[:, :, None] * points).sum(axis=1)
    spread = np.linalg.norm(points - centre[:, None, :], axis=2)
    local = np.array([np.median(spread[i][use[i]]) for i in range(m)], np.float32)
    scale = np.float32(np.median(local[local > 0])) if np.any(local > 0) else np.float32(0)
    local = np.where(local > 0, local, scale)
    jitter = np.random.default_rng(seed).normal(0.0, 1.0, (m, 2)).astype(np.float32)
    return (centre + 0.25 * local[:, None] * jitter).astype(np.float32)


def _group_unjoined(new_data, joined, link_distance, min_group, cancelled):
    """Groups among the new images that joined nothing: components of the thresholded mutual-kNN graph."""
    m = len(new_data)
    group = np.full(m, -1, np.int64)
    unsorted = np.zeros(m, bool)
    rows = np.flatnonzero(joined < 0)
    if len(rows) == 0:
        return group, unsorted
    parent = np.arange(len(rows))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    if len(rows) > 1:
        kk = min(NEIGHBOURS + 1, len(rows))
        dist, idx = _kneighbors(_index(new_data[rows]), new_data[rows], kk, cancelled)
        near = [set(idx[a][dist[a] <= link_distance].tolist()) for a in range(len(rows))]
        for a in range(len(rows)):
            for b in near[a]:
                if b != a and a in near[b]:
                    parent[find(a)] = find(b)
    roots = np.array([find(a) for a in range(len(rows))])
    ids, counts = np.unique(roots, return_counts=True)
    big = [int(r) for r, c in sorted(zip(ids, counts, strict=True), key=lambda rc: (-rc[1], rc[0]))
           if c >= min_group]  # fmt: skip
    number = {root: g for g, root in enumerate(big)}
    for a, root in enumerate(roots.tolist()):
        if root in number:
            group[rows[a]] = number[root]
        else:
            unsorted[rows[a]] = True
    if unsorted.any():
        group[unsorted] = len(big)  # one more group: everything that fits nowhere
    return group, unsorted
