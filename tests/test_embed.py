"""embed(): 2-D maps by UMAP, t-SNE and PCA that keep groups apart and repeat with a seed."""

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from imgclust_desktop.core.embed import embed
from imgclust_desktop.core.progress import Cancelled


@pytest.fixture(scope="module")
def blobs():
    x, y = make_blobs(n_samples=150, centers=3, n_features=20, cluster_std=1.0, random_state=0)
    return x.astype(np.float32), y


def _separated(coords, y):
    """Every point is nearer its own group's centre than any other group's centre."""
    centres = np.stack([coords[y == c].mean(0) for c in np.unique(y)])
    return np.mean(np.linalg.norm(coords[:, None] - centres[None], axis=2).argmin(1) == y)


@pytest.mark.parametrize("method", ["umap", "tsne", "pca"])
def test_each_method_gives_a_2d_map_that_keeps_groups_apart(blobs, method):
    x, y = blobs
    coords = embed(x, method=method, seed=0)
    assert coords.shape == (150, 2) and coords.dtype == np.float32
    assert _separated(coords, y) == 1.0


def test_same_seed_same_umap_map(blobs):
    x, _ = blobs
    np.testing.assert_array_equal(embed(x, seed=1), embed(x, seed=1))


def test_tiny_inputs_and_cancel(blobs):
    x, _ = blobs
    assert embed(x[:3]).shape == (3, 2)
    assert embed(x[:1]).shape == (1, 2)
    with pytest.raises(Cancelled):
        embed(x, method="pca", cancelled=lambda: True)
    with pytest.raises(ValueError):
        embed(x, method="mds")


def test_umap_compiled_code_is_cached_on_disk_across_processes():
    # Without this every new process recompiles UMAP's layout: ~19 s of a 26 s first digits map.
    from numba.core.dispatcher import Dispatcher

    from imgclust_desktop.core.embed import _import_umap

    umap = _import_umap()
    dispatchers = [v for v in vars(umap.layouts).values() if isinstance(v, Dispatcher)]
    assert dispatchers and all(d._cache.__class__.__name__ != "NullCache" for d in dispatchers)


def test_cancel_stops_the_umap_layout_within_a_second():
    import time

    from imgclust_desktop.core.embed import umap_transform

    rng = np.random.default_rng(0)
    data = rng.normal(size=(3000, 20)).astype(np.float32)
    umap_transform(data[:200], n_components=2, seed=0)  # compile (or load) numba's code first
    start = time.perf_counter()
    umap_transform(data, n_components=2, seed=0)
    full = time.perf_counter() - start
    asked = None

    def cancelled() -> bool:
        nonlocal asked
        if time.perf_counter() - start > 0.2 * full:  # well into the layout
            asked = asked or time.perf_counter()
            return True
        return False

    start = time.perf_counter()
    with pytest.raises(Cancelled):
        umap_transform(data, n_components=2, seed=0, cancelled=cancelled)
    stopped = time.perf_counter()
    assert asked is not None and stopped - asked < 1.0


def test_nearest_neighbours_are_exact_with_each_row_first_at_distance_zero(monkeypatch):
    from imgclust_desktop.core import embed as embed_mod

    rng = np.random.default_rng(3)
    data = rng.normal(size=(500, 30)).astype(np.float32) * 40  # large norms: the expanded-square error shows
    data[7] = data[3]  # an exact duplicate pair
    monkeypatch.setattr(embed_mod, "KNN_CHUNK", 64)  # several chunks
    knn = embed_mod.nearest_neighbours(data, 12)
    full = np.linalg.norm(data[:, None, :].astype(np.float64) - data[None, :, :], axis=2)
    expected = np.sort(full, axis=1)[:, :12]
    assert knn.indices.shape == knn.distances.shape == (500, 12)
    np.testing.assert_allclose(knn.distances, expected, rtol=1e-4, atol=1e-3)
    rows = np.arange(500)
    assert np.all(knn.distances[:, 0] == 0.0)
    mine = knn.indices[:, 0] == rows
    assert mine.sum() >= 499  # 3 and 7 may list each other first (both at distance 0)
    assert {int(knn.indices[3, 0]), int(knn.indices[3, 1])} == {3, 7}
    np.testing.assert_allclose(full[rows[:, None], knn.indices], knn.distances, rtol=1e-4, atol=1e-3)


def test_neighbour_search_answers_cancel_between_chunks(monkeypatch):
    from imgclust_desktop.core import embed as embed_mod

    monkeypatch.setattr(embed_mod, "KNN_CHUNK", 50)
    data = np.random.default_rng(0).normal(size=(400, 10)).astype(np.float32)
    asked = []

    def cancelled() -> bool:
        asked.append(1)
        return len(asked) > 3  # cancel after three chunks

    with pytest.raises(Cancelled):
        embed_mod.nearest_neighbours(data, 15, cancelled=cancelled)
    assert len(asked) == 4


def test_a_shared_neighbour_search_gives_the_same_map_as_a_fresh_one(blobs):
    # The pipeline searches once and hands the result to both UMAP runs: same input, same map.
    from imgclust_desktop.core.embed import nearest_neighbours, umap_knn_size

    x, _ = blobs
    knn = nearest_neighbours(x, umap_knn_size(len(x)))
    np.testing.assert_array_equal(embed(x, seed=2, knn=knn), embed(x, seed=2))


def test_approximate_neighbours_at_small_n_match_the_exact_search():
    # The HNSW path (used above APPROXIMATE_ABOVE rows) run at 3,000 rows by lowering the threshold:
    # recall@15 against brute force, self first at distance 0, sorted distances, same seed same result.
    from imgclust_desktop.core.embed import nearest_neighbours

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(30, 20))
    data = (centres[rng.integers(0, 30, 3000)] + rng.normal(scale=0.4, size=(3000, 20))).astype(np.float32)
    data[7] = data[5]  # an exact copy: it must not push a row's own index out of first place
    exact = nearest_neighbours(data, 15)
    approx = nearest_neighbours(data, 15, approximate_above=1000, seed=3)
    assert approx.indices.shape == (3000, 15) and approx.indices.dtype == np.int64
    assert (approx.indices[:, 0] == np.arange(3000)).all() and (approx.distances[:, 0] == 0).all()
    assert (np.diff(approx.distances, axis=1) >= -1e-5).all()
    recall = np.mean([len(set(a) & set(e)) / 15 for a, e in zip(approx.indices, exact.indices, strict=True)])
    assert recall > 0.97
    np.testing.assert_allclose(
        approx.distances[:, 1:], exact.distances[:, 1:], atol=0.05 * exact.distances.max()
    )
    again = nearest_neighbours(data, 15, approximate_above=1000, seed=3)
    np.testing.assert_array_equal(again.indices, approx.indices)


def test_approximate_neighbours_report_progress_and_stop_when_cancelled(monkeypatch):
    from imgclust_desktop.core import embed as embed_module

    monkeypatch.setattr(embed_module, "ANN_CHUNK", 1000)  # five chunks: the third check cancels
    data = np.random.default_rng(1).normal(size=(5000, 8)).astype(np.float32)
    seen = []
    calls = iter(range(100))
    with pytest.raises(Cancelled):
        embed_module.approximate_neighbours(
            data, 10, on_progress=seen.append, cancelled=lambda: next(calls) >= 2
        )
    assert seen and seen[0].stage == "neighbours"


def test_big_maps_come_from_a_umap_sample_with_the_rest_placed_by_neighbours(monkeypatch):
    # Above SAMPLE_ABOVE rows (lowered here) UMAP maps a sample; every other point lands among its
    # neighbours: blobs stay apart and each point's map neighbours are mostly of its own blob.
    from sklearn.neighbors import NearestNeighbors

    from imgclust_desktop.core import embed as embed_module

    monkeypatch.setattr(embed_module, "FIT_SAMPLE", 200)
    x, y = make_blobs(n_samples=1500, centers=5, n_features=10, cluster_std=1.0, random_state=4)
    x = x.astype(np.float32)
    xy = embed(x, method="umap", seed=0, sample_above=1000)
    assert xy.shape == (1500, 2) and np.isfinite(xy).all()
    _, near = NearestNeighbors(n_neighbors=11).fit(xy).kneighbors(xy)
    assert (y[near[:, 1:]] == y[:, None]).mean() > 0.95
    np.testing.assert_array_equal(embed(x, method="umap", seed=0, sample_above=1000), xy)


def test_a_sampled_graph_links_every_row_to_its_nearest_sample_rows():
    # Above SAMPLE_ABOVE rows one HNSW index of a sample serves both UMAPs and the placement: each row
    # lists itself, then its nearest sample rows (what brute force over the sample finds), and the
    # sample carries its own UMAP-sized graph in sample numbering.
    from sklearn.neighbors import NearestNeighbors

    from imgclust_desktop.core.embed import sampled_neighbours, umap_knn_size

    rng = np.random.default_rng(2)
    data = (
        rng.normal(size=(20, 12))[rng.integers(0, 20, 4000)] + rng.normal(scale=0.3, size=(4000, 12))
    ).astype(np.float32)
    knn = sampled_neighbours(data, sample_size=800, k=6, seed=1)
    sample = knn.sample
    assert len(sample) == 800 and (np.diff(sample) > 0).all()
    assert (knn.indices[:, 0] == np.arange(4000)).all() and (knn.distances[:, 0] == 0).all()
    assert np.isin(knn.indices[:, 1:], sample).all()
    assert knn.sample_knn.indices.shape == (800, umap_knn_size(800))
    rest = np.setdiff1d(np.arange(4000), sample)
    _, exact = NearestNeighbors(n_neighbors=5).fit(data[sample]).kneighbors(data[rest])
    recall = np.mean(
        [len(set(a) & set(sample[e])) / 5 for a, e in zip(knn.indices[rest, 1:], exact, strict=True)]
    )
    assert recall > 0.95
    again = sampled_neighbours(data, sample_size=800, k=6, seed=1)
    np.testing.assert_array_equal(again.indices, knn.indices)
