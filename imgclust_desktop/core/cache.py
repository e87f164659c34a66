"""On-disk caches for thumbnails and features: sqlite files keyed by FileIdentity.key().

A key already encodes (path, size, mtime_ns), so a changed file simply misses. The cache is an
accelerator, never a requirement: a cache folder that cannot be written, or a damaged database, falls
back to a fresh file or to memory, and the run goes on.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)
_CHUNK = 500  # keys per IN (...) query, below sqlite's variable limit


def default_cache_dir() -> Path:
    """platformdirs user cache dir / "imgclust-desktop"; the IMGCLUST_CACHE_DIR env variable overrides."""
    override = os.environ.get("IMGCLUST_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("imgclust-desktop", appauthor=False))


class _Database:
    """One sqlite file shared by threads behind a lock; opened on first use."""

    def __init__(self, path: Path, schema: str) -> None:
        self.path, self.schema = path, schema
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._connection is not None:
            return self._connection
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._connection = self._open(str(self.path))
        except sqlite3.DatabaseError as error:
            log.warning("cache %s is damaged (%s); starting a new one", self.path, error)
            self._set_aside()
            try:
                self._connection = self._open(str(self.path))
            except (sqlite3.Error, OSError):
                self._connection = self._open(":memory:")
        except (sqlite3.Error, OSError) as error:
            log.warning("cache %s cannot be used (%s); caching in memory for this run", self.path, error)
            self._connection = self._open(":memory:")
        return self._connection

    def _open(self, target: str) -> sqlite3.Connection:
        connection = sqlite3.connect(target, timeout=10.0, check_same_thread=False)
        try:
            # WAL lets the GUI and a CLI run read while the other writes
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.executescript(self.schema)
        except sqlite3.Error:
            connection.close()
            raise
        return connection

    def _set_aside(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            damaged = Path(str(self.path) + suffix)
            if damaged.exists():
                try:
                    damaged.replace(Path(str(self.path) + ".damaged" + suffix))
                except OSError:
                    pass

    def query(self, sql: str, params: Sequence = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._connect().execute(sql, params).fetchall()
            except sqlite3.Error as error:
                log.warning("cache read failed (%s): treated as a miss", error)
                return []

    def write(self, sql: str, rows: Iterable[tuple]) -> None:
        with self._lock:
            connection = self._connect()
            try:
                with connection:
                    connection.executemany(sql, rows)
            except sqlite3.Error as error:
                log.warning("cache write failed (%s): results are not cached", error)

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


class WriteBehind:
    """Runs cache writes in one background thread, in the order given, so the caller does not wait on the
    disk (sqlite releases the GIL while it writes). At most `ahead` calls wait; close() waits for all."""

    def __init__(self, write: Callable[..., None], *, ahead: int = 8) -> None:
        self.write, self.ahead = write, max(1, ahead)
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="imgclust-cache-writer")
        self.queued: deque[Future] = deque()

    def call(self, *args: object) -> None:
        while len(self.queued) >= self.ahead:
            self.queued.popleft().result()
        self.queued.append(self.pool.submit(self.write, *args))
        while self.queued and self.queued[0].done():
            self.queued.popleft().result()

    def close(self) -> None:
        """Wait until everything handed over is written."""
        self.pool.shutdown(wait=True)
        while self.queued:
            self.queued.popleft().result()


def _chunks(keys: Sequence[str]) -> Iterator[list[str]]:
    keys = list(dict.fromkeys(keys))
    for start in range(0, len(keys), _CHUNK):
        yield keys[start : start + _CHUNK]


# Both tables are ordinary rowid tables with a primary-key index. WITHOUT ROWID put a whole row in the key's
# b-tree, where a row over ~1,000 bytes (a 28 px thumbnail with its key, a 1280-wide feature row) spills
# into overflow pages: 3.7 KB per 1 KB thumbnail and 8.8 KB per 5 KB feature row, against 1.4 and 5.6 KB
# here (20k thumbnails, 10k rows), and half the write time. A cache made before keeps its layout and works.


class ThumbnailCache:
    """JPEG thumbnails per (file key, long-edge size)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self._db = _Database(
            self.root / "thumbnails.sqlite3",
            "CREATE TABLE IF NOT EXISTS thumbnails (key TEXT NOT NULL, size INTEGER NOT NULL, "
            "jpeg BLOB NOT NULL, PRIMARY KEY (key, size));",
        )

    def get(self, key: str, size: int) -> bytes | None:
        """JPEG bytes of one thumbnail, or None."""
        rows = self._db.query("SELECT jpeg FROM thumbnails WHERE key = ? AND size = ?", (key, size))
        return bytes(rows[0][0]) if rows else None

    def get_many(self, keys: Sequence[str], size: int) -> dict[str, bytes]:
        """Thumbnails that exist, by key."""
        found: dict[str, bytes] = {}
        for chunk in _chunks(keys):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT key, jpeg FROM thumbnails WHERE size = ? AND key IN ({marks})"
            found.update((key, bytes(jpeg)) for key, jpeg in self._db.query(sql, (size, *chunk)))
        return found

    def put_many(self, items: Iterable[tuple[str, dict[int, bytes]]]) -> None:
        """Store thumbnails: (key, {size: jpeg bytes}) pairs."""
        rows = [(key, int(size), jpeg) for key, by_size in items for size, jpeg in by_size.items()]
        if rows:
            self._db.write("INSERT OR REPLACE INTO thumbnails (key, size, jpeg) VALUES (?, ?, ?)", rows)

    def has_all(self, keys: Sequence[str], size: int) -> set[str]:
        """The keys whose thumbnail of this size is present."""
        present: set[str] = set()
        for chunk in _chunks(keys):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT key FROM thumbnails WHERE size = ? AND key IN ({marks})"
            present.update(key for (key,) in self._db.query(sql, (size, *chunk)))
        return present

    def close(self) -> None:
        self._db.close()


class FeatureCache:
    """float32 feature vectors per (file key, extractor cache_key)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self._db = _Database(
            self.root / "features.sqlite3",
            "CREATE TABLE IF NOT EXISTS features (model TEXT NOT NULL, key TEXT NOT NULL, "
            "vector BLOB NOT NULL, PRIMARY KEY (model, key));",
        )

    def get_many(self, keys: Sequence[str], model_key: str) -> dict[str, np.ndarray]:
        """Cached vectors by key (float32, one length per model_key)."""
        found: dict[str, np.ndarray] = {}
        for chunk in _chunks(keys):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT key, vector FROM features WHERE model = ? AND key IN ({marks})"
            for key, blob in self._db.query(sql, (model_key, *chunk)):
                if len(blob) % 4 == 0 and blob:
                    found[key] = np.frombuffer(blob, dtype="<f4").astype(np.float32)
        lengths = {len(v) for v in found.values()}
        if len(lengths) > 1:
            # an old model version wrote another width under the same name: trust only the majority
            common = max(lengths, key=lambda n: sum(len(v) == n for v in found.values()))
            found = {k: v for k, v in found.items() if len(v) == common}
        return found

    def put_many(self, keys: Sequence[str], model_key: str, features: np.ndarray) -> None:
        """Store one row of `features` per key."""
        features = np.asarray(features, dtype="<f4")
        if len(keys) != len(features):
            raise ValueError(f"{len(keys)} keys for {len(features)} feature rows")
        rows = [(model_key, key, features[i].tobytes()) for i, key in enumerate(keys)]
        if rows:
            self._db.write("INSERT OR REPLACE INTO features (model, key, vector) VALUES (?, ?, ?)", rows)

    def close(self) -> None:
        self._db.close()
