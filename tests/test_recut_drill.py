"""Drill-down: one cluster opened into its tree sub-groups and folded back; the tree above the clusters."""

from __future__ import annotations

import numpy as np
import pytest
from tree_support import make_tree_session

from imgclust_desktop.core.recut import (
    RecutError,
    apply_recut,
    cluster_linkage,
    collapse_cluster,
    expand_cluster,
    plan_recut,
)


@pytest.fixture
def session():
    s = make_tree_session()
    apply_recut(s, plan_recut(s, s.tree.coarser(s.level)))  # a coarse level: every cluster has sub-groups
    return s


def test_expanding_a_cluster_splits_only_its_rows_into_its_tree_children(session):
    before = session.labels.copy()
    biggest = max(session.cluster_ids(), key=lambda c: int(np.sum(before == c)))
    node = session.clusters[biggest].node
    plan = expand_cluster(session, biggest)
    assert np.array_equal(session.labels, before)  # a plan changes nothing
    apply_recut(session, plan, op="expand", cluster=biggest)
    rows = before == biggest
    assert np.array_equal(session.labels[~rows], before[~rows])
    parts = sorted(np.unique(session.labels[rows]).tolist())
    assert len(parts) == 2 and biggest in parts
    m = session.tree.n_leaves
    children = {int(c) for c in session.tree.linkage[node - m, :2]}
    assert {session.clusters[p].node for p in parts} == children
    # each part is exactly the images of its tree child
    for part in parts:
        child_rows = np.flatnonzero(session.labels == part)
        assert len(np.unique(session.tree.leaf_of[child_rows])) >= 1
        assert session.name_of(part)  # automatic names for the new groups
    assert session.edits[-1]["op"] == "expand"


def test_collapsing_a_sub_group_restores_the_cluster_exactly(session):
    before = session.labels.copy()
    names = {c: session.name_of(c) for c in session.cluster_ids()}
    target = session.cluster_ids()[0]
    apply_recut(session, expand_cluster(session, target))
    new = [c for c in session.cluster_ids() if c not in names]
    assert new
    apply_recut(session, collapse_cluster(session, new[0]), op="collapse")
    assert np.array_equal(session.labels, before)
    assert {c: session.name_of(c) for c in session.cluster_ids()} == names


def test_a_renamed_cluster_warns_before_it_is_opened_and_handmade_ones_cannot_be(session):
    cid = session.cluster_ids()[0]
    session.rename(cid, "beach days")
    assert any("beach days" in w for w in expand_cluster(session, cid).warnings)
    new = session.split(np.flatnonzero(session.labels == cid)[:2], name="mine")
    with pytest.raises(RecutError, match="made by hand"):
        expand_cluster(session, new)


def test_the_drawn_tree_is_the_part_above_the_clusters(session):
    linkage, ids = cluster_linkage(session)
    assert ids == session.cluster_ids()
    assert linkage.shape == (len(ids) - 1, 4)
    assert np.all(np.diff(linkage[:, 2]) >= 0)
    assert linkage[-1, 3] == len(ids)  # the root holds every cluster
    apply_recut(session, expand_cluster(session, ids[0]))
    linkage2, ids2 = cluster_linkage(session)
    assert len(ids2) == len(ids) + 1 and linkage2.shape == (len(ids2) - 1, 4)
    assert linkage2[0, 2] < linkage[0, 2]  # the opened cluster's own merge sits under the old ones


def test_the_drawn_tree_in_array_passes_equals_the_merge_by_merge_walk(session):
    from imgclust_desktop.core import recut

    def both(s):
        tree, present = s.tree, set(s.cluster_ids())
        nodes = {int(i.node): c for c, i in s.clusters.items() if i.node is not None and c in present}
        ids = sorted(nodes.values())
        above = np.flatnonzero(recut.node_owner(tree, nodes)[tree.n_leaves :] == -2)
        arrays = np.array(list(nodes), np.int64), np.array(list(nodes.values()), np.int64)
        fast, walked = (
            recut._whole_linkage(tree, *arrays, np.array(ids), above),
            recut._linkage_rows(tree, nodes, ids, above),
        )
        assert len(walked) == len(ids) - 1  # one merge per cluster but the root's
        return fast, walked

    for k in (2, 3, session.tree.default_k, session.tree.finer(session.tree.default_k)):
        apply_recut(session, plan_recut(session, k))
        fast, walked = both(session)
        assert fast is not None and np.array_equal(fast, walked)
    apply_recut(session, expand_cluster(session, session.cluster_ids()[0]))  # a drill-down
    fast, walked = both(session)
    assert fast is not None and np.array_equal(fast, walked)
    first, second = session.cluster_ids()[:2]
    session.merge([first, second])  # by hand: a branch of the tree now holds no cluster
    fast, walked = both(session)
    assert fast is None
    assert np.array_equal(cluster_linkage(session)[0], walked)


def test_a_recut_after_a_drill_down_keeps_hand_moves_and_gives_the_uniform_cut(session):
    tree = session.tree
    apply_recut(session, expand_cluster(session, session.cluster_ids()[0]))
    plan = plan_recut(session, tree.default_k)
    assert not plan.warnings  # drilled groups are tree groups, not hand moves
    assert np.array_equal(plan.labels, tree.cut(tree.default_k))


def test_a_name_lost_at_a_finer_level_comes_back_and_is_remembered_in_the_session_folder(tmp_path):
    from imgclust_desktop.core import session as session_io

    s = make_tree_session()
    default = s.level
    finer = s.tree.finer(default)
    split_there = set(s.tree.node_of_clusters(finer).tolist())
    cid = next(c for c in s.cluster_ids() if s.clusters[c].node not in split_there)
    node, rows = s.clusters[cid].node, np.flatnonzero(s.labels == cid)
    s.rename(cid, "sunsets")
    s.set_cluster_excluded(cid, True)
    plan = plan_recut(s, finer)
    assert any("sunsets" in w for w in plan.warnings)
    apply_recut(s, plan)
    assert s.node_curation == {node: {"name": "sunsets", "excluded": True}}
    session_io.save(s, tmp_path / "s", report=False)
    s = session_io.load(tmp_path / "s")
    assert s.node_curation == {node: {"name": "sunsets", "excluded": True}}
    back = plan_recut(s, default)
    assert any("sunsets" in line for line in back.kept)
    apply_recut(s, back)
    back_id = int(s.labels[rows[0]])
    assert s.name_of(back_id) == "sunsets" and s.clusters[back_id].excluded and s.clusters[back_id].renamed
    assert s.node_curation == {}


def test_medoids_of_a_cut_are_the_ones_a_full_recomputation_gives(session):
    import copy

    from imgclust_desktop.core.recut import refresh_medoids

    tree = session.tree
    session.assign(np.flatnonzero(session.labels == session.cluster_ids()[1])[:3], session.cluster_ids()[0])
    for k in (tree.default_k, tree.levels[0], tree.default_k, tree.n_leaves):  # repeats hit the node cache
        apply_recut(session, plan_recut(session, k))
        slow = copy.deepcopy(session)
        slow._refresh_medoids(slow.clusters)
        assert {c: i.medoid_index for c, i in session.clusters.items()} == {
            c: i.medoid_index for c, i in slow.clusters.items()
        }
    refresh_medoids(session)
    assert all(
        session.clusters[c].medoid_index in np.flatnonzero(session.labels == c) for c in session.cluster_ids()
    )


def test_folder_names_of_a_cut_are_the_folder_most_images_share():
    import os
    from collections import Counter

    from imgclust_desktop.core.names import cluster_names

    rng = np.random.default_rng(1)
    for _trial in range(30):  # ties and half-and-half clusters included: small random folders
        n, folders, k = int(rng.integers(5, 300)), int(rng.integers(1, 6)), int(rng.integers(1, 12))
        paths = [f"/r/f{int(rng.integers(folders))}/{i}.jpg" for i in range(n)]
        labels = rng.integers(-1, k, n)
        names = cluster_names(labels, None, None, paths)
        for cid, name in names.items():
            rows = np.flatnonzero(labels == cid)
            top, count = Counter(os.path.basename(os.path.dirname(paths[r])) for r in rows).most_common(1)[0]
            if count >= 0.5 * len(rows):
                assert name.split(" ")[0] == top
            else:
                assert name.startswith("Group")


def test_the_nodes_of_every_cut_are_the_trees_own(session):
    from imgclust_desktop.core.recut import cut_nodes

    tree = session.tree
    for k in range(1, tree.n_leaves + 1):
        assert np.array_equal(cut_nodes(tree, k), tree.node_of_clusters(k)), k
