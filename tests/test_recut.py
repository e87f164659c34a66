"""Re-cutting a curated session: names, moved images, clusters made by hand and exclusions carry over."""

from __future__ import annotations

import numpy as np
import pytest
from test_tree import make_tree, two_scale_blobs

from imgclust_desktop.core import session as session_io
from imgclust_desktop.core.recut import RecutError, apply_recut, plan_recut
from imgclust_desktop.core.session import ClusterInfo, Session


def curated_session(tmp_path) -> Session:
    """5 broad themes x 6 kinds, cut at the 5 themes, as the pipeline leaves it (clusters know their node)."""
    points, kinds, themes = two_scale_blobs(themes=5, kinds=6, per_kind=12, seed=2)
    tree = make_tree(points, k=5)
    paths = [
        str(tmp_path / f"theme{t}" / f"kind{k}_{i}.png")
        for i, (t, k) in enumerate(zip(themes, kinds, strict=True))
    ]
    labels = tree.cut(5)
    nodes = tree.node_of_clusters(5)
    clusters = {c: ClusterInfo(c, f"Group {c + 1}", node=int(nodes[c])) for c in range(5)}
    rng = np.random.default_rng(0)
    return Session(
        paths=paths,
        features=points,
        coords=rng.normal(size=(len(points), 2)),
        labels=labels,
        clusters=clusters,
        tree=tree,
        level=5,
        model_id="test",
    )


def test_a_recut_without_edits_is_the_tree_cut_with_every_cluster_named(tmp_path):
    session = curated_session(tmp_path)
    plan = plan_recut(session, 30)
    assert plan.warnings == []
    apply_recut(session, plan)
    assert np.array_equal(session.labels, session.tree.cut(30))
    assert session.level == 30 and len(session.cluster_ids()) == 30
    assert all(session.clusters[c].medoid_index in np.flatnonzero(session.labels == c) for c in range(30))
    assert session.edits[-1]["op"] == "recut" and session.edits[-1]["previous_level"] == 5


def test_a_rename_is_set_aside_with_a_warning_going_finer_and_comes_back_coarser(tmp_path):
    session = curated_session(tmp_path)
    session.rename(2, "Mountains")
    finer = plan_recut(session, 30)
    assert any("Mountains" in w and "comes back" in w for w in finer.warnings)
    assert "Mountains" not in [c.name for c in finer.clusters.values()]
    apply_recut(session, finer)
    back = plan_recut(session, 5)
    apply_recut(session, back)
    assert session.name_of(2) == "Mountains" and session.clusters[2].renamed


def test_images_moved_into_a_cluster_follow_it_where_it_exists_and_are_reported_where_not(tmp_path):
    session = curated_session(tmp_path)
    moved = np.flatnonzero(session.labels == 0)[:3]
    session.assign(moved, 1)
    # Coarser: themes 1 and its sibling merge -> the moves cannot carry; finer: theme 1 is split.
    for k in (2, 30):
        plan = plan_recut(session, k)
        assert any("3 image(s) you moved" in w for w in plan.warnings), (k, plan.warnings)
    # The same level again (e.g. after a round trip): they stay where the person put them.
    same = plan_recut(session, 5)
    assert same.warnings == [] and np.all(same.labels[moved] == 1)


def test_a_cluster_made_by_hand_stays_whole_at_every_level(tmp_path):
    session = curated_session(tmp_path)
    rows = np.flatnonzero(session.labels == 3)[:10]
    made = session.split(rows, name="Keepers")
    session.set_excluded(rows[:2], True)
    for k in (2, 30, session.tree.n_leaves):
        plan = plan_recut(session, k)
        apply_recut(session, plan)
        keepers = [c for c, info in session.clusters.items() if info.name == "Keepers"]
        assert len(keepers) == 1
        assert set(np.flatnonzero(session.labels == keepers[0])) == set(rows.tolist())
        assert session.excluded[rows[:2]].all() and session.excluded.sum() == 2
    assert made is not None


def test_a_recut_saves_and_loads_with_its_tree_and_level(tmp_path):
    session = curated_session(tmp_path)
    session.rename(0, "Sea")
    apply_recut(session, plan_recut(session, 30))
    session_io.save(session, tmp_path / "s", report=False)
    again = session_io.load(tmp_path / "s", mmap=True)
    assert again.level == 30 and np.array_equal(again.labels, session.labels)
    assert again.tree.levels == session.tree.levels
    apply_recut(again, plan_recut(again, 5))
    assert again.name_of(0) == "Sea"
    header = (tmp_path / "s" / "hierarchy.csv").read_text().splitlines()[0].split(",")
    assert header == ["path", *[f"k{k}" for k in session.tree.levels]]


def test_a_session_without_a_tree_cannot_be_recut(tmp_path):
    session = curated_session(tmp_path)
    session.tree = None
    with pytest.raises(RecutError, match="no cluster tree"):
        plan_recut(session, 3)


def test_with_its_level_medoids_remembered_a_recut_to_any_slider_stop_reads_no_features(
    tmp_path, monkeypatch
):
    from imgclust_desktop.core import recut
    from imgclust_desktop.core.recut import remember_level_medoids

    session = curated_session(tmp_path)
    remember_level_medoids(session.tree, session.features)  # as the pipeline does
    session_io.save(session, tmp_path / "s", report=False)
    again = session_io.load(tmp_path / "s")
    assert again.tree.node_medoids == session.tree.node_medoids  # kept in tree.npz
    asked: list[list[int]] = []
    real = recut.medoids_of
    monkeypatch.setattr(
        recut, "medoids_of", lambda f, labels, ids: asked.append(list(ids)) or real(f, labels, ids)
    )
    stops = again.tree.browse_levels()  # the stored levels and the slider's steps between them
    assert set(again.tree.levels) < set(stops)
    for k in stops:
        apply_recut(again, plan_recut(again, k))
        assert not any(asked), f"level {k} computed medoids from the features"
        fresh = session_io.medoids_of(again.features, again.labels, again.cluster_ids())
        assert {c: again.clusters[c].medoid_index for c in again.cluster_ids()} == fresh
    arrays = tmp_path / "s" / "tree.npz"
    written = arrays.stat().st_ino
    session_io.save(again, tmp_path / "s", report=False, write_features=False, write_tree=False)
    assert arrays.stat().st_ino == written  # nothing new to remember: tree.npz is left as it is
    known = set(again.tree.node_medoids)
    between = next(  # typed in, not a stop, with a group no stop has: that group's medoid is computed
        k for k in range(2, again.tree.n_leaves) if not set(recut.cut_nodes(again.tree, k).tolist()) <= known
    )
    assert between not in stops
    apply_recut(again, plan_recut(again, between))
    assert asked[-1] and set(asked[-1]) <= set(again.cluster_ids())
    session_io.save(again, tmp_path / "s", report=False, write_features=False, write_tree=False)
    assert arrays.stat().st_ino != written
    assert session_io.load(tmp_path / "s").tree.node_medoids == again.tree.node_medoids


def names_in_full(session: Session, terms) -> dict[int, str]:
    """Every cluster's automatic name worked out from scratch: names.cluster_names over the labels, with
    siblings the clusters whose tree nodes share a parent (what a re-cut's names must equal)."""
    from imgclust_desktop.core.names import cluster_names

    tree = session.tree
    m = tree.n_leaves
    parent = np.full(2 * m - 1, -1)
    for row, (a, b) in enumerate(tree.linkage[:, :2].astype(int)):
        parent[a] = parent[b] = m + row
    siblings = {
        cid: int(parent[info.node]) for cid, info in session.clusters.items() if info.node is not None
    }
    return cluster_names(session.labels, terms, tree.leaf_of, session.paths, siblings=siblings)


def words_for(tree, seed: int = 0):
    """Words for every leaf of the tree, as names.leaf_terms gives them from class probabilities."""
    from imgclust_desktop.core.names import leaf_terms

    rng = np.random.default_rng(seed)
    vocabulary = [f"word{i}" for i in range(40)]
    probs = rng.dirichlet(np.full(len(vocabulary), 0.2), size=len(tree.leaf_of)).astype(np.float32)
    return leaf_terms(vocabulary, probs, tree.leaf_of, tree.n_leaves)


@pytest.mark.parametrize("with_words", [False, True])
def test_levels_prepared_ahead_give_the_names_and_medoids_worked_out_in_full(
    tmp_path, monkeypatch, with_words
):
    from imgclust_desktop.core import names
    from imgclust_desktop.core.recut import prepare_levels

    session = curated_session(tmp_path)
    if with_words:
        session.leaf_terms = words_for(session.tree)
    levels = session.tree.levels
    assert list(prepare_levels(session))[0] == 5  # the current level first, then its neighbours
    counted: list[int] = []
    real = names.cluster_names
    monkeypatch.setattr(names, "cluster_names", lambda *a, **kw: counted.append(1) or real(*a, **kw))
    for k in [*levels, *levels[::-1]]:
        plan = plan_recut(session, k)
        assert plan.named  # nothing made or moved by hand: every record is made with its name and medoid
        apply_recut(session, plan)
        monkeypatch.setattr(names, "cluster_names", real)
        assert {c: session.name_of(c) for c in session.cluster_ids()} == names_in_full(
            session, session.leaf_terms
        )
        monkeypatch.setattr(names, "cluster_names", lambda *a, **kw: counted.append(1) or real(*a, **kw))
        fresh = session_io.medoids_of(session.features, session.labels, session.cluster_ids())
        assert {c: session.clusters[c].medoid_index for c in session.cluster_ids()} == fresh
    assert counted == []  # every stored level's names were worked out ahead, once


def test_a_level_not_prepared_is_named_when_asked_and_names_follow_new_paths(tmp_path):
    session = curated_session(tmp_path)
    k = next(v for v in range(3, session.tree.n_leaves) if v not in session.tree.levels)
    apply_recut(session, plan_recut(session, k))
    assert {c: session.name_of(c) for c in session.cluster_ids()} == names_in_full(session, None)
    assert any(session.name_of(c).startswith("theme") for c in session.cluster_ids())
    # the same images in renamed folders (a new list of paths): the names are worked out again
    session.paths = [p.replace("theme", "album") for p in session.paths]
    apply_recut(session, plan_recut(session, 5))
    apply_recut(session, plan_recut(session, k))
    shown = {c: session.name_of(c) for c in session.cluster_ids()}
    assert shown == names_in_full(session, None) and not any(n.startswith("theme") for n in shown.values())


def test_a_recut_with_images_moved_by_hand_names_the_clusters_as_they_are(tmp_path):
    session = curated_session(tmp_path)
    session.assign(np.flatnonzero(session.labels == 0), 1)  # theme 0 emptied into theme 1 by hand
    plan = plan_recut(session, 5)
    assert not plan.named  # the clusters are not the tree's groups: named from their images
    apply_recut(session, plan)
    assert 0 not in session.cluster_ids()
    assert {c: session.name_of(c) for c in session.cluster_ids()} == names_in_full(session, None)
