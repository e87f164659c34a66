"""How long a re-cut of the cluster tree takes at 100k images: the core plan + apply, and the window's path.

    python bench/recut.py [--n 100000] [--groups 60] [--tree-cache FILE.npz] [--dim 16] [--names terms]
                          [--repeat 3] [--stored-medoids] [--cold] [--levels K ...]

Builds a synthetic session (random blobs, a real ClusterTree from core/tree.build_tree, --k N to skip
scoring the levels; the tree is kept in --tree-cache so a rerun skips the build), then times, per target
level (the coarsest, the default, ~300, ~2,000, and back to the default): plan_recut + apply_recut on the
session alone, and MainWindow.granularity.recut(k) with the views notified and the event loop run until
idle (the repaint of the map, legend, grid and dendrogram included; offscreen). The window is timed with
the Clusters tab in front (as it opens) and with the Dendrogram tab in front, --repeat times each on a
fresh session (medians printed); the window's startup objects are frozen (gc.freeze) as imgclust-desktop
freezes them once its window is up. --dim sets the width of the stored features (the medoids read them;
the default model's are 1280 wide); --names terms gives every leaf words as the default model does
(folders: names from parent folders). --stored-medoids remembers the medoids of every stop of the
window's slider first (the tree's stored levels and the steps between them), as the pipeline does for the
sessions it makes, so a re-cut there reads no features, and adds the stored level nearest 2,000 to the
targets (2,000 itself is a level typed in: its new groups' medoids are computed); without it every level
costs what a typed level costs. After opening a session the window works out the slider stops' names and
drawn trees while it is idle, as imgclust-desktop does (core/recut.prepare_levels; the core section prints
how long that takes); --cold turns that off, so every level's names are worked out when it is shown. The
core section is always cold. The window's autosave (every 10 edits, once the person pauses) does not fall
inside the timed steps. Wall and CPU time are printed: on a loaded machine the CPU time is the steadier figure.
Target: the window's re-cut under 100 ms at 100k images.
"""

from __future__ import annotations

import argparse
import os
import statistics
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
        points,
        points,
        choose=choose_k,
        fit_flat=lambda v, init: _fit_k(points, "kmeans", v, params, None, init),
        k=k,
    )
    print(f"build_tree: {time.perf_counter() - start:.1f} s ({tree.n_leaves} leaves)", flush=True)
    if cache is not None:
        np.savez(
            cache, leaf_of=tree.leaf_of, linkage=tree.linkage, default_k=tree.default_k, levels=tree.levels
        )
    return tree


def wide_features(points: np.ndarray, dim: int, seed: int = 1) -> np.ndarray:
    """The points seen through a random projection to `dim` columns (the stored features' width)."""
    if dim == points.shape[1]:
        return points
    rng = np.random.default_rng(seed)
    return (points @ rng.normal(0, 1, size=(points.shape[1], dim)).astype(np.float32)).astype(np.float32)


def synthetic_terms(tree, words: int = 1000, seed: int = 2):
    """Leaf words as names.leaf_terms gives them: a leaf's top words, more alike under one branch."""
    from imgclust_desktop.core.names import TOP_TERMS, LeafTerms

    rng = np.random.default_rng(seed)
    m = tree.n_leaves
    group = tree.leaf_labels(min(40, m))  # leaves of one of 40 broad groups share most of their words
    base = rng.integers(0, words, size=(int(group.max()) + 1, TOP_TERMS))[group]
    mixed = np.where(rng.random((m, TOP_TERMS)) < 0.7, base, rng.integers(0, words, size=(m, TOP_TERMS)))
    weight = np.sort(rng.random((m, TOP_TERMS)).astype(np.float32), axis=1)[:, ::-1] * 4
    return LeafTerms([f"word{i}" for i in range(words)], mixed.astype(np.int32), np.ascontiguousarray(weight))


def make_session(points: np.ndarray, tree, features: np.ndarray | None = None, terms=None):
    """A session at the tree's default level, with a tree object of its own: nothing cached per tree node
    (medoids, cuts) carries over from an earlier session, so every level is a first visit again; only the
    stored levels' medoids that the given tree remembers (as a saved session's tree.npz holds them)."""
    from imgclust_desktop.core.recut import apply_auto_names
    from imgclust_desktop.core.session import ClusterInfo, Session
    from imgclust_desktop.core.tree import ClusterTree

    stored = dict(tree.node_medoids)
    tree = ClusterTree(
        leaf_of=tree.leaf_of, linkage=tree.linkage, default_k=tree.default_k, levels=tree.levels
    )
    tree.node_medoids.update(stored)
    k = tree.default_k
    nodes = tree.node_of_clusters(k)
    session = Session(
        paths=[f"/photos/g{i % 97:02d}/img_{i:06d}.jpg" for i in range(len(points))],
        features=points if features is None else features,
        coords=points[:, :2].copy(),
        labels=tree.cut(k),
        clusters={c: ClusterInfo(c, f"Cluster {c}", node=int(nodes[c])) for c in range(k)},
        tree=tree,
        level=k,
        leaf_terms=terms,
    )
    session._refresh_medoids(session.clusters)
    apply_auto_names(session, terms, tree.leaf_of)
    return session


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def count_paints(item) -> list[int]:
    """[number of times item.paint has run]: the bench checks the map is repainted within its timing."""
    painted = [0]
    paint = item.paint

    def counted(*args):
        painted[0] += 1
        return paint(*args)

    item.paint = counted
    return painted


def drain(app) -> None:
    """Run the event loop until it is idle: layouts done in batches and the repaints they post (a paint
    posts further work; one processEvents call leaves it for the next)."""
    quiet = 0
    for _ in range(50):
        start = time.perf_counter()
        app.processEvents()
        quiet = quiet + 1 if time.perf_counter() - start < 0.002 else 0
        if quiet == 2:
            return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=60)
    parser.add_argument("--tree-cache", type=Path, default=None)
    parser.add_argument("--k", type=int, default=None, help="the default level (skips scoring levels)")
    parser.add_argument("--dim", type=int, default=16, help="width of the stored features (16: the points)")
    parser.add_argument("--names", choices=("folders", "terms"), default="folders")
    parser.add_argument("--repeat", type=int, default=1, help="window passes per tab (medians printed)")
    parser.add_argument(
        "--stored-medoids",
        action="store_true",
        help="remember the slider stops' medoids first, as the pipeline does (stored levels and the steps "
        "between them), and also visit the stored level nearest 2,000",
    )
    parser.add_argument(
        "--cold",
        action="store_true",
        help="the window does not work out the slider stops ahead while idle (core/recut.prepare_levels): "
        "each level's names and drawn tree are worked out when it is first shown",
    )
    parser.add_argument(
        "--levels",
        type=int,
        nargs="*",
        default=[],
        help="more levels to visit (for example every stored one)",
    )
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from imgclust_desktop.core.recut import apply_recut, plan_recut, prepare_levels

    points = blobs(args.n, args.groups)
    tree = load_or_build_tree(points, args.tree_cache, args.k)
    near_300 = min(tree.levels, key=lambda v: abs(v - 300))
    targets = sorted({tree.levels[0], tree.default_k, near_300, min(2000, tree.n_leaves)})
    features = wide_features(points, args.dim)
    if args.stored_medoids:
        from imgclust_desktop.core.recut import remember_level_medoids

        remember_level_medoids(tree, features)  # kept on the tree: every fresh session below shares it
        targets = sorted({*targets, min(tree.levels, key=lambda v: abs(v - 2000))})
    targets = sorted({*targets, *(tree.clamp(v) for v in args.levels)})
    terms = synthetic_terms(tree) if args.names == "terms" else None
    print(f"{args.n:,} images, {tree.n_leaves:,} leaves, default {tree.default_k}, levels {tree.levels}")
    print(f"features {features.shape[1]} wide, names from {args.names}")
    print(f"load average: {os.getloadavg()}")

    session = make_session(points, tree, features, terms)
    ahead = make_session(points, tree, features, terms)
    steps, t0 = [], time.perf_counter()
    for _level in prepare_levels(ahead):
        steps.append(time.perf_counter() - t0 - sum(steps))
    print(
        f"core: prepare_levels (what the window works out while idle): {len(steps)} levels in "
        f"{ms(sum(steps))}, the longest step {ms(max(steps, default=0.0))}"
    )
    print("core: plan_recut + apply_recut (nothing worked out ahead)")
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

    from imgclust_desktop.gui.app import freeze_startup_objects
    from imgclust_desktop.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv)
    window = MainWindow(
        QSettings(str(Path(os.environ.get("TMPDIR", "/tmp")) / "bench-recut.ini"), QSettings.Format.IniFormat)
    )
    window.resize(1400, 900)
    window.granularity.prepare_ahead = not args.cold
    window.show()
    freeze_startup_objects()  # as imgclust-desktop does once its window is up
    window.central.setCurrentWidget(window.scatter)  # the map, as after a run (not the empty state)
    map_paints = count_paints(window.scatter.item)
    steps = [*targets, tree.default_k]
    for tab in ("clusters", "dendrogram"):
        window.docks[tab].raise_()
        timings: list[list[tuple[float, ...]]] = [[] for _ in [*steps, "undo"]]
        for _ in range(args.repeat):
            window.model.set_session(make_session(points, tree, features, terms))  # first visits again
            drain(app)
            while window.granularity._ahead_timer.isActive():  # the idle work on the slider's stops
                app.processEvents()
            for step, k in enumerate(steps):
                painted = map_paints[0]
                c0, t0 = time.process_time(), time.perf_counter()
                window.granularity.recut(k)
                t1 = time.perf_counter()
                drain(app)
                t2, c2 = time.perf_counter(), time.process_time()
                assert map_paints[0] > painted, "the map was not repainted"
                timings[step].append((t1 - t0, t2 - t1, t2 - t0, c2 - c0))
            c0, t0 = time.process_time(), time.perf_counter()
            window.model.undo_stack.undo()
            drain(app)
            timings[-1].append((0.0, 0.0, time.perf_counter() - t0, time.process_time() - c0))
        print(
            f"window, {tab} tab in front: granularity.recut(k) + views notified + event loop until idle"
            + (f" (median of {args.repeat} fresh sessions)" if args.repeat > 1 else "")
        )
        print(
            "  (--cold: nothing worked out ahead)" if args.cold else "  (slider stops worked out while idle)"
        )
        for k, runs in zip([*steps, "undo"], timings, strict=True):
            notify, repaint, total, cpu = (statistics.median(column) for column in zip(*runs, strict=True))
            if k == "undo":
                print(f"  undo:   {ms(total)}  (CPU {ms(cpu)})")
            else:
                print(
                    f"  k={k:5d}: recut+notify {ms(notify)}  repaint {ms(repaint)}  total {ms(total)}"
                    f"  (CPU {ms(cpu)})"
                )
    print(f"load average: {os.getloadavg()}")
    window.close()


if __name__ == "__main__":
    main()
