"""reduce(): normalised rows, PCA to a count or a kept-variance fraction, reproducible."""

import numpy as np
import pytest

from imgclust_desktop.core.reduce import l2_normalise, reduce


def _features(n=300, dim=128, seed=0):
    rng = np.random.default_rng(seed)
    # Low-rank signal plus noise, like deep features: most variance in a few directions.
    return (rng.normal(size=(n, 8)) @ rng.normal(size=(8, dim)) * 3 + rng.normal(size=(n, dim))).astype(
        np.float32
    )


def test_reduces_to_a_fixed_number_of_components_and_reports_variance_kept():
    reduced = reduce(_features(), n_components=20)
    assert reduced.data.shape == (300, 20)
    assert reduced.data.dtype == np.float32
    assert reduced.n_components == 20
    assert 0.5 < reduced.variance_kept < 1.0


def test_a_variance_fraction_keeps_at_least_that_much_with_few_components():
    reduced = reduce(_features(), n_components=0.8)
    assert reduced.variance_kept >= 0.8
    assert reduced.n_components < 40  # the planted rank-8 signal carries most of the variance


def test_rows_are_l2_normalised_before_pca():
    features = _features()
    scaled = features * np.random.default_rng(1).uniform(0.1, 10, size=(300, 1)).astype(np.float32)
    np.testing.assert_allclose(
        reduce(features, n_components=10).data, reduce(scaled, n_components=10).data, atol=1e-4
    )


def test_same_seed_same_result_and_zero_rows_do_not_break():
    features = _features()
    features[5] = 0
    a, b = reduce(features, n_components=10, seed=3), reduce(features, n_components=10, seed=3)
    assert np.isfinite(a.data).all()
    np.testing.assert_array_equal(a.data, b.data)


def test_none_and_oversized_requests_keep_normalised_features():
    features = _features(n=10, dim=16)
    full = reduce(features, n_components=None)
    np.testing.assert_allclose(np.linalg.norm(full.data, axis=1), 1, rtol=1e-5)
    assert reduce(features, n_components=500).n_components <= 10
    with pytest.raises(ValueError):
        reduce(features, n_components=1.5)


@pytest.mark.parametrize("n_components", [10, 0.8])
def test_chunked_pca_gives_the_in_memory_components(n_components):
    # reduce() switches to reduce_chunked above CHUNKED_ABOVE values (1M x 1280 features, memory-mapped
    # float16): the same projection, kept variance and component count as sklearn's PCA on the whole array.
    from imgclust_desktop.core.reduce import reduce_chunked

    rng = np.random.default_rng(0)
    features = np.abs(rng.normal(size=(3000, 40)) @ rng.normal(size=(40, 40))).astype(np.float32)
    whole = reduce(features, n_components=n_components)
    chunked = reduce_chunked(features, n_components=n_components, chunk=700)
    assert chunked.n_components == whole.n_components
    assert chunked.variance_kept == pytest.approx(whole.variance_kept, rel=1e-5)
    np.testing.assert_allclose(chunked.data, whole.data, atol=2e-4)
    half = reduce_chunked(features.astype(np.float16), n_components=n_components, chunk=700)
    np.testing.assert_allclose(half.data, whole.data, atol=5e-3)  # float16 storage: ~3 significant digits


def test_reduce_takes_the_chunked_path_above_its_size(monkeypatch):
    from imgclust_desktop.core import reduce as reduce_module

    monkeypatch.setattr(reduce_module, "CHUNKED_ABOVE", 1000)
    features = np.random.default_rng(1).normal(size=(500, 20)).astype(np.float16)
    result = reduce_module.reduce(features, n_components=5)
    assert result.data.shape == (500, 5)
    np.testing.assert_allclose(result.pca.transform(l2_normalise(features[:3])), result.data[:3], atol=1e-5)


@pytest.mark.parametrize("shape", [(300, 128), (100, 300)])  # sklearn's covariance_eigh and full solvers
@pytest.mark.parametrize("n_components", [10, 0.8])
def test_pca_is_sklearns_exactly(shape, n_components):
    # reduce() computes sklearn's PCA without importing sklearn (2 CPU s of an update): same numbers.
    from sklearn.decomposition import PCA

    features = _features(*shape)
    x = l2_normalise(features)
    solver = "covariance_eigh" if shape[0] >= shape[1] else "full"
    fitted = PCA(n_components=n_components, svd_solver=solver)
    expected = fitted.fit_transform(x).astype(np.float32)
    reduced = reduce(features, n_components=n_components)
    assert reduced.n_components == fitted.n_components_
    np.testing.assert_array_equal(reduced.data, expected)
    assert reduced.variance_kept == float(np.sum(fitted.explained_variance_ratio_))
    more = l2_normalise(_features(20, shape[1], seed=5))
    np.testing.assert_array_equal(reduced.pca.transform(more), fitted.transform(more))
