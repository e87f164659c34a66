"""analyse(): medoids, outlier scores, near-duplicate groups, centroid linkage, silhouettes, mean images."""

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from imgclust_desktop.core.analyse import (
    analyse,
    duplicate_groups,
    mean_image,
    medoid,
    silhouette_samples_safe,
)


@pytest.fixture(scope="module")
def blobs():
    x, y = make_blobs(n_samples=200, centers=3, n_features=8, cluster_std=1.0, random_state=1)
    return x.astype(np.float32), y


def test_medoid_is_the_member_with_least_total_distance(blobs):
    x, y = blobs
    result = analyse(x, y)
    for c in range(3):
        rows = np.flatnonzero(y == c)
        total = np.linalg.norm(x[rows][:, None] - x[rows][None], axis=2).sum(1)
        assert result.medoid_index[c] == rows[np.argmin(total)]
        assert result.typicality[result.medoid_index[c]] == 0
    assert medoid(x) == np.argmin(np.linalg.norm(x[:, None] - x[None], axis=2).sum(1))


def test_outlier_score_is_in_unit_range_and_flags_a_far_point(blobs):
    x, y = blobs
    x = np.vstack([x, np.full((1, 8), 50, np.float32)])
    y = np.append(y, -1)
    result = analyse(x, y)
    assert result.outlier_score.min() >= 0 and result.outlier_score.max() <= 1
    assert result.outlier_score[-1] == 1.0
    assert result.typicality[-1] > result.typicality[:-1].max()  # noise measured to its nearest medoid
    glosh = np.linspace(0, 1, len(x))
    np.testing.assert_allclose(analyse(x, y, outlier_score=glosh).outlier_score, glosh, rtol=1e-6)


def test_planted_near_duplicate_pair_is_grouped_and_nothing_else(blobs):
    rng = np.random.default_rng(0)
    features = rng.normal(size=(500, 256)).astype(np.float32)
    features[300] = features[12] + rng.normal(scale=0.05, size=256)  # cosine ~0.999
    features[400] = features[12] * 3  # same direction: an exact duplicate up to brightness
    groups = duplicate_groups(features, threshold=0.97)
    assert groups[12] >= 0 and groups[12] == groups[300] == groups[400]
    assert np.sum(groups >= 0) == 3
    x, y = blobs
    data = np.vstack([x, x[:1]])
    result = analyse(data, np.append(y, y[0]), features=None)
    assert result.duplicate_group[0] == result.duplicate_group[-1] >= 0


@pytest.mark.parametrize("dims", [8, 200])
def test_duplicate_groups_equal_the_connected_components_of_all_pairs_over_the_threshold(dims, monkeypatch):
    # Near-copies whose cosine straddles the threshold, spread over the whole sweep axis, with (200) and
    # without (8) the projection, in blocks of 16 rows so that many pairs cross a block's window: the
    # windowed sweep must find exactly what comparing every pair finds.
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    from imgclust_desktop.core import analyse as analyse_module

    monkeypatch.setattr(analyse_module, "BLOCK_ROWS", 16)
    monkeypatch.setattr(analyse_module, "PAIR_CHUNK", 7)  # candidate pairs checked a few at a time

    rng = np.random.default_rng(3)
    features = rng.normal(size=(1500, dims)).astype(np.float32)
    for source in rng.choice(1500, 150, replace=False):
        copy = rng.integers(1500)
        features[copy] = features[source] + rng.normal(scale=rng.uniform(0.1, 0.35), size=dims)
    groups = duplicate_groups(features, threshold=0.97)

    x = features - features.mean(axis=0)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    over = x @ x.T >= 0.97
    np.fill_diagonal(over, False)
    _, component = connected_components(csr_matrix(over), directed=False)
    in_pair = over.any(axis=1)
    assert 50 < in_pair.sum() < 250  # some copies are over the threshold, some under
    assert np.array_equal(groups >= 0, in_pair)
    for g in np.unique(groups[groups >= 0]):
        assert len(np.unique(component[groups == g])) == 1  # no group joins two components ...
    assert len(np.unique(groups[groups >= 0])) == len(np.unique(component[in_pair]))  # ... nor splits one


def test_outlier_score_from_given_neighbour_distances_equals_its_own_search(blobs):
    from imgclust_desktop.core.embed import nearest_neighbours

    x, y = blobs
    knn = nearest_neighbours(x, 15)
    own = analyse(x, y).outlier_score
    reused = analyse(x, y, knn_distances=knn.distances).outlier_score
    np.testing.assert_array_equal(reused, own)


def test_cluster_linkage_follows_sorted_cluster_ids(blobs):
    x, y = blobs
    labels = np.where(y == 0, 7, y)  # ids 1, 2, 7
    result = analyse(x, labels)
    assert result.linkage_cluster_ids == [1, 2, 7]
    assert result.cluster_linkage.shape == (2, 4)
    assert analyse(x, np.zeros(len(x), int)).cluster_linkage is None


def test_silhouette_samples_safe(blobs):
    x, y = blobs
    values = silhouette_samples_safe(x, y)
    assert values.shape == (200,) and values.mean() > 0.5
    noisy = y.copy()
    noisy[:5] = -1
    assert np.all(silhouette_samples_safe(x, noisy)[:5] == 0)
    assert np.all(silhouette_samples_safe(x, np.zeros(200, int)) == 0)


def test_mean_image_of_black_and_white_squares_is_grey():
    black, white = np.zeros((40, 40, 3), np.uint8), np.full((20, 20, 3), 255, np.uint8)
    mean = mean_image([black, white], size=32)
    assert mean.shape == (32, 32, 3) and mean.dtype == np.uint8
    assert abs(int(mean[16, 16, 0]) - 128) <= 1
    assert mean_image([], size=16).shape == (16, 16, 3)


def test_graph_duplicates_equal_the_exact_sweep_when_the_graph_holds_the_copies():
    # The near-linear path (candidate pairs from a k-nearest-neighbour graph, used above
    # GRAPH_DUPLICATES_ABOVE rows) finds the same groups, numbered the same way, as the all-pairs sweep.
    from imgclust_desktop.core.analyse import duplicate_groups_from_neighbours
    from imgclust_desktop.core.embed import nearest_neighbours

    rng = np.random.default_rng(5)
    features = rng.normal(size=(2000, 64)).astype(np.float32)
    for source in rng.choice(2000, 120, replace=False):
        features[rng.integers(2000)] = features[source] + rng.normal(scale=rng.uniform(0.05, 0.3), size=64)
    exact = duplicate_groups(features, threshold=0.97)
    knn = nearest_neighbours(features, 16)
    graph = duplicate_groups_from_neighbours(features, knn.indices, threshold=0.97, chunk=300)
    assert (exact >= 0).sum() > 40
    np.testing.assert_array_equal(graph, exact)
    via_analyse = analyse(features, np.zeros(2000, np.int64), features=features, graph_duplicates_above=0)
    np.testing.assert_array_equal(via_analyse.duplicate_group, exact)


def test_big_cluster_medoid_from_a_sample_is_as_central_as_the_exact_one():
    from imgclust_desktop.core.analyse import medoid

    rng = np.random.default_rng(2)
    x = rng.normal(size=(6000, 10)).astype(np.float32)
    exact = medoid(x, max_candidates=6000, max_reference=6000)
    sampled = medoid(x, max_candidates=500, max_reference=1000)

    def total(i):
        return np.linalg.norm(x - x[i], axis=1).sum()

    assert total(sampled) <= total(exact) * 1.001  # within 0.1 % of the least summed distance
