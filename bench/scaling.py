"""How `imgclust cluster` (default model and settings) grows with the number of images.

Usage: python bench/scaling.py --data DATA [--sizes 1000 5000 20000 70000] [--timeout S]
                               [--budget-minutes M] [--source SET] [--once] [--out scaling.md]

Images come from Fashion-MNIST 70k (DATA/fashion-mnist-70k), or with --source fashion-mnist-1m from its
1,050,000 augmented variants; bench/datasets.py writes the set when it is missing. Each size is a stratified
subset hard-linked into DATA/scaling/<set>-<n> (the whole set is used in place). Per size two cold
processes run with the same fresh IMGCLUST_CACHE_DIR: the first computes every feature (uncached), the second
finds them in the cache (cached); --once runs only the first (features computed once, as for 1M images). Wall seconds and peak RSS are measured around the process; the per-stage
seconds come from the session's session.json "timings" ("save" = wall minus the pipeline's total: imports,
writing the session, montages and report). A size whose predicted uncached+cached time (extrapolated from
the two previous sizes) would not fit in what is left of --budget-minutes is skipped and listed as such.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from measure import count_images, run_measured, tail

BENCH = Path(__file__).resolve().parent
MAKE_DATASETS = BENCH / "datasets.py"
STAGES = ("scan", "model", "features", "reduce", "neighbours", "embed", "cluster", "analyse", "save")


SOURCES = {"fashion-mnist-70k": 70_000, "fashion-mnist-1m": 1_050_000}


def source_folder(data: Path, name: str = "fashion-mnist-70k") -> Path:
    folder = data / name
    if not (folder.is_dir() and count_images(folder) == SOURCES[name]):
        if not MAKE_DATASETS.exists():
            sys.exit(f"{folder} is missing and {MAKE_DATASETS} is not there to write it")
        subprocess.run([sys.executable, str(MAKE_DATASETS), str(data), name], check=True)
    return folder


def sized_folder(source: Path, n: int, data: Path) -> Path:
    """DATA/scaling/<set>-<n>: every (size/n)-th image of source, hard-linked (copied across devices); the
    source itself when n is all of it."""
    if n == SOURCES.get(source.name):
        return source
    prefix = "fmnist" if source.name == "fashion-mnist-70k" else source.name
    target = data / "scaling" / f"{prefix}-{n}"
    if target.is_dir() and count_images(target) == n:
        return target
    shutil.rmtree(target, ignore_errors=True)
    files = sorted(p for p in source.rglob("*.png"))
    if n > len(files):
        raise SystemExit(f"{source} has {len(files)} images, fewer than {n}")
    step = len(files) / n
    for i in range(n):
        src = files[int(i * step)]
        dest = target / src.relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dest)
        except OSError:
            shutil.copy2(src, dest)
    return target


def run_once(folder: Path, cache: Path, work: Path, label: str, timeout: float) -> dict:
    imgclust = Path(sys.executable).parent / "imgclust"
    session = work / f"session-{label}"
    shutil.rmtree(session, ignore_errors=True)
    env = {**os.environ, "IMGCLUST_CACHE_DIR": str(cache)}
    log = work / f"{label}.log"
    measured = run_measured(
        [str(imgclust), "cluster", str(folder), "--out", str(session), "--quiet"],
        log=log,
        env=env,
        timeout=timeout,
    )
    record = {
        "label": label,
        "n": count_images(folder),
        "seconds": round(measured.seconds, 2),
        "cpu_seconds": round(measured.cpu_seconds, 2),
        "peak_rss_mb": round(measured.peak_rss_mb, 1),
        "returncode": measured.returncode,
        "timed_out": measured.timed_out,
        "when": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    if measured.returncode == 0:
        meta = json.loads((session / "session.json").read_text())
        timings = {k: float(v) for k, v in meta.get("timings", {}).items() if isinstance(v, (int, float))}
        timings["save"] = measured.seconds - timings.get("total", measured.seconds)
        record.update(timings=timings, n_clusters=len(meta.get("clusters", [])), model=meta.get("model_id"))
        shutil.rmtree(session / "montages", ignore_errors=True)  # keep the JSON, drop the pictures
    else:
        record["error"] = tail(log)
    (work / f"{label}.json").write_text(json.dumps(record, indent=1))
    return record


def row(record: dict) -> str:
    n, label = record["n"], record["label"].split("-")[-1]
    if "timings" not in record:
        why = "timed out" if record["timed_out"] else f"failed (exit {record['returncode']})"
        return (
            f"| {n} | {label} | {why} after {record['seconds']:.0f} s | {record['cpu_seconds']:.0f} "
            f"| {record['peak_rss_mb']:.0f} |" + " |" * len(STAGES)
        )
    stage_cells = " | ".join(f"{record['timings'].get(s, 0.0):.1f}" for s in STAGES)
    return (
        f"| {n} | {label} | {record['seconds']:.1f} | {record['cpu_seconds']:.1f} | {record['peak_rss_mb']:.0f} "
        f"| {stage_cells} |"
    )


def growth(records: list[dict]) -> list[str]:
    """Per stage: dominant share and the log-log slope between consecutive sizes (1 = linear)."""
    done = [r for r in records if "timings" in r]
    lines = []
    for label in ("uncached", "cached"):
        runs = sorted((r for r in done if r["label"].split("-")[-1] == label), key=lambda r: r["n"])
        if not runs:
            continue
        for r in runs:
            top = max(STAGES, key=lambda s: r["timings"].get(s, 0.0))
            share = r["timings"].get(top, 0.0) / r["seconds"]
            lines.append(f"- {r['n']} images, {label}: {top} dominates ({share:.0%} of the wall time)")
        for a, b in zip(runs, runs[1:], strict=False):
            slopes = []
            for s in (*STAGES, "wall"):
                ta = a["seconds"] if s == "wall" else a["timings"].get(s, 0.0)
                tb = b["seconds"] if s == "wall" else b["timings"].get(s, 0.0)
                if ta > 0.05 and tb > 0.05:
                    slopes.append(f"{s} n^{math.log(tb / ta) / math.log(b['n'] / a['n']):.2f}")
            lines.append(f"- growth {a['n']} -> {b['n']} ({label}): " + ", ".join(slopes))
    return lines


def predict(records: list[dict], n: int) -> float | None:
    """Predicted seconds of an uncached + cached pair at n from the last two sizes (power law)."""
    pairs: dict[int, float] = {}
    for r in records:
        if "timings" in r:
            pairs[r["n"]] = pairs.get(r["n"], 0.0) + r["seconds"]
    sizes = sorted(pairs)
    if len(sizes) < 2:
        return None
    (n1, t1), (n2, t2) = (sizes[-2], pairs[sizes[-2]]), (sizes[-1], pairs[sizes[-1]])
    slope = max(1.0, math.log(t2 / t1) / math.log(n2 / n1))
    return t2 * (n / n2) ** slope


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True, metavar="DATA", help="dataset root folder")
    parser.add_argument("--sizes", nargs="+", type=int, default=[1000, 5000, 20000, 70000])
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per run (default 3600)")
    parser.add_argument("--budget-minutes", type=float, default=120, help="skip sizes predicted to overrun")
    parser.add_argument("--work", type=Path, default=BENCH / "out" / "scaling")
    parser.add_argument("--out", type=Path, help="also write the markdown here")
    parser.add_argument("--source", choices=list(SOURCES), default="fashion-mnist-70k")
    parser.add_argument("--once", action="store_true", help="only the uncached run (features computed once)")
    parser.add_argument(
        "--cache",
        type=Path,
        help="an empty folder to use as the cache and keep afterwards (to open the session with its "
        "thumbnails: IMGCLUST_CACHE_DIR=FOLDER imgclust-desktop SESSION); default: a temporary folder",
    )
    args = parser.parse_args(argv)

    if args.cache is not None and (
        len(args.sizes) > 1 or (args.cache.exists() and any(args.cache.iterdir()))
    ):
        sys.exit("--cache takes an empty folder and one size: each size needs a fresh cache")
    source = source_folder(args.data, args.source)
    started = dt.datetime.now(dt.timezone.utc)
    records, skipped = [], []
    for n in sorted(args.sizes):
        left = args.budget_minutes * 60 - (dt.datetime.now(dt.timezone.utc) - started).total_seconds()
        predicted = predict(records, n)
        if predicted is not None and predicted > left:
            skipped.append(
                f"- {n} images: not run, predicted {predicted / 60:.0f} min > {left / 60:.0f} min left"
            )
            print(skipped[-1], file=sys.stderr)
            continue
        folder = sized_folder(source, n, args.data)
        work = args.work / f"n{n}"
        work.mkdir(parents=True, exist_ok=True)
        if args.cache is not None:
            cache_folder = contextlib.nullcontext(str(args.cache))  # kept afterwards
        else:
            cache_folder = tempfile.TemporaryDirectory(prefix="imgclust-scaling-cache-")
        with cache_folder as cache:
            for label in ("uncached",) if args.once else ("uncached", "cached"):
                print(f"{n} images, {label} ...", file=sys.stderr)
                record = run_once(folder, Path(cache), work, f"n{n}-{label}", args.timeout)
                records.append(record)
                print("  " + row(record), file=sys.stderr)
                if "timings" not in record:
                    break

    command = " ".join(["python", "bench/scaling.py", *(argv if argv is not None else sys.argv[1:])])
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        f"Run {started:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, load average at the end {load}.",
        f"Command: `{command}`",
        "",
        "| images | features | wall s | CPU s | peak MB | " + " | ".join(STAGES) + " |",
        "|---" * (5 + len(STAGES)) + "|",
        *(row(r) for r in records),
        "",
        *growth(records),
        *skipped,
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
