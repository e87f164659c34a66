"""Automatic cluster names: the words a cluster's images share, short and distinct between siblings.

With the offline default model the words are ImageNet classes, read off the network's own classifier head
applied to the stored pooled features (no second pass over the images). With CLIP models they come from
zero-shot matching against the same vocabulary. Each tree leaf keeps its top words with their summed
probability, so naming the clusters of any cut (a re-cut, a drill-down) is a sum over leaves, not a model
run. Where the features have no head (a mid-level layer, pixels, external embeddings) the name is the
folder most members share, else "Group N".
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

TOP_TERMS = 8  # words kept per leaf
SECOND_TERM_SHARE = 0.5  # a second word joins the name when it has at least half the first one's weight
BATCH = 8192


@dataclass
class LeafTerms:
    """Top words of every tree leaf: term ids [m, T] into vocabulary, and their summed probability."""

    vocabulary: list[str]
    ids: np.ndarray  # int32 [m, T]
    weight: np.ndarray  # float32 [m, T]

    @classmethod
    def from_json(cls, meta: dict) -> LeafTerms:
        """From a format-1 session.json; later formats keep ids and weight in tree.npz."""
        ids = np.asarray(meta["ids"], np.int32)
        return cls(list(meta["vocabulary"]), ids, np.asarray(meta["weight"], np.float32).reshape(ids.shape))


def imagenet_vocabulary() -> list[str]:
    """The 1,000 ImageNet classes as short words ("tabby, tabby cat" -> "tabby"), from timm's own table."""
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    return [info.index_to_description(i).split(",")[0].strip() for i in range(info.num_classes())]


def term_probabilities(extractor: object, features: np.ndarray) -> tuple[list[str], np.ndarray] | None:
    """(vocabulary, float16 probabilities [n, words]) for the features of this extractor; None without a head."""
    head = _linear_head(extractor, features.shape[1])
    vocabulary = imagenet_vocabulary()
    if getattr(extractor, "has_text", False):
        text = np.asarray(extractor.embed_text([f"a photo of a {t}" for t in vocabulary]), np.float32)
        text /= np.maximum(np.linalg.norm(text, axis=1, keepdims=True), 1e-12)
        weight, bias, scale = text, np.zeros(len(vocabulary), np.float32), 100.0
        normalise = True
    elif head is not None:
        weight, bias = head
        scale, normalise = 1.0, False
    else:
        return None
    probs = np.empty((len(features), len(vocabulary)), np.float16)
    for start in range(0, len(features), BATCH):
        block = np.asarray(features[start : start + BATCH], np.float32)
        if normalise:
            block = block / np.maximum(np.linalg.norm(block, axis=1, keepdims=True), 1e-12)
        logits = scale * (block @ weight.T) + bias
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        probs[start : start + BATCH] = p / p.sum(axis=1, keepdims=True)
    return vocabulary, probs


def _linear_head(extractor: object, dim: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The classifier's (weight [classes, dim], bias) when the features are exactly its input."""
    if getattr(extractor, "layer", None):
        return None
    module = getattr(extractor, "module", None)
    classifier = getattr(module, "classifier", None) if module is not None else None
    weight = getattr(classifier, "weight", None)
    if weight is None or tuple(weight.shape) != (1000, dim):
        return None
    bias = getattr(classifier, "bias", None)
    w = weight.detach().float().cpu().numpy()
    b = np.zeros(len(w), np.float32) if bias is None else bias.detach().float().cpu().numpy()
    return w, b


def leaf_terms(vocabulary: list[str], probs: np.ndarray, leaf_of: np.ndarray, n_leaves: int) -> LeafTerms:
    """Each leaf's TOP_TERMS words by summed probability over its images."""
    t = min(TOP_TERMS, len(vocabulary))
    ids = np.zeros((n_leaves, t), np.int32)
    weight = np.zeros((n_leaves, t), np.float32)
    order = np.argsort(leaf_of, kind="stable")
    bounds = np.searchsorted(leaf_of[order], np.arange(n_leaves + 1))
    for leaf in range(n_leaves):
        rows = order[bounds[leaf] : bounds[leaf + 1]]
        if len(rows) == 0:
            continue
        total = probs[rows].astype(np.float32).sum(axis=0)
        top = np.argpartition(-total, t - 1)[:t]
        top = top[np.argsort(-total[top], kind="stable")]
        ids[leaf], weight[leaf] = top, total[top]
    return LeafTerms(vocabulary, ids, weight)


def cluster_names(
    labels: np.ndarray,
    terms: LeafTerms | None,
    leaf_of: np.ndarray | None,
    paths: Sequence[str],
    *,
    siblings: dict[int, int] | None = None,
) -> dict[int, str]:
    """A short name for every cluster id >= 0 in labels; names of clusters that share a parent differ.

    siblings: cluster id -> parent group; clusters with the same parent (or all, if None) are kept distinct.
    """
    ids = sorted(int(c) for c in np.unique(labels[labels >= 0]))
    ranked: dict[int, list[str]] = {}  # the cluster's words, most shared first
    words: dict[int, int] = {}  # how many of them its name uses unless a sibling forces more
    if terms is not None and leaf_of is not None:
        for cid, top in zip(ids, _cluster_terms(labels, ids, terms, leaf_of), strict=True):
            ranked[cid] = [terms.vocabulary[t] for t, _ in top]
            words[cid] = 2 if len(top) > 1 and top[1][1] >= SECOND_TERM_SHARE * top[0][1] else 1
    else:
        folder_of, folder_names = _folder_index(paths)
        order = np.argsort(labels, kind="stable")  # one sort, not one scan per cluster: re-cuts at 100k
        first = np.searchsorted(labels[order], ids, side="left")
        last = np.searchsorted(labels[order], ids, side="right")
        for cid, a, b in zip(ids, first.tolist(), last.tolist(), strict=True):
            ranked[cid] = _folder_words(folder_of[order[a:b]], folder_names)
            words[cid] = 1
    return _distinct(ids, ranked, words, siblings)


def _cluster_terms(
    labels: np.ndarray, ids: list[int], terms: LeafTerms, leaf_of: np.ndarray
) -> list[list[tuple[int, float]]]:
    """Each cluster's words with their weight: the leaves' words, a leaf split between clusters (after
    edits) counted by its share of images; equal weights rank the lower word id first. Grouped sums over
    (cluster, leaf) and (cluster, word) pairs in numpy, so a re-cut into thousands stays fast (and needs
    no scipy: importing scipy.sparse takes longer than the rest of a command-line re-cut)."""
    m, vocab, top = len(terms.ids), len(terms.vocabulary), terms.ids.shape[1]
    keep = labels >= 0
    slot = np.searchsorted(np.asarray(ids), labels[keep])
    pairs, count = np.unique(slot * m + leaf_of[keep], return_counts=True)  # images of a cluster in a leaf
    pair_slot, pair_leaf = pairs // m, pairs % m
    share = count * (1.0 / np.maximum(np.bincount(leaf_of, minlength=m), 1))[pair_leaf]
    words = np.repeat(pair_slot, top) * vocab + terms.ids[pair_leaf].ravel()
    keys, where = np.unique(words, return_inverse=True)
    mass = np.bincount(where.ravel(), weights=(share[:, None] * terms.weight[pair_leaf]).ravel())
    key_slot, key_word = keys // vocab, keys % vocab
    order = np.lexsort((key_word, -mass, key_slot))  # by cluster, then heaviest word first
    bounds = np.searchsorted(key_slot[order], np.arange(len(ids) + 1))
    return [
        [(int(key_word[i]), float(mass[i])) for i in order[a:b][:TOP_TERMS]]
        for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True)
    ]


_FOLDERS: list = []  # [(paths list, its length, folder index per row, folder names)]: the last one asked


def _folder_index(paths: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Each row's parent-folder name as an index into a list of names (kept for the same paths list)."""
    if _FOLDERS and _FOLDERS[0][0] is paths and _FOLDERS[0][1] == len(paths):
        return _FOLDERS[0][2], _FOLDERS[0][3]
    names: dict[str, int] = {}
    index = np.fromiter(
        (names.setdefault(_parent_name(p), len(names)) for p in paths),
        np.int64,
        len(paths),
    )
    _FOLDERS[:] = [(paths, len(paths), index, list(names))]
    return index, list(names)


def _parent_name(path: str) -> str:
    """os.path.basename(os.path.dirname(path)) without its per-call overhead (100k paths in a re-cut)."""
    if os.altsep:  # Windows: "/" separates too
        path = path.replace(os.altsep, os.sep)
    return path.rpartition(os.sep)[0].rpartition(os.sep)[2]


def _folder_words(folder_rows: np.ndarray, folder_names: list[str]) -> list[str]:
    """The folder most of these rows share (ties: the one met first), if it holds at least half of them."""
    if len(folder_rows) == 0:
        return []
    counts = np.bincount(folder_rows)
    best = np.flatnonzero(counts == counts.max())
    if len(best) > 1:  # as Counter.most_common would: the folder whose first row comes first
        best = best[np.argsort([int(np.argmax(folder_rows == b)) for b in best])]
    name, count = folder_names[int(best[0])], int(counts[best[0]])
    return [name] if name and count >= 0.5 * len(folder_rows) else []


def _distinct(
    ids: list[int], ranked: dict[int, list[str]], words: dict[int, int], siblings: dict[int, int] | None
) -> dict[int, str]:
    """Names of one or two words; siblings that would share a name take another word, then a number."""
    names = {cid: " · ".join(ranked[cid][: words[cid]]) for cid in ids}
    groups: dict[int, list[int]] = {}
    for cid in ids:
        groups.setdefault(-1 if siblings is None else siblings.get(cid, -1), []).append(cid)
    for members in groups.values():
        taken: Counter = Counter(names[c] for c in members)
        for cid in members:
            if not names[cid] or taken[names[cid]] < 2:
                continue
            # Replace the second word by the first word this cluster has that its namesakes lack.
            others = {w for c in members if c != cid and names[c] == names[cid] for w in ranked[c][:2]}
            extra = next((w for w in ranked[cid][1:] if w not in others), None)
            if extra:
                names[cid] = f"{ranked[cid][0]} · {extra}"
        seen: Counter = Counter()
        counts = Counter(names[c] for c in members)
        for cid in members:
            if not names[cid]:
                continue
            if counts[names[cid]] > 1:
                seen[names[cid]] += 1
                names[cid] = f"{names[cid]} {seen[names[cid]]}"
    return {cid: names[cid] or f"Group {cid + 1}" for cid in ids}
