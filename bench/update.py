"""`imgclust update` adding ~10 % new images to a session, against a cached full re-run of the whole folder.

Usage: python bench/update.py SOURCE [--base N] [--add N] [--new-classes N] [--seed S] [--work DIR]
                              [--out update.md] [--no-report]

SOURCE holds one sub-folder per class (DATA/many-groups, DATA/fashion-mnist-70k, ...). A stratified
sample of --base images is hard-linked into WORK/images and clustered with `imgclust cluster` (default
settings, fresh IMGCLUST_CACHE_DIR: every feature computed). Then --add more images are linked in: all
images of --new-classes classes the session has never seen, and the rest from the known classes. Timed,
each as a cold process with the same cache:

  update   `imgclust update WORK/session`  (the additions' features are NOT cached: computed here)
  full     `imgclust cluster WORK/images --out WORK/full`  (every feature cached by then)

and checked: old map positions unchanged; the share of known-class additions that joined the cluster most
of their class's base images are in; the share of unseen-class additions that stayed out of old clusters.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
from measure import IMAGE_SUFFIXES, run_measured, tail

BENCH = Path(__file__).resolve().parent


def classes_of(source: Path) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for path in sorted(source.rglob("*")):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            found.setdefault(path.relative_to(source).parts[0], []).append(path)
    return found


def family(name: str) -> str:
    """many-groups names views of one photo <photo>-<variant>: the family is the photo."""
    return name.rsplit("-", 1)[0]


def split(found, base: int, add: int, new_classes: int, seed: int, families: bool = False):
    """(base files, added files, unseen class names): stratified base, whole unseen classes in `add`.

    families: hold out whole families (every variant of a photo) instead of single classes.
    """
    rng = np.random.default_rng(seed)
    names = sorted(found)
    if families and new_classes:
        groups = sorted({family(c) for c in names})
        held = set(rng.choice(groups, new_classes, replace=False).tolist())
        unseen = {c for c in names if family(c) in held}
    else:
        unseen = set(rng.choice(names, new_classes, replace=False).tolist()) if new_classes else set()
    added = [p for c in sorted(unseen) for p in found[c]]
    known = [p for c in names if c not in unseen for p in found[c]]
    if len(added) > add:
        raise SystemExit(
            f"--new-classes {new_classes} alone brings {len(added)} images, more than --add {add}"
        )
    if base + add - len(added) > len(known):
        raise SystemExit(f"{len(known)} images of known classes, fewer than --base + the known additions")
    order = rng.permutation(len(known))  # stratified enough for large classes; every class keeps some
    picked = [known[i] for i in order[: base + add - len(added)]]
    return picked[:base], picked[base:] + added, unseen


def link(files, source: Path, target: Path) -> None:
    for src in files:
        dest = target / src.relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dest)
        except OSError:
            shutil.copy2(src, dest)


def timed(label: str, command: list[str], work: Path, env: dict) -> dict:
    print(f"{label} ...", file=sys.stderr)
    log = work / f"{label}.log"
    measured = run_measured(command, log=log, env=env)
    if measured.returncode != 0:
        raise SystemExit(f"{label} failed (exit {measured.returncode}):\n{tail(log)}")
    record = {"wall_s": round(measured.seconds, 2), "cpu_s": round(measured.cpu_seconds, 2),
              "peak_mb": round(measured.peak_rss_mb)}  # fmt: skip
    print(f"  {record}", file=sys.stderr)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("source", type=Path)
    parser.add_argument("--base", type=int, help="images in the first session (default 90 %% of SOURCE)")
    parser.add_argument("--add", type=int, help="images added (default 10 %% of SOURCE)")
    parser.add_argument("--new-classes", type=int, default=0, help="whole classes only in the additions")
    parser.add_argument(
        "--families", action="store_true", help="--new-classes counts photo families (name before the last -)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=BENCH / "out" / "update")
    parser.add_argument("--out", type=Path, help="also write the markdown here")
    parser.add_argument("--no-report", action="store_true", help="pass --no-report to both commands")
    args = parser.parse_args(argv)

    work = args.work / args.source.name
    shutil.rmtree(work, ignore_errors=True)
    # A private hard-linked copy first: the shared data folder may be rewritten while this runs.
    source = work / "source"
    link([p for files in classes_of(args.source).values() for p in files], args.source, source)
    found = classes_of(source)
    total = sum(len(v) for v in found.values())
    base_n = args.base or int(total * 0.9)
    add_n = args.add or total - base_n
    base, added, unseen = split(found, base_n, add_n, args.new_classes, args.seed, args.families)
    images = work / "images"
    link(base, source, images)
    imgclust = str(Path(sys.executable).parent / "imgclust")
    report = ["--no-report"] if args.no_report else []
    started = dt.datetime.now(dt.timezone.utc)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="imgclust-update-cache-") as cache:
        env = {**os.environ, "IMGCLUST_CACHE_DIR": cache}
        first = timed("base (uncached)", [imgclust, "cluster", str(images), "--out", str(work / "session"),
                                          "--quiet", *report], work, env)  # fmt: skip
        before = json.loads((work / "session" / "session.json").read_text())
        old_coords = np.loadtxt(work / "session" / "clusters.csv", delimiter=",", skiprows=1, usecols=(2, 3),
                                comments=None, dtype=np.float64)  # fmt: skip
        link(added, source, images)
        upd = timed("update", [imgclust, "update", str(work / "session"), "--quiet", *report], work, env)
        full = timed("full (cached)", [imgclust, "cluster", str(images), "--out", str(work / "full"),
                                       "--quiet", *report], work, env)  # fmt: skip
    after = json.loads((work / "session" / "session.json").read_text())
    edit = after["edits"][-1]
    import csv

    with open(work / "session" / "clusters.csv", newline="") as f:
        rows = list(csv.reader(f))[1:]
    paths = [r[0] for r in rows]
    labels = np.array([int(r[1]) for r in rows])
    coords = np.array([[float(r[2]), float(r[3])] for r in rows])
    n_old = len(old_coords)
    moved = float(np.abs(coords[:n_old] - old_coords).max())
    cls = [Path(p).relative_to(images).parts[0] for p in paths]
    home = {c: Counter(labels[i] for i in range(n_old) if cls[i] == c).most_common(1)[0][0]
            for c in set(cls[:n_old])}  # fmt: skip
    known_rows = [i for i in range(n_old, len(paths)) if cls[i] not in unseen]
    unseen_rows = [i for i in range(n_old, len(paths)) if cls[i] in unseen]
    old_ids = {c["id"] for c in before["clusters"]}
    joined_home = np.mean([labels[i] == home[cls[i]] for i in known_rows]) if known_rows else float("nan")
    kept_out = np.mean([labels[i] not in old_ids for i in unseen_rows]) if unseen_rows else float("nan")
    load_after = os.getloadavg()

    ratio = upd["wall_s"] / full["wall_s"]
    command = " ".join(["python", "bench/update.py", *(argv if argv is not None else sys.argv[1:])])
    lines = [
        f"Run {started:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, load average before "
        f"{load_before[0]:.1f} / after {load_after[0]:.1f} (1 min).",
        f"Command: `{command}`",
        "",
        f"{args.source.name}: {n_old} images in the session, {len(paths) - n_old} added "
        f"({len(unseen_rows)} of {len(unseen)} unseen classes{' from unseen families' if args.families else ''}); "
        f"{len(before['clusters'])} clusters before.",
        "",
        "| run | wall s | CPU s | peak MB |",
        "|---|---|---|---|",
        f"| first session, uncached ({n_old}) | {first['wall_s']} | {first['cpu_s']} | {first['peak_mb']} |",
        f"| update (+{len(paths) - n_old}, uncached) | {upd['wall_s']} | {upd['cpu_s']} | {upd['peak_mb']} |",
        f"| full re-run, cached ({len(paths)}) | {full['wall_s']} | {full['cpu_s']} | {full['peak_mb']} |",
        "",
        f"- update / full re-run: {ratio:.2f} of the wall time (target <= 0.5); update in-process "
        f"{edit.get('seconds', float('nan')):.1f} s",
        f"- old map positions moved by at most {moved:.2g}",
        f"- known-class additions in their class's cluster: {joined_home:.1%} ({len(known_rows)} images; "
        f"{edit['joined']} joined an existing cluster in all)",
        f"- unseen-class additions kept out of old clusters: {kept_out:.1%} ({len(unseen_rows)} images); "
        f"{len(edit['new_clusters'])} new clusters made",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
