"""cluster(): every method, auto-k by each criterion, fixed k, dendrogram cuts, seeds, diagnostics."""

import numpy as np
import pytest
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from imgclust_desktop.core.cluster import ClusterParams, choose_k, cluster, cut_linkage, hopkins, kmedoids
from imgclust_desktop.core.progress import Cancelled


@pytest.fixture(scope="module")
def blobs():
    x, y = make_blobs(
        n_samples=240, centers=4, n_features=10, cluster_std=0.6, center_box=(-15, 15), random_state=2
    )
    return x.astype(np.float32), y


@pytest.mark.parametrize("criterion", ["silhouette", "davies_bouldin", "calinski_harabasz", "elbow"])
def test_auto_k_finds_the_true_number_of_well_separated_blobs(blobs, criterion):
    x, y = blobs
    result = cluster(x, ClusterParams(method="kmeans", space="reduced", criterion=criterion, k_range=(2, 9)))
    assert result.n_clusters == 4
    assert result.k_curve["chosen"] == 4 and result.k_curve["k"] == list(range(2, 10))
    assert len(result.k_curve["score"]) == 8
    assert adjusted_rand_score(y, result.labels) == 1.0


@pytest.mark.parametrize("method", ["kmeans", "kmedoids", "agglomerative", "gmm"])
def test_k_methods_recover_the_blobs_with_automatic_k(blobs, method):
    x, y = blobs
    result = cluster(x, ClusterParams(method=method, space="reduced", k_range=(2, 7)))
    assert adjusted_rand_score(y, result.labels) == 1.0


@pytest.mark.parametrize("method", ["hdbscan", "dbscan", "optics"])
def test_density_methods_find_the_blobs(blobs, method):
    x, y = blobs
    result = cluster(x, ClusterParams(method=method, space="reduced"))
    assert result.n_clusters == 4
    found = result.labels >= 0
    assert found.mean() > 0.8
    assert adjusted_rand_score(y[found], result.labels[found]) == 1.0


def test_hdbscan_in_umap_space_gives_glosh_outlier_scores_that_flag_a_planted_outlier(blobs):
    x, y = blobs
    x = np.vstack([x, np.full((1, x.shape[1]), 60, np.float32)])
    result = cluster(x, ClusterParams(method="hdbscan"))
    assert result.n_clusters == 4
    assert result.outlier_score.shape == (241,)
    assert 0 <= result.outlier_score.min() and result.outlier_score.max() <= 1
    assert result.labels[-1] == -1 or result.outlier_score[-1] >= np.quantile(result.outlier_score, 0.95)


def test_hdbscan_assigns_noise_to_the_nearest_cluster_unless_asked_to_keep_it(blobs):
    x, y = blobs
    rng = np.random.default_rng(5)
    # Points strewn between the blobs: HDBSCAN calls them noise; curation wants every image somewhere.
    between = rng.uniform(x.min(axis=0), x.max(axis=0), size=(20, x.shape[1])).astype(np.float32)
    data = np.vstack([x, between])
    kept = cluster(data, ClusterParams("hdbscan", space="reduced", min_cluster_size=20, assign_noise=False))
    assigned = cluster(data, ClusterParams("hdbscan", space="reduced", min_cluster_size=20))
    assert (kept.labels < 0).sum() >= 10
    assert (assigned.labels >= 0).all() and assigned.n_clusters == kept.n_clusters == 4
    clustered = kept.labels >= 0
    assert adjusted_rand_score(kept.labels[clustered], assigned.labels[clustered]) == 1.0
    # the formerly-noise images are still the ones the outlier score flags
    noise_rank = assigned.outlier_score[~clustered].mean()
    assert noise_rank > np.quantile(assigned.outlier_score[clustered], 0.9)


def test_auto_hdbscan_tries_several_smallest_sizes_and_keeps_the_best_scored(blobs):
    x, y = blobs
    result = cluster(x, ClusterParams("hdbscan", space="reduced"))
    curve = result.k_curve
    assert len(curve["min_cluster_size"]) >= 2 and curve["chosen"] == 4 == result.n_clusters
    assert curve["chosen_min_cluster_size"] in curve["min_cluster_size"]
    assert adjusted_rand_score(y, result.labels) == 1.0


def test_auto_k_prefers_an_interior_peak_to_the_top_split():
    # A Fashion-MNIST-like curve: k=2 scores best, the classes show as a second peak at k=10.
    ks = list(range(2, 16))
    curve = [0.40, 0.30, 0.24, 0.21, 0.19, 0.185, 0.179, 0.161, 0.20, 0.17, 0.16, 0.15, 0.14, 0.13]
    assert choose_k(ks, curve, "silhouette") == 10
    # a curve whose only structure is the top split keeps it
    assert choose_k(ks, [0.8] + [0.3 - 0.01 * i for i in range(13)], "silhouette") == 2
    # Davies-Bouldin is lower-better: the same rule on the mirrored curve
    assert choose_k(ks, [-v for v in curve], "davies_bouldin") == 10


def test_auto_k_keeps_two_clear_groups_whole_but_finds_many_clear_ones():
    # Digits 0 and 1 (measured): two clear groups (silhouette 0.62), a bump at k=5 where the styles of each
    # show with weak structure. The two groups win; the same bump under a weak top split still would.
    ks = list(range(2, 12))
    two = [0.619, 0.495, 0.45, 0.461, 0.236, 0.249, 0.255, 0.256, 0.235, 0.194]
    assert choose_k(ks, two, "silhouette") == 2
    assert choose_k(ks, [v - 0.2 for v in two], "silhouette") == 5
    # Many clear groups (bursts of near-duplicates): the fine level shows reasonable structure and wins.
    many = [0.054, 0.052, 0.063, 0.062, 0.06, 0.069, 0.3, 0.845, 0.7, 0.6]
    assert choose_k(ks, many, "silhouette") == 9


def test_same_seed_identical_labels_in_umap_space(blobs):
    x, _ = blobs
    params = ClusterParams(method="kmeans", k=4, space="umap", seed=7)
    np.testing.assert_array_equal(cluster(x, params).labels, cluster(x, params).labels)


def test_fixed_k_is_honoured(blobs):
    x, _ = blobs
    result = cluster(x, ClusterParams(method="kmeans", k=6, space="reduced"))
    assert result.n_clusters == 6 and result.k_curve is None


def test_max_d_cut_matches_scipy_fcluster(blobs):
    x, _ = blobs
    tree = linkage(x, method="average")
    height = float(np.median(tree[:, 2]) * 3)
    ours = cut_linkage(tree, height)
    theirs = fcluster(tree, t=height, criterion="distance")
    assert adjusted_rand_score(theirs, ours) == 1.0 and len(np.unique(ours)) == len(np.unique(theirs))
    via_cluster = cluster(
        x, ClusterParams(method="agglomerative", linkage="average", max_d=height, space="reduced")
    )
    assert adjusted_rand_score(theirs, via_cluster.labels) == 1.0


def test_diagnostics_scores_and_sizes(blobs):
    x, _ = blobs
    result = cluster(x, ClusterParams(method="kmeans", k=4, space="reduced"))
    assert result.scores["silhouette"] > 0.7
    assert result.scores["hopkins"] > 0.9
    assert sorted(result.scores["cluster_sizes"].values()) == [60, 60, 60, 60]
    uniform = np.random.default_rng(42).uniform(size=(400, 2))
    assert 0.3 < hopkins(uniform) < 0.7


def test_elbow_rule_on_a_curve():
    assert choose_k([2, 3, 4, 5, 6], [100, 60, 10, 9, 8], "elbow") == 4
    assert choose_k([2, 3, 4], [0.2, 0.9, 0.5], "silhouette") == 3
    assert choose_k([2, 3, 4], [0.2, 0.9, 0.5], "davies_bouldin") == 2
    # A coarse split that barely beats a finer one loses: merging clusters later is easier than splitting.
    assert choose_k([2, 5, 10, 12], [0.80, 0.50, 0.78, 0.60], "silhouette") == 10
    assert choose_k([2, 5, 10], [0.30, 0.29, 0.50], "davies_bouldin") == 5
    assert choose_k([2, 5, 10], [100.0, 300.0, 290.0], "calinski_harabasz") == 5


def test_kmedoids_medoids_are_members(blobs):
    x, y = blobs
    labels, medoids = kmedoids(x, 4, seed=0)
    assert adjusted_rand_score(y, labels) == 1.0
    assert all(labels[m] == c for c, m in enumerate(medoids))


def test_bad_parameters_and_cancel(blobs):
    x, _ = blobs
    with pytest.raises(ValueError):
        cluster(x, ClusterParams(method="spectral"))
    with pytest.raises(Cancelled):
        cluster(x, ClusterParams(method="kmeans", space="reduced"), cancelled=lambda: True)
    assert cluster(x[:2], ClusterParams()).labels.tolist() == [0, 0]


def _wide_and_tight_blobs(seed: int = 0):
    """A wide group beside a tight one: k-means' wall, halfway between the centres, cuts into the wide one."""
    rng = np.random.default_rng(seed)
    x = np.vstack([rng.normal(0, 1.0, (400, 2)), rng.normal((3.6, 0), 0.4, (80, 2))]).astype(np.float32)
    return x, np.repeat([0, 1], [400, 80])


def test_the_neighbour_vote_gives_rows_beyond_a_k_means_wall_back_to_their_group():
    from sklearn.cluster import KMeans

    from imgclust_desktop.core.cluster import neighbour_vote

    x, y = _wide_and_tight_blobs()
    walls = KMeans(2, n_init=4, random_state=0).fit_predict(x)
    walls = walls if (walls == y).mean() > 0.5 else 1 - walls
    voted = neighbour_vote(x, walls)
    assert (walls != y).sum() >= 10  # the wall is wrong for the wide group's edge...
    assert (voted != y).sum() <= (walls != y).sum() // 5  # ...and its rows' neighbours say so
    # The tree's k-means levels are voted on: the default level of the same points has the vote's answer.
    tree = cluster(x, ClusterParams(method="tree", space="reduced", k=2)).labels
    assert adjusted_rand_score(y, tree) == pytest.approx(adjusted_rand_score(y, voted))


def test_the_neighbour_vote_never_empties_a_group():
    from imgclust_desktop.core.cluster import neighbour_vote

    rng = np.random.default_rng(1)
    x = rng.normal(0, 1.0, (200, 3)).astype(np.float32)
    labels = np.zeros(200, np.int64)
    labels[np.argsort(np.linalg.norm(x, axis=1))[:3]] = 1  # three rows in the middle of the other group
    assert np.array_equal(neighbour_vote(x, labels), labels)
    # Exact copies (distance 0, so the row itself need not be listed first among its neighbours).
    copies = np.vstack([np.zeros((6, 2)), np.ones((6, 2))]).astype(np.float32)
    kept = np.repeat([0, 1], 6)
    assert np.array_equal(neighbour_vote(copies, kept, k=5), kept)
