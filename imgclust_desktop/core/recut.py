"""Re-cut a session's cluster tree at another level, carrying the person's curation where it still applies.

A re-cut changes which tree nodes are the clusters; nothing is recomputed (no features, no map). What the
person did is kept by what it is attached to:
- a name (rename) and a cluster's exclusion belong to a tree node: they show wherever that node is a
  cluster; at a level where it is split or merged they are set aside (with a warning) and come back with
  the node (kept in session.node_curation);
- images moved by hand into a cluster stay with it where its node is still a cluster, or always when the
  person made that cluster (split, new cluster); otherwise they return to their tree group, with a warning;
- an excluded image stays excluded at every level.
`plan_recut` says all of this before anything changes; `apply_recut` makes it so (and logs one edit).
"""

from __future__ import annotations

import dataclasses
import time
import weakref
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeVar

import numpy as np

from .labels import label_counts
from .session import NOISE, ClusterInfo, Session, medoids_of
from .tree import ClusterTree, leaf_spans

T = TypeVar("T")


class RecutError(Exception):
    """The session cannot be re-cut (no cluster tree); str(e) says why."""


@dataclass
class RecutPlan:
    k: int  # the level (number of tree groups)
    labels: np.ndarray  # int [n]: the new labels, curation applied
    # a new tree group has no name yet ("") until apply_recut names it, unless `named`
    clusters: dict[int, ClusterInfo]
    warnings: list[str] = field(default_factory=list)  # curation that cannot apply at this level
    kept: list[str] = field(default_factory=list)  # curation carried over, in words
    node_curation: dict[int, dict] = field(default_factory=dict)  # Session.node_curation after the plan
    # every record is new and has its automatic name and medoid already (a cut no image moved by hand
    # crosses): apply_recut has nothing to work out for them
    named: bool = False


def plan_recut(session: Session, k: int) -> RecutPlan:
    """What re-cutting at k groups gives, and which edits survive it (nothing is changed)."""
    tree = session.tree
    if tree is None:
        raise RecutError("this session has no cluster tree (it was clustered with another method)")
    k = tree.clamp(k)
    base = tree.cut(k)
    new_nodes = level_nodes(tree, k)  # cluster id of the cut -> tree node
    old = session.clusters
    old_ids, old_nodes = cluster_nodes(old)
    node_list = new_nodes.tolist()
    treed = old_nodes >= 0
    warnings: list[str] = []
    kept: list[str] = []
    # Clusters the person made (no tree node) stay, with their images, at every level.
    present = set(label_counts(session.labels)[0].tolist())
    handmade = {cid: info for cid, info in old.items() if info.node is None and cid in present}
    # Images moved by hand into a tree cluster: their label differs from the tree's at the old level.
    # (the tree group of a row is the cluster whose node holds its leaf: a uniform cut or a drilled one)
    expected = leaf_owner(tree, (old_nodes[treed], old_ids[treed]))[tree.leaf_of]
    moved = np.flatnonzero((session.labels != expected) & ~np.isin(session.labels, list(handmade)))
    curated = [info for info in old.values() if (info.renamed or info.excluded) and info.node is not None]
    # With nothing made or moved by hand the clusters are exactly the tree's groups at k: each record is
    # made once with its name (the level's, worked out once per tree) and its medoid (kept per tree node).
    named = not handmade and moved.size == 0
    if named:
        names = _level_names(tree, k, session.leaf_terms, tree.leaf_of, session.paths)
        medoids = _node_medoids(tree, session.features, new_nodes, base)
        clusters = {
            cid: ClusterInfo(cid, name, medoid, False, node)
            for cid, (name, medoid, node) in enumerate(zip(names.values(), medoids, node_list, strict=True))
        }
        carried = curated  # only what the person set on a group: the automatic names are the level's
    else:
        # no name yet: apply_recut names every cluster (formatting 25,000 "Cluster N" first took 6 ms)
        clusters = {cid: ClusterInfo(cid, "", None, False, node) for cid, node in enumerate(node_list)}
        carried = [old[cid] for cid in old_ids[treed].tolist()]
    # a node that was a cluster before keeps its name and exclusion
    carried_nodes = np.fromiter((info.node for info in carried), np.int64, count=len(carried))
    stays = np.flatnonzero(np.isin(new_nodes, carried_nodes))
    if stays.size:
        node_to_old = {info.node: info for info in carried}
        for cid in stays.tolist():
            info, made = node_to_old[node_list[cid]], clusters[cid]
            name = info.name if info.renamed or not named else made.name
            clusters[cid] = ClusterInfo(cid, name, made.medoid_index, info.excluded, made.node, info.renamed)
    labels = base.copy()
    next_id = len(new_nodes)
    for cid, info in sorted(handmade.items()):
        clusters[next_id] = dataclasses.replace(info, id=next_id)
        labels[session.labels == cid] = next_id
        kept.append(f"{info.name!r} ({int(np.sum(session.labels == cid))} images) is kept: you made it")
        next_id += 1
    # tree node -> new cluster id, for moved images and curated groups only (25,000 entries otherwise)
    node_to_new = {node: cid for cid, node in enumerate(node_list)} if moved.size or curated else {}
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
    for info in curated:
        if info.node in node_to_new or info.id not in present:
            continue
        if info.renamed:
            warnings.append(
                f"the name {info.name!r} is not used at {k} groups (that group is split or merged;"
                " it comes back where it is whole again)"
            )
        if info.excluded:
            warnings.append(
                f"{info.name!r} was excluded from export; at {k} groups that group does not exist"
            )
    if moved.size and not lost_moves:
        kept.append(f"{moved.size} image(s) you moved stay where you put them")
    memory = _remember(session, clusters, kept, present, curated)
    return RecutPlan(k, labels, clusters, warnings, kept, memory, named)


def _node_medoids(
    tree: ClusterTree, features: np.ndarray, nodes: np.ndarray, labels: np.ndarray
) -> list[int | None]:
    """The medoid row of each cluster of a uniform cut (cluster c is tree node nodes[c], labels the cut):
    the node's from tree.node_medoids, the others computed in one pass over the features (when there are
    features for every row) and kept there. None: no medoid known."""
    kept = tree.node_medoids
    medoids = [kept.get(node) for node in nodes.tolist()]
    todo = [cid for cid, medoid in enumerate(medoids) if medoid is None]
    if todo and features.ndim == 2 and features.shape[0] == len(labels):
        for cid, row in medoids_of(features, labels, todo).items():
            medoids[cid] = kept[int(nodes[cid])] = row
    return medoids


def _remember(
    session: Session,
    clusters: dict[int, ClusterInfo],
    kept: list[str],
    present: set[int] | None = None,
    curated: list[ClusterInfo] | None = None,
) -> dict[int, dict]:
    """Names and exclusions of groups leaving the cut are remembered by tree node; those of the new
    clusters come back (`clusters` is updated). `present`: the clusters with images before the change, and
    `curated`: the tree clusters with a name or an exclusion of the person's, when the caller has them.
    Returns the memory after the change."""
    memory = {int(k): dict(v) for k, v in session.node_curation.items()}
    if present is None:
        present = set(label_counts(session.labels)[0].tolist())
    # only clusters with a name or an exclusion of the person's, or whose node is remembered, have anything
    # to remember or to forget: a plain re-cut into 25,000 groups has none and walks no cluster twice
    if curated is None or memory:
        curated = [
            info
            for info in session.clusters.values()
            if info.node is not None and (info.renamed or info.excluded or info.node in memory)
        ]
    new_nodes = {c.node for c in clusters.values() if c.node is not None} if curated else set()
    for info in curated:
        if info.id not in present:
            continue
        memory.pop(info.node, None)  # a cluster's own state wins over anything remembered
        if info.node not in new_nodes and (info.renamed or info.excluded):
            memory[info.node] = {"name": info.name if info.renamed else None, "excluded": bool(info.excluded)}
    returning = [(cid, c) for cid, c in clusters.items() if c.node in memory] if memory else []
    for cid, c in returning:
        saved = memory.pop(c.node, None)
        if saved is None:
            continue
        name = saved.get("name")
        clusters[cid] = dataclasses.replace(
            c, name=name or c.name, renamed=bool(name), excluded=bool(saved.get("excluded"))
        )
        shown = name or clusters[cid].name or f"Cluster {cid}"
        kept.append(f"{shown!r} is back as you left it (a whole group again)")
    return memory


def apply_recut(session: Session, plan: RecutPlan, *, op: str = "recut", **details: object) -> None:
    """Make the plan the session's state: labels, clusters (with medoids), level, the cluster linkage the
    dendrogram draws; one edit logged (`op`, "recut" unless a drill-down says otherwise)."""
    previous_level = session.level
    before = session.clusters
    session.labels = plan.labels.copy()
    session.clusters = dict(plan.clusters)
    session.level = int(plan.k)
    session.node_curation = dict(plan.node_curation)
    nodes = cluster_nodes(session.clusters)  # read once: the three below ask for them (5 ms at 25,000)
    if not plan.named:
        _set_names_and_medoids(session, before, nodes)
    drawn = cluster_linkage(session, nodes)
    if drawn is not None:
        session.linkage, session.linkage_cluster_ids = drawn
    session.edits.append(
        {
            "op": op,
            "time": round(time.time(), 3),
            "level": int(plan.k),
            "previous_level": previous_level,
            **details,
        }
    )


def _set_names_and_medoids(
    session: Session, before: dict[int, ClusterInfo], nodes: tuple[np.ndarray, np.ndarray]
) -> None:
    """Every cluster's automatic name (unless the person renamed it) and medoid, after a plan that did not
    set them. A record the plan made is seen by no one else yet and takes them in place; one the session
    held before (an expanded cluster's untouched siblings) may sit in the undo history: replaced. (25,000
    new records made twice, plan and apply, were a tenth of a re-cut.)"""
    medoids = cluster_medoids(session, nodes)
    leaf_of = session.tree.leaf_of if session.tree is not None else None
    names = auto_names(session, session.leaf_terms, leaf_of, nodes)
    held = {id(info) for info in before.values()}
    for cid, info in session.clusters.items():
        name = info.name if info.renamed else names.get(cid, info.name)
        medoid = medoids.get(cid)
        if name == info.name and medoid == info.medoid_index:
            continue
        if id(info) in held:
            session.clusters[cid] = ClusterInfo(cid, name, medoid, info.excluded, info.node, info.renamed)
        else:
            info.name, info.medoid_index = name, medoid


def apply_auto_names(session: Session, terms: object | None, leaf_of: np.ndarray | None) -> None:
    """Give every cluster the person has not renamed its automatic name (see names.cluster_names)."""
    for cid, name in auto_names(session, terms, leaf_of).items():
        info = session.clusters.get(cid)
        if info is not None and not info.renamed and info.name != name:
            session.clusters[cid] = dataclasses.replace(info, name=name)


def auto_names(
    session: Session,
    terms: object | None,
    leaf_of: np.ndarray | None,
    nodes: tuple[np.ndarray, np.ndarray] | None = None,
) -> Mapping[int, str]:
    """The automatic name of every cluster with images (read-only; nothing is changed). nodes:
    cluster_nodes of the session's clusters, when the caller has them.

    When the clusters are exactly a cut of the tree (a re-cut with no hand edits in the way), the names
    are those of that cut, worked out once per tree and level (see prepare_levels)."""
    tree = session.tree
    if tree is None or session.level is None:
        from .names import cluster_names

        return cluster_names(session.labels, terms, leaf_of, session.paths)
    ids, nodes = cluster_nodes(session.clusters) if nodes is None else nodes
    level = _uniform_level(session, ids, nodes)
    if level is None:
        return _tree_names(tree, session.labels, ids, nodes, terms, leaf_of, session.paths)
    return _level_names(tree, level, terms, leaf_of, session.paths)


def _tree_names(
    tree: ClusterTree,
    labels: np.ndarray,
    ids: np.ndarray,
    nodes: np.ndarray,
    terms: object | None,
    leaf_of: np.ndarray | None,
    paths: list[str],
) -> dict[int, str]:
    """names.cluster_names with siblings: clusters whose tree nodes merge with each other first (the same
    parent node) get names that differ."""
    from .names import cluster_names

    m = tree.n_leaves
    parent = np.full(2 * m - 1, -1, np.int64)
    ends = tree.linkage[:, :2].astype(np.int64)
    parent[ends[:, 0]] = parent[ends[:, 1]] = np.arange(m, m + len(ends))
    siblings = _by_cluster_id(ids, np.where(nodes >= 0, parent[nodes], -1), labels, -1)
    return cluster_names(labels, terms, leaf_of, paths, siblings=siblings)


def _level_names(
    tree: ClusterTree, k: int, terms: object | None, leaf_of: np.ndarray | None, paths: list[str]
) -> Mapping[int, str]:
    """The names of the uniform k-cut's clusters, kept per tree and level for these words and paths."""

    def work_out() -> tuple[object, object, object, Mapping[int, str]]:
        names = _tree_names(tree, tree.cut(k), np.arange(k), level_nodes(tree, k), terms, leaf_of, paths)
        in_order = {cid: names[cid] for cid in range(k)}  # plan_recut reads them in cluster order
        return terms, leaf_of, paths, MappingProxyType(in_order)  # holding them: their ids stay theirs

    return _kept(tree, "names", (k, id(terms), id(leaf_of), id(paths)), work_out, _KEPT_LEVELS)[3]


def _uniform_level(session: Session, ids: np.ndarray, nodes: np.ndarray) -> int | None:
    """The level k when the session's clusters are exactly the tree's k-cut (clusters 0..k-1 on its nodes,
    every image in its tree group, no cluster made by hand), else None."""
    tree, k = session.tree, session.level
    if tree is None or k is None or k != tree.clamp(k) or len(ids) != k:
        return None
    if not np.array_equal(ids, np.arange(k)) or not np.array_equal(nodes, level_nodes(tree, k)):
        return None
    return k if np.array_equal(session.labels, tree.cut(k)) else None


def level_nodes(tree: ClusterTree, k: int) -> np.ndarray:
    """cut_nodes(tree, k), kept per tree and level (read-only)."""
    return _kept(tree, "cut_nodes", k, lambda: _read_only(cut_nodes(tree, k)), _KEPT_LEVELS)


def prepare_levels(session: Session, levels: list[int] | None = None) -> Iterator[int]:
    """Work out ahead, one level per step, what a re-cut of this session to each stop of the window's slider
    (tree.browse_levels: the stored levels and steps between them) would otherwise compute at the time: the
    clusters' names and the tree drawn above them (the medoids of those levels are stored with the tree
    already). Nothing in the session changes. A generator, so that the window runs one step at a time
    while it is idle (each step is one level: about 25 ms for 25,000 groups at 100,000 images); the levels
    nearest the current one come first."""
    tree = session.tree
    if tree is None or tree.n_leaves < 2:
        return
    current = max(1, session.level or tree.default_k)
    wanted = {tree.clamp(k) for k in (levels if levels is not None else tree.browse_levels())}
    terms, leaf_of, paths = session.leaf_terms, tree.leaf_of, session.paths
    for k in sorted(wanted, key=lambda v: (abs(np.log(v / current)), v)):
        _level_names(tree, k, terms, leaf_of, paths)
        _drawn_linkage(tree, level_nodes(tree, k), np.arange(k))
        yield k


def cluster_nodes(clusters: dict[int, ClusterInfo]) -> tuple[np.ndarray, np.ndarray]:
    """(cluster ids, their tree nodes, -1 for none) as arrays, in the dict's order."""
    n = len(clusters)
    ids = np.fromiter(clusters.keys(), np.int64, count=n)
    nodes = np.fromiter((-1 if c.node is None else c.node for c in clusters.values()), np.int64, count=n)
    return ids, nodes


def _by_cluster_id(ids: np.ndarray, values: np.ndarray, labels: np.ndarray, missing: int) -> np.ndarray:
    """values[i] at position ids[i] of a table that every cluster id in ids or labels can index, `missing`
    where an id has no value."""
    size = max(int(ids.max(initial=-1)), int(labels.max(initial=-1))) + 1
    table = np.full(size, missing, np.int64)
    table[ids] = values
    return table


# ---- drill-down: one cluster into its tree children, and back ----------------------------------------------


Pairs = dict[int, int] | tuple[np.ndarray, np.ndarray]  # tree node -> cluster: a dict, or (nodes, clusters)


def node_owner(tree: ClusterTree, node_to_cluster: Pairs) -> np.ndarray:
    """For every tree node (leaves 0..m-1, then merges): the cluster whose node is it or above it, else -2.

    Read-only; the last few answers per tree are kept: a re-cut asks about the clusters before it (its
    plan) and after it (the medoids, the drawn linkage), and the re-cut before it asked about the former.
    """
    nodes, clusters = _pair_arrays(node_to_cluster)
    key = _pairs_key(nodes, clusters)
    return _kept(tree, "owners", key, lambda: _read_only(_node_owner(tree, nodes, clusters)), 4)


def _pair_arrays(node_to_cluster: Pairs) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(node_to_cluster, tuple):
        return node_to_cluster
    n = len(node_to_cluster)
    nodes = np.fromiter(node_to_cluster.keys(), np.int64, count=n)
    return nodes, np.fromiter(node_to_cluster.values(), np.int64, count=n)


def _pairs_key(nodes: np.ndarray, clusters: np.ndarray) -> bytes:
    """A memo key of the (node, cluster) pairs whatever their order: the pairs sorted by node, as bytes
    (sorting 2,916 Python tuples took 3.5 ms, a third of a re-cut's plan)."""
    order = np.argsort(nodes, kind="stable")
    return np.stack([nodes[order], clusters[order]]).astype(np.int64).tobytes()


def _node_owner(tree: ClusterTree, marked: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    m = tree.n_leaves
    if m == 0:
        return np.zeros(0, np.int64)
    parent = np.arange(2 * m - 1)
    merges = tree.linkage[:, :2].astype(np.int64)
    parent[merges[:, 0]] = np.arange(m, 2 * m - 1)
    parent[merges[:, 1]] = np.arange(m, 2 * m - 1)
    parent[marked] = marked  # a cluster's node stops the climb: its subtree belongs to it
    while True:  # pointer jumping: each node ends on its nearest marked ancestor (or the root)
        nxt = parent[parent]
        if np.array_equal(nxt, parent):
            break
        parent = nxt
    cluster_of = np.full(2 * m - 1, -2, np.int64)
    cluster_of[marked] = clusters
    return cluster_of[parent]


def cut_nodes(tree: ClusterTree, k: int) -> np.ndarray:
    """Tree node of each cluster 0..k-1 of the k-cut: tree.node_of_clusters(k) without its loop over merges.

    The nodes of a cut are the ones no applied merge (rows 0..m-k-1) has as a child; each leaf climbs to
    its own by pointer jumping, and its cluster label says which cluster that node is.
    """
    k = tree.clamp(k)
    m = tree.n_leaves
    applied = m - k
    parent = np.arange(m + applied)
    merges = tree.linkage[:applied, :2].astype(np.int64)
    parent[merges[:, 0]] = np.arange(m, m + applied)
    parent[merges[:, 1]] = np.arange(m, m + applied)
    while True:
        nxt = parent[parent]
        if np.array_equal(nxt, parent):
            break
        parent = nxt
    node = np.empty(k, np.int64)
    node[tree.leaf_labels(k)] = parent[:m]
    return node


def leaf_owner(tree: ClusterTree, node_to_cluster: dict[int, int]) -> np.ndarray:
    """For every leaf: the cluster whose tree node holds it (-2: none does)."""
    return node_owner(tree, node_to_cluster)[: tree.n_leaves]


def cluster_linkage(
    session: Session, nodes: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[np.ndarray, list[int]] | None:
    """The tree above the current clusters as a scipy linkage over them (their ids in leaf order).

    Those are the merges no cluster holds: after a uniform cut at k, the top k - 1 rows of the tree;
    after a drill-down, the same with the expanded cluster's own merge among them. Clusters the person
    made (no tree node) are not in it. None when the session has no tree. The last answer per tree is
    kept (a re-cut asks once, and the dendrogram asks again for the same clusters), and those of the
    slider's stops once prepare_levels has worked them out.
    """
    tree = session.tree
    if tree is None:
        return None
    ids_all, nodes_all = cluster_nodes(session.clusters) if nodes is None else nodes
    present = label_counts(session.labels)[0]
    keep = (nodes_all >= 0) & np.isin(ids_all, present)
    return _drawn_linkage(tree, nodes_all[keep], ids_all[keep])


def _drawn_linkage(
    tree: ClusterTree, nodes: np.ndarray, clusters: np.ndarray
) -> tuple[np.ndarray, list[int]]:
    """cluster_linkage for clusters on these tree nodes; the answers for the last few sets of clusters per
    tree are kept (the slider's stops' once prepare_levels has run)."""

    def work_out() -> tuple[np.ndarray, list[int]]:
        ids = np.sort(clusters)
        above = np.flatnonzero(node_owner(tree, (nodes, clusters))[tree.n_leaves :] == -2)
        linkage = _whole_linkage(tree, nodes, clusters, ids, above)
        if linkage is None:
            node_to_cluster = dict(zip(nodes.tolist(), clusters.tolist(), strict=True))
            linkage = _linkage_rows(tree, node_to_cluster, ids.tolist(), above)
        return _read_only(linkage), ids.tolist()

    linkage, ids = _kept(tree, "linkage", _pairs_key(nodes, clusters), work_out, _KEPT_LEVELS)
    return linkage, list(ids)


def _whole_linkage(
    tree: ClusterTree, nodes: np.ndarray, clusters: np.ndarray, ids: np.ndarray, above: np.ndarray
) -> np.ndarray | None:
    """cluster_linkage's rows in a few array passes when every merge above the clusters joins two branches
    that hold clusters (any uniform cut; a drill-down too), else None. Then every merge above is a row, in
    tree order, numbered after the clusters, and it holds the clusters whose first leaf lies in its span
    of leaves (the clusters' nodes are disjoint branches)."""
    m, k = tree.n_leaves, len(ids)
    children = tree.linkage[above, :2].astype(np.int64)
    number = np.full(2 * m - 1, -1, np.int64)
    number[nodes] = np.searchsorted(ids, clusters)
    number[m + above] = k + np.arange(len(above))
    pairs = number[children]
    if (pairs < 0).any():  # a branch without clusters (merged by hand): the row-by-row walk
        return None
    memo = _memo(tree)
    if "spans" not in memo:
        memo["spans"] = leaf_spans(tree.linkage)
    start, size = memo["spans"]
    firsts = np.sort(start[nodes])
    under = np.searchsorted(firsts, start[m + above] + size[m + above]) - np.searchsorted(
        firsts, start[m + above]
    )
    return np.column_stack(
        [pairs.astype(np.float64), tree.linkage[above, 2], under.astype(np.float64)]
    ).reshape(-1, 4)


def _linkage_rows(
    tree: ClusterTree, node_to_cluster: dict[int, int], ids: list[int], above: np.ndarray
) -> np.ndarray:
    """cluster_linkage's rows, merge by merge: a merge with a branch that holds no cluster is skipped."""
    index = {cid: i for i, cid in enumerate(ids)}
    m = tree.n_leaves
    # per tree node: its number in the drawn linkage (-1: none yet) and how many clusters lie under it
    number, under = [-1] * (2 * m - 1), [0] * (2 * m - 1)
    for node, cid in node_to_cluster.items():
        number[node], under[node] = index[cid], 1
    rows: list[list[float]] = []
    children = tree.linkage[above, :2].astype(np.int64).tolist()
    for j, (left, right), height in zip(
        above.tolist(), children, tree.linkage[above, 2].tolist(), strict=True
    ):
        a, b = number[left], number[right]
        if a < 0 or b < 0:
            if a >= 0 or b >= 0:  # a branch without clusters (merged by hand): skip it
                kept = left if a >= 0 else right
                number[m + j], under[m + j] = number[kept], under[kept]
            continue
        number[m + j], under[m + j] = len(ids) + len(rows), under[left] + under[right]
        rows.append([a, b, height, under[m + j]])
    return np.asarray(rows, np.float64).reshape(-1, 4)


_MEMO: dict[int, tuple[weakref.ref, dict]] = {}  # id(tree) -> (the tree, what is remembered about it)


_KEPT_LEVELS = 64  # per tree: the slider's stops (about 50: tree.browse_levels), others visited, drill-downs


def _memo(tree: ClusterTree) -> dict:
    """What is worked out once per tree and reused by later cuts (dropped with the tree): per level (or
    set of clusters) its nodes, names and drawn linkage, the last few node owners, every node's span of
    leaves. (The node medoids are kept on the tree itself, tree.node_medoids, and saved in tree.npz.)"""
    key = id(tree)
    entry = _MEMO.get(key)
    if entry is None or entry[0]() is not tree:
        entry = (weakref.ref(tree, lambda _ref, key=key: _MEMO.pop(key, None)), {})
        _MEMO[key] = entry
    return entry[1]


def _kept(tree: ClusterTree, what: str, key: Hashable, work_out: Callable[[], T], most: int) -> T:
    """work_out(), kept in the tree's memo under `what` and `key`; the `most` last asked for are kept."""
    kept = _memo(tree).setdefault(what, {})
    found = kept.pop(key, None)
    if found is None:
        found = work_out()
        while len(kept) >= most:
            del kept[next(iter(kept))]  # the least recently asked
    kept[key] = found  # asked last: kept longest
    return found


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def _tree_cluster(session: Session, cluster_id: int) -> tuple[ClusterTree, ClusterInfo]:
    tree = session.tree
    if tree is None:
        raise RecutError("this session has no cluster tree (it was clustered with another method)")
    info = session.clusters.get(int(cluster_id))
    if info is None or not np.any(session.labels == cluster_id):
        raise RecutError(f"there is no cluster {cluster_id}")
    if info.node is None:
        raise RecutError(f"{info.name!r} was made by hand: it is not a branch of the tree")
    return tree, info


def expand_cluster(session: Session, cluster_id: int, depth: int = 1) -> RecutPlan:
    """One cluster shown as its sub-groups in the tree (`depth` levels down); only its rows change.

    The largest sub-group keeps the cluster's id; the others get new ids. Nothing is changed: apply the
    plan with apply_recut(..., op="expand").
    """
    tree, info = _tree_cluster(session, cluster_id)
    m = tree.n_leaves
    if info.node < m:
        raise RecutError(f"{info.name!r} is one micro-cluster of near-identical images: it has no sub-groups")
    frontier = [int(info.node)]
    for _ in range(max(1, int(depth))):
        frontier = [c for node in frontier for c in _children(tree, node)]
    rows = np.flatnonzero(session.labels == cluster_id)
    sub = node_owner(tree, {node: i for i, node in enumerate(frontier)})[tree.leaf_of[rows]]
    sizes = np.bincount(sub[sub >= 0], minlength=len(frontier))
    order = [int(i) for i in np.argsort(-sizes, kind="stable") if sizes[i] > 0]
    warnings, kept = [], []
    stray = sub < 0  # moved into this cluster by hand: they stay with its largest part
    if stray.any():
        sub[stray] = order[0]
        kept.append(f"{int(stray.sum())} image(s) you moved into {info.name!r} stay in its largest sub-group")
    if info.renamed:
        warnings.append(f"the name {info.name!r} is not used for its sub-groups")
    next_id = max([*session.clusters, int(session.labels.max())]) + 1
    new_ids = {order[0]: int(cluster_id)}
    for part in order[1:]:
        new_ids[part] = next_id
        next_id += 1
    labels = session.labels.copy()
    labels[rows] = np.array([new_ids.get(s, int(cluster_id)) for s in range(len(frontier))])[sub]
    clusters = dict(session.clusters)
    for part, cid in new_ids.items():
        clusters[cid] = ClusterInfo(cid, f"Cluster {cid}", None, info.excluded, node=int(frontier[part]))
    k = session.level if session.level is not None else tree.default_k
    return RecutPlan(int(k), labels, clusters, warnings, kept, _remember(session, clusters, kept))


def collapse_cluster(session: Session, cluster_id: int) -> RecutPlan:
    """The cluster and its siblings in the tree folded back into their parent group (the inverse of
    expand_cluster); the parent takes the smallest of their ids. Nothing is changed until apply_recut."""
    tree, info = _tree_cluster(session, cluster_id)
    m = tree.n_leaves
    where = np.flatnonzero((tree.linkage[:, :2] == info.node).any(axis=1))
    if where.size == 0:
        raise RecutError(f"{info.name!r} already holds every image of the tree")
    parent = m + int(where[0])
    under = node_owner(tree, {parent: 0}) == 0
    present = set(label_counts(session.labels)[0].tolist())
    merged = sorted(
        cid for cid, c in session.clusters.items() if c.node is not None and under[c.node] and cid in present
    )
    target = merged[0]
    labels = session.labels.copy()
    labels[np.isin(labels, merged)] = target
    warnings = [
        f"the name {session.clusters[cid].name!r} is not used for the group it folds into"
        for cid in merged
        if session.clusters[cid].renamed
    ]
    flags = {session.clusters[cid].excluded for cid in merged}
    if len(flags) > 1:
        warnings.append(
            "some of these groups were excluded from export and some not: the folded group is kept"
        )
    clusters = {cid: c for cid, c in session.clusters.items() if cid not in merged[1:]}
    clusters[target] = ClusterInfo(target, f"Cluster {target}", None, flags == {True}, node=parent)
    k = session.level if session.level is not None else tree.default_k
    kept: list[str] = []
    return RecutPlan(int(k), labels, clusters, warnings, kept, _remember(session, clusters, kept))


def _children(tree: ClusterTree, node: int) -> list[int]:
    m = tree.n_leaves
    if node < m:
        return [node]
    return [int(tree.linkage[node - m, 0]), int(tree.linkage[node - m, 1])]


# ---- medoids of a cut: a tree group's medoid never changes, so it is computed once per node ---------------


def remember_level_medoids(tree: ClusterTree, features: np.ndarray) -> None:
    """The medoid of every node that is a cluster at a stored level or at a stop of the window's slider
    (tree.browse_levels), kept in tree.node_medoids (and saved with the tree), so a re-cut to any of them
    reads no features. One read of the features' rows in groups not met at an earlier level, per level
    (at 100,000 images of 1,280 numbers: 3.5 s for the 11 stored levels, 2.1 s more for the 41 other
    stops); done where the tree is made, while the features are at hand."""
    for k in tree.browse_levels():
        _node_medoids(tree, features, level_nodes(tree, k), tree.cut(k))


def refresh_medoids(session: Session) -> None:
    """Every cluster's medoid (the row nearest its mean direction), as session.medoids_of computes it."""
    medoids = cluster_medoids(session)
    for cid, info in session.clusters.items():  # clusters left without images have no medoid
        if medoids.get(cid) != info.medoid_index:
            session.clusters[cid] = dataclasses.replace(info, medoid_index=medoids.get(cid))


def cluster_medoids(session: Session, nodes: tuple[np.ndarray, np.ndarray] | None = None) -> dict[int, int]:
    """The medoid row of every cluster with images (nothing is changed; none without features).

    A cluster that is exactly its tree group (no image moved in or out by hand) reuses that group's medoid
    from an earlier cut (or from tree.npz); the others are computed together in one grouped pass over the
    features. nodes: cluster_nodes of the session's clusters, when the caller has them.
    """
    features = session.features
    if features.shape[0] != len(session.paths) or features.ndim != 2:
        return {
            cid: info.medoid_index for cid, info in session.clusters.items() if info.medoid_index is not None
        }
    labels = session.labels
    tree = session.tree
    ids_all, nodes_all = cluster_nodes(session.clusters) if nodes is None else nodes
    present = label_counts(labels)[0]
    nodes = _by_cluster_id(ids_all, nodes_all, labels, -2)[present]  # -1: no tree node; -2: no record
    cache: dict[int, int] = {}
    if tree is not None:
        cache = tree.node_medoids
        treed = nodes_all >= 0
        expected = leaf_owner(tree, (nodes_all[treed], ids_all[treed]))[tree.leaf_of]
        differs = labels != expected
        impure = np.union1d(labels[differs], expected[differs])
        nodes = np.where(np.isin(present, impure), -1, nodes)  # images moved in or out: computed anew
    medoids: dict[int, int] = {}
    needed: list[tuple[int, int]] = []  # (cluster, its tree node or -1)
    for cid, node in zip(present.tolist(), nodes.tolist(), strict=True):
        if node == -2:
            continue
        cached = cache.get(node) if node >= 0 else None
        if cached is None:
            needed.append((cid, node))
        else:
            medoids[cid] = cached
    computed = medoids_of(features, labels, [cid for cid, _node in needed])
    for cid, node in needed:
        if node >= 0 and cid in computed:  # exactly its tree group: that group's medoid, for later cuts
            cache[node] = computed[cid]
    medoids.update(computed)
    return medoids
