"""Time `imgclust recut` on a saved session of N images (default 100,000) with a real cluster tree.

Usage: python bench/recut_session.py [--n 100000] [--dim 1280] [--groups 300] [--work DIR [--reuse]]

Builds a session folder once (synthetic embeddings: `groups` Gaussian blobs in 10-d for the clustering space,
random float32 features of `dim` columns as features.npy, the tree from core/tree.build_tree), then times:
- in-process: load (features memory-mapped) + plan_recut + apply_recut + save, for --k, --finer, --coarser;
- the whole `imgclust recut` command in a fresh process (interpreter start and imports included).
The tree is built once and stored; a re-cut reads it back and does no feature or map work.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_session(folder: Path, n: int, dim: int, groups: int, seed: int = 0) -> float:
    """Write a session of n rows with a cluster tree into folder; returns the seconds the tree took."""
    from imgclust_desktop.core import session as session_io
    from imgclust_desktop.core.cluster import ClusterParams, _fit_k, choose_k
    from imgclust_desktop.core.recut import apply_recut, plan_recut
    from imgclust_desktop.core.session import Session
    from imgclust_desktop.core.tree import build_tree

    rng = np.random.default_rng(seed)
    centres = rng.uniform(-1, 1, size=(groups, 10)).astype(np.float32)
    truth = rng.integers(0, groups, size=n)
    space = centres[truth] + rng.normal(0, 0.04, size=(n, 10)).astype(np.float32)
    started = time.perf_counter()
    params = ClusterParams(seed=seed)
    tree = build_tree(
        space, space, choose=choose_k, fit_flat=lambda k: _fit_k(space, "kmeans", k, params, None)
    )
    tree_seconds = time.perf_counter() - started
    features = rng.normal(size=(n, dim)).astype(np.float32)
    paths = [f"/photos/{g:03d}/img{i:07d}.jpg" for i, g in enumerate(truth.tolist())]
    session = Session(paths=paths, features=features, coords=space[:, :2], labels=tree.cut(tree.default_k))
    session.tree, session.level = tree, None
    apply_recut(session, plan_recut(session, tree.default_k))  # clusters with their tree nodes and names
    session.edits.clear()
    session_io.save(session, folder, report=False)
    return tree_seconds


def time_in_process(folder: Path, how: str) -> tuple[float, int]:
    from imgclust_desktop.core import session as session_io
    from imgclust_desktop.core.recut import apply_recut, plan_recut

    started = time.perf_counter()
    session = session_io.load(folder, mmap=True)
    tree = session.tree
    k = {"finer": tree.finer(session.level), "coarser": tree.coarser(session.level)}.get(how, tree.default_k)
    apply_recut(session, plan_recut(session, k))
    session_io.save(session, folder, report=False, write_features=False, write_tree=False)
    return time.perf_counter() - started, k


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--groups", type=int, default=300)
    parser.add_argument("--work", type=Path, default=None, help="keep the session here (default: a temp dir)")
    parser.add_argument("--reuse", action="store_true", help="time the session already in --work")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="recut-bench-"))
    folder = work / "session"
    if args.reuse and (folder / "session.json").exists():
        from imgclust_desktop.core import session as session_io

        session = session_io.load(folder)
        n, dim = session.features.shape
        print(f"session of {n} images x {dim} features (reused from {folder})", flush=True)
    else:
        tree_seconds = make_session(folder, args.n, args.dim, args.groups)
        print(
            f"session of {args.n} images x {args.dim} features; tree built in {tree_seconds:.1f} s",
            flush=True,
        )
    print("| re-cut | groups | in-process s | `imgclust recut` wall s |\n|---|---|---|---|")
    for how in ("default", "finer", "coarser", "default"):
        seconds, k = time_in_process(folder, how)
        # The command then does the same step from where the in-process one left the session.
        flag = {"finer": "--finer", "coarser": "--coarser", "default": "--default"}[how]
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "imgclust_desktop.cli", "recut", str(folder), flag, "--force"],
            capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )  # fmt: skip
        wall = time.perf_counter() - started
        if done.returncode != 0:
            print(done.stdout, done.stderr, file=sys.stderr)
            return 1
        print(f"| {how} | {k} | {seconds:.3f} | {wall:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
