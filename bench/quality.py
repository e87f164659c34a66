"""Clustering quality end to end from image files: ACC / NMI / ARI against the class folders.

Usage: python bench/quality.py DATA_ROOT [--datasets digits fashion-mnist many-groups digits-0-1 ...]
                               [--methods tree hdbscan] [--input-size N] [--layer NAME] [--out quality.md]
DATA_ROOT is written by bench/datasets.py DATA_ROOT (DATA_ROOT/<dataset>/<class>/<n>.png).
Each row is one full pipeline run (scan, features with the default model, reduce, map, cluster, analyse)
with automatic k and no cache, so the seconds are what a person waits for on this machine. "true" is the
number of class folders; "levels" lists the cluster tree's stored levels (the default one starred).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from datasets import QUALITY_SETS  # bench/datasets.py, beside this script: the sets it writes by default

from imgclust_desktop.core.cluster import ClusterParams
from imgclust_desktop.core.evaluate import evaluate, truth_from_paths
from imgclust_desktop.core.pipeline import PipelineRequest, run

HEADER = (
    "| dataset | method | ACC | NMI | ARI | clusters found | true | levels | noise | seconds |\n"
    "|---|---|---|---|---|---|---|---|---|---|"
)


def bench_one(folder: Path, method: str, args: argparse.Namespace) -> str:
    """One pipeline run on one labelled folder; returns its markdown row."""
    with tempfile.TemporaryDirectory() as cache:
        request = PipelineRequest(
            inputs=[str(folder)],
            cluster=ClusterParams(method=method),
            cache_dir=cache,
            use_cache=False,
            input_size=args.input_size,
            layer=args.layer,
            seed=args.seed,
        )
        start = time.perf_counter()
        session = run(request)
        seconds = time.perf_counter() - start
    truth = truth_from_paths(session.paths)
    scores = evaluate(session.labels, truth)
    levels = "-"
    if session.tree is not None:
        levels = " ".join(f"{k}{'*' if k == session.level else ''}" for k in session.tree.levels)
    label = (
        method
        + (f" @{args.input_size}px" if args.input_size else "")
        + (f" {args.layer}" if args.layer else "")
    )
    stages = ", ".join(f"{k} {v:.1f}" for k, v in session.timings.items() if isinstance(v, float))
    print(f"{folder.name} {label}: {stages}", file=sys.stderr)
    return (
        f"| {folder.name} | {label} | {scores['acc']:.3f} | {scores['nmi']:.3f} | {scores['ari']:.3f} "
        f"| {scores['n_clusters']} | {len(set(truth))} | {levels} | {scores['noise_fraction']:.3f} | {seconds:.1f} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("root", type=Path)
    parser.add_argument(
        "--datasets",
        nargs="+",
        default=list(QUALITY_SETS),
        help="folders under root (default: the three quality sets and the two-group folders of bench/datasets.py)",
    )
    parser.add_argument("--methods", nargs="+", default=["tree"])
    parser.add_argument(
        "--input-size", type=int, default=None, help="network input side (default: pipeline rule)"
    )
    parser.add_argument("--layer", default=None, help="feature layer (default: the model's pooled output)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="append the table to this markdown file")
    args = parser.parse_args(argv)
    rows = [HEADER]
    for name in args.datasets:
        folder = args.root / name
        if not folder.is_dir():
            print(
                f"skipping {name}: {folder} not found (run bench/datasets.py {args.root} {name})",
                file=sys.stderr,
            )
            continue
        for method in args.methods:
            rows.append(bench_one(folder, method, args))
            print(rows[-1], flush=True)
    table = "\n".join(rows) + "\n"
    if args.out:
        with args.out.open("a") as f:
            f.write(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
