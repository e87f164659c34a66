"""`--engine ray` throughput with 1 and 2 model workers on a local Ray instance, and per-image costs.

    .venv/bin/python bench/ray_throughput.py [FOLDER] [--cpus 2] [--workers 1 2] [--repeat 1]

FOLDER defaults to resources/demo (240 real photos). For each worker count: a fresh store, no cache, and
the images/s of the Ray phase (actor start-up included, reported apart). Then, in this process, the
per-image cost of decoding (ingest.decode_file at the model's decode size) and of the model (preprocess +
embed at batch 8 on one CPU thread), the inputs of the README's 10M-image estimate. Print `uptime` with
the numbers: on a shared machine they move with the load.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ingest.py

from imgclust_desktop.core import distributed, sources  # noqa: E402
from imgclust_desktop.core.features import decode_side  # noqa: E402
from imgclust_desktop.core.ingest import decode_file  # noqa: E402
from imgclust_desktop.core.models import registry  # noqa: E402
from imgclust_desktop.core.sources import Skipped  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def ray_rates(folder: Path, cpus: int, workers: list[int]) -> list[tuple[int, float, float, int]]:
    """(workers, seconds of the whole run, images/s over the run, images) per worker count."""
    import ray

    ray.init(num_cpus=cpus, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    rows = []
    try:
        for count in workers:
            with tempfile.TemporaryDirectory() as tmp:
                job = distributed.RayJob(inputs=[str(folder)], workers=count, use_cache=False, shard_size=64)
                started = time.perf_counter()
                run = distributed.extract_to_store(job, Path(tmp) / "store")
                seconds = time.perf_counter() - started
                rows.append((count, seconds, run.files_computed / seconds, run.files_computed))
                print(f"workers={count}: {distributed.describe(run)}", flush=True)
    finally:
        ray.shutdown()
    return rows


def per_image_costs(folder: Path, limit: int = 64) -> tuple[float, float, float]:
    """(decode, model) CPU ms per image on one thread, and the mean file size in KB."""
    import torch

    files = sources.scan([folder]).files[:limit]
    options = distributed.model_options(distributed.RayJob(inputs=[str(folder)]), files)
    extractor = registry.create(
        options["model_id"], device="cpu", layer=options["layer"], input_size=options["input_size"]
    )
    torch.set_num_threads(1)  # CPU times below are then one core's time per image
    started = time.process_time()
    images = [
        r.image for r in (decode_file(f, decode_side(extractor)) for f in files) if not isinstance(r, Skipped)
    ]
    decode_ms = 1000 * (time.process_time() - started) / len(files)
    extractor.embed(extractor.preprocess(images[:8]))  # warm-up
    started = time.process_time()
    for start in range(0, len(images), 8):
        extractor.embed(extractor.preprocess(images[start : start + 8]))
    model_ms = 1000 * (time.process_time() - started) / len(images)
    return decode_ms, model_ms, float(np.mean([f.size for f in files])) / 1024


def photo_decode_ms(count: int = 8) -> tuple[float, float]:
    """(decode CPU ms, file MB) for 12 MP JPEGs like a camera's (bench/ingest.py's picture generator)."""
    from ingest import make_picture

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(count):
            make_picture(rng, 4000, 3000).save(Path(tmp) / f"photo{i}.jpg", quality=90)
        files = sources.scan([tmp]).files
        decode_file(files[0], 224)  # warm-up
        started = time.process_time()  # CPU time: one core's cost, whatever else runs on the machine
        for identity in files:
            decode_file(identity, 224)
        cpu_ms = 1000 * (time.process_time() - started) / len(files)
        return cpu_ms, float(np.mean([f.size for f in files])) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", nargs="?", default=str(ROOT / "resources" / "demo"))
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    folder = Path(args.folder)
    print(f"load before: {os.getloadavg()}", flush=True)
    rows = ray_rates(folder, args.cpus, args.workers)
    decode_ms, model_ms, size_kb = per_image_costs(folder)
    photo_ms, photo_mb = photo_decode_ms()
    print(f"load after: {os.getloadavg()}")
    print("\n| model workers | images | run (s) | images/s |\n|---:|---:|---:|---:|")
    for count, seconds, rate, n in rows:
        print(f"| {count} | {n} | {seconds:.1f} | {rate:.2f} |")
    print(
        f"\nper image: decode {decode_ms:.1f} ms, model {model_ms:.1f} ms CPU time on 1 thread, file {size_kb:.0f} KB"
    )
    print(f"12 MP JPEG: decode to 224 px + thumbnails {photo_ms:.1f} ms CPU time, file {photo_mb:.1f} MB")


if __name__ == "__main__":
    main()
