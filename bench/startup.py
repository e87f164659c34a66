"""Start-to-window time of the desktop app: launch it N times, each exiting once the window has painted.

Usage: python bench/startup.py [--runs 5] [--command imgclust-desktop]
Prints the app's own figure (process start to first paint, from IMGCLUST_EXIT_AFTER_SHOWN) and the wall
time of the whole process (interpreter start included), median over the runs, with a clean HOME.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--command", nargs="+", default=[sys.executable, "-m", "imgclust_desktop"])
    args = parser.parse_args(argv)
    shown, wall = [], []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as home:
            env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=home, IMGCLUST_EXIT_AFTER_SHOWN="1")
            env.setdefault("QT_QPA_PLATFORM", "offscreen")
            start = time.perf_counter()
            out = subprocess.run(args.command, env=env, capture_output=True, text=True, timeout=120)
            wall.append(time.perf_counter() - start)
        line = next((x for x in out.stdout.splitlines() if x.startswith("shown ")), None)
        if out.returncode != 0 or line is None:
            print(out.stderr, file=sys.stderr)
            return 1
        shown.append(float(line.split()[1]))
    print(
        f"window shown after {statistics.median(shown):.2f} s (app clock), "
        f"{statistics.median(wall):.2f} s wall incl. interpreter, median of {args.runs} "
        f"[{' '.join(f'{w:.2f}' for w in wall)}]"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
