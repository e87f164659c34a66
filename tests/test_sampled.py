"""Big sets (above embed.SAMPLE_ABOVE rows, lowered here): both UMAPs and the flat k-means answers are fitted
on one sample and every other row is placed or assigned from it, while the tree, the labels, the outlier
scores and the near-duplicate groups still cover every row."""

import numpy as np
import pytest

from imgclust_desktop.core import embed as embed_module
from imgclust_desktop.core.analyse import analyse, duplicate_groups
from imgclust_desktop.core.cluster import ClusterParams
from imgclust_desktop.core.embed import sampled_neighbours
from imgclust_desktop.core.evaluate import evaluate
from imgclust_desktop.core.pipeline import _cluster_stages
from imgclust_desktop.core.reduce import reduce
from imgclust_desktop.core.session import Session


def mixture(n: int, groups: int, dim: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (groups, dim))
    truth = rng.integers(0, groups, n)
    return (centres[truth] + rng.normal(size=(n, dim))).astype(np.float32), truth


@pytest.fixture
def small_threshold(monkeypatch):
    monkeypatch.setattr(embed_module, "SAMPLE_ABOVE", 3000)
    monkeypatch.setattr(embed_module, "FIT_SAMPLE", 1500)


def test_copies_outside_the_sample_are_found_as_by_the_all_pairs_sweep():
    # The sampled graph links rows only to sample rows; copies that both fall outside the sample must
    # still be grouped (bucket mates), as the exact all-pairs sweep groups them.
    x, _ = mixture(6000, 12, dim=64, seed=3)
    rng = np.random.default_rng(4)
    for source in rng.choice(6000, 40, replace=False):
        x[rng.integers(0, 6000)] = x[source] + rng.normal(scale=0.01, size=64)
    data = reduce(x, n_components=20, seed=0).data
    knn = sampled_neighbours(data, sample_size=600, seed=0)
    outside = np.setdiff1d(np.arange(6000), knn.sample)
    exact = duplicate_groups(x)
    assert (exact[outside] >= 0).sum() >= 40  # most planted copies lie outside a 10 % sample
    result = analyse(
        data,
        np.zeros(6000, np.int64),
        features=x,
        knn_distances=knn.distances,
        knn_indices=knn.indices,
        knn_sample=knn.sample,
        graph_duplicates_above=0,
    )
    np.testing.assert_array_equal(result.duplicate_group, exact)
    assert result.outlier_score.min() >= 0 and result.outlier_score.max() <= 1


def test_a_big_set_is_clustered_on_a_sample_and_every_row_gets_a_leaf_a_label_and_a_place(small_threshold):
    x, truth = mixture(8000, 15, seed=5)
    session = Session(
        paths=[f"/offline/{i}.png" for i in range(len(x))],
        features=x,
        coords=np.zeros((len(x), 2), np.float32),
        labels=np.full(len(x), -1, np.int64),
        model_id="own",
        params={"seed": 0, "pca_components": 20},
    )
    done = _cluster_stages(
        session,
        ClusterParams(method="tree", seed=0),
        embed_method="umap",
        on_progress=lambda p: None,
        cancelled=lambda: False,
        on_event=lambda *a: None,
    )
    assert done.level == 15
    assert evaluate(done.labels, truth)["ari"] > 0.98
    tree = done.tree
    assert len(tree.leaf_of) == 8000 and tree.n_leaves > 1500  # leaves of every row, not of the sample
    np.testing.assert_array_equal(tree.cut(tree.default_k), done.labels)
    assert np.isfinite(done.coords).all() and len(np.unique(done.coords, axis=0)) > 7900
    # Placed rows land among their own group on the map, as sampled ones do.
    from sklearn.neighbors import NearestNeighbors

    _, near = NearestNeighbors(n_neighbors=11).fit(done.coords).kneighbors(done.coords)
    assert (truth[near[:, 1:]] == truth[:, None]).mean() > 0.95


def test_bucket_mates_are_each_rows_nearest_rows_among_those_sharing_a_sample_row():
    # Brute force per bucket against the batched search, with buckets of every width class and one bigger
    # than the widest (searched in row blocks).
    from imgclust_desktop.core.analyse import sample_bucket_neighbours

    rng = np.random.default_rng(7)
    n, sample = 4000, np.arange(300)
    data = rng.normal(size=(n, 6)).astype(np.float32)
    weight = 1.0 / np.arange(1, 301) ** 1.3  # a few big buckets, a long tail of small ones
    knn = np.zeros((n, 4), np.int64)
    knn[:, 0] = np.arange(n)
    for row in range(n):
        knn[row, 1:] = rng.choice(300, 3, replace=False, p=weight / weight.sum())
    for s in sample:  # a sample row's nearest other sample rows never include itself
        others = knn[s, 1:][knn[s, 1:] != s]
        knn[s, 1:] = np.r_[others, (s + 1 + np.arange(3)) % 300][:3] if len(others) < 3 else others
    out = sample_bucket_neighbours(data, knn, sample, m=4, buckets=3)
    keys = knn[:, 1:4].copy()
    keys[sample] = np.column_stack([sample, knn[sample, 1:3]])
    bucket_sizes = np.bincount(keys.ravel(), minlength=300)
    assert (
        bucket_sizes.max() > 1024
        and (bucket_sizes <= 8).sum() > 50
        and ((bucket_sizes > 32) & (bucket_sizes < 512)).any()
    )
    for row in rng.choice(n, 80, replace=False).tolist() + sample[::10].tolist():
        for j, key in enumerate(keys[row]):
            mates = np.flatnonzero((keys == key).any(axis=1))
            mates = mates[mates != row]
            d = ((data[mates] - data[row]) ** 2).sum(axis=1)
            expected = set(mates[np.argsort(d)[:4]].tolist())
            assert set(out[row, j * 4 : j * 4 + 4].tolist()) - {-1} == expected  # -1: a bucket of <= 4
