"""A session clustered with the real cluster tree (core/tree.build_tree) on blobs with two scales."""

from __future__ import annotations

from typing import Any

import numpy as np


def two_scale_points(themes: int, kinds: int, per_kind: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Broad themes far apart, each of several kinds close together; (points, kind of each row)."""
    rng = np.random.default_rng(seed)
    theme_centres = rng.uniform(-4, 4, size=(themes, 8))
    points, kinds_of = [], []
    for t in range(themes):
        for k in range(kinds):
            centre = theme_centres[t] + rng.normal(0, 0.5, size=8)
            points.append(centre + rng.normal(0, 0.03, size=(per_kind, 8)))
            kinds_of += [t * kinds + k] * per_kind
    return np.concatenate(points).astype(np.float32), np.asarray(kinds_of)


def make_tree_session(
    themes: int = 3, kinds: int = 3, per_kind: int = 12, *, seed: int = 0, root: str = "/data/photos"
) -> Any:
    """A session whose labels are the default cut of a real ClusterTree, cluster nodes and names set."""
    from imgclust_desktop.core.cluster import ClusterParams, _fit_k, choose_k
    from imgclust_desktop.core.recut import apply_auto_names
    from imgclust_desktop.core.session import ClusterInfo, Session
    from imgclust_desktop.core.tree import build_tree

    points, kind = two_scale_points(themes, kinds, per_kind, seed)
    params = ClusterParams(seed=seed)
    tree = build_tree(
        points,
        points,
        choose=choose_k,
        fit_flat=lambda v, init: _fit_k(points, "kmeans", v, params, None, init),
        seed=seed,
    )
    k = tree.default_k
    labels = tree.cut(k)
    nodes = tree.node_of_clusters(k)
    paths = [f"{root}/kind{kd:02d}/img_{i:05d}.jpg" for i, kd in enumerate(kind.tolist())]
    session = Session(
        paths=paths,
        features=points,
        coords=points[:, :2].copy(),
        labels=labels,
        clusters={c: ClusterInfo(c, f"Cluster {c}", node=int(nodes[c])) for c in range(k)},
        tree=tree,
        level=k,
    )
    session._refresh_medoids(session.clusters)
    apply_auto_names(session, None, tree.leaf_of)
    return session
