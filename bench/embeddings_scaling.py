"""`imgclust cluster --features` on synthetic embeddings: wall time, peak RSS, per-stage seconds, ARI.

Usage: python bench/embeddings_scaling.py [--sizes 100000 1000000] [--dims 64 1280] [--components 100]
                                          [--work DIR] [--timeout S] [--out embeddings.md] [-- CLI OPTIONS]

Each (size, dim) writes DIR/mix-<n>x<d>/features.npy (float32, written in chunks through a memory map, so
1M x 1280 never sits in RAM here) and paths.txt (paths that do not exist: every row is kept and flagged
missing, which is the bring-your-own-embeddings case for an archive on a disconnected drive). The data is a
Gaussian mixture with --components equal-weight components (unit-variance noise around centres drawn with
spread 3; separable, like class clusters of deep features). One cold `imgclust cluster --features DIR --out
SESSION --quiet` runs per case; its wall seconds and peak RSS come from os.wait4 (bench/measure.py), the
stages from session.json timings ("save" = wall minus the pipeline total), ARI and the cluster count from the
saved clusters.csv against the mixture labels. Arguments after `--` go to the CLI (e.g. `-- --k 100`).
Growth exponents between consecutive sizes are printed per stage.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
from measure import run_measured, tail

STAGES = ("load", "reduce", "neighbours", "embed", "cluster", "analyse", "save")
CHUNK = 50_000


def write_mixture(folder: Path, n: int, dim: int, components: int, seed: int = 0) -> np.ndarray:
    """features.npy + paths.txt + labels.npy under folder (kept when already there); returns the labels."""
    folder.mkdir(parents=True, exist_ok=True)
    labels_file = folder / "labels.npy"
    if labels_file.exists() and (folder / "paths.txt").exists():
        return np.load(labels_file)
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (components, dim)).astype(np.float32)
    labels = rng.integers(0, components, n)
    features = np.lib.format.open_memmap(folder / "features.npy", mode="w+", dtype=np.float32, shape=(n, dim))
    for start in range(0, n, CHUNK):
        part = labels[start : start + CHUNK]
        noise = rng.normal(0, 1, (len(part), dim)).astype(np.float32)
        features[start : start + len(part)] = centres[part] + noise
    features.flush()
    del features
    with open(folder / "paths.txt", "w", encoding="utf-8") as f:
        for i in range(n):
            f.write(f"/archive/offline/c{labels[i]:03d}/img{i:07d}.png\n")
    np.save(labels_file, labels)
    return labels


def adjusted_rand(session: Path, truth: np.ndarray) -> tuple[float, int]:
    from sklearn.metrics import adjusted_rand_score

    with open(session / "clusters.csv", newline="", encoding="utf-8") as f:
        labels = np.array([int(row["cluster"]) for row in csv.DictReader(f)])
    return float(adjusted_rand_score(truth, labels)), int(len(np.unique(labels[labels >= 0])))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--dims", type=int, nargs="+", default=[64, 1280])
    parser.add_argument("--components", type=int, default=100)
    parser.add_argument("--work", type=Path, default=Path("bench/out/embeddings"))
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(repo) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    lines = [
        f"Run {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs, CLI options: {' '.join(extra) or '(defaults)'}",
        "",
        "| n x dim | wall s | CPU s | peak MB | " + " | ".join(STAGES) + " | clusters | ARI |",
        "|---" * (6 + len(STAGES)) + "|",
    ]
    print("\n".join(lines), flush=True)
    rows: dict[int, dict[int, dict]] = {}
    for dim in args.dims:
        for n in args.sizes:
            folder = args.work / f"mix-{n}x{dim}"
            truth = write_mixture(folder, n, dim, args.components)
            session = args.work / f"session-{n}x{dim}"
            command = [sys.executable, "-m", "imgclust_desktop.cli", "cluster", "--features", str(folder)]
            command += ["--out", str(session), "--quiet", *extra]
            log = args.work / f"log-{n}x{dim}.txt"
            result = run_measured(command, log=log, env=env, timeout=args.timeout)
            if result.returncode != 0:
                line = f"| {n:,} x {dim} | failed ({result.returncode}) after {result.seconds:.0f} s |"
                print(line, "\n", tail(log), flush=True)
                lines.append(line)
                continue
            timings = json.loads((session / "session.json").read_text())["timings"]
            timings["save"] = result.seconds - timings.get("total", 0.0)
            ari, clusters = adjusted_rand(session, truth)
            stages = " | ".join(f"{timings.get(s, 0.0):.1f}" for s in STAGES)
            line = (
                f"| {n:,} x {dim} | {result.seconds:.1f} | {result.cpu_seconds:.1f} | "
                f"{result.peak_rss_mb:.0f} | {stages} | {clusters} | {ari:.3f} |"
            )
            print(line, flush=True)
            lines.append(line)
            rows.setdefault(dim, {})[n] = dict(timings, wall=result.seconds)
    for dim, by_n in rows.items():
        sizes = sorted(by_n)
        for a, b in zip(sizes, sizes[1:], strict=False):
            growth = []
            for stage in ("wall", *STAGES):
                ta, tb = by_n[a].get(stage, 0.0), by_n[b].get(stage, 0.0)
                if ta > 0.05 and tb > 0.05:
                    growth.append(f"{stage} n^{math.log(tb / ta) / math.log(b / a):.2f}")
            line = f"- dim {dim}, {a:,} -> {b:,}: " + ", ".join(growth)
            print(line, flush=True)
            lines.append(line)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
