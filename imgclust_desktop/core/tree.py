"""The cluster tree: micro-clusters (leaves) joined by a linkage; every flat clustering is a cut of it.

Built once per run in the clustering space: k-means micro-clusters (about four images each, so the finest
level sits at the near-duplicate scale), then Ward linkage over their centroids. Cutting the tree at any
number of groups is a lookup (no feature or map work), which is what `imgclust recut` and the window's
granularity control do. The default level is chosen on the tree's own cuts with the same score as auto-k
(cosine silhouette on the reduced features) over 2 groups up to a quarter of the images, so a folder of 2
groups and a folder of 300 both get theirs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .progress import CancelFlag, ProgressCallback, RateMeter, check_cancel, never_cancelled, no_progress

LEAF_SIZE = 4  # images per micro-cluster on average: finer than a burst of near-duplicates
MAX_LEAVES = 50_000  # bounds the micro-clusters' k-means time at 1M images
SCIPY_LEAVES = (
    12_000  # up to this many leaves one exact (dense) Ward linkage, above it two-level (leaf_linkage)
)
SCORE_SAMPLE = 3000  # rows whose pairwise distances score every candidate cut
LEVEL_STEP = 1.08  # candidate cuts above 30 groups grow by 8 % each
FLAT_STARTS = 32  # k-means starts per level from 2 to 25 groups; a level scores its second best (flat_level)
MIN_LEVELS = 5
BROWSE_STEPS = 48  # the window's slider: stops spread geometrically from 1 group to the micro-clusters


@dataclass
class ClusterTree:
    """A linkage over micro-clusters and the image rows in each; cut(k) gives flat labels for k groups."""

    leaf_of: np.ndarray  # int [n]: the micro-cluster (leaf) of each row
    linkage: np.ndarray  # float [m-1, 4]: scipy linkage over the m leaves (node ids: leaves 0..m-1, then m..)
    default_k: int  # the automatically chosen level
    levels: list[int]  # the levels written to hierarchy.csv, coarse to fine (group counts)
    k_curve: dict | None = None  # {"k": [...], "score": [...], "criterion": ..., "chosen": k}
    _leaf_cuts: dict[int, np.ndarray] = field(default_factory=dict, repr=False, compare=False)
    # tree node -> its medoid row, for the nodes computed so far (recut.cluster_medoids): a node's medoid
    # never changes while its rows and their features do not, so a tree with other rows (a copy made
    # with dataclasses.replace) starts without any. Saved with the tree (tree.npz).
    node_medoids: dict[int, int] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def n_leaves(self) -> int:
        return int(self.linkage.shape[0] + 1) if len(self.leaf_of) else 0

    def clamp(self, k: int) -> int:
        """k limited to what the tree can give (1 .. number of leaves)."""
        return int(min(max(1, int(k)), max(1, self.n_leaves)))

    def leaf_labels(self, k: int) -> np.ndarray:
        """Cluster (0..k-1, numbered by first leaf) of each leaf when the tree is cut into k groups."""
        k = self.clamp(k)
        cached = self._leaf_cuts.get(k)
        if cached is not None:
            return cached
        m = self.n_leaves
        parent = np.arange(2 * m - 1)
        # Apply the first m - k merges; every leaf then points (through its chain) at its group's root.
        merges = self.linkage[: m - k, :2].astype(np.int64)
        new_ids = np.arange(m, m + len(merges))
        parent[merges[:, 0]] = new_ids
        parent[merges[:, 1]] = new_ids
        roots = np.arange(m)
        for _ in range(64):  # pointer jumping: log2(depth) rounds
            nxt = parent[roots]
            if np.array_equal(nxt, roots):
                break
            parent = parent[parent]
            roots = nxt
        while True:  # finish any chain longer than 2^64 steps would need (never in practice)
            nxt = parent[roots]
            if np.array_equal(nxt, roots):
                break
            roots = nxt
        labels = _by_first_appearance(roots)
        self._leaf_cuts[k] = labels
        return labels

    def cut(self, k: int) -> np.ndarray:
        """Flat labels (0..k-1) of the images for k groups."""
        return self.leaf_labels(k)[self.leaf_of]

    def node_of_clusters(self, k: int) -> np.ndarray:
        """Tree node id of each cluster 0..k-1 of the k-cut (leaf ids 0..m-1, inner nodes m + merge row)."""
        k = self.clamp(k)
        m = self.n_leaves
        leaf_cut = self.leaf_labels(k)
        node = np.empty(int(leaf_cut.max()) + 1, np.int64)
        node[leaf_cut] = np.arange(m)  # a cluster of one leaf is that leaf
        group_of_node = np.empty(2 * m - 1, np.int64)
        group_of_node[:m] = leaf_cut
        for row in range(m - k):  # the first m - k merges all happen inside a cluster of the cut
            group = group_of_node[int(self.linkage[row, 0])]
            group_of_node[m + row] = group
            node[group] = m + row  # later merges of the same group replace earlier ones: its root wins
        return node

    def finer(self, k: int) -> int:
        """The next stored level with more groups than k (or k itself at the finest)."""
        above = [lv for lv in self.levels if lv > k]
        return above[0] if above else self.clamp(k)

    def coarser(self, k: int) -> int:
        """The next stored level with fewer groups than k (or k itself at the coarsest)."""
        below = [lv for lv in self.levels if lv < k]
        return below[-1] if below else self.clamp(k)

    def browse_levels(self) -> list[int]:
        """The group counts the window's slider stops at: the stored levels and the default, plus
        BROWSE_STEPS steps spread geometrically from 1 group to the micro-clusters. The pipeline remembers
        the medoids of all of them and the window works out their names while idle, so each stop re-cuts
        without reading the features."""
        n = max(1, int(self.n_leaves))
        steps = np.unique(np.round(np.geomspace(1, n, BROWSE_STEPS)).astype(int)).tolist()
        return sorted({int(k) for k in [*self.levels, self.default_k, *steps] if 1 <= k <= n})

    def to_json(self, *, linkage: bool = True) -> dict:
        """The tree as JSON; linkage=False leaves the linkage out (a session keeps it in tree.npz)."""
        meta = {
            "n_leaves": self.n_leaves,
            "default_level": int(self.default_k),
            "levels": [int(v) for v in self.levels],
            "k_curve": self.k_curve,
        }
        if linkage:
            meta["linkage"] = np.asarray(self.linkage, float).round(6).tolist()
        return meta

    @classmethod
    def from_json(cls, meta: dict, leaf_of: np.ndarray, linkage: np.ndarray | None = None) -> ClusterTree:
        """The tree from to_json's dict and each row's leaf; `linkage` given when the dict has none."""
        if linkage is None:
            linkage = np.asarray(meta.get("linkage") or np.zeros((0, 4)), np.float64)
        linkage = np.asarray(linkage, np.float64).reshape(-1, 4)
        return cls(
            leaf_of=np.asarray(leaf_of, np.int64),
            linkage=linkage,
            default_k=int(meta["default_level"]),
            levels=[int(v) for v in meta.get("levels", [])],
            k_curve=meta.get("k_curve"),
        )


def _by_first_appearance(labels: np.ndarray) -> np.ndarray:
    """Relabel 0..k-1 in order of first appearance (leaf 0's group is 0): a few passes, no sort."""
    labels = np.asarray(labels, np.int64).ravel()
    n = len(labels)
    if n == 0:
        return labels
    low = int(labels.min())
    if int(labels.max()) - low < 4 * n:  # small ints (node ids, cluster labels): index by value
        dense = labels - low
    else:
        dense = np.unique(labels, return_inverse=True)[1].ravel()
    first = np.full(int(dense.max()) + 1, n, np.int64)
    np.minimum.at(first, dense, np.arange(n))
    opens = np.flatnonzero(first[dense] == np.arange(n))  # the rows where a group first appears, in order
    rank = np.empty(len(first), np.int64)
    rank[dense[opens]] = np.arange(len(opens))
    return rank[dense]


def n_leaves_for(n: int) -> int:
    """How many micro-clusters the tree has for n images."""
    return int(min(max(1, n // LEAF_SIZE), MAX_LEAVES, n))


def micro_clusters(
    x: np.ndarray, m: int, *, seed: int = 0, cancelled: CancelFlag = never_cancelled
) -> tuple[np.ndarray, np.ndarray]:
    """(leaf of each row, leaf centroids): k-means into m groups, two-stage above a few thousand leaves.

    One k-means with m centres costs n*m per iteration; first splitting into ~sqrt(m) coarse parts and then
    each part into its share of the m leaves costs about n*sqrt(m)*2, which is what keeps 1M images cheap.
    """
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from threadpoolctl import threadpool_limits

    n = len(x)
    if m >= n:
        return np.arange(n, dtype=np.int64), x.astype(np.float32, copy=True)
    if m <= 1:
        return np.zeros(n, np.int64), x.mean(axis=0, keepdims=True).astype(np.float32)
    if m <= 2000:
        leaf = KMeans(n_clusters=m, n_init=1, random_state=seed, max_iter=100).fit_predict(x)
        return _compact(x, leaf)
    coarse_k = int(np.ceil(np.sqrt(m)))
    coarse = MiniBatchKMeans(n_clusters=coarse_k, random_state=seed, batch_size=4096, n_init=1).fit_predict(x)
    leaf = np.empty(n, np.int64)
    next_id = 0
    order = np.argsort(coarse, kind="stable")
    # Each part is small (a few thousand rows into a few hundred leaves): one thread and a random start
    # take 0.04 CPU s where k-means++ on every core took 0.3-0.6 s (224 parts at 1M rows), and the
    # leaves then do not depend on the machine's thread count.
    with threadpool_limits(1):
        for rows in np.split(order, np.flatnonzero(np.diff(coarse[order])) + 1):
            check_cancel(cancelled)
            share = int(max(1, min(len(rows), round(m * len(rows) / n))))
            if share == 1:
                sub = np.zeros(len(rows), np.int64)
            else:
                sub = KMeans(
                    n_clusters=share, n_init=1, init="random", random_state=seed, max_iter=30
                ).fit_predict(x[rows])
            leaf[rows] = next_id + sub
            next_id += share
    return _compact(x, leaf)


def _compact(x: np.ndarray, leaf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Leaves renumbered 0..m-1 by first row (so the finest cut's labels are the leaf ids), and centroids."""
    leaf = _by_first_appearance(leaf)
    m = int(leaf.max()) + 1
    sums = np.zeros((m, x.shape[1]), np.float64)
    np.add.at(sums, leaf, x)
    counts = np.bincount(leaf, minlength=m)[:, None]
    return leaf.astype(np.int64), (sums / np.maximum(counts, 1)).astype(np.float32)


def leaf_linkage(centroids: np.ndarray, sizes: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """Ward linkage over leaf centroids (scipy linkage format); two-level for many leaves.

    Up to SCIPY_LEAVES leaves: exact Ward. Above: the leaves are grouped by k-means into about sqrt(m)
    groups, exact Ward runs inside each group and over the groups' centres (grouped_ward). A kNN-constrained
    Ward (sklearn ward_tree) merges in a Python loop: 107 CPU s for 50k leaves; this takes a few seconds.
    """
    m = len(centroids)
    if m == 1:
        return np.zeros((0, 4))
    if m <= SCIPY_LEAVES:
        from scipy.cluster.hierarchy import linkage

        return linkage(centroids.astype(np.float64), method="ward")
    from sklearn.cluster import KMeans

    groups = KMeans(
        n_clusters=int(np.ceil(np.sqrt(m))), n_init=1, random_state=seed, max_iter=50
    ).fit_predict(centroids, sample_weight=np.asarray(sizes, np.float64))
    order = np.argsort(groups, kind="stable")  # leaves of one group together: grouped_ward numbers them so
    cuts = np.flatnonzero(np.diff(groups[order])) + 1
    parts = [centroids[rows] for rows in np.split(order, cuts)]
    weights = [np.asarray(sizes, np.float64)[rows] for rows in np.split(order, cuts)]
    linkage = grouped_ward(parts, weights)
    ends = linkage[:, :2].astype(np.int64)
    linkage[:, :2] = np.where(ends < m, order[np.minimum(ends, m - 1)], ends)  # back to the caller's leaf ids
    return linkage


def grouped_ward(parts: list[np.ndarray], weights: list[np.ndarray]) -> np.ndarray:
    """One linkage over the leaves of every part (numbered part by part): Ward inside each part, all those
    merges first by height, then Ward over the parts' weighted centres above the highest of them.

    So every cut at or finer than len(parts) groups splits parts, and every coarser one joins whole parts.
    """
    inner: list[tuple] = []  # (height, part, a, b, local row): a/b are ("leaf", id) or ("inner", part, row)
    roots: list[tuple] = []
    base = 0
    for c, centroids in enumerate(parts):
        m_c = len(centroids)
        z = leaf_linkage(centroids, weights[c])  # exact Ward, or two-level again for a part this big
        ref = lambda i, c=c, base=base, m=m_c: ("leaf", base + i) if i < m else ("inner", c, i - m)  # noqa: E731
        for row, (a, b, height, _) in enumerate(z.tolist()):
            inner.append((height, c, ref(int(a)), ref(int(b)), row))
        roots.append(("leaf", base) if m_c == 1 else ("inner", c, m_c - 2))
        base += m_c
    m = base
    inner.sort(key=lambda t: (t[0], t[1], t[4]))
    node_id: dict[tuple, int] = {}
    rows_out = []

    def resolve(r: tuple) -> int:
        return r[1] if r[0] == "leaf" else node_id[r]

    for order, (height, c, a, b, row) in enumerate(inner):
        node_id[("inner", c, row)] = m + order
        rows_out.append([resolve(a), resolve(b), height, 0])
    top = max((t[0] for t in inner), default=0.0)
    k = len(parts)
    if k > 1:
        centres = np.stack(
            [np.average(part, axis=0, weights=w) for part, w in zip(parts, weights, strict=True)]
        )
        upper = leaf_linkage(centres, np.array([w.sum() for w in weights]))
        root_ids = [resolve(r) for r in roots]
        for a, b, height, _ in upper.tolist():
            ids = [root_ids[i] if i < k else m + len(inner) + (i - k) for i in (int(a), int(b))]
            rows_out.append([ids[0], ids[1], top + height, 0])
    linkage = np.asarray(rows_out, np.float64).reshape(-1, 4)
    count = np.ones(2 * m - 1)
    for row in range(len(linkage)):
        count[m + row] = count[int(linkage[row, 0])] + count[int(linkage[row, 1])]
    linkage[:, 3] = count[m:]
    return linkage


def leaf_spans(linkage: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(position of its first leaf left to right, how many leaves) of every node: the leaves under a node
    sit side by side, in the order of scipy's leaves_list (first child first).

    A node's first leaf is the sum, over the path from it to the root, of the leaves of the first child
    wherever the path goes through a second child: summed up the tree by pointer jumping (a few numpy
    passes; walking the dendrogram of 25,000 clusters node by node took 20 ms of a re-cut)."""
    linkage = np.asarray(linkage, dtype=np.float64)
    n_leaves = len(linkage) + 1
    if n_leaves == 1:
        return np.zeros(1, np.int64), np.ones(1, np.int64)
    children = linkage[:, :2].astype(np.int64)
    size = np.r_[np.ones(n_leaves, np.int64), linkage[:, 3].astype(np.int64)]  # scipy's 4th column
    if not np.array_equal(size[n_leaves:], size[children[:, 0]] + size[children[:, 1]]):
        size = _leaf_counts(children, n_leaves)  # a linkage whose counts are not leaves
    root = 2 * n_leaves - 2
    parent = np.full(2 * n_leaves - 1, root, np.int64)
    parent[children[:, 0]] = parent[children[:, 1]] = np.arange(n_leaves, 2 * n_leaves - 1)
    start = np.zeros(2 * n_leaves - 1, np.int64)
    start[children[:, 1]] = size[children[:, 0]]  # a second child starts after its sibling's leaves
    while True:  # start[node] += start[every ancestor], doubling the jump each pass (the root's is 0)
        start = start + start[parent]
        jumped = parent[parent]
        if np.array_equal(jumped, parent):
            break
        parent = jumped
    return start, size


def _leaf_counts(children: np.ndarray, n_leaves: int) -> np.ndarray:
    """Leaves under every node (leaves first, then merges), merge by merge."""
    size = [1] * (2 * n_leaves - 1)
    for j, (a, b) in enumerate(children.tolist()):
        size[n_leaves + j] = size[a] + size[b]
    return np.asarray(size, np.int64)


def nested_tree(x: np.ndarray, labels: np.ndarray, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(leaf of each row, linkage) of a tree whose cut at k = labels.max() + 1 is exactly `labels`.

    Below that level each cluster is split into micro-clusters joined by Ward linkage; above it, Ward over
    the cluster centroids joins the clusters (grouped_ward). Merges inside clusters come first, by height,
    so every cut finer than k splits clusters and every coarser one merges them.
    """
    x = np.asarray(x, np.float32)
    k = int(labels.max()) + 1
    leaf_of = np.empty(len(x), np.int64)
    parts, weights = [], []
    next_leaf = 0
    for c in range(k):
        rows = np.flatnonzero(labels == c)
        # This cluster's share of the leaves the whole set gets (n_leaves_for caps the total).
        m_c = int(min(max(1, round(n_leaves_for(len(x)) * len(rows) / len(x))), len(rows)))
        sub_leaf, centroids = micro_clusters(x[rows], m_c, seed=seed)
        leaf_of[rows] = next_leaf + sub_leaf
        parts.append(centroids)
        weights.append(np.bincount(sub_leaf, minlength=len(centroids)).astype(np.float64))
        next_leaf += len(centroids)
    linkage = grouped_ward(parts, weights) if k > 1 else leaf_linkage(parts[0], weights[0], seed=seed)
    return _leaves_by_first_row(leaf_of, linkage, next_leaf)


def _leaves_by_first_row(leaf_of: np.ndarray, linkage: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Leaves renumbered by first row (see _compact), the linkage's leaf ids with them."""
    order = _by_first_appearance(leaf_of)
    remap = np.empty(m, np.int64)
    remap[leaf_of] = order
    ends = linkage[:, :2].astype(np.int64)
    linkage = linkage.copy()
    linkage[:, :2] = np.where(ends < m, remap[np.minimum(ends, m - 1)], ends)
    return order, linkage


def candidate_levels(max_k: int) -> list[int]:
    """Group counts tried for the default level: every k up to 30, then 8 % steps up to max_k."""
    ks = list(range(2, min(30, max_k) + 1))
    k = 30.0
    while True:
        k *= LEVEL_STEP
        if int(round(k)) > max_k:
            break
        if int(round(k)) > ks[-1]:
            ks.append(int(round(k)))
    return ks


def stored_levels(default_k: int, n_leaves: int) -> list[int]:
    """Levels for hierarchy.csv: about a factor 3 apart from <= 5 groups to the leaves, with the default."""
    levels = {default_k, n_leaves, min(n_leaves, 2)}
    k = 4.0
    while k < n_leaves:
        levels.add(int(round(k)))
        k *= 3.0
    # Keep the neighbours of the default apart from it: no level within 25 % of it other than itself.
    chosen = sorted(v for v in levels if 1 <= v <= n_leaves)
    kept = [v for v in chosen if v == default_k or abs(v - default_k) > 0.25 * default_k]
    if len(kept) < MIN_LEVELS:
        kept = chosen
    return kept


def build_tree(
    x: np.ndarray,
    score_on: np.ndarray,
    *,
    choose: Callable[[list[int], list[float], str], int],
    fit_flat: Callable[[int, np.ndarray], np.ndarray],
    flat_range: tuple[int, int] = (2, 25),
    k: int | None = None,
    seed: int = 0,
    criterion: str = "silhouette",
    on_progress: ProgressCallback = no_progress,
    cancelled: CancelFlag = never_cancelled,
) -> ClusterTree:
    """The tree of x (the clustering space), its default level scored on score_on (reduced features).

    Levels in flat_range are scored on k-means answers (better than a Ward cut at few groups: see
    flat_level); levels above it on cuts of the micro-cluster tree, up to half the images. choose(ks,
    scores, criterion) picks the level (cluster.choose_k). When a flat level wins, fit_flat(k, centres)
    gives every row its group (k-means from the best start's centres) and the tree is rebuilt around that
    answer (nested_tree), so the default level is still a cut of the tree. k: a given level instead.
    """
    from threadpoolctl import threadpool_limits

    n = len(x)
    x = np.asarray(x, np.float32)
    meter = RateMeter("tree", 4, on_progress)
    meter.update(0, "micro-clusters")
    leaf_of, centroids = micro_clusters(x, n_leaves_for(n), seed=seed, cancelled=cancelled)
    check_cancel(cancelled)
    meter.update(1, f"linkage over {len(centroids)} micro-clusters")
    linkage = leaf_linkage(centroids, np.bincount(leaf_of, minlength=len(centroids)), seed=seed)
    tree = ClusterTree(leaf_of=leaf_of, linkage=linkage, default_k=1, levels=[1])
    m = tree.n_leaves
    if m < 3 or n < 4:
        tree.default_k = tree.clamp(min(2, m))
        tree.levels = sorted({1, m})
        return tree
    check_cancel(cancelled)
    # Scoring runs on one thread: k-means' sums and BLAS products then give the same answer whatever the
    # thread count, and small fits gain nothing from threads (a 10k-row k-means start took 0.17 s on two
    # busy cores against 0.025 s on one).
    if k is None:
        meter.update(2, f"scoring levels {max(2, flat_range[0])}..{min(m, n // 2)}")
    with threadpool_limits(1):
        chosen, centres, tree.k_curve = _choose_level(
            x, score_on, tree, choose, flat_range, k, seed, criterion, cancelled
        )
    if chosen in centres:
        meter.update(3, f"tree around the {chosen} groups")
        labels = _by_first_appearance(np.asarray(fit_flat(chosen, centres[chosen])))
        leaf_of, linkage = nested_tree(x, labels, seed=seed)
        tree = ClusterTree(
            leaf_of=leaf_of, linkage=linkage, default_k=chosen, levels=[1], k_curve=tree.k_curve
        )
    tree.default_k = chosen
    tree.levels = stored_levels(chosen, tree.n_leaves)
    meter.update(4, force=True)
    return tree


def _choose_level(
    x: np.ndarray,
    score_on: np.ndarray,
    tree: ClusterTree,
    choose: Callable[[list[int], list[float], str], int],
    flat_range: tuple[int, int],
    k: int | None,
    seed: int,
    criterion: str,
    cancelled: CancelFlag,
) -> tuple[int, dict[int, np.ndarray], dict | None]:
    """(chosen level, centres of the flat levels scored, k-curve) for build_tree; k: a given level."""
    n, m = len(x), tree.n_leaves
    lo, hi = max(2, flat_range[0]), max(2, flat_range[1])
    scorer = LevelScorer(score_on, criterion, seed)
    flat_ks = [v for v in range(lo, min(hi, n - 1) + 1)]
    centres: dict[int, np.ndarray] = {}
    if k is not None:
        chosen = tree.clamp(k)
        if chosen in flat_ks:
            centres[chosen] = flat_level(x[scorer.rows], chosen, scorer, seed=seed, cancelled=cancelled)[1]
        return chosen, centres, None
    scores = []
    for v in flat_ks:
        check_cancel(cancelled)
        score, centres[v] = flat_level(x[scorer.rows], v, scorer, seed=seed, cancelled=cancelled)
        scores.append(score)
    tree_ks = [v for v in candidate_levels(max(2, min(m, n // 2))) if v > (flat_ks[-1] if flat_ks else 1)]
    ks = flat_ks + tree_ks
    scores += scorer.score_all([tree.cut(v) for v in tree_ks], cancelled)
    chosen = int(choose(ks, scores, criterion))
    if chosen in tree_ks:
        # The grid above 30 groups steps 8 %: score every level between the chosen one's neighbours
        # and choose again, so 100 groups are found as 100, not as the 95 or 103 of the grid.
        at = ks.index(chosen)
        between = [v for v in range(ks[at - 1] + 1, ks[min(at + 1, len(ks) - 1)]) if v not in ks]
        scores += scorer.score_all([tree.cut(v) for v in between], cancelled)
        ks += between
        order = np.argsort(ks, kind="stable")
        ks, scores = [ks[i] for i in order], [scores[i] for i in order]
        chosen = int(choose(ks, scores, criterion))
    curve = {
        "k": ks,
        "score": [None if np.isnan(v) else float(v) for v in scores],
        "criterion": criterion,
        "chosen": chosen,
    }
    return chosen, centres, curve


def flat_level(
    xs: np.ndarray, k: int, scorer: LevelScorer, *, seed: int = 0, cancelled: CancelFlag = never_cancelled
) -> tuple[float, np.ndarray]:
    """(score, centres) of k groups: FLAT_STARTS k-means starts on the scored rows xs (the sample).

    The level scores the second best of its starts and keeps the best start's centres. With one k-means
    answer per level the curve's peaks were luck: on Fashion-MNIST one answer lands in a poor optimum at
    one k and another in a rare good one, and the chosen level moved between 12 and 14 groups from run
    to run (ACC 0.65 to 0.58). The second best of many starts moves little: one lucky start cannot make
    a peak and one unlucky start cannot break one. The starts run on the sample (their cost does not grow
    with the folder) and, under build_tree, on one thread (the same rows give the same answer anywhere).
    """
    from sklearn.cluster import KMeans

    lower_better = scorer.criterion in ("davies_bouldin", "elbow")
    runs = []
    for start in range(FLAT_STARTS):
        check_cancel(cancelled)
        init = greedy_kmeans_plus_plus(xs, k, np.random.default_rng([seed, start]))
        fit = KMeans(n_clusters=k, init=init, n_init=1).fit(xs)
        score = scorer(fit.labels_)
        runs.append((-score if lower_better else score, start, fit.cluster_centers_))
    finite = sorted((r for r in runs if np.isfinite(r[0])), key=lambda r: (-r[0], r[1]))
    if not finite:
        return float("nan"), runs[0][2]
    second = finite[min(1, len(finite) - 1)][0]
    return float(-second if lower_better else second), finite[0][2]


def greedy_kmeans_plus_plus(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k starting centres by greedy k-means++ (sklearn's: 2 + log k candidates per centre, the one that
    lowers the summed squared distance most is kept), in numpy: 1 ms against sklearn's 8 for 12 centres
    on 3,000 rows, where it was half of every start. Plain k-means++ (one candidate) is no substitute:
    its starts land in more rare optima, and on Fashion-MNIST the chosen level fell to 7-9 groups."""
    n, trials = len(x), 2 + int(np.log(k))
    squares = np.einsum("ij,ij->i", x, x)
    first = int(rng.integers(n))
    centres = [first]
    closest = np.maximum(squares - 2 * x @ x[first] + squares[first], 0)
    for _ in range(1, k):
        picks = np.searchsorted(np.cumsum(closest, dtype=np.float64), rng.random(trials) * closest.sum())
        picks = np.minimum(picks, n - 1)
        dist = np.maximum(squares[None, :] - 2 * x[picks] @ x.T + squares[picks][:, None], 0)
        dist = np.minimum(closest[None, :], dist)
        best = int(np.argmin(dist.sum(axis=1)))
        centres.append(int(picks[best]))
        closest = dist[best]
    return x[centres].copy()


def silhouette(distances: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette of labels from a square distance matrix: sklearn's silhouette_score, 5-10x faster.

    Every level from 2 to 25 groups is scored on FLAT_STARTS k-means answers, a few hundred scores a run:
    summing each group's rows of the (symmetric) matrix at once takes 6 ms for 12 groups of 3,000 rows
    where sklearn's per-row sums take 69 (51 against 85 for 1,500 groups).
    """
    _, labels = np.unique(labels, return_inverse=True)
    n, k = len(labels), int(labels.max()) + 1
    sizes = np.bincount(labels, minlength=k)
    order = np.argsort(labels, kind="stable")
    sums = np.empty((n, k), distances.dtype)  # each row's summed distance to each group
    for group, rows in enumerate(np.split(order, np.cumsum(sizes)[:-1])):
        sums[:, group] = distances[rows].sum(axis=0)
    own = sizes[labels]
    inside = sums[np.arange(n), labels] / np.maximum(own - 1, 1)
    between = sums / sizes
    between[np.arange(n), labels] = np.inf
    nearest = between.min(axis=1)
    width = np.maximum(np.maximum(inside, nearest), np.finfo(np.float32).tiny)
    # A row alone in its group scores 0, as in sklearn.
    return float(np.where(own > 1, (nearest - inside) / width, 0.0).mean())


class LevelScorer:
    """The criterion of a labelling on one fixed sample of rows, whose distances are computed once.

    Silhouette is cosine on the reduced features: they are L2-normalised before PCA, so angles are the
    similarity the person sees. Computing the sample's distances once makes 100 candidate cuts and the
    k-means starts of every flat level cheap. Call it with the labels of `rows`.
    """

    def __init__(self, score_on: np.ndarray, criterion: str, seed: int) -> None:
        from sklearn import metrics

        n = len(score_on)
        rng = np.random.default_rng(seed)
        self.rows = np.sort(rng.choice(n, SCORE_SAMPLE, replace=False)) if n > SCORE_SAMPLE else np.arange(n)
        self.criterion = criterion
        self.data = np.asarray(score_on, np.float32)[self.rows]
        self.distances = None
        if criterion == "silhouette":
            self.distances = metrics.pairwise_distances(self.data, metric="cosine")

    def __call__(self, labels: np.ndarray) -> float:
        from sklearn import metrics

        labels = np.asarray(labels)
        keep = labels >= 0
        n_labels = len(np.unique(labels[keep]))
        if n_labels < 2 or n_labels >= keep.sum():
            return float("nan")
        data, labels = self.data[keep], labels[keep]
        if self.criterion == "silhouette":
            return silhouette(self.distances if keep.all() else self.distances[np.ix_(keep, keep)], labels)
        if self.criterion == "davies_bouldin":
            return float(metrics.davies_bouldin_score(data, labels))
        if self.criterion == "calinski_harabasz":
            return float(metrics.calinski_harabasz_score(data, labels))
        centres = np.zeros((int(labels.max()) + 1, data.shape[1]))  # elbow: within-group sum of squares
        np.add.at(centres, labels, data)
        centres /= np.maximum(np.bincount(labels), 1)[:, None]
        return float(((data - centres[labels]) ** 2).sum())

    def score_all(self, labelings, cancelled: CancelFlag = never_cancelled) -> list[float]:
        """The criterion of each labelling of every row."""
        scores = []
        for full in labelings:
            check_cancel(cancelled)
            scores.append(self(np.asarray(full)[self.rows]))
        return scores
