"""A feature store: the folder `imgclust features` writes, and `imgclust cluster --features STORE` opens.

```
STORE/
  store.json     model id, layer, input size, feature_cache_key, dim, inputs, counts, timings, complete
  features.npy   float32 [n, dim], no pickle; row i belongs to line i of paths.txt
  paths.txt      one absolute path (or object-store URL) per line, in scan order
  keys.txt       the FileIdentity.key() of each row: the feature-cache key a local run uses
  skipped.csv    path,reason for every file left out (scan and decode), the same reasons as a local run
  shards/        <id>.npy + <id>.json per shard of the file list: what a resumed run keeps
```

Why npy shards rather than parquet: `features.npy` is the same float32 matrix a session folder holds, so
opening a store needs numpy only (the window and the default install carry no pyarrow), it can be memory
mapped, and a consolidated 10M x 1280 matrix is one file the next stage reads sequentially.

A shard is a slice of the sorted file list; its id is a digest of its files' cache keys and of the
extractor's cache key, so a shard written for other files, changed files or another model never matches.
A shard's `.json` is written after its `.npy`, each through a rename, so a shard whose `.json` exists is
complete: a killed run leaves only whole shards behind and the next run computes the rest.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .sources import FileIdentity, Skipped

FORMAT = "imgclust-feature-store"
VERSION = 1
STORE_JSON = "store.json"
FEATURES = "features.npy"
PATHS = "paths.txt"
KEYS = "keys.txt"
SKIPPED = "skipped.csv"
SHARDS = "shards"
DEFAULT_SHARD_SIZE = 1000


class StoreError(Exception):
    """A folder that is not a (complete) feature store, or one made for other settings; str(e) says why."""


@dataclass(frozen=True)
class Shard:
    id: str
    files: tuple[FileIdentity, ...]


@dataclass
class ShardRows:
    """What one shard produced: rows for the files that decoded, reasons for the ones that did not."""

    paths: list[str]
    keys: list[str]
    features: np.ndarray  # float32 [len(paths), dim]
    skipped: list[Skipped] = field(default_factory=list)


@dataclass
class FeatureStore:
    folder: Path
    features: np.ndarray  # float32 [n, dim] (memory-mapped when opened with mmap=True)
    paths: list[str]
    keys: list[str]
    skipped: list[Skipped]
    meta: dict


def plan_shards(files: Sequence[FileIdentity], cache_key: str, shard_size: int) -> list[Shard]:
    """Consecutive slices of `files`, each named by a digest of its files' identities and the model."""
    if shard_size < 1:
        raise ValueError(f"shard size must be positive, not {shard_size}")
    shards = []
    for start in range(0, len(files), shard_size):
        part = tuple(files[start : start + shard_size])
        digest = hashlib.blake2b(cache_key.encode("utf-8"), digest_size=10)
        for identity in part:
            digest.update(identity.key().encode("ascii"))
        shards.append(Shard(f"{start // shard_size:06d}-{digest.hexdigest()}", part))
    return shards


def shard_done(store: Path, shard: Shard) -> bool:
    """True when the shard's rows are on disk in full (its .json, written last, exists)."""
    return (Path(store) / SHARDS / f"{shard.id}.json").is_file() and (
        Path(store) / SHARDS / f"{shard.id}.npy"
    ).is_file()


def write_shard(store: Path, shard: Shard, rows: ShardRows) -> None:
    """Write one shard's rows (npy first, then the json that marks it complete)."""
    folder = Path(store) / SHARDS
    folder.mkdir(parents=True, exist_ok=True)
    features = np.ascontiguousarray(rows.features, dtype=np.float32)
    if len(features) != len(rows.paths):
        raise ValueError(f"{len(rows.paths)} paths for {len(features)} feature rows")
    _atomic(folder / f"{shard.id}.npy", lambda f: np.save(f, features, allow_pickle=False))
    meta = {
        "paths": rows.paths,
        "keys": rows.keys,
        "skipped": [[s.path, s.reason] for s in rows.skipped],
        "rows": len(rows.paths),
        "dim": int(features.shape[1]) if features.ndim == 2 else 0,
    }
    _atomic(folder / f"{shard.id}.json", lambda f: f.write(json.dumps(meta).encode("utf-8")))


def read_shard(store: Path, shard: Shard) -> ShardRows:
    """The rows of a complete shard; StoreError when its files disagree with each other."""
    folder = Path(store) / SHARDS
    try:
        meta = json.loads((folder / f"{shard.id}.json").read_text("utf-8"))
        features = np.load(folder / f"{shard.id}.npy", allow_pickle=False)
    except (OSError, ValueError) as error:
        raise StoreError(f"shard {shard.id} cannot be read: {error}") from None
    if features.ndim != 2 or len(features) != len(meta["paths"]):
        raise StoreError(f"shard {shard.id} holds {features.shape} rows for {len(meta['paths'])} paths")
    skipped = [Skipped(str(p), str(r)) for p, r in meta.get("skipped", [])]
    return ShardRows(
        list(meta["paths"]), list(meta["keys"]), features.astype(np.float32, copy=False), skipped
    )


def begin(store: Path, meta: dict) -> None:
    """Create or reopen a store folder for `meta` (feature_cache_key must match a store already there)."""
    store = Path(store)
    if store.exists() and not store.is_dir():
        raise StoreError(f"{store} exists and is not a folder")
    old = store / STORE_JSON
    if old.is_file():
        previous = _read_json(old)
        if previous.get("feature_cache_key") != meta.get("feature_cache_key"):
            raise StoreError(
                f"{store} holds features of {previous.get('feature_cache_key')}, not "
                f"{meta.get('feature_cache_key')}: choose another folder"
            )
    elif store.is_dir() and any(p.name != SHARDS for p in store.iterdir()):
        raise StoreError(f"{store} is not empty and not a feature store: choose a new or empty folder")
    store.mkdir(parents=True, exist_ok=True)
    write_meta(store, {**meta, "complete": False})


def consolidate(store: Path, shards: Sequence[Shard], scan_skipped: Sequence[Skipped], meta: dict) -> dict:
    """Join every shard into features.npy / paths.txt / keys.txt / skipped.csv and mark the store complete."""
    store = Path(store)
    shard_rows = [read_shard(store, shard) for shard in shards]
    dim = int(meta["dim"])
    n = sum(len(rows.paths) for rows in shard_rows)
    part = store / (FEATURES + ".part")
    matrix = np.lib.format.open_memmap(part, mode="w+", dtype=np.float32, shape=(n, dim))
    start = 0
    for rows in shard_rows:
        if len(rows.paths) and rows.features.shape[1] != dim:
            raise StoreError(f"a shard holds {rows.features.shape[1]}-d rows, the store {dim}-d")
        matrix[start : start + len(rows.paths)] = rows.features
        start += len(rows.paths)
    matrix.flush()
    del matrix
    os.replace(part, store / FEATURES)
    paths = [p for rows in shard_rows for p in rows.paths]
    keys = [k for rows in shard_rows for k in rows.keys]
    skipped = sorted([*scan_skipped, *(s for rows in shard_rows for s in rows.skipped)], key=lambda s: s.path)
    _atomic(store / PATHS, lambda f: f.write("".join(p + "\n" for p in paths).encode("utf-8")))
    _atomic(store / KEYS, lambda f: f.write("".join(k + "\n" for k in keys).encode("ascii")))
    _atomic(store / SKIPPED, lambda f: f.write(_skipped_csv(skipped).encode("utf-8")))
    planned = {shard.id for shard in shards}
    for leftover in (store / SHARDS).glob("*"):  # shards of files that are gone or changed since
        if leftover.name.split(".", 1)[0] not in planned:
            leftover.unlink(missing_ok=True)
    counts = {**meta.get("counts", {}), "rows": n, "skipped": len(skipped), "shards": len(shards)}
    final = {**meta, "counts": counts, "complete": True}
    write_meta(store, final)
    return final


def open_store(folder: Path, *, mmap: bool = False) -> FeatureStore:
    """Read a complete store; StoreError saying what is missing otherwise."""
    folder = Path(folder)
    if not (folder / STORE_JSON).is_file():
        raise StoreError(f"{folder} is not a feature store (no {STORE_JSON})")
    meta = _read_json(folder / STORE_JSON)
    if meta.get("format") != FORMAT:
        raise StoreError(f"{folder / STORE_JSON} is not an imgclust feature store")
    if not meta.get("complete"):
        raise StoreError(
            f"{folder} is incomplete (a run was stopped): run `imgclust features` again to finish it"
        )
    features = np.load(folder / FEATURES, allow_pickle=False, mmap_mode="r" if mmap else None)
    paths = _lines(folder / PATHS)
    keys = _lines(folder / KEYS)
    if features.ndim != 2 or len(features) != len(paths) or len(keys) != len(paths):
        raise StoreError(f"{folder}: {features.shape} features for {len(paths)} paths and {len(keys)} keys")
    with open(folder / SKIPPED, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))[1:]
    skipped = [Skipped(path, reason) for path, reason in rows]
    return FeatureStore(folder, features, paths, keys, skipped, meta)


def write_meta(store: Path, meta: dict) -> None:
    """store.json, written through a rename."""
    text = json.dumps({"format": FORMAT, "version": VERSION, **meta}, indent=1)
    _atomic(Path(store) / STORE_JSON, lambda f: f.write(text.encode("utf-8")))


def _skipped_csv(skipped: Sequence[Skipped]) -> str:
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["path", "reason"])
    writer.writerows([s.path, s.reason] for s in skipped)
    return out.getvalue()


def _lines(path: Path) -> list[str]:
    text = path.read_text("utf-8")
    return text.split("\n")[:-1] if text else []


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as error:
        raise StoreError(f"{path} cannot be read: {error}") from None


def _atomic(target: Path, write) -> None:
    part = target.with_name(target.name + ".part")
    with open(part, "wb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(part, target)
