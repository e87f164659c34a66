"""The Session: every result of a run plus the person's edits, and its one on-disk format (a folder).

SESSION/session.json   format version, inputs, parameters, model id, timings, scores, clusters, edits,
                       skipped files, excluded and missing rows, cluster linkage, the tree's levels
SESSION/clusters.csv   path,cluster,x,y,outlier_score,is_medoid,duplicate_group (rows = array order)
SESSION/hierarchy.csv  path, then one column per cluster-tree level, coarse to fine, named k<N> (N groups)
SESSION/tree.npz       the tree's linkage, its leaves' words and the medoids of its groups (format 2;
                       format 1 kept linkage and words in session.json, where a 100k-image tree took
                       most of a second to write and read)
SESSION/rows.npz       a cache of the two CSVs' columns and session.json's row lists, used only while
                       those files are the ones it was made from (row_cache.py)
SESSION/features.npy   float32 [n, dim] (float16 above 1 GiB), saved and loaded (memory-mapped)
                       without pickle
SESSION/montages/      cluster_<id>.jpg, and report.html (see report.py)

Every file is written to a temporary name and moved into place with os.replace, so a crash mid-save
leaves the previous version readable. Loading only reads; anything wrong raises SessionError.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import row_cache
from .atomic import atomic_write as _atomic_write
from .atomic import atomic_write_bytes
from .cosine import cosine_to, feature_rows, row_norms
from .labels import label_counts, slots
from .mapped import release
from .names import LeafTerms
from .row_cache import HierarchyPart, MetaPart, Rows
from .session_tables import (
    TableError,
    clusters_csv,
    hierarchy_csv,
    number_text,
    parse_clusters_csv,
    parse_hierarchy_leaves,
)
from .sources import Skipped
from .tree import ClusterTree

FORMAT_VERSION = 2  # 2: the tree's linkage and leaf words in tree.npz instead of session.json
FORMAT_NAME = "imgclust-session"
PRETTY_JSON_MAX = 20_000  # images: session.json is indented up to this size, compact above
TREE_ARRAYS = "tree.npz"
NOISE = -1
FLOAT16_ABOVE_BYTES = 1 << 30  # features.npy is float16 when the float32 array would pass 1 GiB
ROW_LISTS = ("excluded_rows", "missing_rows")  # session.json's per-row lists: last in a compact file


class SessionError(Exception):
    """A session folder that cannot be read; str(e) says what is wrong in words."""


@dataclass(slots=True)  # no __dict__ per cluster: a re-cut into 25,000 makes 50,000 of them
class ClusterInfo:
    id: int
    name: str
    medoid_index: int | None = None
    excluded: bool = False
    node: int | None = None  # the cluster-tree node this cluster is (None: made by hand, or no tree)
    renamed: bool = False  # the person named it: an automatic name never replaces this one


@dataclass
class Session:
    paths: list[str]
    features: np.ndarray
    coords: np.ndarray
    labels: np.ndarray
    outlier_score: np.ndarray | None = None
    duplicate_group: np.ndarray | None = None
    excluded: np.ndarray | None = None
    missing: np.ndarray | None = None  # bool [n]: the file is not on disk now (kept, drawn as a placeholder)
    clusters: dict[int, ClusterInfo] = field(default_factory=dict)
    model_id: str = ""
    inputs: list[str] = field(default_factory=list)
    params: dict = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    scores: dict = field(default_factory=dict)
    k_curve: dict | None = None
    linkage: np.ndarray | None = None
    linkage_cluster_ids: list[int] = field(default_factory=list)
    tree: ClusterTree | None = None  # the cluster tree (method "tree"); labels started as tree.cut(level)
    level: int | None = None  # the tree level (number of groups) the labels were cut at
    leaf_terms: LeafTerms | None = None  # words of each tree leaf, for automatic names at any cut
    # tree node -> {"name": str | None, "excluded": bool}: what the person gave a group that is not a
    # cluster at this level (split or merged by a re-cut); it comes back where the group is whole again
    node_curation: dict[int, dict] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)
    edits: list[dict] = field(default_factory=list)
    path: Path | None = None

    def __post_init__(self) -> None:
        n = len(self.paths)
        if not (isinstance(self.features, np.ndarray) and self.features.dtype in (np.float16, np.float32)):
            self.features = np.asarray(self.features, dtype=np.float32)  # float16 (large, mmap) stays as is
        self.coords = np.asarray(self.coords, dtype=np.float32)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if self.outlier_score is None:
            self.outlier_score = np.zeros(n, np.float32)
        self.outlier_score = np.asarray(self.outlier_score, dtype=np.float32)
        if self.duplicate_group is None:
            self.duplicate_group = np.full(n, -1, np.int64)
        self.duplicate_group = np.asarray(self.duplicate_group, dtype=np.int64)
        if self.excluded is None:
            self.excluded = np.zeros(n, bool)
        self.excluded = np.asarray(self.excluded, dtype=bool)
        if self.missing is None:
            self.missing = np.zeros(n, bool)
        self.missing = np.asarray(self.missing, dtype=bool)
        for cid in label_counts(self.labels)[0].tolist():  # a bincount, not a sort of n labels
            self.clusters.setdefault(int(cid), ClusterInfo(int(cid), f"Cluster {cid}"))

    # ---- reading

    def name_of(self, cluster_id: int) -> str:
        """The cluster's display name ("Noise" for -1)."""
        return self.names_of([int(cluster_id)])[0]

    def names_of(self, cluster_ids: Iterable[int]) -> list[str]:
        """Display names of many clusters in one pass (a legend of 2,000 groups), as name_of gives them."""
        get = self.clusters.get
        return [
            info.name if (info := get(cid)) is not None and cid != NOISE else self._unnamed(cid)
            for cid in cluster_ids
        ]

    @staticmethod
    def _unnamed(cluster_id: int) -> str:
        return "Noise" if cluster_id == NOISE else f"Cluster {cluster_id}"

    def sizes(self) -> dict[int, int]:
        """Images per cluster id, for non-empty clusters only (noise not included)."""
        ids, counts = label_counts(self.labels)
        return dict(zip(ids.tolist(), counts.tolist(), strict=True))

    def cluster_ids(self) -> list[int]:
        """Sorted ids of the clusters that have at least one image."""
        return label_counts(self.labels)[0].tolist()

    def members(self, cluster_id: int) -> np.ndarray:
        """Row indices of one cluster, medoid first, then by distance to the medoid (most typical first)."""
        rows = np.flatnonzero(self.labels == cluster_id)
        info = self.clusters.get(int(cluster_id))
        medoid = info.medoid_index if info is not None else None
        if medoid is None or medoid not in set(rows.tolist()) or self.features.shape[0] != len(self.paths):
            return rows
        return rows[np.argsort(-cosine_to(self.features, rows, medoid), kind="stable")]

    # ---- edits: each appends one JSON-able entry to `edits`; the GUI undoes by calling the inverse

    def assign(self, indices: Sequence[int], cluster_id: int) -> None:
        """Move rows into one cluster (created if new; -1 = unassigned)."""
        rows = _rows(indices)
        previous = self.labels[rows].tolist()
        self._ensure_cluster(int(cluster_id))
        self.labels[rows] = int(cluster_id)
        self._refresh_medoids(set(previous) | {int(cluster_id)})
        self._log("assign", indices=rows.tolist(), cluster=int(cluster_id), previous=previous)

    def assign_each(self, indices: Sequence[int], labels: Sequence[int]) -> None:
        """Give each row its own label (the inverse of assign/merge/split)."""
        rows = _rows(indices)
        new = np.asarray(labels, dtype=np.int64).ravel()
        if new.shape != rows.shape:
            raise ValueError(f"{len(rows)} rows but {len(new)} labels")
        previous = self.labels[rows].tolist()
        for cid in set(new.tolist()):
            self._ensure_cluster(cid)
        self.labels[rows] = new
        self._refresh_medoids(set(previous) | set(new.tolist()))
        self._log("assign_each", indices=rows.tolist(), labels=new.tolist(), previous=previous)

    def new_cluster_id(self, name: str | None = None) -> int:
        """Reserve a fresh cluster id (one above every id in use) and create its ClusterInfo."""
        used = set(self.clusters) | set(self.labels.tolist()) | {NOISE}
        cid = max(used) + 1
        self.clusters[cid] = ClusterInfo(cid, name or f"Cluster {cid}", renamed=bool(name))
        self._log("new_cluster", cluster=cid, name=self.clusters[cid].name)
        return cid

    def merge(self, cluster_ids: Iterable[int], into: int | None = None) -> int:
        """Put every image of these clusters into one (default: the largest); returns its id."""
        ids = sorted({int(c) for c in cluster_ids} - {NOISE})
        if not ids:
            raise ValueError("merge needs at least one cluster")
        if into is None:
            sizes = self.sizes()
            into = max(ids, key=lambda c: (sizes.get(c, 0), -c))
        rows = np.flatnonzero(np.isin(self.labels, ids) & (self.labels != into))
        previous = self.labels[rows].tolist()
        self._ensure_cluster(int(into))
        self.labels[rows] = int(into)
        # Emptied clusters keep their ClusterInfo so an undo (assign_each) brings their names back.
        self._refresh_medoids(set(ids) | {int(into)})
        self._log("merge", clusters=ids, into=int(into), indices=rows.tolist(), previous=previous)
        return int(into)

    def split(self, indices: Sequence[int], name: str | None = None) -> int:
        """Move rows into a brand-new cluster; returns its id."""
        rows = _rows(indices)
        previous = self.labels[rows].tolist()
        used = set(self.clusters) | set(self.labels.tolist()) | {NOISE}
        cid = max(used) + 1
        self.clusters[cid] = ClusterInfo(cid, name or f"Cluster {cid}", renamed=bool(name))
        self.labels[rows] = cid
        self._refresh_medoids(set(previous) | {cid})
        self._log(
            "split", indices=rows.tolist(), cluster=cid, name=self.clusters[cid].name, previous=previous
        )
        return cid

    def split_cluster(self, cluster_id: int, sub_labels: Sequence[int], method: str = "") -> list[int]:
        """Split one cluster by sub-labels (one per member, in row order; -1 = noise): the largest part keeps
        the id, every other part gets a new cluster; returns the ids of all parts."""
        cid = int(cluster_id)
        rows = np.flatnonzero(self.labels == cid)
        parts = np.asarray(sub_labels, dtype=np.int64).ravel()
        if parts.shape != rows.shape:
            raise ValueError(f"cluster {cid} has {len(rows)} images but {len(parts)} sub-labels were given")
        previous = self.labels[rows].tolist()
        ids, counts = np.unique(parts, return_counts=True)
        order = [int(p) for p in ids[np.lexsort((ids, -counts))]]  # biggest part first
        base = self.name_of(cid)
        new_label = np.empty_like(parts)
        result: list[int] = []
        for part in order:
            if part < 0:
                target = NOISE
            elif not result:
                target = cid
            else:
                used = set(self.clusters) | set(self.labels.tolist()) | {NOISE}
                target = max(used) + 1
                self.clusters[target] = ClusterInfo(target, f"{base} ({len(result) + 1})")
            new_label[parts == part] = target
            if target != NOISE:
                result.append(target)
        self.labels[rows] = new_label
        self._refresh_medoids(set(result))
        self._log(
            "split_cluster", cluster=cid, method=method, indices=rows.tolist(), labels=new_label.tolist(),
            previous=previous, clusters=result,
        )  # fmt: skip
        return result

    def rename(self, cluster_id: int, name: str) -> None:
        """Give a cluster a new display name."""
        cid = int(cluster_id)
        self._ensure_cluster(cid)
        previous = self.clusters[cid].name
        # Replace rather than mutate: GUI snapshots share ClusterInfo objects through shallow dict copies.
        self.clusters[cid] = dataclasses.replace(self.clusters[cid], name=str(name), renamed=True)
        self._log("rename", cluster=cid, name=str(name), previous=previous)

    def set_excluded(self, indices: Sequence[int], flag: bool) -> None:
        """Mark rows as excluded from export (or include them again)."""
        rows = _rows(indices)
        previous = self.excluded[rows].tolist()
        self.excluded[rows] = bool(flag)
        self._log("exclude", indices=rows.tolist(), flag=bool(flag), previous=previous)

    def set_cluster_excluded(self, cluster_id: int, flag: bool) -> None:
        """Mark a whole cluster as excluded from export by default."""
        cid = int(cluster_id)
        self._ensure_cluster(cid)
        previous = self.clusters[cid].excluded
        self.clusters[cid] = dataclasses.replace(self.clusters[cid], excluded=bool(flag))
        self._log("exclude_cluster", cluster=cid, flag=bool(flag), previous=previous)

    def _ensure_cluster(self, cid: int) -> None:
        if cid != NOISE and cid not in self.clusters:
            self.clusters[cid] = ClusterInfo(cid, f"Cluster {cid}")

    def _refresh_medoids(self, cluster_ids: Iterable[int]) -> None:
        # An edit can move the medoid out of its cluster: recompute the most central row in feature space.
        if self.features.shape[0] != len(self.paths) or self.features.ndim != 2:
            return
        wanted = [int(c) for c in cluster_ids if c != NOISE and c in self.clusters]
        medoids = medoids_of(self.features, self.labels, wanted)
        for cid in wanted:
            self.clusters[cid] = dataclasses.replace(self.clusters[cid], medoid_index=medoids.get(cid))

    def _log(self, op: str, **details: Any) -> None:
        self.edits.append({"op": op, "time": round(time.time(), 3), **details})


def split_labels(
    session: Session,
    cluster_id: int,
    k: int | None = None,
    *,
    method: str = "kmeans",
    seed: int = 0,
    on_progress: Any = None,
    cancelled: Any = None,
) -> np.ndarray:
    """Sub-labels for re-clustering one cluster's images alone (k fixed, or chosen automatically).

    Works on the session's stored features only (PCA of the members, then `method` in that space); the
    result has one label per member in row order, ready for Session.split_cluster.
    """
    from .cluster import ClusterParams, cluster
    from .progress import never_cancelled, no_progress
    from .reduce import reduce

    rows = np.flatnonzero(session.labels == int(cluster_id))
    if len(rows) < 2:
        raise ValueError(f"{session.name_of(cluster_id)} has {len(rows)} image(s): nothing to split")
    if k is not None and not 2 <= int(k) <= len(rows):
        raise ValueError(f"cannot split {len(rows)} images into {k} clusters")
    reduced = reduce(session.features[rows], n_components=min(50, len(rows) - 1), seed=seed)
    params = ClusterParams(
        method=method,
        k=None if k is None else int(k),
        k_range=(2, max(2, min(10, len(rows) - 1))),
        space="reduced",
        seed=seed,
    )
    result = cluster(
        reduced.data,
        params,
        on_progress=on_progress or no_progress,
        cancelled=cancelled or never_cancelled,
    )
    return np.asarray(result.labels, dtype=np.int64)


def medoids_of(
    features: np.ndarray, labels: np.ndarray, cluster_ids: Sequence[int], *, block: int = 16384
) -> dict[int, int]:
    """Most central row (highest cosine to its cluster's mean direction) of each cluster.

    The same answer as scoring each cluster on its own, for any number of clusters: rows are grouped by
    label once and the features are read `block` rows at a time (a memory-mapped features.npy stays on
    disk). Ties go to the first row.
    """
    wanted = np.asarray(sorted(set(int(c) for c in cluster_ids)), np.int64)
    if wanted.size == 0 or len(labels) == 0:
        return {}
    slot = slots(wanted, labels)  # position in `wanted`, -1 for rows of other clusters
    rows = np.flatnonzero(slot >= 0)
    slot = slot[rows]
    from scipy import sparse

    # Cosines without a normalised copy of the features: the sums weight each row by 1 / its norm, the
    # scores divide by it.
    inverse_norm = 1.0 / np.maximum(row_norms(features)[rows], 1e-12)
    sums = np.zeros((len(wanted), features.shape[1]), np.float64)
    for start in range(0, len(rows), block):
        part = slice(start, start + block)
        x = feature_rows(features, rows[part])
        # one column per row, its one entry in its cluster's row: built as it stands, nothing to sort
        member = sparse.csc_matrix(
            (inverse_norm[part], slot[part], np.arange(len(x) + 1)), shape=(len(wanted), len(x))
        )
        sums += member @ x
        release(features)
    directions = sums.astype(np.float32)
    score = np.empty(len(rows), np.float32)
    for start in range(0, len(rows), block):
        part = slice(start, start + block)
        x = feature_rows(features, rows[part])
        score[part] = np.einsum("ij,ij->i", x, directions[slot[part]]) * inverse_norm[part]
        release(features)
    best = np.full(len(wanted), -np.inf, np.float32)
    np.maximum.at(best, slot, score)
    top = np.flatnonzero(score == best[slot])  # every row at its cluster's best score, in row order
    found, first = np.unique(slot[top], return_index=True)  # the first of them per cluster
    return dict(zip(wanted[found].tolist(), rows[top[first]].tolist(), strict=True))


def _rows(indices: Sequence[int]) -> np.ndarray:
    return np.asarray(indices, dtype=np.int64).ravel()


# ---- saving


def save(
    session: Session,
    folder: Path,
    *,
    report: bool = True,
    write_features: bool = True,
    write_tree: bool = True,
) -> None:
    """Write the session folder (atomic per file); montages and report.html too unless report=False.

    write_features=False keeps the folder's features.npy (autosave: edits never change features); it is
    refused unless that file already holds one row per image. write_tree=False keeps hierarchy.csv (a
    re-cut or an edit never changes the tree) when rows.npz vouches for it, else writes it; tree.npz is
    written whenever what it holds changes (the node medoids grow with re-cuts). rows.npz goes last of
    the tables, after the CSVs it mirrors and before session.json, whose row lists it keeps.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n = len(session.paths)
    if session.features.shape[0] != n or session.coords.shape[0] != n or session.labels.shape[0] != n:
        raise SessionError(
            f"inconsistent session: {n} paths, {session.features.shape[0]} feature rows, "
            f"{session.coords.shape[0]} map points, {session.labels.shape[0]} labels"
        )
    if not write_features and not _features_fit(folder / "features.npy", session.features.shape):
        write_features = True
    if write_features:
        dtype = features_dtype(session.features.shape)
        _atomic_write(folder / "features.npy", lambda f: _write_npy(f, session.features, dtype), binary=True)
    rows = Rows(session.paths, session.labels, session.coords, session.outlier_score, session.duplicate_group)
    numbers = row_cache.read_number_text(folder, rows) or number_text(rows)
    table = clusters_csv(rows, _is_medoid(session), numbers).encode("utf-8")
    atomic_write_bytes(folder / "clusters.csv", table)
    clusters_key = row_cache.file_key(folder / "clusters.csv")
    blob = row_cache.paths_blob(session.paths)  # made once: rows.npz keeps it, both parts check its digest
    paths_sha256 = None if blob is None else row_cache.sha256(blob)
    hierarchy = None
    if session.tree is not None:
        hierarchy = None if write_tree else _kept_hierarchy(folder, paths_sha256)
        if hierarchy is None:
            hierarchy = _write_hierarchy(folder, session.paths, session.tree, paths_sha256)
        _write_tree_arrays(folder, session.tree, session.leaf_terms)  # its medoids may have grown
    else:  # a re-clustering without a tree: an old tree would mislead
        (folder / "hierarchy.csv").unlink(missing_ok=True)
        (folder / TREE_ARRAYS).unlink(missing_ok=True)
    meta, spans = _meta_json(session)
    row_lists = None
    if spans is not None:
        row_lists = MetaPart(row_cache.sha256(meta), spans, session.excluded, session.missing)
    row_cache.write(
        folder,
        rows,
        row_cache.sha256(table),
        hierarchy,
        numbers,
        blob=blob,
        clusters_key=clusters_key,
        meta=row_lists,
    )
    atomic_write_bytes(folder / "session.json", meta)
    session.path = folder
    if report:
        from .report import write_report  # PIL drawing; imported here so loading stays light

        write_report(session, folder)


def _meta_json(session: Session) -> tuple[bytes, tuple[int, int, int, int] | None]:
    """session.json's bytes, and the byte spans of its excluded_rows and missing_rows lists (None when
    indented). Indented for a person to read up to PRETTY_JSON_MAX images; above, compact (json.dumps's C
    encoder) with the two row lists last, where rows.npz can mark them so a load need not parse them."""
    meta = _to_json(session)
    if len(session.paths) <= PRETTY_JSON_MAX:
        return json.dumps(meta, indent=1).encode("utf-8"), None
    row_lists = {key: meta.pop(key) for key in ROW_LISTS}
    text = json.dumps(meta, separators=(",", ":")).removesuffix("}")
    spans: list[int] = []
    for key, rows in row_lists.items():
        text += f',"{key}":'
        spans.append(len(text))  # json.dumps escapes every non-ASCII character: offsets are byte offsets
        text += json.dumps(rows, separators=(",", ":"))
        spans.append(len(text))
    return (text + "}").encode("utf-8"), (spans[0], spans[1], spans[2], spans[3])


def _is_medoid(session: Session) -> np.ndarray:
    is_medoid = np.zeros(len(session.paths), np.int64)
    medoids = [info.medoid_index for info in session.clusters.values() if info.medoid_index is not None]
    is_medoid[np.asarray(medoids, np.int64)] = 1
    return is_medoid


def _write_hierarchy(
    folder: Path, paths: list[str], tree: ClusterTree, paths_sha256: bytes | None
) -> HierarchyPart | None:
    """hierarchy.csv; returns what rows.npz records of it (None: nothing it can record). paths_sha256: the
    digest of the paths' blob (None: they have none)."""
    table = hierarchy_csv(paths, tree).encode("utf-8")
    atomic_write_bytes(folder / "hierarchy.csv", table)
    if paths_sha256 is None or tree.n_leaves not in tree.levels:
        return None
    leaves, key = tree.cut(tree.n_leaves), row_cache.file_key(folder / "hierarchy.csv")
    header = table.split(b"\n", 1)[0].rstrip(b"\r")
    return HierarchyPart(row_cache.sha256(table), paths_sha256, leaves, key, header)


def _write_tree_arrays(folder: Path, tree: ClusterTree, terms: LeafTerms | None) -> None:
    """tree.npz: linkage, the leaves' words (term_ids, term_weight) and the node medoids known so far;
    left as it is when it already holds exactly these (a re-cut to a level seen before)."""
    nodes = np.asarray(sorted(tree.node_medoids), np.int64)
    arrays = {
        "linkage": np.asarray(tree.linkage, np.float64),
        "medoid_nodes": nodes,
        "medoid_rows": np.asarray([tree.node_medoids[n] for n in nodes.tolist()], np.int64),
    }
    if terms is not None:
        arrays |= {"term_ids": np.asarray(terms.ids), "term_weight": np.asarray(terms.weight)}
    if not _holds(folder / TREE_ARRAYS, arrays):
        _atomic_write(folder / TREE_ARRAYS, lambda f: np.savez(f, **arrays), binary=True)


def _holds(path: Path, arrays: dict[str, np.ndarray]) -> bool:
    """Whether the .npz at path holds exactly these arrays (names, dtypes, shapes and bytes)."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            return set(stored.files) == set(arrays) and all(
                stored[name].dtype == value.dtype
                and stored[name].shape == value.shape
                and stored[name].tobytes() == value.tobytes()
                for name, value in arrays.items()
            )
    except (OSError, ValueError, KeyError, EOFError, AttributeError, TypeError, zipfile.BadZipFile):
        return False


def _kept_hierarchy(folder: Path, paths_sha256: bytes | None) -> HierarchyPart | None:
    """rows.npz's record of hierarchy.csv when that file and the paths (the digest of their blob) are still
    the ones it was made with (the file can then stay as it is); else None."""
    kept = None if paths_sha256 is None else row_cache.read_hierarchy(folder)
    return kept if kept is not None and kept.paths_sha256 == paths_sha256 else None


def features_dtype(shape: tuple) -> np.dtype:
    """float16 for features over FLOAT16_ABOVE_BYTES as float32 (1M x 1280: 2.5 GB instead of 5), else float32."""
    n, dim = (tuple(shape) + (0, 0))[:2]
    return np.dtype(np.float16 if n * dim * 4 > FLOAT16_ABOVE_BYTES else np.float32)


def _write_npy(f, features: np.ndarray, dtype: np.dtype, chunk: int = 65536) -> None:
    """np.save's format, written in row chunks: a memory-mapped 1M x 1280 array is never copied whole."""
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": features.shape}
    if len(repr(header)) < 65000:
        np.lib.format.write_array_header_1_0(f, header)
    else:
        np.lib.format.write_array_header_2_0(f, header)
    for start in range(0, len(features), chunk):
        f.write(np.ascontiguousarray(features[start : start + chunk], dtype=dtype).tobytes())
        release(features)


def _features_fit(path: Path, shape: tuple) -> bool:
    try:
        stored = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return False
    return stored.shape == tuple(shape) and stored.dtype == features_dtype(shape)


def _to_json(session: Session) -> dict:
    sizes = session.sizes()
    clusters = [
        {
            "id": cid,
            "name": info.name,
            "size": sizes.get(cid, 0),
            "medoid_index": info.medoid_index,
            "medoid_path": session.paths[info.medoid_index] if info.medoid_index is not None else None,
            "excluded": info.excluded,
            "node": info.node,
            "renamed": info.renamed,
        }
        for cid, info in sorted(session.clusters.items())
    ]
    from imgclust_desktop import __version__

    return _jsonable(
        {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "app_version": __version__,
            "saved": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "n_images": len(session.paths),
            "feature_dim": int(session.features.shape[1]) if session.features.ndim == 2 else 0,
            "inputs": list(session.inputs),
            "model_id": session.model_id,
            "params": session.params,
            "timings": session.timings,
            "scores": session.scores,
            "k_curve": session.k_curve,
            "clusters": clusters,
            "noise": int(np.sum(session.labels == NOISE)),
            "excluded_rows": np.flatnonzero(session.excluded),
            "missing_rows": np.flatnonzero(session.missing),
            "linkage": None if session.linkage is None else np.asarray(session.linkage, float),
            "linkage_cluster_ids": list(session.linkage_cluster_ids),
            "tree": None
            if session.tree is None
            else {
                **session.tree.to_json(linkage=False),  # the linkage is in tree.npz
                "level": session.level,
                "terms": None
                if session.leaf_terms is None
                else {"vocabulary": session.leaf_terms.vocabulary},
                "node_curation": {str(node): dict(c) for node, c in session.node_curation.items()},
            },
            "skipped": [{"path": s.path, "reason": s.reason} for s in session.skipped],
            "edits": session.edits,
        }
    )


def _jsonable(value: Any) -> Any:
    """Plain JSON types only: numpy scalars/arrays unwrapped, tuples as lists, NaN/inf as null."""
    kind = type(value)  # the plain types first, by exact type (numpy's float64 is a float subclass)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biu" or (value.dtype.kind == "f" and np.isfinite(value).all()):
            return value.tolist()  # already plain ints and floats: no walk through every element
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


# ---- loading


def load(folder: Path, *, mmap: bool = True) -> Session:
    """Read a session folder; raises SessionError with a clear message, never unpickles, writes nothing.

    mmap=True maps features.npy instead of reading it (a re-cut or a look at the clusters never needs
    all of it in memory).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise SessionError(f"{folder} is not a session folder (it does not exist or is not a folder)")
    meta, row_lists = _read_meta(folder / "session.json")
    rows, paths_sha256 = _read_rows(folder)
    n = len(rows.paths)
    if meta.get("n_images", n) != n:
        raise SessionError(f"clusters.csv has {n} rows but session.json says {meta['n_images']} images")
    features = _read_features(folder / "features.npy", n, mmap=mmap)
    try:
        excluded, missing = (
            (_row_mask(meta.get("excluded_rows", []), n), _row_mask(meta.get("missing_rows", []), n))
            if row_lists is None
            else (row_lists.excluded, row_lists.missing)  # rows.npz's, of these session.json bytes
        )
        if len(excluded) != n or len(missing) != n:
            raise ValueError(f"excluded or missing rows of {len(excluded)} images, not {n}")
        clusters = {
            int(c["id"]): ClusterInfo(
                int(c["id"]),
                str(c["name"]),
                None if c.get("medoid_index") is None else int(c["medoid_index"]),
                bool(c.get("excluded", False)),
                None if c.get("node") is None else int(c["node"]),
                bool(c.get("renamed", False)),
            )
            for c in meta.get("clusters", [])
        }
        for info in clusters.values():
            if info.medoid_index is not None and not 0 <= info.medoid_index < n:
                raise ValueError(f"cluster {info.id} has medoid row {info.medoid_index} outside 0..{n - 1}")
        linkage = meta.get("linkage")
        tree_meta = meta.get("tree")
        tree, terms = (
            (None, None) if tree_meta is None else _read_tree(folder, tree_meta, rows.paths, paths_sha256)
        )
        skipped = [Skipped(str(s["path"]), str(s["reason"])) for s in meta.get("skipped", [])]
        session = Session(
            paths=rows.paths,
            features=features,
            coords=rows.coords,
            labels=rows.labels,
            outlier_score=rows.outlier_score,
            duplicate_group=rows.duplicate_group,
            excluded=excluded,
            missing=missing,
            clusters=clusters,
            model_id=str(meta.get("model_id", "")),
            inputs=[str(p) for p in meta.get("inputs", [])],
            params=dict(meta.get("params") or {}),
            timings=dict(meta.get("timings") or {}),
            scores=_int_keys(dict(meta.get("scores") or {})),
            k_curve=meta.get("k_curve"),
            linkage=None if linkage is None else np.asarray(linkage, np.float64).reshape(-1, 4),
            linkage_cluster_ids=[int(c) for c in meta.get("linkage_cluster_ids", [])],
            tree=tree,
            leaf_terms=terms,
            level=None if tree_meta is None else int(tree_meta.get("level") or tree_meta["default_level"]),
            node_curation={
                int(k): dict(v) for k, v in ((tree_meta or {}).get("node_curation") or {}).items()
            },
            skipped=skipped,
            edits=list(meta.get("edits", [])),
            path=folder,
        )
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise SessionError(f"session folder {folder} is damaged: {exc}") from None
    return session


def _row_mask(rows: Any, n: int) -> np.ndarray:
    mask = np.zeros(n, bool)
    mask[np.asarray(rows, np.int64)] = True
    return mask


def _read_rows(folder: Path) -> tuple[Rows, bytes | None]:
    """clusters.csv's columns, from rows.npz when it was made from exactly this file, else parsed; and the
    digest of the paths when rows.npz knows it."""
    cached = row_cache.read_rows(folder)
    if cached is not None:
        return cached
    table = _read_bytes(folder / "clusters.csv", f"the session folder has no clusters.csv ({folder})")
    try:
        return parse_clusters_csv(table), None
    except TableError as exc:
        raise SessionError(str(exc)) from None
    except ValueError as exc:  # a cell that is not a number
        raise SessionError(f"session folder {folder} is damaged: {exc}") from None


def _read_tree(
    folder: Path, meta: dict, paths: list[str], paths_sha256: bytes | None
) -> tuple[ClusterTree, LeafTerms | None]:
    """The tree from session.json's "tree" entry, tree.npz and hierarchy.csv's finest column (the leaves)."""
    n_leaves = int(meta["n_leaves"])
    leaf_of = _cached_leaves(folder, n_leaves, paths, paths_sha256)
    if leaf_of is None:
        table = _read_bytes(
            folder / "hierarchy.csv", "session.json records a cluster tree but hierarchy.csv is missing"
        )
        try:
            leaf_of = parse_hierarchy_leaves(table, n_leaves, paths)
        except TableError as exc:
            raise SessionError(str(exc)) from None
    linkage, terms, medoids = _read_tree_arrays(folder, meta)
    if len(linkage) != max(n_leaves - 1, 0) or (terms is not None and len(terms.ids) != n_leaves):
        raise SessionError(
            f"the tree's arrays do not fit its {n_leaves} leaves (session.json and tree.npz differ)"
        )
    tree = ClusterTree.from_json(meta, leaf_of, linkage)
    if len(leaf_of) and (leaf_of.min() < 0 or leaf_of.max() >= tree.n_leaves):
        raise SessionError("hierarchy.csv names micro-clusters outside the tree")
    nodes, rows = medoids
    if len(nodes) and not (
        0 <= nodes.min() and nodes.max() < 2 * n_leaves - 1 and 0 <= rows.min() and rows.max() < len(paths)
    ):
        raise SessionError(f"{TREE_ARRAYS} is damaged (node medoids outside the tree or the images)")
    tree.node_medoids.update(zip(nodes.tolist(), rows.tolist(), strict=True))
    return tree, terms


def _cached_leaves(
    folder: Path, n_leaves: int, paths: list[str], paths_sha256: bytes | None
) -> np.ndarray | None:
    """hierarchy.csv's leaves from rows.npz, if it was made from this file listing these paths (whose
    digest is paths_sha256 when the rows came from rows.npz too: then nothing is encoded to check it)."""
    cached = row_cache.read_hierarchy(folder)
    if cached is None or f"k{n_leaves}".encode() not in (cached.header or b"").split(b","):
        return None
    if paths_sha256 is None:
        blob = row_cache.paths_blob(paths)
        paths_sha256 = None if blob is None else row_cache.sha256(blob)
    if cached.paths_sha256 != paths_sha256 or len(cached.leaf_of) != len(paths):
        return None
    return cached.leaf_of


def _read_tree_arrays(
    folder: Path, meta: dict
) -> tuple[np.ndarray, LeafTerms | None, tuple[np.ndarray, np.ndarray]]:
    """The tree's linkage, leaf words and known node medoids (nodes, rows): from tree.npz, or (format 1)
    from session.json itself, which has no medoids."""
    terms_meta = meta.get("terms")
    if "linkage" in meta:  # format 1
        linkage = np.asarray(meta["linkage"] or np.zeros((0, 4)), np.float64).reshape(-1, 4)
        none = np.zeros(0, np.int64)
        return linkage, LeafTerms.from_json(terms_meta) if terms_meta else None, (none, none)
    try:
        arrays = np.load(folder / TREE_ARRAYS, allow_pickle=False)
    except FileNotFoundError:
        raise SessionError(f"session.json records a cluster tree but {TREE_ARRAYS} is missing") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise SessionError(f"{TREE_ARRAYS} is damaged: {exc}") from None
    if not isinstance(arrays, np.lib.npyio.NpzFile):
        raise SessionError(f"{TREE_ARRAYS} is damaged (not an .npz archive)")
    try:
        with arrays:
            linkage = np.asarray(arrays["linkage"], np.float64).reshape(-1, 4)
            medoids = (arrays["medoid_nodes"].astype(np.int64), arrays["medoid_rows"].astype(np.int64))
            if medoids[0].shape != medoids[1].shape or medoids[0].ndim != 1:
                raise ValueError("node medoids of different lengths")
            terms = None
            if terms_meta:
                ids, weight = arrays["term_ids"], arrays["term_weight"]
                if ids.shape != weight.shape or ids.ndim != 2:
                    raise ValueError(f"leaf words of shapes {ids.shape} and {weight.shape}")
                vocabulary = [str(word) for word in terms_meta["vocabulary"]]
                if ids.size and not 0 <= int(ids.min()) <= int(ids.max()) < len(vocabulary):
                    raise ValueError("leaf words outside the vocabulary")
                terms = LeafTerms(vocabulary, ids.astype(np.int32), weight.astype(np.float32))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise SessionError(f"{TREE_ARRAYS} is damaged: {exc}") from None
    return linkage, terms, medoids


def _read_bytes(path: Path, missing: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise SessionError(missing) from None
    except OSError as exc:
        raise SessionError(f"cannot read {path.name}: {exc}") from None


def _int_keys(value: Any) -> Any:
    """JSON turned int dict keys (cluster_sizes) into strings: turn them back so a reload is identical."""
    if isinstance(value, dict):
        keys = list(value)
        if keys and all(isinstance(k, str) and k.lstrip("-").isdigit() for k in keys):
            return {int(k): _int_keys(v) for k, v in value.items()}
        return {k: _int_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_int_keys(v) for v in value]
    return value


def _read_meta(path: Path) -> tuple[dict, MetaPart | None]:
    """session.json's contents, and its row lists from rows.npz when that was made for these bytes (then
    the lists are left out of the parse: a million row numbers take a fifth of a second)."""
    try:
        data = path.read_bytes()
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise SessionError(f"{path.parent} is not a session folder (no session.json)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SessionError(f"cannot read {path}: {exc}") from None
    row_lists = row_cache.read_meta(path.parent, data)
    if row_lists is not None:  # the bytes the save wrote, all ASCII: byte offsets are character offsets
        a, b, c, d = row_lists.spans
        text = "".join((text[:a], "[]", text[b:c], "[]", text[d:]))
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SessionError(f"session.json is damaged (not valid JSON: {exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise SessionError(f"{path} is not an imgclust session file")
    version = meta.get("format_version")
    if not isinstance(version, int):
        raise SessionError("session.json is damaged (no format version)")
    if version > FORMAT_VERSION:
        raise SessionError(
            f"this session was saved by a newer imgclust (format {version}; this version reads up to "
            f"{FORMAT_VERSION}): update imgclust to open it"
        )
    return meta, row_lists


def _read_features(path: Path, n: int, *, mmap: bool = False) -> np.ndarray:
    try:
        # Memory-mapped: a 1M-image session opens without reading gigabytes; pages load as rows are used.
        features = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError:
        raise SessionError(f"the session folder has no features.npy ({path})") from None
    except (OSError, ValueError, EOFError) as exc:
        raise SessionError(f"features.npy is damaged: {exc}") from None
    if not isinstance(features, np.ndarray) or features.ndim != 2 or features.shape[0] != n:
        shape = getattr(features, "shape", None)
        raise SessionError(f"features.npy has shape {shape}, expected {n} rows (one per clusters.csv row)")
    if features.dtype not in (np.float32, np.float16):
        raise SessionError(f"features.npy holds {features.dtype}, expected float32 or float16")
    return features
