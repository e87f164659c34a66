"""Time `imgclust recut` on a saved session of N images (default 100,000) with a real cluster tree.

Usage: python bench/recut_session.py [--n 100000] [--dim 1280] [--groups 300] [--work DIR [--reuse]]

Builds a session folder once (synthetic embeddings: `groups` Gaussian blobs in 10-d for the clustering space,
random float32 features of `dim` columns as features.npy, the tree from core/tree.build_tree, 8 words per
tree leaf as the default model's names have), then times:
- in-process: load (features memory-mapped), plan_recut + apply_recut, save, for --default, --finer, --coarser;
- the whole `imgclust recut` command in a fresh process (interpreter start and imports included),
each as wall and CPU seconds, with the load average beside them.
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
    from imgclust_desktop.core.recut import apply_recut, plan_recut, remember_level_medoids
    from imgclust_desktop.core.session import ClusterInfo, Session
    from imgclust_desktop.core.tree import build_tree

    rng = np.random.default_rng(seed)
    centres = rng.uniform(-1, 1, size=(groups, 10)).astype(np.float32)
    truth = rng.integers(0, groups, size=n)
    space = centres[truth] + rng.normal(0, 0.04, size=(n, 10)).astype(np.float32)
    started = time.perf_counter()
    params = ClusterParams(seed=seed)
    tree = build_tree(
        space, space, choose=choose_k, fit_flat=lambda k, init: _fit_k(space, "kmeans", k, params, None, init)
    )
    tree_seconds = time.perf_counter() - started
    features = rng.normal(size=(n, dim)).astype(np.float32)
    paths = [f"/photos/{g:03d}/img{i:07d}.jpg" for i, g in enumerate(truth.tolist())]
    # As the pipeline leaves it: each cluster knows its tree node (a cluster without one is a hand-made
    # cluster, which a re-cut keeps whole at every level).
    nodes = tree.node_of_clusters(tree.default_k)
    session = Session(
        paths=paths,
        features=features,
        coords=space[:, :2],
        labels=tree.cut(tree.default_k),
        clusters={c: ClusterInfo(c, f"Cluster {c}", node=int(node)) for c, node in enumerate(nodes.tolist())},
        tree=tree,
        level=tree.default_k,
        leaf_terms=synthetic_terms(tree, truth),
    )
    apply_recut(session, plan_recut(session, tree.default_k))  # medoids and names
    remember_level_medoids(tree, features)  # as the pipeline does once it has the tree
    session.edits.clear()
    session_io.save(session, folder, report=False)
    return tree_seconds


def synthetic_terms(tree, truth: np.ndarray, words: int = 1000, top: int = 8):
    """Leaf words shaped as the default model's ImageNet head leaves them (8 per leaf, a 1,000-word
    vocabulary), drawn from each leaf's true group, so names come from words as in a real session."""
    from imgclust_desktop.core.names import LeafTerms

    m = tree.n_leaves
    group = truth[np.unique(tree.leaf_of, return_index=True)[1]]
    ids = ((group[:, None] * 3 + np.arange(top)) % words).astype(np.int32)
    weight = (np.bincount(tree.leaf_of, minlength=m)[:, None] * 0.6 ** np.arange(top)).astype(np.float32)
    return LeafTerms([f"word{i}" for i in range(words)], ids, weight)


def time_in_process(folder: Path, how: str) -> tuple[dict[str, tuple[float, float]], int]:
    """One re-cut in this process: {step: (wall s, CPU s)} for load, plan + apply and save, and the level."""
    from imgclust_desktop.core import session as session_io
    from imgclust_desktop.core.recut import apply_recut, plan_recut

    steps: dict[str, tuple[float, float]] = {}
    clock = (time.perf_counter(), time.process_time())

    def lap(name: str) -> None:
        nonlocal clock
        now = (time.perf_counter(), time.process_time())
        steps[name] = (now[0] - clock[0], now[1] - clock[1])
        clock = now

    session = session_io.load(folder, mmap=True)
    lap("load")
    tree = session.tree
    k = {"finer": tree.finer(session.level), "coarser": tree.coarser(session.level)}.get(how, tree.default_k)
    apply_recut(session, plan_recut(session, k))
    lap("plan + apply")
    session_io.save(session, folder, report=False, write_features=False, write_tree=False)
    lap("save")
    return steps, k


def time_command(folder: Path, flag: str) -> tuple[float, float] | None:
    """The whole `imgclust recut` in a fresh process: (wall s, CPU s of the process), None if it failed.

    It runs from the folder holding the imgclust_desktop this script imported: `-m` looks in the working
    folder first, so from another checkout it would time that checkout's code."""
    import resource

    import imgclust_desktop

    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "imgclust_desktop.cli", "recut", str(folder), flag, "--force"],
        capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"},
        cwd=Path(imgclust_desktop.__file__).resolve().parents[1],
    )  # fmt: skip
    wall = time.perf_counter() - started
    if done.returncode != 0:
        print(done.stdout, done.stderr, file=sys.stderr)
        return None
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - used.ru_utime) + (after.ru_stime - used.ru_stime)


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
    print(
        "seconds, wall / CPU:\n"
        "| re-cut | groups | load | plan + apply | save | in-process | `imgclust recut` | load average |\n"
        "|---|---|---|---|---|---|---|---|"
    )
    for how in ("default", "finer", "coarser", "default"):
        steps, k = time_in_process(folder, how)
        # The command then does the same step from where the in-process one left the session.
        command = time_command(
            folder, {"finer": "--finer", "coarser": "--coarser", "default": "--default"}[how]
        )
        if command is None:
            return 1
        total = tuple(sum(v[i] for v in steps.values()) for i in (0, 1))
        cells = [f"{w:.3f} / {c:.3f}" for w, c in (*steps.values(), total, command)]
        load = " ".join(f"{v:.2f}" for v in os.getloadavg())
        print(f"| {how} | {k} | {' | '.join(cells)} | {load} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
