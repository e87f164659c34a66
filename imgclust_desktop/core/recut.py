"""Re-cut a session's cluster tree at another level, carrying the person's curation where it still applies.

A re-cut changes which tree nodes are the clusters; nothing is recomputed (no features, no map). What the
person did is kept by what it is attached to:
- a name (rename) and a cluster's exclusion belong to a tree node: they show wherever that node is a
  cluster; at a level where it is split or merged they are set aside (with a warning) and come back with
  the node (kept in session.params["tree_curation"]);
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
    set_aside = curation_by_node(session)
    for cid, node in enumerate(new_nodes.tolist()):
        clusters[cid] = ClusterInfo(cid, f"Cluster {cid}", None, node=int(node))
        previous = node_to_old.get(int(node))
        if previous is not None:
            info = old[previous]
            clusters[cid] = dataclasses.replace(
                clusters[cid], name=info.name, excluded=info.excluded, renamed=info.renamed
            )
        elif int(node) in set_aside:
            name, excluded = set_aside[int(node)]
            clusters[cid] = dataclasses.replace(
                clusters[cid], name=name or clusters[cid].name, renamed=bool(name), excluded=excluded
            )
            kept.append(f"{name or 'a group'!r} is back with your {'name' if name else 'exclusion'}")
    labels = base.copy()
    # Clusters the person made (no tree node) stay, with their images, at every level.
    next_id = len(new_nodes)
    present = set(np.unique(session.labels).tolist())
    handmade = {cid: info for cid, info in old.items() if info.node is None and cid in present}
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
        if info.node is None or info.node in carried or info.id not in present:
            continue
        if info.renamed:
            warnings.append(
                f"the name {info.name!r} is not shown at {k} groups (that group is split or merged); "
                "it comes back at a level where the group is whole again"
            )
        if info.excluded:
            warnings.append(
                f"{info.name!r} is excluded from export, but at {k} groups that group is split or merged: "
                "its images will be exported unless you exclude them again"
            )
    if moved.size and not lost_moves:
        kept.append(f"{moved.size} image(s) you moved stay where you put them")
    return RecutPlan(k, labels, clusters, warnings, kept)


def apply_recut(session: Session, plan: RecutPlan) -> None:
    """Make the plan the session's state: labels, clusters (with medoids), level; one "recut" edit logged."""
    previous_level = session.level
    # Names and exclusions of tree nodes that stop being clusters are set aside, to come back with them.
    aside = curation_by_node(session)
    for info in session.clusters.values():
        if info.node is not None and (info.renamed or info.excluded):
            aside[int(info.node)] = (info.name if info.renamed else "", bool(info.excluded))
    for info in plan.clusters.values():
        aside.pop(info.node, None)
    session.params["tree_curation"] = {str(node): list(v) for node, v in sorted(aside.items())}
    session.labels = plan.labels.copy()
    session.clusters = dict(plan.clusters)
    session.level = int(plan.k)
    session._refresh_medoids(session.clusters)
    apply_auto_names(session, session.leaf_terms, session.tree.leaf_of if session.tree is not None else None)
    session.edits.append(
        {"op": "recut", "time": round(time.time(), 3), "level": int(plan.k), "previous_level": previous_level}
    )


def curation_by_node(session: Session) -> dict[int, tuple[str, bool]]:
    """Names and exclusions set aside for tree nodes that are not clusters at the current level."""
    stored = session.params.get("tree_curation") or {}
    return {int(node): (str(v[0]), bool(v[1])) for node, v in stored.items()}


def apply_auto_names(session: Session, terms: object | None, leaf_of: np.ndarray | None) -> None:
    """Give every cluster the person has not renamed its automatic name (see names.cluster_names)."""
    from .names import cluster_names

    siblings = None
    tree = session.tree
    if tree is not None and session.level is not None:
        parent_cut = tree.cut(tree.coarser(session.level))
        ids, first = np.unique(session.labels, return_index=True)
        siblings = {
            int(c): int(parent_cut[r]) for c, r in zip(ids.tolist(), first.tolist(), strict=True) if c >= 0
        }
    names = cluster_names(session.labels, terms, leaf_of, session.paths, siblings=siblings)
    for cid, name in names.items():
        info = session.clusters.get(cid)
        if info is not None and not info.renamed:
            session.clusters[cid] = dataclasses.replace(info, name=name)
