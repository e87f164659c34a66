"""SimilarityIndex: nearest images by cosine, several-image queries, significance mode."""

import numpy as np
import pytest

from imgclust_desktop.core.search import SimilarityIndex


@pytest.fixture(scope="module")
def features():
    return np.random.default_rng(0).normal(size=(2000, 128)).astype(np.float32)


def test_an_exact_copy_is_the_first_result_and_the_query_is_excluded(features):
    f = features.copy()
    f[1500] = f[42] * 2.5  # same image, brighter: same direction
    index = SimilarityIndex(f)
    hits = index.query(f[42], k=5, exclude=[42])
    assert hits[0][0] == 1500 and hits[0][1] == pytest.approx(1.0, abs=1e-5)
    assert 42 not in [i for i, _ in hits] and len(hits) == 5
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    brute = np.argsort(-(f / np.linalg.norm(f, axis=1, keepdims=True)) @ (f[42] / np.linalg.norm(f[42])))
    assert [i for i, _ in hits] == [i for i in brute if i != 42][:5]


def test_several_query_vectors_find_what_they_have_in_common(features):
    f = features.copy()
    rng = np.random.default_rng(1)
    f[7] = (f[100] + f[200]) / 2 + rng.normal(scale=0.05, size=128)
    hits = SimilarityIndex(f).query(f[[100, 200]], k=1, exclude=[100, 200])
    assert hits[0][0] == 7


def test_significance_mode_returns_the_planted_neighbours_and_not_random_ones(features):
    f = features.copy()
    rng = np.random.default_rng(2)
    planted = [10, 20, 30, 40]
    for i in planted:
        f[i] = f[0] + rng.normal(scale=0.6, size=128)  # cosine ~0.85 to row 0
    index = SimilarityIndex(f)
    # Holm-corrected: alpha is the chance that *any* random row gets in, so 0.001 keeps the test honest.
    found = index.query_significant(f[0], alpha=0.001)
    rows = [i for i, _, _ in found if i != 0]
    assert sorted(rows) == planted
    assert all(p < 0.001 for _, _, p in found)
    # Pure-noise queries: at alpha 0.05 nearly every query returns nothing at all.
    empty = sum(index.query_significant(q, alpha=0.05) == [] for q in rng.normal(size=(40, 128)))
    assert empty >= 36
    assert SimilarityIndex(features[:50]).query_significant(rng.normal(size=128)) == []


def test_bad_queries():
    index = SimilarityIndex(np.eye(3, dtype=np.float32))
    with pytest.raises(ValueError):
        index.query(np.ones(4))
    assert index.query(np.ones(3), k=10, exclude=[0]) == [
        (1, pytest.approx(0.577, abs=1e-3)),
        (2, pytest.approx(0.577, abs=1e-3)),
    ]
