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
