"""Cosine of many stored feature rows to one of them, as a normalised copy would give it."""

from __future__ import annotations

import numpy as np
import pytest

from imgclust_desktop.core.cosine import cosine_to, row_norms


def normalised(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("share", [0.05, 0.6])  # a few rows (read one by one) and most rows (read in order)
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_cosine_to_one_row_matches_the_normalised_dot_product(share, dtype):
    rng = np.random.default_rng(2)
    features = rng.normal(size=(20_000, 24)).astype(dtype)
    rows = np.sort(rng.choice(len(features), int(share * len(features)), replace=False))
    target = int(rows[3])
    expected = normalised(features[rows]) @ normalised(features[[target]])[0]
    got = cosine_to(features, rows, target)
    assert got.shape == (len(rows),) and np.allclose(got, expected, atol=1e-5)
    assert got[3] == pytest.approx(1.0, abs=1e-5)


def test_row_norms_are_computed_once_per_features_array():
    rng = np.random.default_rng(3)
    features = rng.normal(size=(500, 8)).astype(np.float32)
    norms = row_norms(features)
    assert np.allclose(norms, np.linalg.norm(features, axis=1), rtol=1e-6)
    assert row_norms(features) is norms
    other = features * 2
    assert np.allclose(row_norms(other), 2 * norms, rtol=1e-6)


@pytest.mark.parametrize(
    "n, k, spread",
    [(400, 6, 0.5), (900, 300, 0.9), (60, 2, 3.0)],  # clear groups; many small ones with singletons; overlap
)
def test_silhouettes_equal_scikit_learns_with_the_cosine_metric(n, k, spread):
    from sklearn.metrics import silhouette_samples

    from imgclust_desktop.core.cosine import cosine_silhouettes

    rng = np.random.default_rng(k)
    centres = rng.normal(size=(k, 12))
    labels = rng.integers(0, k, size=n) * 7 + 3  # ids need not be 0..k-1
    x = (centres[(labels - 3) // 7] + rng.normal(0, spread, size=(n, 12))).astype(np.float32)
    ours = cosine_silhouettes(x, labels, block=97)  # rows in blocks that do not divide n
    theirs = silhouette_samples(x.astype(np.float64), labels, metric="cosine")
    np.testing.assert_allclose(ours, theirs, atol=1e-9)
    alone = np.bincount(labels)[labels] == 1
    assert (ours[alone] == 0).all() and (ours[~alone] != 0).all()


def test_silhouettes_are_zero_where_scikit_learn_refuses():
    from imgclust_desktop.core.cosine import cosine_silhouettes

    x = np.random.default_rng(0).normal(size=(5, 3))
    assert not cosine_silhouettes(x, np.zeros(5, int)).any()  # one cluster
    assert not cosine_silhouettes(x, np.arange(5)).any()  # every row alone
