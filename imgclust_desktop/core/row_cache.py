"""SESSION/rows.npz: the per-row CSV columns in binary, so a 100,000-image session opens without parsing
clusters.csv and hierarchy.csv (about a second of Python at that size; the cache reads in milliseconds).

The CSVs stay the truth. Each part of the cache records the SHA-256 of the CSV bytes it was made from and
is used only while that file on disk still has exactly those bytes: a CSV edited by hand, written by
another tool, or put back from a copy does not match and is parsed as before. A digest, not size and
mtime, because a copy or an undo keeps the mtime, and an edit of one digit keeps the size. The cache is
written atomically after the CSVs, and deleting it only makes the next load slower.

It also keeps the text of clusters.csv's x,y,outlier_score cells (number_text, NUL after each row's),
which a re-cut does not change and which takes most of the time of writing the table; the next save
reuses it when coords and outlier_score are bit for bit the ones it was made from.

Layout (numpy .npz, no pickle): version; clusters_sha256, paths (UTF-8, each path ended by NUL, which no
path holds), labels, coords, outlier_score, duplicate_group, number_text; and, for a session with a
cluster tree, hierarchy_sha256, hierarchy_paths_sha256 (the paths hierarchy.csv lists) and leaf_of (its
finest column).
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import atomic_write

CACHE_NAME = "rows.npz"
CACHE_VERSION = 1
_ROW_ARRAYS = {
    "labels": np.int64,
    "coords": np.float32,
    "outlier_score": np.float32,
    "duplicate_group": np.int64,
}
_DAMAGED = (
    OSError,
    ValueError,
    KeyError,
    IndexError,
    EOFError,
    zipfile.BadZipFile,
)  # what a bad cache raises


@dataclass
class Rows:
    """clusters.csv's columns as the session holds them (is_medoid aside: session.json has the medoids)."""

    paths: list[str]
    labels: np.ndarray  # int64 [n]
    coords: np.ndarray  # float32 [n, 2]
    outlier_score: np.ndarray  # float32 [n]
    duplicate_group: np.ndarray  # int64 [n]


@dataclass
class HierarchyPart:
    """What hierarchy.csv holds that a load needs: its digest, the paths it lists (digest) and the leaves."""

    sha256: bytes
    paths_sha256: bytes
    leaf_of: np.ndarray  # int64 [n]: the finest column (k<n_leaves>)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def paths_blob(paths: list[str]) -> bytes | None:
    """The paths as one UTF-8 blob, each ended by NUL; None if a path holds a NUL itself (nothing is cached)."""
    blob = "\0".join([*paths, ""]).encode("utf-8")
    return blob if blob.count(b"\0") == len(paths) else None


def write(
    folder: Path,
    rows: Rows,
    clusters_sha256: bytes,
    hierarchy: HierarchyPart | None,
    number_text: list[str],
) -> None:
    """Write rows.npz for the clusters.csv whose bytes have this digest (and hierarchy.csv's part, if any);
    number_text: each row's x,y,outlier_score cells as that table has them."""
    target = Path(folder) / CACHE_NAME
    blob = paths_blob(rows.paths)
    if blob is None:
        target.unlink(missing_ok=True)  # a cache that cannot say what the CSV says must not stay behind
        return
    arrays = {
        "version": np.array([CACHE_VERSION], np.int64),
        "clusters_sha256": _digest_array(clusters_sha256),
        "paths": np.frombuffer(blob, np.uint8),
        **{name: np.ascontiguousarray(getattr(rows, name), dtype) for name, dtype in _ROW_ARRAYS.items()},
        "number_text": np.frombuffer("\0".join([*number_text, ""]).encode("ascii"), np.uint8),
    }
    if hierarchy is not None:
        arrays["hierarchy_sha256"] = _digest_array(hierarchy.sha256)
        arrays["hierarchy_paths_sha256"] = _digest_array(hierarchy.paths_sha256)
        arrays["leaf_of"] = np.ascontiguousarray(hierarchy.leaf_of, np.int64)
    atomic_write(target, lambda f: np.savez(f, **arrays), binary=True)


def read_rows(folder: Path, clusters_sha256: bytes) -> Rows | None:
    """clusters.csv's columns from the cache, if it was made from exactly these CSV bytes; else None."""
    with _opened(folder) as cache:
        if cache is None or _digest(cache, "clusters_sha256") != clusters_sha256:
            return None
        try:
            paths = cache["paths"].tobytes().decode("utf-8").split("\0")[:-1]
            columns = {name: cache[name] for name in _ROW_ARRAYS}
        except _DAMAGED:
            return None
    n = len(paths)
    for name, dtype in _ROW_ARRAYS.items():
        shape = (n, 2) if name == "coords" else (n,)
        if columns[name].shape != shape or columns[name].dtype != dtype:
            return None
    return Rows(paths, **columns)


def read_number_text(folder: Path, rows: Rows) -> list[str] | None:
    """The x,y,outlier_score cells of these rows as the last save wrote them, if that save had bit for bit
    the same coords and outlier scores (whatever clusters.csv holds now: the text is of the cache's own
    arrays); else None."""
    with _opened(folder) as cache:
        if cache is None:
            return None
        try:
            same = all(
                cache[name].dtype == dtype
                and cache[name].tobytes() == np.asarray(getattr(rows, name), dtype).tobytes()
                for name, dtype in (("coords", np.float32), ("outlier_score", np.float32))
            )
            text = cache["number_text"].tobytes().decode("ascii").split("\0")[:-1] if same else None
        except _DAMAGED:
            return None
    return text if text is not None and len(text) == len(rows.paths) else None


def read_hierarchy(folder: Path, hierarchy_sha256: bytes) -> HierarchyPart | None:
    """hierarchy.csv's part of the cache, if it was made from exactly these CSV bytes; else None."""
    with _opened(folder) as cache:
        if cache is None or _digest(cache, "hierarchy_sha256") != hierarchy_sha256:
            return None
        try:
            paths_digest = _digest(cache, "hierarchy_paths_sha256")
            leaf_of = cache["leaf_of"]
        except _DAMAGED:
            return None
    if paths_digest is None or leaf_of.dtype != np.int64 or leaf_of.ndim != 1:
        return None
    return HierarchyPart(hierarchy_sha256, paths_digest, leaf_of)


@contextmanager
def _opened(folder: Path) -> Iterator[np.lib.npyio.NpzFile | None]:
    """rows.npz opened, or None when it is missing, damaged, not an .npz or of another cache version."""
    try:
        cache = np.load(Path(folder) / CACHE_NAME, allow_pickle=False)
    except _DAMAGED:
        yield None
        return
    if not isinstance(cache, np.lib.npyio.NpzFile):
        yield None
        return
    try:
        try:
            current = cache["version"].tolist() == [CACHE_VERSION]
        except _DAMAGED:
            current = False
        yield cache if current else None
    finally:
        cache.close()


def _digest(cache: np.lib.npyio.NpzFile, key: str) -> bytes | None:
    try:
        stored = cache[key]
    except _DAMAGED:
        return None
    return stored.tobytes() if stored.dtype == np.uint8 and stored.shape == (32,) else None


def _digest_array(digest: bytes) -> np.ndarray:
    return np.frombuffer(digest, np.uint8).copy()
