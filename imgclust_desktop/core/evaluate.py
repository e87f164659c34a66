"""Evaluate a clustering against ground truth (folder names): ACC, NMI, ARI, confusion, per-class, business."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

LEVELS = ("parent-folder", "grandparent-folder")


def truth_from_paths(paths: Sequence[str], level: str = "parent-folder") -> list[str]:
    """Ground-truth class of each path: the name of its parent (or grandparent) folder."""
    if level not in LEVELS:
        raise ValueError(f"unknown truth level {level!r}; choose one of {', '.join(LEVELS)}")
    up = 1 if level == "parent-folder" else 2
    return [Path(p).parents[up - 1].name for p in paths]


def hungarian_mapping(labels: np.ndarray, truth_idx: np.ndarray, n_classes: int) -> dict[int, int]:
    """One-to-one cluster -> class matching that maximises agreement; noise (-1) is never matched."""
    from scipy.optimize import linear_sum_assignment

    clusters = sorted(int(c) for c in np.unique(labels) if c >= 0)
    if not clusters:
        return {}
    counts = np.zeros((len(clusters), n_classes), np.int64)
    row = {c: i for i, c in enumerate(clusters)}
    for lab, t in zip(labels.tolist(), truth_idx.tolist(), strict=True):
        if lab >= 0:
            counts[row[lab], t] += 1
    # Rectangular matrices are fine: extra clusters (or classes) simply stay unmatched and count as wrong.
    rows, cols = linear_sum_assignment(-counts)
    return {clusters[r]: int(c) for r, c in zip(rows, cols, strict=True)}


def _precision_recall(predicted: np.ndarray, actual: np.ndarray) -> tuple[float, float]:
    tp = int(np.sum(predicted & actual))
    precision = tp / int(predicted.sum()) if predicted.any() else 0.0
    recall = tp / int(actual.sum()) if actual.any() else 0.0
    return precision, recall


def evaluate(labels: Sequence[int], truth: Sequence[str], *, keep_class: str | None = None) -> dict:
    """Scores of labels against truth; noise (-1) and unmatched clusters count as wrong in ACC."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) != len(truth):
        raise ValueError(f"{len(labels)} labels but {len(truth)} truth entries")
    classes, truth_idx = np.unique(np.asarray(truth, dtype=str), return_inverse=True)
    n = len(labels)
    mapping = hungarian_mapping(labels, truth_idx, len(classes))
    predicted = np.array([mapping.get(int(lab), -1) for lab in labels], dtype=np.int64)
    acc = float(np.mean(predicted == truth_idx)) if n else 0.0

    cluster_ids = sorted(int(c) for c in np.unique(labels))
    confusion = np.zeros((len(classes), len(cluster_ids)), np.int64)
    col = {c: j for j, c in enumerate(cluster_ids)}
    for lab, t in zip(labels.tolist(), truth_idx.tolist(), strict=True):
        confusion[t, col[lab]] += 1

    per_class = {}
    for ci, name in enumerate(classes.tolist()):
        precision, recall = _precision_recall(predicted == ci, truth_idx == ci)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": int(np.sum(truth_idx == ci)),
        }

    result = {
        "acc": acc,
        "nmi": float(normalized_mutual_info_score(truth_idx, labels)) if n else 0.0,
        "ari": float(adjusted_rand_score(truth_idx, labels)) if n else 0.0,
        "n_clusters": int(len([c for c in cluster_ids if c >= 0])),
        "noise_fraction": float(np.mean(labels < 0)) if n else 0.0,
        "mapping": {int(c): classes[t].item() for c, t in mapping.items()},
        "confusion": {"classes": classes.tolist(), "clusters": cluster_ids, "matrix": confusion.tolist()},
        "per_class": per_class,
        "business": None,
    }
    if keep_class is not None:
        result["business"] = business_score(labels, truth_idx, classes.tolist(), keep_class)
    return result


def business_score(labels: np.ndarray, truth_idx: np.ndarray, classes: list[str], keep_class: str) -> dict:
    """0.3 * precision + 0.7 * recall of keeping every cluster whose majority is keep_class."""
    if keep_class not in classes:
        raise ValueError(f"keep class {keep_class!r} is not among the truth classes: {', '.join(classes)}")
    target = classes.index(keep_class)
    # A person keeps whole clusters: each cluster that is mostly keep_class is kept, noise is dropped.
    kept_clusters = [
        int(c)
        for c in np.unique(labels[labels >= 0])
        if np.bincount(truth_idx[labels == c]).argmax() == target
    ]
    kept = np.isin(labels, kept_clusters)
    precision, recall = _precision_recall(kept, truth_idx == target)
    return {
        "keep_class": keep_class,
        "kept_clusters": kept_clusters,
        "precision": precision,
        "recall": recall,
        "score": 0.3 * precision + 0.7 * recall,
    }
