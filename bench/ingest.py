"""Decode + thumbnail throughput: our decode_stream vs the naive Pillow loop, same run, same files.

    .venv/bin/python bench/ingest.py [--large 30] [--small 200] [--data bench/data/ingest]

Generates (once) large JPEGs (12 MP, noise + gradients, quality 90) and small PNGs, then times:
the naive `Image.open().convert("RGB").resize()` loop; decode_stream with 1 and 2 worker threads, with
and without JPEG draft mode; and the same decode in a 2-process pool (to justify threads over processes).
Prints a markdown table with images/s and the ratio to the naive loop.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imgclust_desktop.core import decode as decode_module  # noqa: E402
from imgclust_desktop.core.ingest import decode_file, decode_stream  # noqa: E402
from imgclust_desktop.core.sources import scan  # noqa: E402

MAX_SIDE = 256


def make_picture(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Smooth gradients plus noise: compresses like a photo, not like flat colour."""
    x = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    phase = rng.random(3) * 6.28
    channels = [127 + 90 * np.sin(6 * x * (c + 1) + 4 * y + phase[c]) for c in range(3)]
    pixels = np.stack(channels, axis=-1)
    pixels += rng.normal(0, 18, (height, width, 1)).astype(np.float32)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def generate(folder: Path, count: int, size: tuple[int, int], fmt: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    ext = "jpg" if fmt == "JPEG" else "png"
    paths = [folder / f"img{i:04d}.{ext}" for i in range(count)]
    rng = np.random.default_rng(0)
    for path in paths:
        if not path.exists():
            options = {"quality": 90} if fmt == "JPEG" else {}
            make_picture(rng, *size).save(path, fmt, **options)
    return paths


def naive(paths) -> None:
    for path in paths:
        im = Image.open(path).convert("RGB")
        scale = MAX_SIDE / max(im.size)
        im.resize((round(im.width * scale), round(im.height * scale)))


def ours(files, workers: int, draft: bool) -> None:
    decode_module.JPEG_DRAFT = draft
    try:
        for _index, result in decode_stream(files, max_side=MAX_SIDE, thumb_cache=None, workers=workers):
            assert hasattr(result, "image"), result
    finally:
        decode_module.JPEG_DRAFT = True


def ours_processes(files, workers: int) -> None:
    with ProcessPoolExecutor(workers) as pool:  # start-up counted: a real run pays it too
        for result in pool.map(decode_file, files, [MAX_SIDE] * len(files), chunksize=4):
            assert hasattr(result, "image"), result


def timed(fn, *args) -> tuple[float, float]:
    started, cpu = time.perf_counter(), time.process_time()
    fn(*args)
    return time.perf_counter() - started, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", type=int, default=30, help="number of 12 MP JPEGs")
    parser.add_argument("--small", type=int, default=200, help="number of 640x480 PNGs")
    parser.add_argument("--data", default=str(Path(__file__).parent / "data" / "ingest"))
    args = parser.parse_args()

    data = Path(args.data)
    sets = {
        "large JPEG 4000x3000": generate(data / "large", args.large, (4000, 3000), "JPEG"),
        "small PNG 640x480": generate(data / "small", args.small, (640, 480), "PNG"),
    }
    print(
        f"cores usable: {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()}"
    )
    print("| images | method | workers | images/s | vs naive | CPU ms/image |")
    print("|---|---|---|---|---|---|")
    for name, paths in sets.items():
        files = scan([p.parent for p in paths[:1]]).files
        for path in paths:  # warm the page cache so every method reads from memory
            path.read_bytes()
        draft_label = "on" if "JPEG" in name else "n/a"
        runs = [("naive open/convert/resize", 1, naive, (paths,))]
        for workers in (1, 2):
            runs.append(
                (f"decode_stream threads, draft {draft_label}", workers, ours, (files, workers, True))
            )
            if "JPEG" in name:
                runs.append(("decode_stream threads, draft off", workers, ours, (files, workers, False)))
        runs.append(("decode in a process pool", 2, ours_processes, (files, 2)))
        naive_rate = None
        for label, workers, fn, fn_args in runs:
            wall, cpu = timed(fn, *fn_args)
            rate = len(files) / wall
            naive_rate = naive_rate or rate
            cpu_ms = f"{1000 * cpu / len(files):.0f}" if fn is not ours_processes else "n/a"
            print(
                f"| {name} | {label} | {workers} | {rate:.1f} | {rate / naive_rate:.2f}x | {cpu_ms} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
