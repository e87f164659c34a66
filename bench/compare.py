"""clustimage vs `imgclust cluster`, each with its defaults and automatic k, on the same labelled folders.

Usage: python bench/compare.py --data DATA [--datasets digits fashion-mnist photoset]
                               [--tools clustimage imgclust] [--limit N] [--timeout S]
                               [--reuse-clustimage] [--out compare.md]

DATA/<dataset>/<class>/<image>: digits and fashion-mnist come from bench/datasets.py,
photoset from bench/make_photoset.py; missing ones are written first. --limit N clusters a stratified
copy of N images per dataset (DATA/subsets/) for quick checks. clustimage runs in its own virtual
environment (bench/.venv-clustimage, made on first use from bench/clustimage-requirements.txt) through
bench/clustimage_driver.py; imgclust runs as the `imgclust` command of this interpreter's environment
with a fresh, empty feature cache. Both start cold as separate processes, so wall seconds include imports
and model loading; CPU seconds (user + system) are given beside them because on a shared machine wall time
mostly measures the other jobs; peak memory is the child's maximum RSS. ACC (Hungarian), NMI and ARI are scored
against the parent-folder names of the images each tool read (imgclust's via `imgclust evaluate --json`,
clustimage's labels with the same core/evaluate.py). Each run's numbers are kept as JSON under --work;
--reuse-clustimage takes clustimage's from there when its folder and image count match (clustimage does
not change while our engine does).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from measure import Measured, count_images, run_measured, tail

BENCH = Path(__file__).resolve().parent
VENV = BENCH / ".venv-clustimage"
REQUIREMENTS = BENCH / "clustimage-requirements.txt"
DRIVER = BENCH / "clustimage_driver.py"
MAKE_DATASETS = BENCH / "datasets.py"
DATASETS = ("digits", "fashion-mnist", "photoset")

# Published figures of the seed studies (clustimage's examples on sklearn digits), k given = 10.
REFERENCE = {
    "digits": [
        ("seed study: k-means on pixels, k=10 given", 0.79),
        ("seed study: t-SNE + k-means, k=10 given", 0.93),
    ]
}

HEADER = (
    "| dataset | tool | images read / total | clusters found | noise | ACC | NMI | ARI "
    "| wall s | CPU s | peak MB | wall vs clustimage | CPU vs clustimage |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def ensure_dataset(data: Path, name: str) -> Path:
    """DATA/name, written first if missing."""
    folder = data / name
    if folder.is_dir() and any(folder.iterdir()):
        return folder
    if name == "photoset":
        from make_photoset import make_photoset

        make_photoset(data)
    else:
        if not MAKE_DATASETS.exists():
            sys.exit(f"{folder} is missing and {MAKE_DATASETS} is not there to write it")
        subprocess.run([sys.executable, str(MAKE_DATASETS), str(data), name], check=True)
    return folder


def subset(folder: Path, limit: int, data: Path) -> Path:
    """A stratified copy of about `limit` images of folder (every k-th file of each class)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    if limit >= len(files):
        return folder
    target = data / "subsets" / f"{folder.name}-{limit}"
    if target.is_dir() and count_images(target) > 0:
        return target
    step = len(files) / limit
    for i in range(limit):
        source = files[int(i * step)]
        dest = target / source.relative_to(folder)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, dest)
    return target


def ensure_venv() -> Path:
    """The clustimage venv's python, creating the venv from the pinned requirements when missing."""
    python = VENV / "bin" / "python"
    if python.exists():
        return python
    base = getattr(sys, "_base_executable", sys.executable)  # the interpreter our own .venv was made from
    print(f"creating {VENV} with {base} ...", file=sys.stderr)
    subprocess.run([base, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)], check=True)
    return python


def score(labels: list[int], paths: list[str]) -> dict:
    from imgclust_desktop.core.evaluate import evaluate, truth_from_paths

    return evaluate(labels, truth_from_paths(paths))


def run_clustimage(folder: Path, work: Path, timeout: float) -> dict:
    python = ensure_venv()
    labels_json = work / "clustimage-labels.json"
    labels_json.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="clustimage-tmp-") as tmp:
        # clustimage keeps thumbnails in $TMPDIR/clustimage; a fresh one per run means no warm cache.
        env = {**os.environ, "TMPDIR": tmp}
        measured = run_measured(
            [str(python), str(DRIVER), str(folder), str(labels_json)],
            log=work / "clustimage.log",
            env=env,
            timeout=timeout,
        )
    record = _record("clustimage", folder, measured)
    if measured.returncode == 0 and labels_json.exists():
        result = json.loads(labels_json.read_text())
        record.update(read=len(result["pathnames"]), version=result.get("version"))
        record.update(_scores(score(result["labels"], result["pathnames"])))
    else:
        record["error"] = tail(work / "clustimage.log")
    return record


def run_imgclust(folder: Path, work: Path, timeout: float) -> dict:
    imgclust = Path(sys.executable).parent / "imgclust"
    session = work / "session"
    shutil.rmtree(session, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="imgclust-cache-") as cache:
        env = {**os.environ, "IMGCLUST_CACHE_DIR": cache}
        measured = run_measured(
            [str(imgclust), "cluster", str(folder), "--out", str(session), "--quiet"],
            log=work / "imgclust.log",
            env=env,
            timeout=timeout,
        )
    record = _record("imgclust", folder, measured)
    if measured.returncode != 0:
        record["error"] = tail(work / "imgclust.log")
        return record
    meta = json.loads((session / "session.json").read_text())
    evaluated = subprocess.run(
        [str(imgclust), "evaluate", str(session), "--json"], capture_output=True, text=True, check=True
    )
    record.update(_scores(json.loads(evaluated.stdout)))
    record.update(
        read=int(meta["n_images"]),
        timings=meta.get("timings", {}),
        model=meta.get("model_id"),
        params=meta.get("params"),
    )
    from imgclust_desktop import __version__

    record["version"] = __version__
    return record


def _record(tool: str, folder: Path, measured: Measured) -> dict:
    return {
        "tool": tool,
        "folder": str(folder),
        "total": count_images(folder),
        "returncode": measured.returncode,
        "timed_out": measured.timed_out,
        "seconds": round(measured.seconds, 2),
        "cpu_seconds": round(measured.cpu_seconds, 2),
        "peak_rss_mb": round(measured.peak_rss_mb, 1),
        "when": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _scores(result: dict) -> dict:
    keys = ("acc", "nmi", "ari", "n_clusters", "noise_fraction")
    return {key: result[key] for key in keys}


def row(dataset: str, record: dict, baseline: dict | None) -> str:
    name = record["tool"] + (f" (stored run, ended {record['when']})" if record.get("reused") else "")
    if "acc" not in record:
        why = "timed out" if record.get("timed_out") else f"failed (exit {record['returncode']})"
        return (
            f"| {dataset} | {name} | – | – | – | – | – | – | {why} after {record['seconds']:.0f} "
            f"| {record.get('cpu_seconds', 0):.0f} | {record['peak_rss_mb']:.0f} | | |"
        )
    ratio = cpu_ratio = ""
    if baseline and "acc" in baseline and baseline is not record:
        ratio = f"{record['seconds'] / baseline['seconds']:.2f}x"
        cpu_ratio = f"{record['cpu_seconds'] / baseline['cpu_seconds']:.2f}x"
    elif baseline is record:
        ratio = cpu_ratio = "1.00x"
    return (
        f"| {dataset} | {name} | {record['read']} / {record['total']} | {record['n_clusters']} "
        f"| {record['noise_fraction']:.1%} | {record['acc']:.3f} | {record['nmi']:.3f} | {record['ari']:.3f} "
        f"| {record['seconds']:.1f} | {record['cpu_seconds']:.1f} | {record['peak_rss_mb']:.0f} "
        f"| {ratio} | {cpu_ratio} |"
    )


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}, load average {load}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True, metavar="DATA", help="dataset root folder")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument(
        "--tools", nargs="+", default=["clustimage", "imgclust"], choices=["clustimage", "imgclust"]
    )
    parser.add_argument("--limit", type=int, help="stratified subset of N images per dataset")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per tool run (default 3600)")
    parser.add_argument("--work", type=Path, default=BENCH / "out" / "compare", help="logs, sessions, JSON")
    parser.add_argument("--reuse-clustimage", action="store_true", help="reuse a stored clustimage run")
    parser.add_argument("--out", type=Path, help="also write the markdown here")
    args = parser.parse_args(argv)

    lines = [
        f"Run {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()}.",
        "Command: `"
        + " ".join(["python", "bench/compare.py", *(argv if argv is not None else sys.argv[1:])])
        + "`",
        "",
        HEADER,
    ]
    stages, versions = [], {}
    for name in args.datasets:
        folder = ensure_dataset(args.data, name)
        if args.limit:
            folder = subset(folder, args.limit, args.data)
        work = args.work / folder.name
        work.mkdir(parents=True, exist_ok=True)
        records = {}
        for tool in args.tools:
            stored = work / f"{tool}.json"
            if tool == "clustimage" and args.reuse_clustimage and stored.exists():
                previous = json.loads(stored.read_text())
                if previous.get("folder") == str(folder) and previous.get("total") == count_images(folder):
                    records[tool] = {**previous, "reused": True}
                    print(f"{folder.name}: reusing clustimage run of {previous['when']}", file=sys.stderr)
                    continue
            print(f"{folder.name}: running {tool} ...", file=sys.stderr)
            runner = run_clustimage if tool == "clustimage" else run_imgclust
            records[tool] = runner(folder, work, args.timeout)
            stored.write_text(json.dumps(records[tool], indent=1))
            print(f"  {row(folder.name, records[tool], None)}", file=sys.stderr)
        versions.update({tool: r.get("version") for tool, r in records.items() if r.get("version")})
        baseline = records.get("clustimage")
        for tool in args.tools:
            lines.append(row(folder.name, records[tool], baseline))
        if "imgclust" in records and records["imgclust"].get("timings"):
            timings = ", ".join(f"{k} {v:.1f}" for k, v in records["imgclust"]["timings"].items())
            stages.append(f"- {name}: imgclust stage seconds: {timings}")
        for label, acc in REFERENCE.get(name, []) if not args.limit else []:
            lines.append(f"| {name} | {label} | | 10 (given) | | {acc:.2f} | | | | | | | |")
    lines += ["", *stages, "", "Versions: " + ", ".join(f"{t} {v}" for t, v in sorted(versions.items()))]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
