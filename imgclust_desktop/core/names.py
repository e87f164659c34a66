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

from .labels import code_runs, label_counts, slots

TOP_TERMS = 8  # words kept per leaf
SECOND_TERM_SHARE = 0.5  # a second word joins the name when it has at least half the first one's weight
BATCH = 8192
DENSE_WORDS = 1 << 20  # clusters x words (or folders) up to which they are counted in a dense table


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
    """The 1,000 ImageNet classes as short words ("tabby, tabby cat" -> "tabby"), as timm's own table gives
    them (kept in core/imagenet_classes.py: importing timm for them took seconds)."""
    from .imagenet_classes import IMAGENET_CLASSES

    return list(IMAGENET_CLASSES)


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
    siblings: dict[int, int] | np.ndarray | None = None,
) -> dict[int, str]:
    """A short name for every cluster id >= 0 in labels; names of clusters that share a parent differ.

    siblings: each cluster's parent group, as a dict (cluster id -> group) or an array indexed by cluster
    id (-1: none); clusters with the same parent (or all, if None) are kept distinct.
    """
    ids = label_counts(labels)[0]
    if terms is not None and leaf_of is not None:
        vocabulary = terms.vocabulary
        top, weight = _cluster_terms(labels, ids.tolist(), terms, leaf_of)
        # a second word joins the name when it has at least half the first one's weight
        two = (top[:, 1] >= 0) & (weight[:, 1] >= SECOND_TERM_SHARE * weight[:, 0])
        # words by their first place in the vocabulary (it repeats some): the same word, the same number
        first_place: dict[str, int] = {}
        canon = np.array([first_place.setdefault(w, i) for i, w in enumerate(vocabulary)] + [-1])
        return _distinct(ids, canon[top], two, vocabulary, siblings)
    folder_of, folder_names = _folder_index(paths)
    folder = np.asarray(_cluster_folders(labels, ids.tolist(), folder_of), np.int64)
    return _distinct(ids, folder[:, None], np.zeros(len(ids), bool), folder_names, siblings)


def _cluster_terms(
    labels: np.ndarray, ids: list[int], terms: LeafTerms, leaf_of: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each cluster's words (term ids, most weight first; equal weights: the lower id first) with their
    weight, as arrays [clusters, TOP_TERMS] (-1 and 0 past a cluster's last word): the leaves' words, a leaf
    split between clusters (after edits) counted by its share of images.

    A cluster made of one leaf (or one share of one) has that leaf's words, reordered; the others are
    summed into one clusters x words table when that is small (up to a thousand clusters), else grouped by
    (cluster, word) pairs: a few numpy passes, so a re-cut into 25,000 groups stays fast (and needs no
    scipy: importing scipy.sparse takes longer than the rest of a command-line re-cut)."""
    m, vocab = len(terms.ids), len(terms.vocabulary)
    k = len(ids)
    top = np.full((k, TOP_TERMS), -1, np.int64)
    weight = np.zeros((k, TOP_TERMS), np.float64)
    keep = np.flatnonzero(labels >= 0)
    cluster, leaf, count = _leaf_parts(slots(np.asarray(ids), labels[keep]), leaf_of[keep], m)
    share = count * (1.0 / np.maximum(np.bincount(leaf_of, minlength=m), 1))[leaf]
    alone = np.bincount(cluster, minlength=k)[cluster] == 1
    if alone.any():  # a leaf that lists a word twice (not one leaf_terms made) has it summed below
        listed = np.sort(terms.ids[leaf[alone]], axis=1)
        alone[alone] = ~(listed[:, 1:] == listed[:, :-1]).any(axis=1)
    if alone.any():  # one part: its words as the leaf keeps them, by weight then id, those with weight
        words, mass = terms.ids[leaf[alone]].astype(np.int64), share[alone, None] * terms.weight[leaf[alone]]
        # leaf_terms keeps a leaf's words by weight: only rows with a tie (or not in order) are sorted
        ordered = ((mass[:, :-1] > mass[:, 1:]) | (mass[:, 1:] <= 0)).all(axis=1)
        if not ordered.all():
            rows = np.flatnonzero(~ordered)
            order = np.lexsort((words[rows], -mass[rows]), axis=-1)
            words[rows] = np.take_along_axis(words[rows], order, axis=1)
            mass[rows] = np.take_along_axis(mass[rows], order, axis=1)
        width = min(TOP_TERMS, words.shape[1])
        top[cluster[alone], :width] = np.where(mass[:, :width] > 0, words[:, :width], -1)
        weight[cluster[alone], :width] = np.where(mass[:, :width] > 0, mass[:, :width], 0.0)
    if alone.all():
        return top, weight
    many = np.unique(cluster[~alone])  # clusters of several parts: their words summed
    cluster, leaf, share = np.searchsorted(many, cluster[~alone]), leaf[~alone], share[~alone]
    words = (cluster[:, None] * vocab + terms.ids[leaf]).ravel()
    weights = (share[:, None] * terms.weight[leaf]).ravel()
    if len(many) * vocab <= DENSE_WORDS:
        mass = np.bincount(words, weights=weights, minlength=len(many) * vocab).reshape(len(many), vocab)
        best = np.argsort(-mass, axis=1, kind="stable")[:, :TOP_TERMS]
        best_mass = np.take_along_axis(mass, best, axis=1)
        top[many, : best.shape[1]] = np.where(best_mass > 0, best, -1)
        weight[many, : best.shape[1]] = best_mass
        return top, weight
    keys, where = np.unique(words, return_inverse=True)  # (cluster, word) pairs, by cluster then word id
    mass = np.bincount(where.ravel(), weights=weights)
    keys, mass = keys[mass > 0], mass[mass > 0]
    key_cluster, key_word = (keys // vocab).astype(np.min_scalar_type(len(many))), keys % vocab
    order = np.argsort(-mass, kind="stable")  # equal weights keep the word order: the lower id first
    order = order[np.argsort(key_cluster[order], kind="stable")]  # per cluster (a radix sort), heaviest first
    first = np.searchsorted(key_cluster[order], np.arange(len(many) + 1))
    rank = np.arange(len(order)) - first[key_cluster[order]]
    chosen = order[rank < TOP_TERMS]
    top[many[key_cluster[chosen]], rank[rank < TOP_TERMS]] = key_word[chosen]
    weight[many[key_cluster[chosen]], rank[rank < TOP_TERMS]] = mass[chosen]
    return top, weight


def _leaf_parts(slot: np.ndarray, leaf: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cluster, leaf, images) of every part of a leaf in a cluster. After a plain cut each leaf lies in
    one cluster and three passes say so; after edits the (cluster, leaf) pairs are counted."""
    owner = np.full(m, -1, np.int64)
    owner[leaf] = slot
    if np.array_equal(owner[leaf], slot):
        count = np.bincount(leaf, minlength=m)
        held = np.flatnonzero(count)
        return owner[held], held, count[held]
    pair, count = np.unique(slot * m + leaf, return_counts=True)
    return pair // m, pair % m, count


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


def _cluster_folders(labels: np.ndarray, ids: list[int], folder_of: np.ndarray) -> list[int]:
    """Per cluster, the folder most of its rows share (ties: the one met first) if it holds at least half
    of them, else -1. All clusters in one count of (cluster, folder) pairs: a re-cut into thousands at 100k."""
    keep = np.flatnonzero(labels >= 0)
    if len(ids) == 0 or len(keep) == 0:
        return [-1] * len(ids)
    slot = slots(np.asarray(ids), labels[keep])
    n_folders = int(folder_of.max()) + 1
    code = slot * n_folders + folder_of[keep]
    size = np.bincount(slot, minlength=len(ids))
    if len(ids) * n_folders <= DENSE_WORDS:  # a clusters x folders table: counts and first rows
        count = np.bincount(code, minlength=len(ids) * n_folders).reshape(len(ids), n_folders)
        first = np.full(len(ids) * n_folders, len(keep), np.int64)
        np.minimum.at(first, code, np.arange(len(keep)))
        most = count.max(axis=1)
        folder = np.where(count == most[:, None], first.reshape(count.shape), len(keep)).argmin(axis=1)
        return np.where(most >= 0.5 * size, folder, -1).tolist()
    pairs, first_row, count = code_runs(code)
    cluster = pairs // n_folders
    folder = np.full(len(ids), -1, np.int64)
    rows = len(keep) + 1
    if len(ids) * rows * rows < 1 << 62:
        # per cluster: most rows first, then the earliest, as one sorted integer (a 3-key lexsort of the
        # 100,000 pairs of a re-cut into 25,000 groups took 12 ms); the pair's folder is its first row's
        best = np.sort((cluster * rows + (rows - 1 - count)) * rows + first_row)
        best_cluster = best // (rows * rows)
        lead = np.r_[True, best_cluster[1:] != best_cluster[:-1]]
        best, best_cluster = best[lead], best_cluster[lead]
        best_count, best_row = rows - 1 - (best // rows) % rows, best % rows
        shared = best_count >= 0.5 * size[best_cluster]
        folder[best_cluster[shared]] = folder_of[keep[best_row[shared]]]
        return folder.tolist()
    best = np.lexsort((first_row, -count, cluster))  # per cluster: most rows first, then the earliest
    lead = best[np.r_[True, cluster[best][1:] != cluster[best][:-1]]]
    shared = count[lead] >= 0.5 * size[cluster[lead]]
    folder[cluster[lead][shared]] = (pairs[lead] % n_folders)[shared]
    return folder.tolist()


def _distinct(
    ids: np.ndarray,
    ranked: np.ndarray,
    two: np.ndarray,
    words: Sequence[str],
    siblings: dict[int, int] | np.ndarray | None,
) -> dict[int, str]:
    """Each cluster's name: its first word, and its second where `two` says (ranked: word numbers into
    `words`, most shared first, -1 past the last; the same word, the same number). Siblings that would
    share a name take another of their words, then a number; a cluster without words is "Group N".

    Names are numbers until the end: a clash is found in one sort of (sibling group, name), two siblings
    that clash (a tree's merges are binary) are settled together in array passes, larger groups one by one,
    and each distinct name is written once (a re-cut into 25,000 groups: thousands of clashing pairs)."""
    k, none = len(ids), len(words)
    if siblings is None:
        group = np.zeros(k, np.int64)
    elif isinstance(siblings, dict):
        group = np.fromiter((siblings.get(cid, -1) for cid in ids.tolist()), np.int64, count=k) + 1
    else:
        group = np.asarray(siblings, np.int64)[ids] + 1
    ranked = np.c_[ranked, np.full((k, 2), -1, np.int64)]  # at least a second and a third place
    head = ranked[:, 0]
    tail = np.where(two, ranked[:, 1], none)  # the second word of the name, `none` for one word
    suffix = np.zeros(k, np.int64)  # a number after the name (0: none)
    named = np.flatnonzero(head >= 0)
    if (int(group.max(initial=0)) + 1) * (none + 1) ** 2 < 1 << 62:
        pair = (group[named] * (none + 1) + head[named]) * (none + 1) + tail[named]
    else:  # too many groups and words for one integer: number the (group, head, tail) rows
        pair = np.unique(np.c_[group[named], head[named], tail[named]], axis=0, return_inverse=True)[
            1
        ].ravel()
    values, counts = np.unique(pair, return_counts=True)
    clashing = np.unique(group[named][np.isin(pair, values[counts > 1])])
    general: list[list[int]] = []
    if clashing.size:
        members = np.flatnonzero(np.isin(group, clashing))
        order = members[np.argsort(group[members], kind="stable")]  # by group, then in the order of ids
        starts = np.flatnonzero(np.r_[True, group[order][1:] != group[order][:-1]])
        sizes = np.diff(np.r_[starts, len(order)])
        a, b = order[starts[sizes == 2]], order[starts[sizes == 2] + 1]
        _settle_pairs(a, b, ranked, tail, suffix)
        general = [
            order[s : s + n].tolist() for s, n in zip(starts[sizes > 2], sizes[sizes > 2], strict=True)
        ]
    code = np.where(head >= 0, (head * (none + 1) + tail) * 3 + suffix, -1)
    codes, inverse = np.unique(code, return_inverse=True)
    texts = [_name_text(c, words) for c in codes.tolist()]  # one string per distinct name
    names = dict(zip(ids.tolist(), [texts[i] for i in inverse.ravel().tolist()], strict=True))
    for rows in general:  # a larger group of siblings with a clash: by words, one by one
        listed = [int(ids[i]) for i in rows]
        ranks = {cid: [words[w] for w in ranked[i] if w >= 0] for cid, i in zip(listed, rows, strict=True)}
        _settle(listed, names, ranks)
    for cid in ids[head < 0].tolist():  # no words
        names[cid] = f"Group {cid + 1}"
    return names


def _name_text(code: int, words: Sequence[str]) -> str:
    """The name a _distinct code stands for."""
    if code < 0:
        return ""
    rest, suffix = divmod(code, 3)
    head, tail = divmod(rest, len(words) + 1)
    text = words[head] if tail == len(words) else f"{words[head]} · {words[tail]}"
    return f"{text} {suffix}" if suffix else text


def _settle_pairs(
    a: np.ndarray, b: np.ndarray, ranked: np.ndarray, tail: np.ndarray, suffix: np.ndarray
) -> None:
    """Two siblings of one name each, first a then b: a takes as its second word its first word after
    the first that b's first two lack; b then the same, against a's first two only if a kept the name; if
    they still share a name they are numbered 1 and 2. Their first word stays; tail (the second word) and
    suffix are updated."""
    ra, rb = ranked[a], ranked[b]
    fresh_a = (ra[:, 1:] >= 0) & (ra[:, 1:] != rb[:, [0]]) & (ra[:, 1:] != rb[:, [1]])
    has_a = fresh_a.any(axis=1)
    tail[a[has_a]] = ra[has_a, 1:][np.arange(has_a.sum()), fresh_a[has_a].argmax(axis=1)]
    taken = ~has_a[:, None] & ((rb[:, 1:] == ra[:, [0]]) | (rb[:, 1:] == ra[:, [1]]))
    fresh_b = (rb[:, 1:] >= 0) & ~taken
    has_b = fresh_b.any(axis=1)
    tail[b[has_b]] = rb[has_b, 1:][np.arange(has_b.sum()), fresh_b[has_b].argmax(axis=1)]
    same = tail[a] == tail[b]  # the first words are the same: the pair shared its whole name
    suffix[a[same]], suffix[b[same]] = 1, 2


def _settle(members: list[int], names: dict[int, str], ranked: dict[int, list[str]]) -> None:
    """Siblings that share a name: another word of their own, then a number (names is updated)."""
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
