"""How long saving a session with its report takes, first and again: the montages kept or redrawn.

Usage: python bench/save_report.py SESSION [--levels K ...] [--work DIR]

Copies SESSION (a session folder with a cluster tree, for example from `imgclust cluster DATA/photoset`)
into WORK, re-cuts it at each level, then times session.save with the report three times: the first save
at that level (every montage drawn), the same save again (nothing changed), and a save after one image is
moved by hand to another cluster (two clusters changed). Prints wall seconds and the load average.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("session", type=Path)
    parser.add_argument("--levels", type=int, nargs="*", default=[])
    parser.add_argument("--work", type=Path, default=None, help="where the copies go (default: a temp dir)")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from imgclust_desktop.core import session as session_io
    from imgclust_desktop.core.recut import apply_recut, plan_recut

    work_root = args.work or Path(tempfile.mkdtemp(prefix="save-report-"))
    levels = args.levels or [session_io.load(args.session).level or 0]
    print(f"load average: {os.getloadavg()}")
    print("| groups | first save, s | again, nothing changed, s | after one image moved, s |")
    print("|---|---|---|---|")
    for k in levels:
        work = work_root / f"k{k}"
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(args.session, work)
        session = session_io.load(work)
        if session.tree is not None and k:
            apply_recut(session, plan_recut(session, k))
        times = []
        for step in range(3):
            if step == 2:
                ids = session.cluster_ids()
                session.assign(session.members(ids[1])[:1], ids[0])
            start = time.perf_counter()
            session_io.save(session, work)
            times.append(time.perf_counter() - start)
        print(f"| {len(session.cluster_ids())} | " + " | ".join(f"{t:.2f}" for t in times) + " |")
    print(f"load average: {os.getloadavg()}")
    if args.work is None:
        shutil.rmtree(work_root, ignore_errors=True)


if __name__ == "__main__":
    main()
