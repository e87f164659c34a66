"""How long a re-cut of the cluster tree takes at 100k images: the core plan + apply, and the window's path.

    python bench/recut.py [--n 100000] [--groups 60] [--tree-cache FILE.npz]

Builds a synthetic session (random blobs, a real ClusterTree from core/tree.build_tree, --k N to skip
scoring the levels; the tree is kept in --tree-cache so a rerun skips the build), then times, per target level: plan_recut + apply_recut on the
session alone, and MainWindow.granularity.recut(k) with the views notified and the event queue drained
(repaint included; offscreen). Wall and CPU time are printed: on a loaded machine the CPU time is the
steadier figure. Target: the window's re-cut under 100 ms at 100k images.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def blobs(n: int, groups: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-1, 1, size=(groups, dim))
    truth = rng.integers(0, groups, size=n)
    return (centres[truth] + rng.normal(0, 0.08, size=(n, dim))).astype(np.float32)


def load_or_build_tree(points: np.ndarray, cache: Path | None, k: int | None = None):
    from imgclust_desktop.core.cluster import ClusterParams, _fit_k, choose_k
    from imgclust_desktop.core.tree import ClusterTree, build_tree

    if cache is not None and cache.exists():
        data = np.load(cache, allow_pickle=False)
        return ClusterTree(
            leaf_of=data["leaf_of"], linkage=data["linkage"], default_k=int(data["default_k"]),
            levels=[int(v) for v in data["levels"]],
        )  # fmt: skip
    params = ClusterParams(seed=0)
    start = time.perf_counter()
    tree = build_tree(
        points, points, choose=choose_k, fit_flat=lambda v: _fit_k(points, "kmeans", v, params, None), k=k
    )
    print(f"build_tree: {time.perf_counter() - start:.1f} s ({tree.n_leaves} leaves)", flush=True)
    if cache is not None:
        np.savez(
            cache, leaf_of=tree.leaf_of, linkage=tree.linkage, default_k=tree.default_k, levels=tree.levels
        )
    return tree


def make_session(points: np.ndarray, tree):
    from imgclust_desktop.core.recut import apply_auto_names
    from imgclust_desktop.core.session import ClusterInfo, Session

    k = tree.default_k
    nodes = tree.node_of_clusters(k)
    session = Session(
        paths=[f"/photos/g{i % 97:02d}/img_{i:06d}.jpg" for i in range(len(points))],
        features=points,
        coords=points[:, :2].copy(),
        labels=tree.cut(k),
        clusters={c: ClusterInfo(c, f"Cluster {c}", node=int(nodes[c])) for c in range(k)},
        tree=tree,
        level=k,
    )
    session._refresh_medoids(session.clusters)
    apply_auto_names(session, None, tree.leaf_of)
    return session


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=60)
    parser.add_argument("--tree-cache", type=Path, default=None)
    parser.add_argument("--k", type=int, default=None, help="the default level (skips scoring levels)")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from imgclust_desktop.core.recut import apply_recut, plan_recut

    points = blobs(args.n, args.groups)
    tree = load_or_build_tree(points, args.tree_cache, args.k)
    targets = sorted({tree.levels[0], tree.default_k, tree.finer(tree.default_k), min(2000, tree.n_leaves)})
    print(f"{args.n:,} images, {tree.n_leaves:,} leaves, default {tree.default_k}, levels {tree.levels}")
    print(f"load average: {os.getloadavg()}")

    session = make_session(points, tree)
    print("core: plan_recut + apply_recut")
    for k in [*targets, tree.default_k]:
        c0, t0 = time.process_time(), time.perf_counter()
        plan = plan_recut(session, k)
        t1 = time.perf_counter()
        apply_recut(session, plan)
        t2, c2 = time.perf_counter(), time.process_time()
        print(
            f"  k={k:5d}: plan {ms(t1 - t0)}  apply {ms(t2 - t1)}  total {ms(t2 - t0)}  (CPU {ms(c2 - c0)})"
        )

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from imgclust_desktop.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv)
    window = MainWindow(
        QSettings(str(Path(os.environ.get("TMPDIR", "/tmp")) / "bench-recut.ini"), QSettings.Format.IniFormat)
    )
    window.resize(1400, 900)
    window.show()
    window.model.set_session(make_session(points, tree))
    app.processEvents()
    print("window: granularity.recut(k) + views notified + event queue drained (repaint)")
    for k in [*targets, tree.default_k]:
        c0, t0 = time.process_time(), time.perf_counter()
        window.granularity.recut(k)
        t1 = time.perf_counter()
        app.processEvents()
        t2, c2 = time.perf_counter(), time.process_time()
        print(
            f"  k={k:5d}: recut+notify {ms(t1 - t0)}  repaint {ms(t2 - t1)}  total {ms(t2 - t0)}  (CPU {ms(c2 - c0)})"
        )
    c0, t0 = time.process_time(), time.perf_counter()
    window.model.undo_stack.undo()
    app.processEvents()
    print(f"  undo: {ms(time.perf_counter() - t0)}  (CPU {ms(time.process_time() - c0)})")
    print(f"load average: {os.getloadavg()}")
    window.close()


if __name__ == "__main__":
    main()
