"""End-to-end feature throughput (decode + model, cache off) vs the model alone on pre-decoded tensors.

    .venv/bin/python bench/features.py [--device auto|cpu|cuda] [--count 300] [--repeats 2]

Generates (once) a folder of 640x480 JPEGs, then times, in the same process:
  model alone: extractor.embed on batches preprocessed beforehand (no decode, no preprocess);
  end to end:  features.compute_features(files, extractor, feature_cache=None, thumb_cache=None),
               which decodes (with thumbnails), preprocesses and embeds with decode overlapped.
Prints both rates and their ratio (the target on CPU is end to end >= 0.85 x model alone). On a GPU
the extractor runs in half precision (bf16/fp16 autocast, chosen by the model registry).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imgclust_desktop.core.decode import decode  # noqa: E402
from imgclust_desktop.core.features import compute_features, decode_side, default_batch_size  # noqa: E402
from imgclust_desktop.core.models import registry  # noqa: E402
from imgclust_desktop.core.sources import scan  # noqa: E402

try:  # run as `python bench/features.py` or as a module
    from ingest import generate  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover
    from bench.ingest import generate  # type: ignore[no-redef]


def model_alone(extractor, tensors) -> tuple[float, float]:
    started, cpu = time.perf_counter(), time.process_time()
    for batch in tensors:
        extractor.embed(batch)
    if str(getattr(extractor, "device", "cpu")).startswith("cuda"):
        import torch

        torch.cuda.synchronize()
    return time.perf_counter() - started, time.process_time() - cpu


def end_to_end(extractor, files, batch_size, workers) -> tuple[float, float]:
    started, cpu = time.perf_counter(), time.process_time()
    result = compute_features(
        files, extractor, feature_cache=None, thumb_cache=None, batch_size=batch_size, workers=workers
    )
    assert result.computed == len(files), (result.computed, result.skipped[:3])
    return time.perf_counter() - started, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=2, help="best of N for each measurement")
    parser.add_argument("--data", default=str(Path(__file__).parent / "data" / "features"))
    args = parser.parse_args()

    paths = generate(Path(args.data), args.count, (640, 480), "JPEG")
    files = scan([str(p) for p in paths]).files  # exactly the images the model-alone runs see
    extractor = registry.create(registry.DEFAULT_MODEL, device=args.device)
    batch_size = args.batch_size or default_batch_size(extractor)
    print(f"model {extractor.id} on {extractor.device}, {len(files)} JPEGs 640x480, batch {batch_size}")

    images = [decode(str(p), max_side=decode_side(extractor)).image for p in paths]
    # the model alone at the default batch and at a small one (end to end shrinks batches on a slow CPU
    # to keep cancel prompt): the faster of the two is the reference, so the ratio is not flattered
    sizes = sorted({batch_size, min(batch_size, 8)})
    batches = {
        size: [extractor.preprocess(images[i : i + size]) for i in range(0, len(images), size)]
        for size in sizes
    }
    model_alone(extractor, batches[sizes[0]][:2])  # warm-up: allocator, cudnn autotune, thread pools

    alone: dict[int, list] = {size: [] for size in sizes}
    e2e = []
    for _ in range(args.repeats):  # interleaved so a busy neighbour hurts every measurement alike
        for size in sizes:
            alone[size].append(model_alone(extractor, batches[size]))
        e2e.append(end_to_end(extractor, files, batch_size, args.workers))
    n = len(files)
    best = lambda runs: max(n / wall for wall, _ in runs)  # noqa: E731
    best_cpu = lambda runs: max(n / cpu for _, cpu in runs)  # noqa: E731
    every = lambda runs: ", ".join(f"{n / wall:.1f}" for wall, _ in runs)  # noqa: E731
    print("| measurement | images/s (best wall) | all runs | images per CPU-second |")
    print("|---|---|---|---|")
    for size in sizes:
        runs = alone[size]
        print(
            f"| model alone, batch {size} (pre-decoded tensors) | {best(runs):.1f} | {every(runs)} | {best_cpu(runs):.1f} |"
        )
    print(
        f"| end to end (decode + preprocess + model) | {best(e2e):.1f} | {every(e2e)} | {best_cpu(e2e):.1f} |"
    )
    reference = max(best(runs) for runs in alone.values())
    reference_cpu = max(best_cpu(runs) for runs in alone.values())
    print(
        f"ratio end-to-end / model-alone: {best(e2e) / reference:.2f} by wall time, "
        f"{best_cpu(e2e) / reference_cpu:.2f} by CPU time (target >= 0.85 on CPU)"
    )


if __name__ == "__main__":
    main()
