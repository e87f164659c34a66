"""The cluster tree: nested levels from a few broad groups down to micro-clusters, and its default level."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits

from imgclust_desktop.core.cluster import ClusterParams, _fit_k, choose_k, cluster
from imgclust_desktop.core.evaluate import evaluate
from imgclust_desktop.core.tree import ClusterTree, LevelScorer, build_tree, nested_tree, stored_levels


def blobs(groups: int, per_group: int, dim: int = 12, spread: float = 0.05, seed: int = 0):
    """`groups` tight Gaussian blobs with centres spread over a unit cube; (points, true labels)."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-1, 1, size=(groups, dim))
    truth = np.repeat(np.arange(groups), per_group)
    points = centres[truth] + rng.normal(0, spread, size=(len(truth), dim))
    return points.astype(np.float32), truth


def two_scale_blobs(themes: int, kinds: int, per_kind: int, seed: int = 0):
    """Broad themes far apart, each made of several kinds close together: a two-scale folder."""
    rng = np.random.default_rng(seed)
    theme_centres = rng.uniform(-4, 4, size=(themes, 8))
    points, kind_truth, theme_truth = [], [], []
    for t in range(themes):
        for k in range(kinds):
            centre = theme_centres[t] + rng.normal(0, 0.5, size=8)
            points.append(centre + rng.normal(0, 0.03, size=(per_kind, 8)))
            kind_truth += [t * kinds + k] * per_kind
            theme_truth += [t] * per_kind
    return np.concatenate(points).astype(np.float32), np.array(kind_truth), np.array(theme_truth)


def make_tree(points: np.ndarray, k: int | None = None) -> ClusterTree:
    params = ClusterParams(seed=0)
    return build_tree(
        points,
        points,
        choose=choose_k,
        fit_flat=lambda v, init: _fit_k(points, "kmeans", v, params, None, init),
        k=k,
    )


def assert_nested(tree: ClusterTree, levels) -> None:
    """Each finer level splits groups of the coarser one, never mixes two of them."""
    for coarse, fine in zip(levels, levels[1:], strict=False):
        a, b = tree.cut(coarse), tree.cut(fine)
        for group in np.unique(b):
            assert len(np.unique(a[b == group])) == 1, (coarse, fine, group)


def test_a_folder_of_many_small_groups_gets_them_all_and_every_level_nests():
    points, truth = blobs(groups=120, per_group=8)
    tree = make_tree(points)
    scores = evaluate(tree.cut(tree.default_k), truth.tolist())
    assert abs(tree.default_k - 120) <= 0.15 * 120
    assert scores["acc"] >= 0.95
    # Levels: from <= 5 groups down to at least n/10 (here the micro-clusters), coarse to fine.
    assert len(tree.levels) >= 5 and tree.levels == sorted(tree.levels)
    assert tree.levels[0] <= 5 and tree.levels[-1] >= len(points) / 10
    assert tree.default_k in tree.levels
    for k in tree.levels + [7, 77, 200]:
        assert len(np.unique(tree.cut(k))) == tree.clamp(k)
    assert_nested(tree, sorted(set(tree.levels + [7, 77, 200])))


def test_a_folder_of_few_groups_gets_few_and_the_fine_levels_split_them():
    points, truth = blobs(groups=4, per_group=150, spread=0.1, seed=1)
    tree = make_tree(points)
    assert tree.default_k == 4
    assert evaluate(tree.cut(4), truth.tolist())["acc"] == pytest.approx(1.0)
    assert tree.levels[-1] == tree.n_leaves >= len(points) / 10
    assert_nested(tree, tree.levels)


def test_broad_themes_and_their_kinds_are_two_levels_of_one_tree():
    points, kinds, themes = two_scale_blobs(themes=5, kinds=6, per_kind=12)
    tree = make_tree(points)
    assert evaluate(tree.cut(5), themes.tolist())["acc"] == pytest.approx(1.0)
    assert evaluate(tree.cut(30), kinds.tolist())["acc"] >= 0.95
    assert_nested(tree, [5, 30])


def test_nested_tree_cut_at_its_level_is_the_given_labels_and_leaves_number_by_first_row():
    points, truth = blobs(groups=6, per_group=40, seed=3)
    labels = np.asarray(_fit_k(points, "kmeans", 6, ClusterParams(), None))
    leaf_of, linkage = nested_tree(points, labels)
    tree = ClusterTree(
        leaf_of=leaf_of, linkage=linkage, default_k=6, levels=stored_levels(6, len(linkage) + 1)
    )
    same = evaluate(tree.cut(6), labels.tolist())
    assert same["ari"] == pytest.approx(1.0)
    assert np.array_equal(tree.cut(tree.n_leaves), leaf_of)  # the finest level's labels are the leaf ids
    first_rows = [int(np.flatnonzero(leaf_of == leaf)[0]) for leaf in range(tree.n_leaves)]
    assert first_rows == sorted(first_rows)
    assert np.all(np.diff(linkage[:, 2]) >= 0)  # monotone heights, as scipy's tools expect


def test_node_of_clusters_names_the_subtree_that_holds_exactly_each_cluster():
    points, _ = blobs(groups=10, per_group=20, seed=4)
    tree = make_tree(points)
    m = tree.n_leaves
    leaves_under = {i: {i} for i in range(m)}
    for row, (a, b, _, _) in enumerate(tree.linkage):
        leaves_under[m + row] = leaves_under[int(a)] | leaves_under[int(b)]
    for k in (3, tree.default_k, 25):
        leaf_cut = tree.leaf_labels(k)
        for cid, node in enumerate(tree.node_of_clusters(k).tolist()):
            assert leaves_under[node] == set(np.flatnonzero(leaf_cut == cid).tolist())


def test_a_given_level_is_the_default_and_survives_json():
    points, _ = blobs(groups=8, per_group=30, seed=5)
    tree = make_tree(points, k=20)
    assert tree.default_k == 20 and len(np.unique(tree.cut(20))) == 20
    again = ClusterTree.from_json(tree.to_json(), tree.cut(tree.n_leaves))
    for k in tree.levels:
        assert np.array_equal(again.cut(k), tree.cut(k))
    assert again.finer(20) > 20 and again.coarser(20) < 20


def test_cluster_with_the_default_method_returns_the_tree_and_its_cut():
    points, truth = blobs(groups=30, per_group=10, seed=6)
    result = cluster(points, ClusterParams(space="reduced", seed=0))
    assert result.tree is not None
    assert np.array_equal(result.labels, result.tree.cut(result.tree.default_k))
    assert result.k_curve["chosen"] == result.tree.default_k == result.n_clusters
    assert evaluate(result.labels, truth.tolist())["acc"] >= 0.95


@pytest.mark.parametrize("high", [50, 10**9])  # small ids (node numbers) and ids far apart
def test_groups_are_numbered_by_first_appearance(high):
    from imgclust_desktop.core.tree import _by_first_appearance

    rng = np.random.default_rng(6)
    labels = rng.integers(-3, high, size=400)
    seen: dict[int, int] = {}
    expected = [seen.setdefault(int(v), len(seen)) for v in labels]
    assert _by_first_appearance(labels).tolist() == expected


def test_silhouette_from_group_sums_equals_sklearn():
    from sklearn import metrics

    from imgclust_desktop.core.tree import silhouette

    points, _ = blobs(groups=12, per_group=25, spread=0.3, seed=7)
    distances = metrics.pairwise_distances(points, metric="cosine")
    few = KMeans(n_clusters=9, n_init=1, random_state=0).fit_predict(points)
    few[0] = 40  # a group of one row (scores 0) and labels that are not 0..k-1
    many = KMeans(n_clusters=150, n_init=1, random_state=0).fit_predict(points)
    for labels in (few, many):
        expected = metrics.silhouette_score(distances, labels, metric="precomputed")
        assert silhouette(distances, labels) == pytest.approx(expected, abs=1e-5)


def overlapping_blobs(seed: int):
    """Ten groups in six dimensions that overlap: k-means lands in a different optimum from start to start."""
    return blobs(groups=10, per_group=60, dim=6, spread=0.25, seed=seed)


def test_the_level_does_not_hang_on_one_k_means_start():
    """One k-means answer per level made the level: the same folder got 8 to 11 groups depending on the
    seed. A level scores the second best of FLAT_STARTS starts (tree.flat_level), so one lucky or unlucky
    start neither makes nor breaks a peak, and neither does a tiny shift of the points."""
    points, truth = overlapping_blobs(seed=1)
    scorer = LevelScorer(points, "silhouette", 0)
    ks = list(range(2, 16))
    with threadpool_limits(1):
        single = {
            choose_k(
                ks,
                [scorer(KMeans(k, n_init=1, random_state=s).fit_predict(points)) for k in ks],
                "silhouette",
            )
            for s in range(6)
        }
    assert len(single) > 1  # the folder is one where a single start decides
    rng = np.random.default_rng(0)
    levels = set()
    for seed in range(3):
        shifted = points + rng.normal(0, 1e-4, size=points.shape).astype(np.float32)
        params = ClusterParams(seed=seed)
        tree = build_tree(
            shifted,
            shifted,
            choose=choose_k,
            fit_flat=lambda v, init, p=shifted, q=params: _fit_k(p, "kmeans", v, q, None, init),
            seed=seed,
        )
        levels.add(tree.default_k)
        assert evaluate(tree.cut(tree.default_k), truth.tolist())["acc"] >= 0.9
    assert levels == {10}
