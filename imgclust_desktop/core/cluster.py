"""Cluster: HDBSCAN, k-means, k-medoids, agglomerative, DBSCAN, OPTICS, GMM; k chosen automatically or fixed."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .progress import (
    CancelFlag,
    Progress,
    ProgressCallback,
    RateMeter,
    check_cancel,
    never_cancelled,
    no_progress,
)

if TYPE_CHECKING:
    from .embed import Neighbours
    from .tree import ClusterTree

METHODS = ("tree", "hdbscan", "kmeans", "kmedoids", "agglomerative", "dbscan", "optics", "gmm")
K_METHODS = ("kmeans", "kmedoids", "agglomerative", "gmm")  # methods that take a number of clusters
CRITERIA = ("silhouette", "davies_bouldin", "calinski_harabasz", "elbow")
LINKAGES = ("ward", "average", "complete", "single")
SILHOUETTE_SAMPLE = 4000  # silhouette is O(n^2): score larger sets on a fixed-seed sample
SCIPY_LINKAGE_MAX = 20000  # above this a full sample linkage needs too much memory
K_TOLERANCE = 0.05  # auto-k: scores within 5 % of the best count as equally good (see choose_k)
PEAK_SHARE_SPAN = 0.6  # auto-k: an interior peak counts if it scores at least 40 % of the best (see choose_k)
# auto-k by silhouette: above this a level shows reasonable structure (Kaufman & Rousseeuw's reading of the
# silhouette: 0.51-0.70 reasonable, 0.26-0.50 weak); a finer peak must show it too to win (see choose_k)
REASONABLE_SILHOUETTE = 0.5
VOTE_NEIGHBOURS = 10  # the tree's k-means levels: each row's label is voted on by this many neighbours
VOTE_ROUNDS = 5  # ... until no label changes, at most this many rounds (see neighbour_vote)


@dataclass
class ClusterParams:
    # The cluster tree (core/tree.py) is the default: flat clusters are cuts of it, at a level chosen
    # automatically from 2 groups up to a quarter of the images (k-means' auto-k searches k_range only).
    # On Fashion-MNIST HDBSCAN merges the five upper-body classes into one at every smallest-cluster size
    # (3 clusters, ACC 0.29). HDBSCAN stays one click away for density and its GLOSH outlier score.
    method: str = "tree"  # tree kmeans hdbscan kmedoids agglomerative dbscan optics gmm
    k: int | None = None  # fixed k (methods that take one; tree: the level nearest k groups)
    k_range: tuple[int, int] = (2, 25)
    criterion: str = "silhouette"  # silhouette davies_bouldin calinski_harabasz elbow
    linkage: str = "ward"  # agglomerative
    max_d: float | None = None  # dendrogram cut height (agglomerative)
    space: str = "umap"  # "reduced" (PCA space) or "umap" (low-dim UMAP space for clustering)
    min_cluster_size: int | None = None  # hdbscan; None = scaled to n
    eps: float | None = None  # dbscan
    assign_noise: bool = True  # hdbscan: give uncertain images their nearest cluster (GLOSH still flags them)
    seed: int = 0


@dataclass
class Clustering:
    labels: np.ndarray  # int [n], -1 = noise
    n_clusters: int
    k_curve: dict | None  # {"k": [...], "score": [...], "criterion": str, "chosen": int}
    scores: dict  # silhouette, davies_bouldin, calinski_harabasz, hopkins (where defined)
    outlier_score: np.ndarray | None  # GLOSH when hdbscan, else None
    params: ClusterParams
    tree: ClusterTree | None = None  # method "tree": the whole tree; labels are its cut at tree.default_k


MCS_FRACTIONS = (0.005, 0.01, 0.02, 0.03, 0.05)  # auto HDBSCAN: smallest cluster as a share of the images


def min_cluster_size_candidates(n: int) -> list[int]:
    """HDBSCAN smallest-cluster sizes tried when none is given: 0.5 % to 5 % of n, between 5 and 500."""
    return sorted({int(np.clip(round(f * n), 5, 500)) for f in MCS_FRACTIONS})


def default_min_cluster_size(n: int) -> int:
    """HDBSCAN smallest cluster scaled to n: 1 % of the images, between 5 and 500."""
    # Measured on digits / Fashion-MNIST features: 1 % gives near-class-sized clusters with little noise;
    # 0.5 % splits classes into fragments and labels 3-15 % of the images noise.
    return int(np.clip(round(0.01 * n), 5, 500))


def cluster_space_dims(n: int) -> int:
    """Dimensions of the UMAP space used for clustering."""
    return 10


def cluster_space_epochs(n: int) -> int | None:
    """UMAP layout epochs of the clustering space: UMAP's own choice up to 10,000 rows, 100 above.

    Above 10,000 rows UMAP runs 200 epochs, single-threaded because of the fixed seed: 37 s of a 49 s
    clustering stage at 70k. Measured on Fashion-MNIST 70k (seeds 0, 1, 2): 100 epochs took 29 s instead
    of 48 s with NMI 0.675 / 0.644 / 0.674 against 0.660 / 0.658 / 0.650 (ACC 0.647 / 0.533 / 0.646
    against 0.589 / 0.592 / 0.569): k-means needs the neighbourhoods, not a polished layout.
    """
    return 100 if n > 10_000 else None


def clustering_space(
    data: np.ndarray,
    params: ClusterParams,
    cancelled: CancelFlag = never_cancelled,
    knn: Neighbours | None = None,
) -> np.ndarray:
    """The space labels are computed in: the data itself or a low-dim UMAP of it (knn: see embed.embed).

    Above embed.SAMPLE_ABOVE rows the UMAP is fitted on a sample and every other row placed among its
    sample neighbours (knn: embed.sampled_neighbours), as the map is: the tree is still built on every row.
    """
    from .embed import SAMPLE_ABOVE, sampled_neighbours, umap_sample_and_place, umap_transform

    n = len(data)
    if params.space == "reduced" or n < 30 or data.shape[1] <= cluster_space_dims(n):
        return data
    if params.space != "umap":
        raise ValueError(f"unknown clustering space {params.space!r}; choose 'reduced' or 'umap'")
    if n > SAMPLE_ABOVE and (knn is None or knn.sample is None):
        knn = sampled_neighbours(data, seed=params.seed, cancelled=cancelled)
    # min_dist=0 packs neighbours tightly: what density clustering wants, unlike a display map.
    if knn is not None and knn.sample is not None:
        return umap_sample_and_place(
            data,
            knn,
            n_components=cluster_space_dims(n),
            seed=params.seed,
            min_dist=0.0,
            n_epochs=cluster_space_epochs(len(knn.sample)),
            cancelled=cancelled,
        )
    return umap_transform(
        data,
        n_components=cluster_space_dims(n),
        seed=params.seed,
        min_dist=0.0,
        cancelled=cancelled,
        knn=knn,
        n_epochs=cluster_space_epochs(n),
    )


def cut_linkage(linkage_matrix: np.ndarray, max_d: float) -> np.ndarray:
    """Flat 0-based labels of a scipy linkage cut at height max_d (same partition as fcluster 'distance')."""
    from scipy.cluster.hierarchy import fcluster

    flat = fcluster(np.asarray(linkage_matrix, dtype=float), t=float(max_d), criterion="distance")
    return _relabel(flat - 1)


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Clusters renumbered 0..k-1 by first appearance; noise stays -1."""
    labels = np.asarray(labels, dtype=np.int64)
    out = np.full(len(labels), -1, np.int64)
    mapping: dict[int, int] = {}
    for i, lab in enumerate(labels.tolist()):
        if lab >= 0:
            out[i] = mapping.setdefault(lab, len(mapping))
    return out


# ----------------------------------------------------------------- k-medoids (alternate / Voronoi iteration)


def kmedoids(
    x: np.ndarray, k: int, *, seed: int = 0, max_iter: int = 50, n_init: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Alternate k-medoids, best of n_init k-medoids++ starts; returns (labels, medoid row indices)."""
    rng = np.random.default_rng(seed)
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    for _ in range(n_init):  # alternate k-medoids stops in local optima: restarts make that rare
        labels, medoid_idx, cost = _kmedoids_once(x, k, rng, max_iter)
        if best is None or cost < best[0]:
            best = (cost, labels, medoid_idx)
    return best[1], best[2]


def _kmedoids_once(x: np.ndarray, k: int, rng: np.random.Generator, max_iter: int) -> tuple:
    n = len(x)
    medoids = [int(rng.integers(n))]
    nearest = np.linalg.norm(x - x[medoids[0]], axis=1)
    for _ in range(1, k):
        weights = nearest**2
        total = weights.sum()
        pick = int(rng.choice(n, p=weights / total)) if total > 0 else int(rng.integers(n))
        medoids.append(pick)
        nearest = np.minimum(nearest, np.linalg.norm(x - x[pick], axis=1))
    medoid_idx = np.array(medoids)
    for _ in range(max_iter):
        dist = np.linalg.norm(x[:, None, :] - x[medoid_idx][None, :, :], axis=2)
        labels = dist.argmin(axis=1)
        new = medoid_idx.copy()
        for c in range(k):
            members = np.flatnonzero(labels == c)
            if len(members):
                new[c] = members[_medoid_of(x[members])]
        if np.array_equal(new, medoid_idx):
            break
        medoid_idx = new
    dist = np.linalg.norm(x[:, None, :] - x[medoid_idx][None, :, :], axis=2)
    return dist.argmin(axis=1), medoid_idx, float(dist.min(axis=1).sum())


def _medoid_of(points: np.ndarray, max_candidates: int = 500) -> int:
    """Index (into points) of the member with the least total distance to all members."""
    candidates = np.arange(len(points))
    if len(points) > max_candidates:
        # Large cluster: the medoid lies near the centre; score only the members closest to the mean.
        centre_dist = np.linalg.norm(points - points.mean(axis=0), axis=1)
        candidates = np.argsort(centre_dist, kind="stable")[:max_candidates]
    cost = np.zeros(len(candidates))
    for start in range(0, len(points), 2048):
        chunk = points[start : start + 2048]
        cost += np.linalg.norm(points[candidates][:, None, :] - chunk[None, :, :], axis=2).sum(axis=1)
    return int(candidates[np.argmin(cost)])


# ----------------------------------------------------------------------------- one run per method


def _fit_k(
    x: np.ndarray,
    method: str,
    k: int,
    params: ClusterParams,
    tree: object | None,
    init: np.ndarray | None = None,
) -> np.ndarray:
    """Labels for a fixed k with one of the k-taking methods; init: k-means' starting centres."""
    seed = params.seed
    if method == "kmeans":
        from sklearn.cluster import KMeans

        if init is not None:
            # The cluster tree's level was scored on starts fitted to a sample (tree.flat_level): the best
            # one's centres, refined on every row. One thread: the same answer on any machine.
            from threadpoolctl import threadpool_limits

            with threadpool_limits(1):
                return KMeans(n_clusters=k, init=np.asarray(init, x.dtype), n_init=1).fit_predict(x)
        return KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(x)
    if method == "kmedoids":
        return kmedoids(x, k, seed=seed)[0]
    if method == "gmm":
        from sklearn.mixture import GaussianMixture

        return GaussianMixture(
            n_components=k, covariance_type="full", reg_covar=1e-4, random_state=seed
        ).fit_predict(x)
    if method == "agglomerative":
        if tree is not None:
            from scipy.cluster.hierarchy import fcluster

            return fcluster(tree, t=k, criterion="maxclust") - 1
        from sklearn.cluster import AgglomerativeClustering
        from sklearn.neighbors import kneighbors_graph

        # Too many images for a full tree in memory: grow it along a sparse neighbour graph instead.
        graph = kneighbors_graph(x, n_neighbors=10, include_self=False)
        return AgglomerativeClustering(n_clusters=k, linkage=params.linkage, connectivity=graph).fit_predict(
            x
        )
    raise ValueError(f"{method} does not take a number of clusters")


def _sample_linkage(x: np.ndarray, method: str) -> np.ndarray | None:
    from scipy.cluster.hierarchy import linkage

    if len(x) > SCIPY_LINKAGE_MAX:
        return None
    return linkage(x, method=method)


def _hdbscan(x: np.ndarray, params: ClusterParams) -> tuple[np.ndarray, np.ndarray]:
    import hdbscan

    mcs = params.min_cluster_size or default_min_cluster_size(len(x))
    mcs = int(min(max(2, mcs), max(2, len(x) - 1)))
    # min_samples = mcs (hdbscan's own default) marks less noise than a small fixed value; capped for speed.
    model = hdbscan.HDBSCAN(min_cluster_size=mcs, min_samples=min(mcs, 50), core_dist_n_jobs=1)
    labels = model.fit_predict(x)
    glosh = np.nan_to_num(np.asarray(model.outlier_scores_, dtype=np.float32), nan=0.0)
    return labels, np.clip(glosh, 0.0, 1.0)


def _hdbscan_auto(
    x: np.ndarray, data: np.ndarray, params: ClusterParams, step: Callable[[int, str], None]
) -> tuple[np.ndarray, np.ndarray, dict]:
    """HDBSCAN over a range of smallest-cluster sizes, keeping the labelling the criterion likes best.

    A single size scaled to n is brittle: on digits 1 % splits classes (13 clusters, ACC 0.88), 5 % merges
    them (5 clusters). Each candidate is scored like an auto-k candidate, on the reduced features rather
    than the UMAP space it was found in, times the share of images it did not call noise (a labelling
    that discards the hard half would otherwise win). The curve lists clusters found per candidate.
    """
    runs = []
    for i, mcs in enumerate(min_cluster_size_candidates(len(x))):
        step(1 + i, f"hdbscan min size {mcs}")
        labels, glosh = _hdbscan(x, dataclasses.replace(params, min_cluster_size=mcs))
        score = _score(data, labels, params.criterion, params.seed)
        if params.criterion in ("silhouette", "calinski_harabasz") and not np.isnan(score):
            score *= float(np.mean(labels >= 0))
        n_found = len(np.unique(labels[labels >= 0]))
        runs.append((mcs, n_found, score, labels, glosh))
    valid = [r for r in runs if not np.isnan(r[2])]
    if not valid:
        best = runs[len(runs) // 2]
    elif params.criterion in ("davies_bouldin", "elbow"):
        best = min(valid, key=lambda r: r[2])
    else:
        best = max(valid, key=lambda r: r[2])
    ordered = sorted(runs, key=lambda r: (r[1], -r[0]))
    curve = {
        "k": [r[1] for r in ordered],
        "score": [None if np.isnan(r[2]) else float(r[2]) for r in ordered],
        "min_cluster_size": [r[0] for r in ordered],
        "criterion": params.criterion,
        "chosen": int(best[1]),
        "chosen_min_cluster_size": int(best[0]),
    }
    return best[3], best[4], curve


def assign_noise(x: np.ndarray, labels: np.ndarray, k: int = 10) -> np.ndarray:
    """Noise rows (-1) take the majority cluster of their k nearest clustered neighbours in x.

    HDBSCAN leaves 2-5 % of a typical image set unassigned: images between two groups. For curation every
    image should land somewhere; the outlier score still marks the doubtful ones for the Outliers view.
    """
    from sklearn.neighbors import KNeighborsClassifier

    noise = labels < 0
    if not noise.any() or noise.all():
        return labels
    k = int(min(k, int((~noise).sum())))
    knn = KNeighborsClassifier(n_neighbors=k).fit(x[~noise], labels[~noise])
    out = labels.copy()
    out[noise] = knn.predict(x[noise])
    return out


def neighbour_vote(
    x: np.ndarray, labels: np.ndarray, *, k: int = VOTE_NEIGHBOURS, rounds: int = VOTE_ROUNDS
) -> np.ndarray:
    """labels after a majority vote of every row's k nearest neighbours in x (the row itself counts once
    and a tie keeps its label), repeated until nothing changes or for `rounds` rounds.

    k-means cuts the clustering space with straight walls between centres; where two groups touch, a wall
    runs through one of them and the rows beyond it sit among another group's rows. Their neighbours say
    so. Measured on the clustering spaces of bench/quality.py's sets in three variants each (seed 0 and 1
    with two BLAS threads, seed 0 with one): ACC +0.0005 to +0.0016 on digits and +0.0003 to +0.0012 on
    Fashion-MNIST at the chosen level (k of 5-15 and one round were tried too: no better on both). It is
    not applied to the tree's cuts: a group of 8 near-duplicates, as in many-groups, can lose its rows to
    a vote of 10. An answer whose vote would empty a group is kept as it was, so the level's number of
    groups never changes.
    """
    from .embed import nearest_neighbours

    n = len(labels)
    labels = np.asarray(labels, np.int64)
    k = min(k, n - 1)
    if k < 1 or n < 3:
        return labels
    found = nearest_neighbours(np.asarray(x, np.float32), k + 1).indices
    # The row itself is listed first unless an exact copy of it came first: move it last, keep k others.
    itself = found == np.arange(n)[:, None]
    neighbours = np.take_along_axis(found, np.argsort(itself, axis=1, kind="stable"), axis=1)[:, :k]
    groups = int(labels.max()) + 1
    cells = np.arange(n)[:, None] * groups
    voted = labels
    for _ in range(rounds):
        counts = np.bincount((cells + voted[neighbours]).ravel(), minlength=n * groups).reshape(n, groups)
        counts = counts.astype(np.float32)
        counts[np.arange(n), voted] += 1.5  # the row's own vote, plus the tie
        new = counts.argmax(axis=1)
        if np.array_equal(new, voted):
            break
        voted = new
    if np.bincount(voted, minlength=groups).min() == 0:
        return labels
    return voted


def _dbscan(x: np.ndarray, params: ClusterParams) -> np.ndarray:
    from sklearn.cluster import DBSCAN

    min_samples = params.min_cluster_size or 5
    eps = params.eps or _estimate_eps(x, min_samples)
    return DBSCAN(eps=eps, min_samples=min_samples).fit_predict(x)


def _estimate_eps(x: np.ndarray, min_samples: int) -> float:
    """DBSCAN radius from the k-distance curve: a generous quantile of the distance to the k-th neighbour."""
    from sklearn.neighbors import NearestNeighbors

    k = min(min_samples, len(x) - 1)
    dist, _ = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
    eps = float(np.quantile(dist[:, -1], 0.9))
    return eps if eps > 0 else 1e-6


def _optics(x: np.ndarray, params: ClusterParams) -> np.ndarray:
    from sklearn.cluster import OPTICS

    mcs = params.min_cluster_size or default_min_cluster_size(len(x))
    # A neighbourhood of 10+ keeps the reachability plot smooth; mcs still sets the smallest cluster.
    min_samples = int(min(np.clip(mcs, 10, 50), len(x) - 1))
    return OPTICS(min_samples=min_samples, min_cluster_size=min(max(2, mcs), len(x)), n_jobs=1).fit_predict(x)


# ----------------------------------------------------------------------------- scores and auto-k


def _score(x: np.ndarray, labels: np.ndarray, criterion: str, seed: int) -> float:
    """One criterion for one labelling (noise left out); NaN where undefined."""
    from sklearn import metrics

    keep = labels >= 0
    x, labels = x[keep], labels[keep]
    n_labels = len(np.unique(labels))
    if criterion == "elbow":
        return float(
            sum(((x[labels == c] - x[labels == c].mean(axis=0)) ** 2).sum() for c in np.unique(labels))
        )
    if n_labels < 2 or n_labels >= len(x):
        return float("nan")
    if criterion == "silhouette":
        sample = SILHOUETTE_SAMPLE if len(x) > SILHOUETTE_SAMPLE else None
        # Cosine: the features are L2-normalised before PCA, so angles are the similarity the user sees.
        return float(
            metrics.silhouette_score(x, labels, metric="cosine", sample_size=sample, random_state=seed)
        )
    if criterion == "davies_bouldin":
        return float(metrics.davies_bouldin_score(x, labels))
    return float(metrics.calinski_harabasz_score(x, labels))


def choose_k(ks: list[int], scores: list[float], criterion: str, tolerance: float = K_TOLERANCE) -> int:
    """The k a score curve favours: the finest well-scored peak of the curve, or the SSE elbow.

    Image sets are hierarchical (shoes vs clothes, then boots vs sandals), and silhouette rewards the top
    split: on Fashion-MNIST features it falls from k=2 (0.40) almost monotonically, with a second peak at
    k=10-13 where the classes are (k=2: ACC 0.20; k=13: 0.63). So the left end of the range only wins
    when the curve has no interior peak worth the name (at least PEAK_SHARE of the best score). Among the
    candidates, the largest k within `tolerance` of the best wins: too many clusters are cheap to fix
    (merge in the GUI), too few are not (split by hand). When the best silhouette shows reasonable
    structure (above REASONABLE_SILHOUETTE) only peaks that show it too are candidates, so a folder of
    two clear groups is not split into the styles within them.
    """
    s = np.asarray(scores, dtype=float)
    if criterion == "elbow":
        if len(ks) < 3:
            return ks[int(np.nanargmin(s))]
        # Elbow = largest second difference of the within-cluster sum of squares: where the gain stops.
        second = s[:-2] - 2 * s[1:-1] + s[2:]
        return ks[1 + int(np.nanargmax(second))]
    if np.all(np.isnan(s)):
        return ks[0]
    if criterion == "calinski_harabasz":
        return ks[int(np.nanargmax(s))]  # CH keeps creeping up with k: a tolerance would run to k_max
    g = -s if criterion == "davies_bouldin" else s  # higher is better from here on
    g = np.where(np.isnan(g), -np.inf, g)
    best = float(np.max(g))
    peaks = [
        i
        for i in range(1, len(g))
        if g[i] >= g[i - 1] and (i == len(g) - 1 or g[i] >= g[i + 1]) and np.isfinite(g[i])
    ]
    floor = best - PEAK_SHARE_SPAN * abs(best)
    if criterion == "silhouette" and best > REASONABLE_SILHOUETTE:
        # A folder of two clear groups, each with a few styles (digits 0 and 1: k=2 0.62, a bump at k=5
        # 0.46) is two groups: a level with reasonable structure is not given up for weak structure.
        floor = max(floor, REASONABLE_SILHOUETTE)
    candidates = [i for i in peaks if g[i] >= floor] or list(range(len(g)))
    top = max(g[i] for i in candidates)
    good = [i for i in candidates if g[i] >= top - tolerance * abs(top)]
    return ks[good[-1]]


def hopkins(x: np.ndarray, *, sample: int = 200, seed: int = 0) -> float:
    """Hopkins statistic: ~0.5 for uniform data, towards 1 for data that clusters."""
    from sklearn.neighbors import NearestNeighbors

    n = len(x)
    if n < 4:
        return float("nan")
    rng = np.random.default_rng(seed)
    m = min(sample, max(1, n // 10))
    nn = NearestNeighbors(n_neighbors=2).fit(x)
    picks = rng.choice(n, m, replace=False)
    w = nn.kneighbors(x[picks])[0][:, 1]  # data point to its nearest other data point
    lo, hi = x.min(axis=0), x.max(axis=0)
    uniform = rng.uniform(lo, hi, size=(m, x.shape[1]))
    u = nn.kneighbors(uniform, n_neighbors=1)[0][:, 0]
    d = x.shape[1]
    # Distances raised to the dimension (Lawson & Jurs) keep the statistic from saturating in >2-D spaces.
    scale = max(float(np.max(np.concatenate([u, w]))), 1e-12)
    u_d, w_d = (u / scale) ** d, (w / scale) ** d
    total = u_d.sum() + w_d.sum()
    return float(u_d.sum() / total) if total > 0 else float("nan")


def _scores(x: np.ndarray, labels: np.ndarray, seed: int) -> dict:
    sizes = {int(c): int(s) for c, s in zip(*np.unique(labels[labels >= 0], return_counts=True), strict=True)}
    out: dict = {c: _score(x, labels, c, seed) for c in ("silhouette", "davies_bouldin", "calinski_harabasz")}
    out["hopkins"] = hopkins(x, seed=seed)
    out["noise_fraction"] = float(np.mean(labels < 0)) if len(labels) else 0.0
    out["cluster_sizes"] = sizes
    return {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in out.items()}


def _auto_k(
    x: np.ndarray,
    params: ClusterParams,
    tree: object | None,
    step: Callable[[int, str], None],
    score_on: np.ndarray,
) -> tuple[np.ndarray, dict]:
    """Run the method over k_range and keep the k the criterion likes best; returns labels and the curve.

    Labels come from x (the clustering space); the criterion is computed on score_on, the reduced
    features. UMAP's min_dist=0 space packs sub-groups into tight islands, so scored there silhouette
    rewards splitting classes (digits: k=13 within 5 % of the best); in the feature space it peaks at
    the classes (digits: k=10, 0.236 against 0.217 for the runner-up).
    """
    lo, hi = params.k_range
    lo, hi = max(2, int(lo)), min(int(hi), len(x) - 1)
    if hi < lo:
        lo = hi = max(1, min(2, len(x) - 1))
    ks, scores, runs = list(range(lo, hi + 1)), [], {}
    for i, k in enumerate(ks):
        step(i, f"{params.method} k={k}")
        runs[k] = _fit_k(x, params.method, k, params, tree)
        scores.append(_score(score_on, runs[k], params.criterion, params.seed))
    chosen = choose_k(ks, scores, params.criterion)
    curve = {"k": ks, "score": [None if np.isnan(s) else float(s) for s in scores]}
    curve.update(criterion=params.criterion, chosen=int(chosen))
    return runs[chosen], curve


def cluster(
    data: np.ndarray,
    params: ClusterParams,
    *,
    on_progress: ProgressCallback = no_progress,
    cancelled: CancelFlag = never_cancelled,
    knn: Neighbours | None = None,
) -> Clustering:
    """Cluster rows of data with params; labels -1 are noise (density methods only).

    knn: embed.nearest_neighbours of data for the UMAP clustering space, when the caller has them.
    """
    if params.method not in METHODS:
        raise ValueError(f"unknown clustering method {params.method!r}; choose one of {', '.join(METHODS)}")
    if params.criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {params.criterion!r}; choose one of {', '.join(CRITERIA)}")
    if params.method == "agglomerative" and params.linkage not in LINKAGES:
        raise ValueError(f"unknown linkage {params.linkage!r}; choose one of {', '.join(LINKAGES)}")
    data = np.asarray(data, dtype=np.float32)
    n = len(data)
    auto = params.method in K_METHODS and params.k is None and params.max_d is None
    auto_hdbscan = params.method == "hdbscan" and params.min_cluster_size is None
    if params.method == "tree":
        return _tree_clustering(data, params, on_progress=on_progress, cancelled=cancelled, knn=knn)
    steps = 2 + (params.k_range[1] - params.k_range[0] + 1 if auto else 1)
    if auto_hdbscan:
        steps = 2 + len(min_cluster_size_candidates(n))
    meter = RateMeter("cluster", steps, on_progress)

    def step(i: int, message: str) -> None:
        check_cancel(cancelled)
        meter.update(i, message)

    if n < 3:
        labels = np.zeros(n, np.int64)
        return Clustering(labels, int(n > 0), None, _scores(data, labels, params.seed), None, params)

    step(0, "clustering space")
    x = clustering_space(data, params, cancelled, knn)
    outlier_score, k_curve = None, None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn/hdbscan deprecation chatter is not the person's problem
        if auto_hdbscan:
            labels, outlier_score, k_curve = _hdbscan_auto(x, data, params, step)
        elif params.method == "hdbscan":
            step(1, "hdbscan")
            labels, outlier_score = _hdbscan(x, params)
        elif params.method == "dbscan":
            step(1, "dbscan")
            labels = _dbscan(x, params)
        elif params.method == "optics":
            step(1, "optics")
            labels = _optics(x, params)
        else:
            tree = None
            if params.method == "agglomerative":
                step(1, f"{params.linkage} linkage")
                tree = _sample_linkage(x, params.linkage)
            if params.method == "agglomerative" and params.max_d is not None:
                if tree is None:
                    raise ValueError(
                        f"a dendrogram cut needs at most {SCIPY_LINKAGE_MAX} images; use a fixed k"
                    )
                labels = cut_linkage(tree, params.max_d)
            elif params.k is not None:
                step(1, f"{params.method} k={params.k}")
                labels = _fit_k(x, params.method, int(min(max(1, params.k), n)), params, tree)
            else:
                labels, k_curve = _auto_k(x, params, tree, lambda i, m: step(1 + i, m), data)
    check_cancel(cancelled)
    if params.method == "hdbscan" and params.assign_noise:
        labels = assign_noise(x, np.asarray(labels))
    labels = _relabel(labels)
    scores = _scores(data, labels, params.seed)
    meter.update(steps, force=True)
    n_clusters = int(labels.max() + 1) if (labels >= 0).any() else 0
    return Clustering(labels, n_clusters, k_curve, scores, outlier_score, params)


def nearest_centre(x: np.ndarray, fitted: np.ndarray, labels: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Label of every row of x: the nearest centre of the groups `labels` gives the rows `fitted`."""
    k = int(labels.max()) + 1
    centres = np.zeros((k, x.shape[1]), np.float64)
    np.add.at(centres, labels, fitted)
    centres = (centres / np.maximum(np.bincount(labels, minlength=k), 1)[:, None]).astype(np.float32)
    out = np.empty(len(x), np.int64)
    square = (centres**2).sum(axis=1)
    for start in range(0, len(x), chunk):
        part = np.asarray(x[start : start + chunk], np.float32)
        out[start : start + len(part)] = np.argmin(square[None, :] - 2 * part @ centres.T, axis=1)
    return out


def _tree_clustering(
    data: np.ndarray,
    params: ClusterParams,
    *,
    on_progress: ProgressCallback,
    cancelled: CancelFlag,
    knn: Neighbours | None,
) -> Clustering:
    """The cluster tree in the clustering space; labels are its cut at the chosen (or given) level.

    Above embed.SAMPLE_ABOVE rows the clustering space and the flat k-means answers are fitted on one
    sample (every row placed / assigned from it); the micro-clusters and the tree cover every row.
    """
    from .embed import SAMPLE_ABOVE, sampled_neighbours
    from .tree import build_tree

    n = len(data)
    if n < 3:
        labels = np.zeros(n, np.int64)
        return Clustering(labels, int(n > 0), None, _scores(data, labels, params.seed), None, params)
    on_progress(Progress("cluster", 0, 2, message="clustering space"))
    if n > SAMPLE_ABOVE and params.space == "umap" and (knn is None or knn.sample is None):
        knn = sampled_neighbours(data, seed=params.seed, cancelled=cancelled)
    x = clustering_space(data, params, cancelled, knn)
    check_cancel(cancelled)

    def fit_flat(k: int, init: np.ndarray) -> np.ndarray:
        if knn is None or knn.sample is None:
            return neighbour_vote(x, _fit_k(x, "kmeans", k, params, None, init))
        # A big set: k-means on the sample the clustering space was fitted on, every row to its centre.
        return nearest_centre(x, x[knn.sample], _fit_k(x[knn.sample], "kmeans", k, params, None, init))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tree = build_tree(
            x,
            data,
            choose=choose_k,
            fit_flat=fit_flat,
            flat_range=params.k_range,
            k=params.k,
            seed=params.seed,
            criterion=params.criterion,
            on_progress=on_progress,
            cancelled=cancelled,
        )
    labels = tree.cut(tree.default_k)
    scores = _scores(data, labels, params.seed)
    on_progress(Progress("cluster", 2, 2, message=f"{tree.default_k} groups"))
    return Clustering(labels, int(labels.max() + 1), tree.k_curve, scores, None, params, tree)
