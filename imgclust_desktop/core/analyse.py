"""Analyse: medoids, typicality, outlier scores, near-duplicate groups and the cluster dendrogram."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .mapped import release
from .reduce import l2_normalise

KNN_OUTLIER = 10  # neighbours behind the fallback outlier score
PROJECTION_DIMS = 64  # duplicate candidates are found in this many dimensions, then checked in full
BLOCK_ROWS = 512  # rows per similarity block: bounds memory at 100k images (512 x 100k floats)
MEDOID_REFERENCE = 20_000  # members a big cluster's medoid is scored against (a fixed random sample)
# Above this many rows duplicate candidates come from the k-nearest-neighbour graph (O(n k)) instead of
# the all-pairs sweep (O(n^2) in the worst case; 35 % of all pairs on Fashion-MNIST 70k; 180 s of a
# 100k x 64 Gaussian mixture run on the loaded machine). Same size as the approximate-neighbour switch.
GRAPH_DUPLICATES_ABOVE = 50_000
DUPLICATE_NEIGHBOURS = 16
PAIR_CHUNK = 32768  # candidate pairs compared in full dimension at a time (2 x 32768 x dim floats)
# Graph candidates are first screened on the reduced rows (PCA of the L2-normalised features): a pair is
# checked in full dimension only when its cosine there is within SCREEN_MARGIN of the threshold, so a 1M-row
# graph does not gather millions of full feature rows from disk (bench/duplicates_screen.py measures misses).
SCREEN_MARGIN = 0.1
BUCKET_NEIGHBOURS = 4  # rows sharing a near sample row: each one's nearest this many are candidates
BUCKETS_PER_ROW = 3  # each row joins the buckets of its 3 nearest sample rows
BUCKET_DIMS = 16  # bucket mates are searched on the leading reduced components (then screened, checked)


@dataclass
class Analysis:
    medoid_index: dict[int, int]  # cluster id -> row index
    typicality: np.ndarray  # float [n], distance to own cluster medoid (lower = more typical)
    outlier_score: np.ndarray  # float [n] in [0, 1]
    duplicate_group: np.ndarray  # int [n], -1 = none
    cluster_linkage: (
        np.ndarray | None
    )  # scipy linkage over cluster centroids (rows order = sorted cluster ids)
    linkage_cluster_ids: list[int]


def medoid(points: np.ndarray, max_candidates: int = 1000, max_reference: int = MEDOID_REFERENCE) -> int:
    """Row of points with the least summed Euclidean distance to all others (exact up to max_candidates).

    Above max_reference members the summed distance is estimated on a fixed random sample of that many
    members (the same sample for every candidate), so a cluster of 500,000 costs what one of 20,000 does.
    """
    n = len(points)
    candidates = np.arange(n)
    if n > max_candidates:
        # Only members near the mean can be the medoid of a big cluster: score those exactly.
        order = np.argpartition(np.linalg.norm(points - points.mean(axis=0), axis=1), max_candidates - 1)
        candidates = np.sort(order[:max_candidates])
    reference = points
    if n > max_reference:
        pick = np.random.default_rng(0).choice(n, max_reference, replace=False)
        reference = points[np.sort(pick)]
    sq = (points[candidates] ** 2).sum(axis=1)
    ref_sq = (reference**2).sum(axis=1)
    cost = np.zeros(len(candidates))
    for start in range(0, len(reference), 4096):
        chunk = reference[start : start + 4096]
        d2 = sq[:, None] + ref_sq[start : start + 4096][None, :] - 2 * points[candidates] @ chunk.T
        cost += np.sqrt(np.maximum(d2, 0)).sum(axis=1)
    return int(candidates[np.argmin(cost)])


def knn_outlier_score(
    data: np.ndarray, k: int = KNN_OUTLIER, *, knn_distances: np.ndarray | None = None
) -> np.ndarray:
    """Mean distance to the k nearest neighbours, as a rank in [0, 1] (1 = the most isolated image).

    knn_distances: the sorted neighbour distances of every row of data (itself first), e.g. from the
    pipeline's neighbour stage; when it has more than k columns no second search is run.
    """
    n = len(data)
    if n < 3:
        return np.zeros(n, np.float32)
    k = min(k, n - 1)
    if knn_distances is not None and len(knn_distances) == n and knn_distances.shape[1] > k:
        dist = knn_distances[:, : k + 1]
    else:
        from sklearn.neighbors import NearestNeighbors

        dist, _ = NearestNeighbors(n_neighbors=k + 1).fit(data).kneighbors(data)
    mean_dist = dist[:, 1:].mean(axis=1)
    ranks = np.argsort(np.argsort(mean_dist, kind="stable"), kind="stable")
    return (ranks / (n - 1)).astype(np.float32)


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = np.arange(n)

    def find(self, i: int) -> int:
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:  # path compression keeps later finds short
            self.parent[i], i = root, self.parent[i]
        return int(root)

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def duplicate_groups(vectors: np.ndarray, threshold: float = 0.97) -> np.ndarray:
    """Group rows whose centred cosine similarity is >= threshold (transitively); int [n], -1 = no duplicate."""
    vectors = np.asarray(vectors, dtype=np.float32)
    # Centre first: pooled CNN activations are all positive, so raw cosines of unrelated images reach 0.97
    # (measured: one group of 1,795 of 1,797 digits); after centring only true look-alikes stay that close.
    x = l2_normalise(vectors - vectors.mean(axis=0)) if len(vectors) > 2 else l2_normalise(vectors)
    n = len(x)
    groups = np.full(n, -1, np.int64)
    if n < 2:
        return groups
    # Candidates come from an orthonormal projection: it never lengthens a distance, so every pair within
    # the cosine radius in full space is also within it there. Candidates are then checked exactly.
    radius2 = max(0.0, 2.0 - 2.0 * threshold) + 1e-6
    z = x
    if x.shape[1] > PROJECTION_DIMS and n > PROJECTION_DIMS:
        _, vecs = np.linalg.eigh((x.T @ x).astype(np.float64))
        z = np.ascontiguousarray(x @ vecs[:, -PROJECTION_DIMS:].astype(np.float32))
    # Sweep along the coordinate of most variance: two rows farther apart on it than the radius are farther
    # apart in full, so each block of sorted rows is compared only with the rows inside that window
    # (on Fashion-MNIST 70k: 35 % of the pairs of the upper triangle).
    axis = int(np.argmax(z.var(axis=0)))
    order = np.argsort(z[:, axis], kind="stable")
    z = z[order]
    key = z[:, axis]
    zsq = (z**2).sum(axis=1)
    radius = float(np.sqrt(radius2))
    uf = _UnionFind(n)
    for start in range(0, n, BLOCK_ROWS):
        stop = min(n, start + BLOCK_ROWS)
        end = max(stop, int(np.searchsorted(key, key[stop - 1] + radius, side="right")))
        # Only pairs (i, j) with j > i: the lower triangle would repeat the same pairs.
        d2 = zsq[start:stop, None] + zsq[None, start:end] - 2 * z[start:stop] @ z[start:end].T
        rows, cols = np.nonzero(d2 <= radius2)
        cols = cols + start
        rows = rows + start
        keep = cols > rows
        rows, cols = order[rows[keep]], order[cols[keep]]
        # Candidates are checked PAIR_CHUNK at a time: on clustered data the projection can keep millions
        # of pairs per block, and gathering them all in full dimension took 23 GB (100k x 1280 mixture).
        for p0 in range(0, len(rows), PAIR_CHUNK):
            a_rows, b_rows = rows[p0 : p0 + PAIR_CHUNK], cols[p0 : p0 + PAIR_CHUNK]
            sims = np.einsum("ij,ij->i", x[a_rows], x[b_rows])
            hit = sims >= threshold
            for a, b in zip(a_rows[hit].tolist(), b_rows[hit].tolist(), strict=True):
                uf.union(a, b)
    roots = np.array([uf.find(i) for i in range(n)])
    ids, inverse, counts = np.unique(roots, return_inverse=True, return_counts=True)
    # Roots are group minima, so numbering groups in root order numbers them by their first row.
    group_of_root = np.where(counts > 1, np.cumsum(counts > 1) - 1, -1)
    groups[:] = group_of_root[inverse]
    return groups


def duplicate_groups_from_neighbours(
    vectors: np.ndarray,
    neighbour_indices: np.ndarray,
    threshold: float = 0.97,
    *,
    screen: np.ndarray | None = None,
    chunk: int = 16384,
) -> np.ndarray:
    """duplicate_groups with candidate pairs from a k-nearest-neighbour graph: O(n k dim), not O(n^2).

    Each row is checked (centred cosine, full dimension) against its listed neighbours only (-1: none);
    groups are the connected components of the pairs at or over the threshold. Exact whenever every
    duplicate pair is linked through neighbours in the graph, which holds for near-copies (they are each
    other's nearest). screen: the same rows reduced (centred); pairs whose cosine there is below
    threshold - SCREEN_MARGIN are dropped before the full-dimension check.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    vectors = np.asarray(vectors)
    n = len(vectors)
    groups = np.full(n, -1, np.int64)
    if n < 2:
        return groups
    mean = 0.0
    if n > 2:
        total = np.zeros(vectors.shape[1], np.float64)
        for start in range(0, n, chunk):
            total += np.asarray(vectors[start : start + chunk]).sum(axis=0, dtype=np.float64)
            release(vectors)  # a memory-mapped features.npy: out of the resident set chunk by chunk
        mean = (total / n).astype(np.float32)
    neighbours = neighbour_indices
    rows_kept, cols_kept = [], []
    unit = None if screen is None else l2_normalise(np.asarray(screen, np.float32))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        own = np.arange(start, stop)
        x = None
        # One neighbour column at a time: chunk x dim floats in memory, never chunk x k x dim.
        for column in np.asarray(neighbours[start:stop]).T:
            pick = np.flatnonzero((column >= 0) & (column != own))
            if unit is not None:
                near = np.einsum("ij,ij->i", unit[own[pick]], unit[column[pick]])
                pick = pick[near >= threshold - SCREEN_MARGIN]
            if not len(pick):
                continue
            if x is None:
                x = l2_normalise(np.asarray(vectors[start:stop], np.float32) - mean)
            y = l2_normalise(np.asarray(vectors[column[pick]], np.float32) - mean)
            hit = np.einsum("ij,ij->i", x[pick], y) >= threshold
            rows_kept.append(own[pick[hit]])
            cols_kept.append(column[pick[hit]])
        release(vectors)
    a = np.concatenate(rows_kept) if rows_kept else np.zeros(0, np.int64)
    b = np.concatenate(cols_kept) if cols_kept else np.zeros(0, np.int64)
    if len(a) == 0:
        return groups
    graph = coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(n, n)).tocsr()
    _, component = connected_components(graph, directed=False)
    ids, first, inverse, counts = np.unique(
        component, return_index=True, return_inverse=True, return_counts=True
    )
    # Number groups by their first row, as duplicate_groups does.
    order = np.argsort(first, kind="stable")
    multi = counts[order] > 1
    number = np.full(len(ids), -1, np.int64)
    number[order[multi]] = np.arange(int(multi.sum()))
    groups[:] = number[inverse]
    return groups


def sample_bucket_neighbours(
    data: np.ndarray,
    knn_indices: np.ndarray,
    sample: np.ndarray,
    m: int = BUCKET_NEIGHBOURS,
    buckets: int = BUCKETS_PER_ROW,
) -> np.ndarray:
    """Duplicate candidates for a sampled neighbour graph (embed.sampled_neighbours): int [n, buckets * m].

    That graph links each row only to sample rows, so two copies outside the sample are never linked.
    Copies lie near the same sample rows: each row joins the buckets of its `buckets` nearest sample rows (a
    sample row is first in its own), and its m nearest mates (in data) in each are its candidates; -1 = none.
    O(n * buckets * bucket size).
    """
    n = len(data)
    keys = np.asarray(knn_indices[:, 1 : buckets + 1], np.int64).copy()
    keys[sample] = np.column_stack([sample, keys[sample, : buckets - 1]])
    slots = keys.shape[1]
    member, key = np.repeat(np.arange(n), slots), keys.ravel()
    slot = np.tile(np.arange(slots), n)
    out = np.full((n, slots * m), -1, np.int64)
    order = np.argsort(key, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(key[order]) != 0])
    sizes = np.diff(np.r_[starts, len(order)])
    # Buckets of similar size are padded to one width and searched together (one batched product per
    # width class): a Python loop over 50k buckets of ~60 entries was most of analyse at 1M rows.
    low = 1
    for width in (8, 16, 32, 64, 128, 256, 512, 1024):
        picked = np.flatnonzero((sizes > low) & (sizes <= width))
        low = width
        batch = max(1, (64 << 20) // (width * width * 4))  # ~64 MB of distances at a time
        for b0 in range(0, len(picked), batch):
            chosen = picked[b0 : b0 + batch]
            slot_of = np.arange(width)[None, :]
            valid = slot_of < sizes[chosen][:, None]
            entries = np.where(
                valid, order[np.minimum(starts[chosen][:, None] + slot_of, len(order) - 1)], -1
            )
            _bucket_mates(data, member, slot, entries, valid, m, out)
    for b in np.flatnonzero(sizes > low):  # the few biggest buckets: row blocks against the whole bucket
        entries = order[starts[b] : starts[b] + sizes[b]]
        for start in range(0, len(entries), 1024):
            part = entries[start : start + 1024]
            _bucket_mates(
                data, member, slot, part[:, None], np.ones((len(part), 1), bool), m, out, mates=entries
            )
    return out


def _bucket_mates(data, member, slot, entries, valid, m, out, mates=None) -> None:
    """Write each valid entry's m nearest bucket mates into out[row, slot * m : ...]; entries [B, w] (-1 pad).

    mates: one bucket's entries to search (entries is then a column of some of them), else each row of
    entries is a bucket searched within itself.
    """
    if mates is None:
        rows = member[np.where(valid, entries, 0)]  # [B, w]
        points = np.asarray(data[rows.ravel()], np.float32).reshape(*rows.shape, -1)
        points[~valid] = 0.0
        sq = (points**2).sum(axis=2)
        d2 = sq[:, :, None] + sq[:, None, :] - 2 * np.matmul(points, points.transpose(0, 2, 1))
        width = rows.shape[1]
        d2[:, np.arange(width), np.arange(width)] = np.inf  # not itself
        d2[np.broadcast_to(~valid[:, None, :], d2.shape)] = np.inf  # not the padding
        take = min(m, width - 1)
        near = np.argpartition(d2, take - 1, axis=2)[:, :, :take]
        mate = rows[np.arange(len(rows))[:, None, None], near]
        mate[~np.isfinite(np.take_along_axis(d2, near, axis=2))] = -1  # a bucket smaller than m + 1
        columns = slot[entries[valid]][:, None] * m + np.arange(take)
        out[rows[valid][:, None], columns] = mate[valid]
        return
    rows = member[entries[:, 0]]
    pool = member[mates]
    points, others = np.asarray(data[rows], np.float32), np.asarray(data[pool], np.float32)
    d2 = (points**2).sum(1)[:, None] + (others**2).sum(1)[None, :] - 2 * points @ others.T
    d2[pool[None, :] == rows[:, None]] = np.inf
    take = min(m, len(pool) - 1)
    near = np.argpartition(d2, take - 1, axis=1)[:, :take]
    out[rows[:, None], slot[entries[:, 0]][:, None] * m + np.arange(take)] = pool[near]


def silhouette_samples_safe(data: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-image silhouette in [-1, 1]; 0 for noise and wherever it is undefined (fewer than 2 clusters)."""
    from sklearn.metrics import silhouette_samples

    data, labels = np.asarray(data, dtype=np.float32), np.asarray(labels)
    out = np.zeros(len(labels), np.float32)
    keep = labels >= 0
    if len(np.unique(labels[keep])) < 2 or len(np.unique(labels[keep])) >= keep.sum():
        return out
    if keep.sum() <= 20000:
        out[keep] = silhouette_samples(data[keep], labels[keep])
        return out
    # Exact silhouette is O(n^2); at this size use the centroid ("simplified") silhouette instead.
    x, lab = data[keep], labels[keep]
    ids = np.unique(lab)
    centroids = np.stack([x[lab == c].mean(axis=0) for c in ids])
    dist = np.sqrt(
        np.maximum(((x**2).sum(1)[:, None] + (centroids**2).sum(1)[None]) - 2 * x @ centroids.T, 0)
    )
    own = np.searchsorted(ids, lab)
    a = dist[np.arange(len(x)), own]
    dist[np.arange(len(x)), own] = np.inf
    b = dist.min(axis=1)
    out[keep] = (b - a) / np.maximum(np.maximum(a, b), 1e-12)
    return out


def mean_image(thumbnails: Sequence[np.ndarray], size: int = 128) -> np.ndarray:
    """Pixel-wise mean of RGB images, each letterboxed onto a size x size square; uint8 [size, size, 3]."""
    from PIL import Image

    total = np.zeros((size, size, 3), np.float64)
    count = 0
    for thumb in thumbnails:
        arr = np.asarray(thumb)
        if arr.ndim == 2:
            arr = np.stack([arr] * 3, axis=-1)
        if arr.ndim != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
            continue  # an unusable thumbnail should not spoil the others
        img = Image.fromarray(arr[..., :3].astype(np.uint8))
        img.thumbnail((size, size))
        canvas = Image.new("RGB", (size, size), (255, 255, 255))
        canvas.paste(img, ((size - img.width) // 2, (size - img.height) // 2))
        total += np.asarray(canvas, np.float64)
        count += 1
    if count == 0:
        return np.full((size, size, 3), 255, np.uint8)
    return np.round(total / count).astype(np.uint8)


def analyse(
    data: np.ndarray,
    labels: np.ndarray,
    *,
    outlier_score: np.ndarray | None = None,
    duplicate_threshold: float = 0.97,
    features: np.ndarray | None = None,
    knn_distances: np.ndarray | None = None,
    knn_indices: np.ndarray | None = None,
    knn_sample: np.ndarray | None = None,
    graph_duplicates_above: int = GRAPH_DUPLICATES_ABOVE,
) -> Analysis:
    """Medoids, typicality, outlier scores, duplicate groups (on features if given) and centroid linkage.

    knn_distances: sorted neighbour distances of the rows of data (itself first), reused for the kNN
    outlier score instead of a second neighbour search. knn_indices: the same rows' neighbour indices;
    above graph_duplicates_above rows the duplicate candidates come from them (near-linear). knn_sample:
    the sample rows when the graph is sampled (embed.sampled_neighbours): bucket mates are added.
    """
    from scipy.cluster.hierarchy import linkage

    data, labels = np.asarray(data, dtype=np.float32), np.asarray(labels, dtype=np.int64)
    n = len(data)
    # Rows grouped by label once (a stable sort), not one n-long mask per cluster: O(n log n) at any k.
    order = np.argsort(labels, kind="stable")
    cuts = np.flatnonzero(np.diff(labels[order])) + 1
    members = {int(labels[part[0]]): part for part in np.split(order, cuts) if len(part)}
    ids = sorted(c for c in members if c >= 0)
    medoids = {c: int(members[c][medoid(data[members[c]])]) for c in ids}
    typicality = np.zeros(n, np.float32)
    if ids:
        centres = data[[medoids[c] for c in ids]]
        for j, c in enumerate(ids):
            rows = members[c]
            typicality[rows] = np.linalg.norm(data[rows] - centres[j], axis=1)
        noise = np.flatnonzero(labels < 0)
        for start in range(0, len(noise), 8192):
            # Noise has no medoid of its own: measure it against the nearest one.
            part = noise[start : start + 8192]
            d = np.stack([np.linalg.norm(data[part] - centre, axis=1) for centre in centres], axis=1)
            typicality[part] = d.min(axis=1)
    if outlier_score is not None and len(outlier_score) == n:
        score = np.clip(np.nan_to_num(np.asarray(outlier_score, np.float32), nan=0.0), 0.0, 1.0)
    else:
        score = knn_outlier_score(data, knn_distances=knn_distances)
    dup_source = features if features is not None and len(features) == n else data
    if n > graph_duplicates_above:
        if knn_indices is None or len(knn_indices) != n:
            from .embed import nearest_neighbours

            knn_indices = nearest_neighbours(data, DUPLICATE_NEIGHBOURS).indices
        candidates = knn_indices
        if knn_sample is not None:  # the sample rows whose buckets each row joined, and its bucket mates
            mates = sample_bucket_neighbours(data[:, :BUCKET_DIMS], knn_indices, knn_sample)
            candidates = np.hstack([knn_indices[:, : BUCKETS_PER_ROW + 1], mates])
        groups = duplicate_groups_from_neighbours(dup_source, candidates, duplicate_threshold, screen=data)
    else:
        groups = duplicate_groups(dup_source, duplicate_threshold)
    tree = None
    if len(ids) >= 2:
        centroids = np.stack([data[members[c]].mean(axis=0) for c in ids]).astype(np.float64)
        tree = linkage(centroids, method="ward")
    return Analysis(medoids, typicality, score, groups, tree, ids)
