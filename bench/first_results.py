"""Time to the first map and clusters on a big uncached folder, as the window runs it (gui/progressive.py).

Usage: python bench/first_results.py FOLDER [--sample 3000] [--batch 5000] [--all] [--out first.md]

Runs core.progressive.run_progressive in this process with a fresh, empty IMGCLUST_CACHE_DIR (every
feature computed) and the window's default settings, and reports the seconds from the start to the
"first" event (scan + the sample's features, map and clusters: what the window shows first). With --all
it goes on adding the rest batch by batch (seconds to each "grown" event) and re-lays-out at the end;
without it the run is cancelled right after the first map.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folder", type=Path)
    parser.add_argument("--sample", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--all", action="store_true", help="add every image and re-lay-out at the end")
    parser.add_argument("--out", type=Path, help="also write the markdown here")
    args = parser.parse_args(argv)

    cache = tempfile.mkdtemp(prefix="imgclust-first-cache-")
    os.environ["IMGCLUST_CACHE_DIR"] = cache
    from imgclust_desktop.core.pipeline import PipelineRequest
    from imgclust_desktop.core.progress import Cancelled
    from imgclust_desktop.core.progressive import run_progressive

    load_before = os.getloadavg()
    started_at = dt.datetime.now(dt.timezone.utc)
    started, cpu = time.perf_counter(), time.process_time()
    marks: list[tuple[str, int, float, float]] = []  # (event, images, wall s, CPU s of this process)
    stop = {"now": False}

    def event(kind: str, session) -> None:
        marks.append((kind, len(session.paths), time.perf_counter() - started, time.process_time() - cpu))
        print(f"{kind}: {len(session.paths)} images at {marks[-1][2]:.1f} s", file=sys.stderr)
        if kind == "first" and not args.all:
            stop["now"] = True

    stages: dict[str, float] = {}

    def progress(p) -> None:
        stages.setdefault(p.stage, time.perf_counter() - started)

    request = PipelineRequest(inputs=[str(args.folder)], device="cpu", cache_dir=cache)
    try:
        final = run_progressive(
            request, sample_size=args.sample, batch_size=args.batch, relayout=args.all,
            on_progress=progress, cancelled=lambda: stop["now"], on_event=event,
        )  # fmt: skip
        wall, used = time.perf_counter() - started, time.process_time() - cpu
        marks.append(("final (re-laid-out)", len(final.paths), wall, used))
    except Cancelled:
        pass
    load_after = os.getloadavg()
    command = " ".join(["python", "bench/first_results.py", *(argv if argv is not None else sys.argv[1:])])
    lines = [
        f"Run {started_at:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, load average before {load_before[0]:.1f} / "
        f"after {load_after[0]:.1f} (1 min); uncached (fresh feature cache), CPU, default settings.",
        f"Command: `{command}`",
        "",
        "| event | images on the map | wall s from start | CPU s (all threads) |",
        "|---|---|---|---|",
        *(f"| {kind} | {n:,} | {seconds:.1f} | {used:.1f} |" for kind, n, seconds, used in marks),
        "",
        "Stage starts (s): " + ", ".join(f"{k} {v:.1f}" for k, v in stages.items()),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
