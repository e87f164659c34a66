"""The sqlite caches with 1M rows: insert in batches, then batched lookups of a screenful (48 keys).

    .venv/bin/python bench/cache_scale.py [--rows 1000000] [--bytes 64] [--dir DIR]

Rows carry --bytes of payload (thumbnail JPEGs are ~3-8 KiB; the index cost does not depend on it).
Checks that the caches run in WAL mode and that a lookup uses the primary-key index (EXPLAIN QUERY PLAN).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imgclust_desktop.core.cache import FeatureCache, ThumbnailCache  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--bytes", type=int, default=64)
    parser.add_argument("--dir", type=Path)
    args = parser.parse_args(argv)
    root = args.dir or Path(tempfile.mkdtemp(prefix="cache-scale-"))
    thumbs, feats = ThumbnailCache(root), FeatureCache(root)
    keys = [f"{i:032x}" for i in range(args.rows)]
    payload = bytes(args.bytes)
    clock = time.perf_counter()
    for start in range(0, args.rows, 10_000):
        thumbs.put_many((k, {128: payload}) for k in keys[start : start + 10_000])
    insert_t = time.perf_counter() - clock
    vectors = np.zeros((10_000, max(1, args.bytes // 4)), np.float32)
    clock = time.perf_counter()
    for start in range(0, args.rows, 10_000):
        feats.put_many(keys[start : start + 10_000], "m", vectors[: len(keys[start : start + 10_000])])
    insert_f = time.perf_counter() - clock
    rng = np.random.default_rng(0)
    times_t, times_f = [], []
    for _ in range(200):
        batch = [keys[i] for i in rng.choice(args.rows, 48, replace=False)]
        clock = time.perf_counter()
        assert len(thumbs.get_many(batch, 128)) == 48
        times_t.append(time.perf_counter() - clock)
        clock = time.perf_counter()
        assert len(feats.get_many(batch, "m")) == 48
        times_f.append(time.perf_counter() - clock)
    mode = thumbs._db.query("PRAGMA journal_mode")[0][0]
    plan = thumbs._db.query(
        "EXPLAIN QUERY PLAN SELECT key, jpeg FROM thumbnails WHERE size = ? AND key IN (?)", (128, keys[0])
    )
    print(f"{args.rows:,} rows of {args.bytes} bytes, journal_mode={mode}, plan: {plan[0][-1]}")
    print(f"insert (batches of 10,000): thumbnails {insert_t:.1f} s, features {insert_f:.1f} s")
    print(
        f"get_many of 48 random keys, median of 200: thumbnails {np.median(times_t) * 1e3:.2f} ms, "
        f"features {np.median(times_f) * 1e3:.2f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
