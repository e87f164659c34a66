"""`imgclust features --engine ray` and `imgclust cluster --engine ray`: extraction on a Ray cluster.

`register(subparsers)` adds the `features` subcommand and the engine options of `cluster`; `COMMANDS`
maps `features` to its function; `fill_cache_for` is what `cluster --engine ray` runs before the local
pipeline, which then finds every feature row and thumbnail in the cache.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ENGINES = ("local", "ray")


def register(subparsers, **parser_options) -> None:
    """Add `features` and the `--engine` options of `cluster` (call after `cluster` exists)."""
    parser_options = {k: v for k, v in parser_options.items() if k != "epilog"}  # its examples are cluster's
    cluster = subparsers.choices.get("cluster")
    if cluster is not None:
        _engine_options(cluster, default="local")
    features = subparsers.add_parser(
        "features",
        help="extract features on a Ray cluster into a feature store (features.npy + paths.txt)",
        description="Scan INPUT (folders every Ray node sees at the same path, or s3://... URLs), decode "
        "and embed every image as a Ray Data job, and write a feature store folder: features.npy, "
        "paths.txt, keys.txt, skipped.csv, store.json and shards/. Run it again after an interruption: "
        "finished shards are kept. Open the store with `imgclust cluster --features STORE --out SESSION`.",
        **parser_options,
    )
    add = features.add_argument
    add("inputs", nargs="+", metavar="INPUT", help="folders, image files or object-store URLs (s3://...)")
    add("--out", required=True, metavar="STORE", help="feature store folder to write (or to resume)")
    add("--model", metavar="ID", help="feature extractor, see `imgclust models` (default efficientnet-lite0)")
    add("--weights", metavar="FILE", help="local weights file for the model (same path on every node)")
    add("--layer", help="network layer to take features from (CNN models)")
    add("--input-size", type=_positive_int, metavar="PX", help="network input side in pixels")
    add("--include", action="append", default=[], metavar="GLOB", help="only files matching (repeatable)")
    add("--exclude", action="append", default=[], metavar="GLOB", help="skip files matching (repeatable)")
    add("--cache-dir", metavar="DIR", help="local feature/thumbnail cache that also receives the rows")
    add("--no-cache", action="store_true", help="neither read nor write the local caches")
    _engine_options(features, default="ray")


def _engine_options(parser: argparse.ArgumentParser, default: str) -> None:
    add = parser.add_argument
    choices = ENGINES if default == "local" else ("ray",)
    add("--engine", default=default, choices=choices, help="where features are computed")
    add("--ray-address", metavar="ADDR", help="Ray cluster (host:6379, ray://host:10001, auto)")
    add("--ray-workers", type=_positive_int, metavar="N", help="model actors (one per GPU, or CPUs/2)")
    add("--ray-device", default="auto", choices=("auto", "cpu", "cuda"), help="device of the model actors")
    add("--ray-batch-size", type=_positive_int, metavar="N", help="images per model call (64 GPU, 8 CPU)")
    add("--shard-size", type=_positive_int, default=1000, metavar="N", help="images per resumable shard")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def _job(args, inputs: list[str]):
    from imgclust_desktop.core.distributed import RayJob
    from imgclust_desktop.core.models.registry import DEFAULT_MODEL

    return RayJob(
        inputs=inputs,
        model_id=args.model or DEFAULT_MODEL,
        weights_path=args.weights,
        layer=args.layer,
        input_size=args.input_size,
        include=list(args.include),
        exclude=list(args.exclude),
        device=args.ray_device,
        workers=args.ray_workers,
        batch_size=args.ray_batch_size,
        shard_size=args.shard_size,
        address=args.ray_address,
        cache_dir=args.cache_dir,
        use_cache=not args.no_cache,
    )


def _inputs(raw: list[str]) -> list[str]:
    from imgclust_desktop.core.remote import is_url

    return [p if is_url(p) else os.path.abspath(os.path.expanduser(p)) for p in raw]


def cmd_features(args, progress, cancelled) -> int:
    from imgclust_desktop.cli_common import BadArguments
    from imgclust_desktop.core import distributed
    from imgclust_desktop.core.feature_store import StoreError
    from imgclust_desktop.core.models.registry import get_info

    try:
        get_info(args.model or "efficientnet-lite0")
    except ValueError as exc:
        raise BadArguments(str(exc)) from None
    job = _job(args, _inputs(args.inputs))
    try:
        run = distributed.extract_to_store(
            job, Path(args.out).expanduser(), on_progress=progress, cancelled=cancelled
        )
    except StoreError as exc:
        raise BadArguments(str(exc)) from None
    progress.close()
    print(distributed.describe(run))
    skipped = run.meta["counts"].get("skipped", 0)
    if skipped:
        print(f"  {skipped} files skipped, with reasons, in {Path(args.out) / 'skipped.csv'}")
    print(
        f"feature store written to {args.out} (cluster it with: imgclust cluster --features {args.out} --out SESSION)"
    )
    return 0


def fill_cache_for(request, args, progress, cancelled) -> None:
    """`cluster --engine ray`: compute the rows the local run needs on Ray, into the local caches."""
    from imgclust_desktop.cli_common import BadArguments
    from imgclust_desktop.core import distributed
    from imgclust_desktop.core.remote import is_url

    if not request.use_cache:
        raise BadArguments(
            "--engine ray hands its rows to the local clustering through the cache: drop --no-cache"
        )
    urls = [p for p in args.inputs if is_url(p)]
    if urls:
        raise BadArguments(
            f"cluster reads its inputs on this machine, which cannot open {urls[0]}: run `imgclust features "
            "--engine ray` into a store, then `imgclust cluster --features STORE`"
        )
    job = _job(args, list(request.inputs))
    job.model_id, job.weights_path, job.cache_dir = request.model_id, request.weights_path, request.cache_dir
    run = distributed.fill_cache(job, on_progress=progress, cancelled=cancelled)
    progress.close()
    print(f"ray: {distributed.describe(run)}", file=sys.stderr)


COMMANDS = {"features": cmd_features}
