"""SESSION/rows.npz: the per-row columns in binary, so a big session opens without parsing clusters.csv and
hierarchy.csv (about a second of Python at 100,000 images; the cache reads in milliseconds) nor the row
lists of session.json (a 1M-int JSON list takes a fifth of a second to parse).

The CSVs and session.json stay the truth. Each part of the cache records the SHA-256 of the file bytes it
was made from and is used only while that file on disk still has exactly those bytes: a CSV edited by hand,
written by another tool, or put back from a copy does not match and is parsed as before. A digest, not size
and mtime, because a copy or an undo keeps the mtime, and an edit of one digit keeps the size.

Hashing a 1M-row CSV costs about as much as reading it (0.2 s for clusters.csv), so each CSV part also
records the file's stat key as the save left it (inode, size, mtime_ns, ctime_ns) and skips the read and
the hash while that key is unchanged. The ctime is what makes this safe: every write or truncate sets it to
the current time (so does a new hard link), no user tool can set it back, and a file put in the CSV's
place is another inode; so a file whose key is unchanged has not been written since. Two limits, as for
git's index. A write in the same timestamp tick as the recorded ctime would keep the key ("racy"), so a
key is recorded only when the file's ctime is older than the cache file's creation (read from the new
file itself: the same clock), and any write after that gets a newer ctime; a save that writes a CSV and
the cache within one tick (a small session) records no key for it, and its loads check the digest, as
git smudges a racy entry. And where st_ctime is not a change time (Windows: it is the creation time) no
key is recorded at all. A copied folder (new inodes) or a hard-linked one (new ctimes) is checked by
digest until it is saved again. What a key cannot see, as in git, is another program writing the CSV
during the save itself, within the tick the save wrote it.

The cache is written atomically after the CSVs, before session.json (whose digest it records from the bytes
about to be written), and deleting it only makes the next load slower.

It also keeps the text of clusters.csv's x,y,outlier_score cells (number_text, NUL after each row's),
which a re-cut does not change and which takes most of the time of writing the table; the next save
reuses it when coords and outlier_score are bit for bit the ones it was made from.

Layout (numpy .npz, no pickle): version; clusters_sha256, clusters_stat, paths (UTF-8, each path ended by
NUL, which no path holds), paths_sha256 (of that blob), labels, coords, outlier_score, duplicate_group,
number_text; for a session with a cluster tree, hierarchy_sha256, hierarchy_stat, hierarchy_header (its
first line), hierarchy_paths_sha256 (the paths hierarchy.csv lists) and leaf_of (its finest column); for a
session.json written compact (above PRETTY_JSON_MAX images), meta_sha256, meta_spans (byte offsets of the
excluded_rows and missing_rows lists in it) and excluded, missing (bool [n]). Every key after version is
optional: a cache without the stat keys, the paths digest or the row flags (written before they existed)
is used as before, through the digests.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import atomic_write

CACHE_NAME = "rows.npz"
CACHE_VERSION = 1  # new keys are optional, so caches of either age stay readable by either reader
CLUSTERS_CSV = "clusters.csv"
HIERARCHY_CSV = "hierarchy.csv"
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
    """What hierarchy.csv holds that a load needs: its digest, the paths it lists (digest) and the leaves;
    its stat key (file_key) and first line when known."""

    sha256: bytes
    paths_sha256: bytes
    leaf_of: np.ndarray  # int64 [n]: the finest column (k<n_leaves>)
    key: np.ndarray | None = None
    header: bytes | None = None


@dataclass
class MetaPart:
    """session.json's row lists as the save wrote them: the digest of the file's bytes, the byte spans of
    the excluded_rows and missing_rows lists in it, and the lists as row masks."""

    sha256: bytes
    spans: tuple[int, int, int, int]  # excluded_rows [start, end), then missing_rows [start, end)
    excluded: np.ndarray  # bool [n]
    missing: np.ndarray  # bool [n]


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def paths_blob(paths: list[str]) -> bytes | None:
    """The paths as one UTF-8 blob, each ended by NUL; None if a path holds a NUL itself (nothing is cached)."""
    blob = "\0".join([*paths, ""]).encode("utf-8")
    return blob if blob.count(b"\0") == len(paths) else None


def file_key(path: Path) -> np.ndarray | None:
    """The file's stat key now, int64 (inode, size, mtime_ns, ctime_ns); None when it cannot be stat-ed or
    st_ctime is not a change time on this system (Windows)."""
    if os.name != "posix":
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return np.array([st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns], np.int64)


def write(
    folder: Path,
    rows: Rows,
    clusters_sha256: bytes,
    hierarchy: HierarchyPart | None,
    number_text: list[str],
    *,
    blob: bytes | None,
    clusters_key: np.ndarray | None = None,
    meta: MetaPart | None = None,
) -> None:
    """Write rows.npz for the clusters.csv whose bytes have this digest (its stat key after the save wrote
    it: clusters_key), hierarchy.csv's part and session.json's row lists, if any; number_text: each row's
    x,y,outlier_score cells as that table has them; blob: paths_blob(rows.paths), which the save has made
    already for hierarchy.csv's part (None: a path holds a NUL, and no cache is kept)."""
    target = Path(folder) / CACHE_NAME
    if blob is None:
        target.unlink(missing_ok=True)  # a cache that cannot say what the CSV says must not stay behind
        return
    arrays = {
        "version": np.array([CACHE_VERSION], np.int64),
        "clusters_sha256": _digest_array(clusters_sha256),
        "paths": np.frombuffer(blob, np.uint8),
        "paths_sha256": _digest_array(sha256(blob)),
        **{name: np.ascontiguousarray(getattr(rows, name), dtype) for name, dtype in _ROW_ARRAYS.items()},
        "number_text": np.frombuffer("\0".join([*number_text, ""]).encode("ascii"), np.uint8),
    }
    stat_keys = {"clusters_stat": clusters_key}
    if hierarchy is not None:
        arrays["hierarchy_sha256"] = _digest_array(hierarchy.sha256)
        arrays["hierarchy_paths_sha256"] = _digest_array(hierarchy.paths_sha256)
        arrays["leaf_of"] = np.ascontiguousarray(hierarchy.leaf_of, np.int64)
        if hierarchy.header is not None:
            arrays["hierarchy_header"] = np.frombuffer(hierarchy.header, np.uint8)
        stat_keys["hierarchy_stat"] = hierarchy.key
    if meta is not None:
        arrays["meta_sha256"] = _digest_array(meta.sha256)
        arrays["meta_spans"] = np.array(meta.spans, np.int64)
        arrays["excluded"] = np.ascontiguousarray(meta.excluded, bool)
        arrays["missing"] = np.ascontiguousarray(meta.missing, bool)

    def save(f) -> None:
        created = os.fstat(f.fileno()).st_ctime_ns  # the new cache file's, by the folder's clock
        kept = {name: key for name, key in stat_keys.items() if not racy(key, created)}
        np.savez(f, **arrays, **kept)

    atomic_write(target, save, binary=True)


def racy(key: np.ndarray | None, cache_created_ns: int) -> bool:
    """Whether a file's stat key cannot vouch for it: none, or its ctime not older than the cache's
    creation (a write in that same timestamp tick would keep the key)."""
    return key is None or int(key[3]) >= cache_created_ns


def read_rows(folder: Path) -> tuple[Rows, bytes | None] | None:
    """clusters.csv's columns from the cache, if it was made from exactly the clusters.csv now in the
    folder, with the digest of their paths blob when the cache records it; else None."""
    folder = Path(folder)
    with _opened(folder) as cache:
        if cache is None or not _vouches(cache, "clusters", folder / CLUSTERS_CSV):
            return None
        try:
            paths = str(cache["paths"].data, "utf-8").split("\0")  # decoded in place, not copied first
            paths.pop()  # the empty text after the last NUL
            columns = {name: cache[name] for name in _ROW_ARRAYS}
        except _DAMAGED:
            return None
        paths_digest = _digest(cache, "paths_sha256")
    n = len(paths)
    for name, dtype in _ROW_ARRAYS.items():
        shape = (n, 2) if name == "coords" else (n,)
        if columns[name].shape != shape or columns[name].dtype != dtype:
            return None
    return Rows(paths, **columns), paths_digest


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


def read_hierarchy(folder: Path) -> HierarchyPart | None:
    """hierarchy.csv's part of the cache, if it was made from exactly the hierarchy.csv now in the folder;
    else None. Its key is the file's stat key now; its header is the file's first line."""
    path = Path(folder) / HIERARCHY_CSV
    with _opened(folder) as cache:
        if cache is None or not _vouches(cache, "hierarchy", path):
            return None
        try:
            digest = _digest(cache, "hierarchy_sha256")
            paths_digest = _digest(cache, "hierarchy_paths_sha256")
            leaf_of = cache["leaf_of"]
            header = cache["hierarchy_header"].tobytes() if "hierarchy_header" in cache.files else None
        except _DAMAGED:
            return None
    if digest is None or paths_digest is None or leaf_of.dtype != np.int64 or leaf_of.ndim != 1:
        return None
    if header is None:  # a cache from before the header was kept
        with open(path, "rb") as f:
            header = f.readline().rstrip(b"\r\n")
    return HierarchyPart(digest, paths_digest, leaf_of, file_key(path), header)


def read_meta(folder: Path, data: bytes) -> MetaPart | None:
    """session.json's row lists from the cache, if it was made for exactly these session.json bytes."""
    digest = sha256(data)
    with _opened(folder) as cache:
        if cache is None or _digest(cache, "meta_sha256") != digest:
            return None
        try:
            spans = tuple(int(v) for v in cache["meta_spans"].tolist())
            excluded, missing = cache["excluded"], cache["missing"]
        except _DAMAGED:
            return None
    if len(spans) != 4 or not 0 <= spans[0] <= spans[1] <= spans[2] <= spans[3] <= len(data):
        return None
    if (
        excluded.dtype != bool
        or excluded.ndim != 1
        or (missing.dtype, missing.shape) != (bool, excluded.shape)
    ):
        return None
    return MetaPart(digest, spans, excluded, missing)  # type: ignore[arg-type]


def _vouches(cache: np.lib.npyio.NpzFile, part: str, path: Path) -> bool:
    """Whether the file at path is the one the cache's part was made from: by its stat key when the cache
    recorded one and it is trustworthy (see the module docstring), else by the SHA-256 of its bytes."""
    recorded = _stat_key(cache, f"{part}_stat")  # recorded only when not racy (write)
    if recorded is not None and np.array_equal(recorded, file_key(path)):
        return True
    expected = _digest(cache, f"{part}_sha256")
    if expected is None:
        return False
    try:
        return sha256(path.read_bytes()) == expected
    except OSError:
        return False


def _stat_key(cache: np.lib.npyio.NpzFile, key: str) -> np.ndarray | None:
    try:
        stored = cache[key]
    except _DAMAGED:
        return None
    return stored if stored.dtype == np.int64 and stored.shape == (4,) else None


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
