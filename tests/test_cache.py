"""The on-disk caches: what is stored comes back in a later process-like reopen, damage is survived."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from imgclust_desktop.core.cache import FeatureCache, ThumbnailCache, default_cache_dir
from imgclust_desktop.core.sources import FileIdentity


def keys(n: int) -> list[str]:
    return [FileIdentity(f"/photos/{i}.jpg", 1000 + i, 10**18 + i).key() for i in range(n)]


def test_thumbnails_round_trip_and_survive_reopening(tmp_path):
    cache = ThumbnailCache(tmp_path)
    ks = keys(700)  # more than one IN (...) chunk
    cache.put_many((k, {128: f"small {k}".encode(), 256: f"large {k}".encode()}) for k in ks[:600])
    cache.close()
    reopened = ThumbnailCache(tmp_path)
    assert reopened.get(ks[0], 128) == f"small {ks[0]}".encode()
    assert reopened.get(ks[0], 64) is None and reopened.get(ks[650], 128) is None
    assert reopened.has_all(ks, 256) == set(ks[:600])
    many = reopened.get_many(ks[590:610], 256)
    assert set(many) == set(ks[590:600]) and many[ks[595]] == f"large {ks[595]}".encode()


def test_features_are_kept_per_model(tmp_path):
    cache = FeatureCache(tmp_path)
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((5, 16)).astype(np.float32)
    ks = keys(5)
    cache.put_many(ks, "tiny@224", vectors)
    cache.put_many(ks[:2], "other@224", np.ones((2, 4), np.float32))
    got = FeatureCache(tmp_path).get_many(ks + ["missing"], "tiny@224")
    assert set(got) == set(ks)
    assert np.array_equal(np.stack([got[k] for k in ks]), vectors) and got[ks[0]].dtype == np.float32
    assert set(cache.get_many(ks, "other@224")) == set(ks[:2])
    assert cache.get_many(ks, "never-used") == {}


def test_cache_dir_follows_the_environment_override(tmp_path, monkeypatch):
    monkeypatch.setenv("IMGCLUST_CACHE_DIR", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"
    ThumbnailCache().put_many([("k", {128: b"x"})])
    assert (tmp_path / "mine" / "thumbnails.sqlite3").exists()
    monkeypatch.delenv("IMGCLUST_CACHE_DIR")
    assert default_cache_dir().name == "imgclust-desktop"


def test_damaged_database_is_set_aside_and_replaced(tmp_path):
    (tmp_path / "features.sqlite3").write_bytes(b"this is not a database" * 100)
    cache = FeatureCache(tmp_path)
    assert cache.get_many(keys(2), "m") == {}
    cache.put_many(keys(2), "m", np.zeros((2, 3), np.float32))
    assert len(FeatureCache(tmp_path).get_many(keys(2), "m")) == 2
    assert (tmp_path / "features.sqlite3.damaged").exists()


def test_unusable_cache_folder_falls_back_to_memory(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    cache = ThumbnailCache(Path(blocker) / "cache")
    cache.put_many([("k", {128: b"jpeg"})])
    assert cache.get("k", 128) == b"jpeg"


def test_concurrent_writers_share_one_cache(tmp_path):
    cache = ThumbnailCache(tmp_path)
    ks = keys(200)

    def write(part):
        for k in part:
            cache.put_many([(k, {128: k.encode()})])

    threads = [threading.Thread(target=write, args=(ks[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.has_all(ks, 128) == set(ks)


def test_thumbnails_take_a_page_less_per_row_and_a_cache_in_the_old_layout_still_works(tmp_path):
    import os
    import sqlite3

    rng = np.random.default_rng(1)
    ks = keys(3000)
    jpeg = [rng.integers(0, 256, 1000, dtype=np.uint8).tobytes() for _ in ks]  # a 28 px thumbnail's size
    fresh = ThumbnailCache(tmp_path / "new")
    fresh.put_many((k, {128: j}) for k, j in zip(ks, jpeg, strict=True))
    fresh.close()
    per_row = os.path.getsize(tmp_path / "new" / "thumbnails.sqlite3") / len(ks)
    assert per_row < 2000  # whole rows on their pages; WITHOUT ROWID spilled each into a 4 KB overflow page

    old = tmp_path / "old"
    old.mkdir()
    db = sqlite3.connect(old / "thumbnails.sqlite3")
    db.execute(
        "CREATE TABLE thumbnails (key TEXT NOT NULL, size INTEGER NOT NULL, jpeg BLOB NOT NULL, "
        "PRIMARY KEY (key, size)) WITHOUT ROWID"
    )
    db.execute("INSERT INTO thumbnails VALUES (?, ?, ?)", (ks[0], 128, b"from an old cache"))
    db.commit()
    db.close()
    reused = ThumbnailCache(old)
    reused.put_many([(ks[1], {128: b"new"})])
    assert reused.get_many(ks[:2], 128) == {ks[0]: b"from an old cache", ks[1]: b"new"}
