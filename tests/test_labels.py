"""Cluster labels counted and looked up without sorting: the same answers as np.unique and searchsorted."""

from __future__ import annotations

import numpy as np

from imgclust_desktop.core.labels import label_counts, slots


def test_label_counts_are_np_uniques_answer_without_the_noise():
    rng = np.random.default_rng(0)
    labels = rng.integers(-1, 40, size=5000)
    labels[labels == 17] = 3  # a gap in the ids
    ids, counts = label_counts(labels)
    expected_ids, expected_counts = np.unique(labels[labels >= 0], return_counts=True)
    assert np.array_equal(ids, expected_ids) and np.array_equal(counts, expected_counts)
    assert label_counts(np.full(10, -1))[0].size == 0 and label_counts(np.zeros(0, np.int64))[0].size == 0


def test_slots_find_each_label_among_the_ids_and_minus_one_for_the_others():
    rng = np.random.default_rng(1)
    labels = rng.integers(-1, 30, size=2000)
    ids = np.array([0, 4, 5, 11, 29])
    found = slots(ids, labels)
    inside = np.isin(labels, ids)
    assert np.array_equal(found[inside], np.searchsorted(ids, labels[inside]))
    assert np.all(found[~inside] == -1)
    assert np.all(slots(np.zeros(0, np.int64), labels) == -1)


def test_code_runs_are_np_uniques_first_positions_and_counts():
    from imgclust_desktop.core.labels import code_runs

    rng = np.random.default_rng(2)
    for code in (rng.integers(0, 50, size=4000), rng.integers(0, 3_000_000, size=2000), np.array([7])):
        got = code_runs(code)
        expected = np.unique(code, return_index=True, return_counts=True)
        assert all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True))
    huge = np.array([1 << 61, 5, 1 << 61, 5, 0])  # code x position does not fit: np.unique answers
    assert all(
        np.array_equal(a, b)
        for a, b in zip(code_runs(huge), np.unique(huge, return_index=True, return_counts=True), strict=True)
    )
    assert all(part.size == 0 for part in code_runs(np.zeros(0, np.int64)))
