"""Re-cut a session's cluster tree at another level, carrying the person's curation where it still applies.

A re-cut changes which tree nodes are the clusters; nothing is recomputed (no features, no map). What the
person did is kept by what it is attached to:
- a name (rename) and a cluster's exclusion belong to a tree node: they come back wherever that node is a
  cluster, and are lost, with a warning, at a level where the node is split or merged into another;
- images moved by hand into a cluster stay with it where its node is still a cluster, or always when the
  person made that cluster (split, new cluster); otherwise they return to their tree group, with a warning;
- an excluded image stays excluded at every level.
`plan_recut` says all of this before anything changes; `apply_recut` makes it so (and logs one edit).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np

from .session import NOISE, ClusterInfo, Session


class RecutError(Exception):
    """The session cannot be re-cut (no cluster tree); str(e) says why."""


@dataclass
class RecutPlan:
    k: int  # the level (number of tree groups)
    labels: np.ndarray  # int [n]: the new labels, curation applied
    clusters: dict[int, ClusterInfo]
    warnings: list[str] = field(default_factory=list)  # curation that cannot apply at this level
    kept: list[str] = field(default_factory=list)  # curation carried over, in words


def plan_recut(session: Session, k: int) -> RecutPlan:
    """What re-cutting at k groups gives, and which edits survive it (nothing is changed)."""
    tree = session.tree
    if tree is None:
        raise RecutError("this session has no cluster tree (it was clustered with another method)")
    k = tree.clamp(k)
    base = tree.cut(k)
    new_nodes = tree.node_of_clusters(k)  # cluster id of the cut -> tree node
    node_to_new = {int(node): cid for cid, node in enumerate(new_nodes.tolist())}
    old = session.clusters
    old_level = session.level if session.level is not None else tree.default_k
    old_base = tree.cut(old_level)
    old_nodes = tree.node_of_clusters(old_level)
    node_to_old = {info.node: cid for cid, info in old.items() if info.node is not None}

    clusters: dict[int, ClusterInfo] = {}
    warnings: list[str] = []
    kept: list[str] = []
    for cid, node in enumerate(new_nodes.tolist()):
        clusters[cid] = ClusterInfo(cid, f"Cluster {cid}", None, node=int(node))
        previous = node_to_old.get(int(node))
        if previous is not None:
            info = old[previous]
            clusters[cid] = dataclasses.replace(
                clusters[cid], name=info.name, excluded=info.excluded, renamed=info.renamed
            )
    labels = base.copy()
    # Clusters the person made (no tree node) stay, with their images, at every level.
    next_id = len(new_nodes)
    handmade = {cid: info for cid, info in old.items() if info.node is None and np.any(session.labels == cid)}
    for cid, info in sorted(handmade.items()):
        clusters[next_id] = dataclasses.replace(info, id=next_id)
        labels[session.labels == cid] = next_id
        kept.append(f"{info.name!r} ({int(np.sum(session.labels == cid))} images) is kept: you made it")
        next_id += 1
    # Images moved by hand into a tree cluster: their label differs from the tree's at the old level.
    tree_cluster_of_old = np.array([node_to_old.get(int(nd), -2) for nd in old_nodes.tolist()])
    expected = tree_cluster_of_old[old_base]
    moved = np.flatnonzero((session.labels != expected) & ~np.isin(session.labels, list(handmade)))
    lost_moves: dict[str, int] = {}
    for row in moved.tolist():
        target = int(session.labels[row])
        if target == NOISE:
            labels[row] = NOISE
            continue
        info = old.get(target)
        new_id = None if info is None or info.node is None else node_to_new.get(info.node)
        if new_id is not None:
            labels[row] = new_id
        else:
            name = session.name_of(target)
            lost_moves[name] = lost_moves.get(name, 0) + 1
    for name, count in lost_moves.items():
        warnings.append(
            f"{count} image(s) you moved into {name!r} go back to their tree group: "
            f"{name!r} is not a group at {k} groups"
        )
    carried = set(node_to_new)
    for info in old.values():
        if info.node is None or info.node in carried or not np.any(session.labels == info.id):
            continue
        if info.renamed:
            warnings.append(f"the name {info.name!r} is not used at {k} groups (that group is split or merged)")
        if info.excluded:
            warnings.append(f"{info.name!r} was excluded from export; at {k} groups that group does not exist")
    if moved.size and not lost_moves:
        kept.append(f"{moved.size} image(s) you moved stay where you put them")
    return RecutPlan(k, labels, clusters, warnings, kept)


def apply_recut(session: Session, plan: RecutPlan) -> None:
    """Make the plan the session's state: labels, clusters (with medoids), level; one "recut" edit logged."""
    previous_level = session.level
    session.labels = plan.labels.copy()
    session.clusters = dict(plan.clusters)
    session.level = int(plan.k)
    session._refresh_medoids(session.clusters)
    apply_auto_names(session, session.leaf_terms, session.tree.leaf_of if session.tree is not None else None)
    session.edits.append(
        {"op": "recut", "time": round(time.time(), 3), "level": int(plan.k), "previous_level": previous_level}
    )


def apply_auto_names(session: Session, terms: object | None, leaf_of: np.ndarray | None) -> None:
    """Give every cluster the person has not renamed its automatic name (see names.cluster_names)."""
    from .names import cluster_names

    siblings = None
    tree = session.tree
    if tree is not None and session.level is not None:
        parent_cut = tree.cut(tree.coarser(session.level))
        siblings = {}
        for cid in session.cluster_ids():
            siblings[cid] = int(parent_cut[int(np.flatnonzero(session.labels == cid)[0])])
    names = cluster_names(session.labels, terms, leaf_of, session.paths, siblings=siblings)
    for cid, name in names.items():
        info = session.clusters.get(cid)
        if info is not None and not info.renamed:
            session.clusters[cid] = dataclasses.replace(info, name=name)
