"""Embed: a 2-D map of the reduced features for display (UMAP, t-SNE or PCA), reproducible with a seed."""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass

import numpy as np

from .progress import (
    CancelFlag,
    Cancelled,
    ProgressCallback,
    RateMeter,
    check_cancel,
    never_cancelled,
    no_progress,
)

METHODS = ("umap", "tsne", "pca")


_UMAP_CACHED = False


def _import_umap():
    """umap, with its numba functions' compiled code cached on disk across processes.

    UMAP compiles its layout code on every new process unless the function asked for caching, and most of
    umap's do not: 19 s of a 26 s first map of digits (1,797 images) was compilation, 6.7 s the map itself.
    Numba's Dispatcher.enable_caching() turns the on-disk cache on before anything is compiled; numba keeps
    it beside the module or, where that is read-only (a bundle), in its user cache directory.
    """
    global _UMAP_CACHED
    import umap

    if not _UMAP_CACHED:
        _UMAP_CACHED = True
        try:
            from numba.core.dispatcher import Dispatcher
            from umap import layouts, spectral, umap_, utils

            for module in (layouts, spectral, umap_, utils):
                for value in vars(module).values():
                    if isinstance(value, Dispatcher) and value._cache.__class__.__name__ == "NullCache":
                        value.enable_caching()
        except Exception:  # a numba/umap without these internals: correct, only slower to start
            pass
    return umap


def umap_neighbours(n: int) -> int:
    """UMAP neighbourhood size scaled to n: 15 for small sets, growing slowly so large sets stay connected."""
    return int(np.clip(round(np.sqrt(n) / 3), 15, 50))


def umap_knn_size(n: int) -> int:
    """Neighbours per row UMAP is given for n rows (itself included)."""
    return max(2, min(umap_neighbours(n), n - 1))


@dataclass(frozen=True)
class Neighbours:
    """The k nearest rows of every row (euclidean), the row itself first at distance 0.

    A sampled graph (sampled_neighbours, above SAMPLE_ABOVE rows) lists after each row itself only rows
    of `sample`, and carries the sample's own graph among itself (local indices) for UMAP.
    """

    indices: np.ndarray  # int64 [n, k]
    distances: np.ndarray  # float32 [n, k], ascending along each row
    sample: np.ndarray | None = None  # sorted rows the neighbours are drawn from; None: every row
    sample_knn: Neighbours | None = None  # the sample's graph among itself (indices into sample)


KNN_CHUNK = 2048  # query rows per step: a cancel point, and 2048 x n float64 distances at a time
# Above this many rows the search is approximate (HNSW, bench/ann.py): exact search costs n^2 dim
# (measured growth n^1.72 up to 70k) while HNSW costs ~n log n at recall@15 ~0.99.
APPROXIMATE_ABOVE = 50_000
ANN_CHUNK = 20_000  # rows added / queried per step: cancel points and progress
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 16, 100, 50  # bench/ann.py: recall@15 ~0.99 at 200k x 50


def nearest_neighbours(
    data: np.ndarray,
    k: int,
    *,
    on_progress: ProgressCallback = no_progress,
    cancelled: CancelFlag = never_cancelled,
    approximate_above: int = APPROXIMATE_ABOVE,
    seed: int = 0,
) -> Neighbours:
    """k nearest neighbours: exact by brute force (BLAS) up to approximate_above rows, else approximate
    (an HNSW graph, see approximate_neighbours); both in chunks that check the cancel flag.

    UMAP's own neighbour search is the slow part of a small map: under 4,096 rows it fills the full
    distance matrix through a Python callback per pair (1.6 M calls, ~2 s for 1,797 rows), above that
    it runs NN-descent, which cannot be cancelled. One search here serves both UMAP runs (the 2-D
    map and the clustering space) through `precomputed_knn`.
    """
    from sklearn.neighbors import NearestNeighbors

    data = np.ascontiguousarray(data, dtype=np.float32)
    n = len(data)
    k = int(min(max(1, k), n))
    if n > approximate_above and k < n:
        return approximate_neighbours(data, k, on_progress=on_progress, cancelled=cancelled, seed=seed)
    index = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(data)
    indices = np.empty((n, k), np.int64)
    distances = np.empty((n, k), np.float32)
    meter = RateMeter("neighbours", n, on_progress)
    for start in range(0, n, KNN_CHUNK):
        check_cancel(cancelled)
        meter.update(start, f"{k} nearest neighbours of {n} images")
        stop = min(n, start + KNN_CHUNK)
        dist, idx = index.kneighbors(data[start:stop])
        # The expanded-square formula leaves the self distance at ~1e-4 instead of 0, and UMAP reads the
        # first non-zero distance as the gap to the nearest neighbour: pin self to 0 and put it first.
        dist[idx == np.arange(start, stop)[:, None]] = 0.0
        order = np.argsort(dist, axis=1, kind="stable")
        indices[start:stop] = np.take_along_axis(idx, order, axis=1)
        distances[start:stop] = np.take_along_axis(np.maximum(dist, 0.0), order, axis=1)
    meter.update(n, force=True)
    return Neighbours(indices, distances)


def approximate_neighbours(
    data: np.ndarray,
    k: int,
    *,
    on_progress: ProgressCallback = no_progress,
    cancelled: CancelFlag = never_cancelled,
    seed: int = 0,
) -> Neighbours:
    """Approximate k nearest neighbours with an HNSW graph (hnswlib), self first at distance 0.

    The graph is built on one thread (same seed, same graph: runs are reproducible) in chunks that are
    cancel points; queries run on every core (they do not change the graph). Recall@15 against exact
    search is measured by bench/ann.py.
    """
    data = np.ascontiguousarray(data, dtype=np.float32)
    n = len(data)
    meter = RateMeter("neighbours", 2 * n, on_progress)
    index = _hnsw_index(data, seed, meter, 0, cancelled, f"indexing {n} images for {k} nearest neighbours")
    indices, distances = _query_self_first(
        index, data, np.arange(n), k, meter, n, cancelled, f"{k} nearest neighbours of {n} images"
    )
    meter.update(2 * n, force=True)
    return Neighbours(indices, distances)


def _hnsw_index(
    data: np.ndarray, seed: int, meter: RateMeter, done: int, cancelled: CancelFlag, message: str
):
    """An HNSW index of data's rows (ids 0..n-1), built on one thread in cancellable chunks."""
    import hnswlib

    n, dim = data.shape
    index = hnswlib.Index(space="l2", dim=dim)
    index.init_index(max_elements=n, ef_construction=HNSW_EF_CONSTRUCTION, M=HNSW_M, random_seed=seed)
    for start in range(0, n, ANN_CHUNK):
        check_cancel(cancelled)
        meter.update(done + start, message)
        stop = min(n, start + ANN_CHUNK)
        index.add_items(data[start:stop], np.arange(start, stop), num_threads=1)
    return index


def _query_self_first(
    index,
    queries: np.ndarray,
    own: np.ndarray | None,
    k: int,
    meter: RateMeter,
    done: int,
    cancelled: CancelFlag,
    message: str,
) -> tuple[np.ndarray, np.ndarray]:
    """(indices, distances) [len(queries), k]: each query's index id `own` (None: not in the index) first
    at distance 0, then its k - 1 nearest other index rows; every core queries, in cancellable chunks."""
    n = len(queries)
    index.set_ef(max(HNSW_EF_SEARCH, 2 * k))
    indices = np.empty((n, k), np.int64)
    distances = np.empty((n, k), np.float32)
    threads = os.cpu_count() or 1
    wanted = k if own is not None else k - 1
    for start in range(0, n, ANN_CHUNK):
        check_cancel(cancelled)
        meter.update(done + start, message)
        stop = min(n, start + ANN_CHUNK)
        rows = np.arange(start, stop)
        indices[rows, 0] = rows if own is None else own[rows]
        distances[rows, 0] = 0.0
        if wanted < 1:
            continue
        idx, d2 = index.knn_query(queries[start:stop], k=wanted, num_threads=threads)
        idx = idx.astype(np.int64)
        dist = np.sqrt(np.maximum(d2, 0.0))
        if own is not None:
            # Put each row itself first at distance 0, as the exact search does (HNSW may miss it among
            # exact copies, or list a copy first): drop it wherever it is, else drop the farthest.
            mine = idx == own[rows][:, None]
            drop = np.where(mine.any(axis=1), mine.argmax(axis=1), k - 1)
            keep = np.ones_like(mine)
            keep[np.arange(len(rows)), drop] = False
            idx, dist = idx[keep].reshape(len(rows), k - 1), dist[keep].reshape(len(rows), k - 1)
        indices[rows, 1:] = idx
        distances[rows, 1:] = dist
    return indices, distances


SAMPLE_ABOVE = 100_000  # above this many rows both UMAPs (map, clustering space) fit a sample: see below
FIT_SAMPLE = 50_000
PLACE_NEIGHBOURS = 11  # each row and the 10 sample rows it is placed from (and outlier-scored against)


def sample_rows(n: int, size: int, seed: int) -> np.ndarray:
    """A fixed-seed random sample of min(size, n) rows, sorted."""
    return np.sort(np.random.default_rng(seed).choice(n, min(size, n), replace=False))


def sampled_neighbours(
    data: np.ndarray,
    *,
    sample_size: int = FIT_SAMPLE,
    k: int = PLACE_NEIGHBOURS,
    seed: int = 0,
    on_progress: ProgressCallback = no_progress,
    cancelled: CancelFlag = never_cancelled,
) -> Neighbours:
    """Each row's k - 1 nearest rows of a random sample (the sample's own graph has UMAP's size).

    What a big set needs from a neighbour graph is served by one HNSW index of the sample: the sample's
    UMAP graph (map and clustering space are fitted on the sample), and for every other row the sample
    rows it is placed from. Index and queries cost O(n log s) instead of an n-row graph's build.
    """
    data = np.ascontiguousarray(data, dtype=np.float32)
    n = len(data)
    sample = sample_rows(n, sample_size, seed)
    s = len(sample)
    k_sample = umap_knn_size(s)
    rest = np.setdiff1d(np.arange(n), sample, assume_unique=True)
    meter = RateMeter("neighbours", 2 * s + len(rest), on_progress)
    points = np.ascontiguousarray(data[sample])
    index = _hnsw_index(points, seed, meter, 0, cancelled, f"indexing a {s:,}-image sample of {n:,}")
    local = np.arange(s)
    sample_knn = Neighbours(
        *_query_self_first(
            index,
            points,
            local,
            k_sample,
            meter,
            s,
            cancelled,
            f"{k_sample} nearest neighbours in the sample",
        )
    )
    k = int(min(k, k_sample))
    indices = np.empty((n, k), np.int64)
    distances = np.empty((n, k), np.float32)
    indices[sample] = sample[sample_knn.indices[:, :k]]
    distances[sample] = sample_knn.distances[:, :k]
    if len(rest):
        idx, dist = _query_self_first(
            index, data[rest], None, k, meter, 2 * s, cancelled, f"placing {len(rest):,} images by the sample"
        )
        indices[rest] = np.column_stack([rest, sample[idx[:, 1:]]])
        distances[rest] = dist
    meter.update(2 * s + len(rest), force=True)
    return Neighbours(indices, distances, sample=sample, sample_knn=sample_knn)


class _EpochWatch(io.TextIOBase):
    """UMAP's epoch progress bar writes here (tqdm, ~10 times a second): the cancel flag is checked there.

    UMAP has no callback, but its layout loop is a Python loop over epochs wrapped in tqdm with the
    `tqdm_kwds` we pass; raising from the bar's file stops the layout between two epochs.
    """

    def __init__(self, cancelled: CancelFlag) -> None:
        super().__init__()
        self.cancelled, self.raised = cancelled, False

    def write(self, text: str) -> int:
        if not self.raised and self.cancelled():
            self.raised = True  # once: tqdm writes again while closing
            raise Cancelled()
        return len(text)


def umap_transform(
    data: np.ndarray,
    *,
    n_components: int,
    seed: int,
    min_dist: float = 0.1,
    cancelled: CancelFlag = never_cancelled,
    knn: Neighbours | None = None,
    n_epochs: int | None = None,
) -> np.ndarray:
    """UMAP of data to n_components, with sizes that also work for tiny sets; cancellable between epochs.

    knn: nearest_neighbours(data, umap_knn_size(len(data))), computed here when not given.
    n_epochs: layout epochs; None is UMAP's own choice (500 up to 10,000 rows, 200 above).
    """
    umap = _import_umap()

    n = len(data)
    neighbours = umap_knn_size(n)
    if knn is None or knn.indices.shape != (n, neighbours):
        knn = nearest_neighbours(data, neighbours, cancelled=cancelled)
    # The spectral init needs n > n_components + 1; below that use a random start.
    init = "spectral" if n > n_components + 2 else "random"
    model = umap.UMAP(
        n_components=n_components,
        n_neighbors=neighbours,
        min_dist=min_dist,
        random_state=seed,  # fixed seed: reproducible, at the price of single-threaded layout
        init=init,
        n_jobs=1,
        n_epochs=n_epochs,
        precomputed_knn=(knn.indices, knn.distances, None),
        tqdm_kwds={"disable": False, "file": _EpochWatch(cancelled), "mininterval": 0.1, "miniters": 1},
    )
    check_cancel(cancelled)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # UMAP warns about n_jobs with a seed and about tiny graphs
        return np.asarray(model.fit_transform(data), dtype=np.float32)


def umap_sample_and_place(
    data: np.ndarray,
    knn: Neighbours,
    *,
    n_components: int = 2,
    seed: int = 0,
    min_dist: float = 0.1,
    n_epochs: int | None = None,
    on_progress: ProgressCallback = no_progress,
    cancelled: CancelFlag = never_cancelled,
) -> np.ndarray:
    """UMAP of knn's sample, then every other row at the distance-weighted mean of its sample neighbours.

    knn: sampled_neighbours(data). 1M rows cost a 50k-row UMAP plus one O(n k) pass.
    bench/map_epochs.py --sample reports how many of each image's 10 nearest neighbours stay neighbours in
    the map, against UMAP on every row.
    """
    if knn.sample is None or knn.sample_knn is None:
        raise ValueError("umap_sample_and_place needs a sampled neighbour graph (sampled_neighbours)")
    n, sample = len(data), knn.sample
    meter = RateMeter("embed", 2, on_progress)
    meter.update(0, f"umap of a {len(sample):,}-image sample of {n:,}", force=True)
    coords = np.zeros((n, n_components), np.float32)
    coords[sample] = umap_transform(
        np.ascontiguousarray(data[sample]),
        n_components=n_components,
        seed=seed,
        min_dist=min_dist,
        cancelled=cancelled,
        knn=knn.sample_knn,
        n_epochs=n_epochs,
    )
    meter.update(1, f"placing {n - len(sample):,} images by their sample neighbours")
    rest = np.setdiff1d(np.arange(n), sample, assume_unique=True)
    for start in range(0, len(rest), 65536):
        check_cancel(cancelled)
        rows = rest[start : start + 65536]
        weight = 1.0 / (knn.distances[rows, 1:] + 1e-6)
        near = coords[knn.indices[rows, 1:]]
        coords[rows] = np.einsum("ij,ijc->ic", weight, near) / weight.sum(axis=1)[:, None]
    meter.update(2, force=True)
    return coords


def _pca(data: np.ndarray, n_components: int, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    keep = min(n_components, data.shape[1], len(data))
    out = np.zeros((len(data), n_components), np.float32)
    if keep >= 1 and len(data) >= 2:
        out[:, :keep] = PCA(n_components=keep, random_state=seed).fit_transform(data)
    return out


def _tsne(data: np.ndarray, n_components: int, seed: int) -> np.ndarray:
    from sklearn.manifold import TSNE

    n = len(data)
    perplexity = float(min(30.0, max(2.0, (n - 1) / 3)))
    tsne = TSNE(n_components=n_components, perplexity=perplexity, init="pca", random_state=seed)
    return np.asarray(tsne.fit_transform(data), dtype=np.float32)


def embed(
    data: np.ndarray,
    *,
    method: str = "umap",
    n_components: int = 2,
    seed: int = 0,
    on_progress: ProgressCallback = no_progress,
    cancelled: CancelFlag = never_cancelled,
    knn: Neighbours | None = None,
    sample_above: int = SAMPLE_ABOVE,
) -> np.ndarray:
    """Map rows of data to n_components (2) dimensions for display; float32 [n, n_components].

    knn: the rows' nearest_neighbours for UMAP, shared with the clustering space (computed when None).
    Above sample_above rows UMAP maps a sample and the rest is placed (umap_sample_and_place); knn is
    then sampled_neighbours(data) (computed when None or not sampled).
    """
    if method not in METHODS:
        raise ValueError(f"unknown embedding {method!r}; choose one of {', '.join(METHODS)}")
    data = np.asarray(data, dtype=np.float32)
    n = len(data)
    meter = RateMeter("embed", 1, on_progress)
    meter.update(0, f"{method} map of {n} images", force=True)
    check_cancel(cancelled)
    if n < 5 or method == "pca":
        # Neighbour-graph methods need a handful of points; PCA gives a faithful map of a tiny set.
        coords = _pca(data, n_components, seed)
    elif method == "umap" and n > sample_above:
        if knn is None or knn.sample is None or len(knn.indices) != n:
            knn = sampled_neighbours(data, seed=seed, on_progress=on_progress, cancelled=cancelled)
        coords = umap_sample_and_place(
            data, knn, n_components=n_components, seed=seed, on_progress=on_progress, cancelled=cancelled
        )
    elif method == "umap":
        coords = umap_transform(data, n_components=n_components, seed=seed, cancelled=cancelled, knn=knn)
    else:
        coords = _tsne(data, n_components, seed)
    check_cancel(cancelled)
    meter.update(1, force=True)
    return np.ascontiguousarray(coords, dtype=np.float32)
