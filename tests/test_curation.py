"""Curation on a real session: lasso relabel with undo/redo, merge and split, rename/exclude, reload, autosave."""

from __future__ import annotations

import numpy as np
import pytest
from curation_support import base_session_folder, folder_of, fresh_session, model_with
from PIL import Image
from PySide6.QtCore import Qt

from imgclust_desktop.core import session as session_io
from imgclust_desktop.gui.autosave import Autosaver, autosave_folder, find_autosave
from imgclust_desktop.gui.edit_actions import CurationActions
from imgclust_desktop.gui.panels.scatter import ScatterPanel


@pytest.fixture
def session(tmp_path_factory, tmp_path):
    return fresh_session(tmp_path_factory.getbasetemp(), tmp_path)


def hull_around(coords: np.ndarray, pad: float = 0.05) -> np.ndarray:
    """A lasso drawn around these points: their bounding box, a little larger, as a polygon."""
    lo, hi = coords.min(axis=0), coords.max(axis=0)
    span = np.maximum(hi - lo, 1e-3) * pad
    (x0, y0), (x1, y1) = lo - span, hi + span
    return np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])


def test_the_pipeline_found_the_three_folders(session):
    truth = folder_of(session)
    for name in np.unique(truth):
        assert len(np.unique(session.labels[truth == name])) == 1  # each folder is one cluster


def test_lasso_relabel_to_a_new_cluster_then_undo_then_redo(qtbot, session):
    model = model_with(session)
    scatter = ScatterPanel(model)
    qtbot.addWidget(scatter)
    actions = CurationActions(model, scatter, lambda: None)
    truth = folder_of(session)
    # lasso half of the rocket images: the ones left of the group's median x on the map
    group = np.flatnonzero(truth == "rocket")
    left = group[session.coords[group, 0] <= np.median(session.coords[group, 0])]
    inside = np.flatnonzero(
        (session.coords[:, 0] >= session.coords[left, 0].min())
        & (session.coords[:, 0] <= session.coords[left, 0].max())
        & (session.coords[:, 1] >= session.coords[left, 1].min())
        & (session.coords[:, 1] <= session.coords[left, 1].max())
    )
    scatter.set_tool("lasso")
    scatter.view.polygonDrawn.emit(hull_around(session.coords[left], 0.02), Qt.KeyboardModifier.NoModifier)
    selected = np.asarray(model.selection)
    assert set(left) <= set(selected.tolist()) and set(selected.tolist()) <= set(inside.tolist())
    before_labels, before_log = session.labels.copy(), list(session.edits)
    before_clusters = dict(session.clusters)

    actions.move_new.trigger()
    new_id = int(session.labels[selected[0]])
    assert new_id not in before_labels
    assert np.all(session.labels[selected] == new_id)
    untouched = np.setdiff1d(np.arange(len(session.paths)), selected)
    assert np.array_equal(session.labels[untouched], before_labels[untouched])
    assert session.edits[-1]["op"] == "split" and session.edits[-1]["indices"] == selected.tolist()
    assert model.undo_stack.undoText().startswith(f"Move {len(selected)} images")
    after_labels, after_log = session.labels.copy(), list(session.edits)

    model.undo_stack.undo()
    assert np.array_equal(session.labels, before_labels)
    assert session.edits == before_log and session.clusters == before_clusters
    assert new_id not in scatter._group  # the map re-read the labels

    model.undo_stack.redo()
    assert np.array_equal(session.labels, after_labels)
    assert session.edits == after_log and session.name_of(new_id) == f"Cluster {new_id}"


def test_merge_two_clusters_then_split_them_apart_again(qtbot, session):
    model = model_with(session)
    truth = folder_of(session)
    a, b = (int(session.labels[np.flatnonzero(truth == g)[0]]) for g in ("cat", "rocket"))
    original = session.labels.copy()
    model.select(np.flatnonzero(np.isin(session.labels, [a, b])))
    actions = CurationActions(model, None, lambda: None)
    assert actions.merge.isEnabled()
    actions.merge.trigger()
    merged = int(session.labels[np.flatnonzero(truth == "cat")[0]])
    assert set(np.unique(session.labels[np.isin(truth, ["cat", "rocket"])])) == {merged}

    model.split_auto(merged, 2)  # re-cluster just this cluster's images, in the worker
    qtbot.waitUntil(lambda: model.split_worker is None, timeout=60_000)
    parts = {g: set(session.labels[truth == g].tolist()) for g in ("cat", "rocket")}
    assert all(len(p) == 1 for p in parts.values()) and parts["cat"] != parts["rocket"]
    assert merged in parts["cat"] | parts["rocket"]  # the bigger part keeps the id
    assert session.edits[-1]["op"] == "split_cluster"
    split_labels = session.labels.copy()

    model.undo_stack.undo()  # split undone: merged again
    assert set(np.unique(session.labels[np.isin(truth, ["cat", "rocket"])])) == {merged}
    model.undo_stack.undo()  # merge undone: as the pipeline left it
    assert np.array_equal(session.labels, original)
    model.undo_stack.redo()
    model.undo_stack.redo()  # redo does not re-cluster: exactly the same split, same ids
    assert np.array_equal(session.labels, split_labels)


def test_rename_and_exclude_are_undoable(session):
    model = model_with(session)
    cid = session.cluster_ids()[0]
    old_name = session.name_of(cid)
    model.rename(cid, "Checkerboards")
    model.set_excluded([0, 1], True)
    model.set_clusters_excluded([cid], True)
    assert session.name_of(cid) == "Checkerboards" and session.excluded[[0, 1]].all()
    assert session.clusters[cid].excluded
    for _ in range(3):
        model.undo_stack.undo()
    assert session.name_of(cid) == old_name and not session.excluded.any()
    assert not session.clusters[cid].excluded and session.edits == []


def test_a_session_with_edits_reloads_identical(qtbot, session, tmp_path):
    model = model_with(session)
    truth = folder_of(session)
    ids = session.cluster_ids()
    model.assign(np.flatnonzero(truth == "cat")[:3], None, name="odd ones")
    merged = model.merge(ids[1:]).into
    model.rename(ids[0], "Stripes")
    model.set_excluded(np.flatnonzero(truth == "brick")[:2], True)
    model.set_clusters_excluded([ids[0]], True)
    model.split_auto(merged, 2)
    qtbot.waitUntil(lambda: model.split_worker is None, timeout=60_000)
    assert [e["op"] for e in session.edits] == [
        "split", "merge", "rename", "exclude", "exclude_cluster", "split_cluster",
    ]  # fmt: skip

    session_io.save(session, tmp_path / "edited", report=False)
    back = session_io.load(tmp_path / "edited")
    assert np.array_equal(back.labels, session.labels)
    assert np.array_equal(back.excluded, session.excluded)
    assert back.clusters == session.clusters
    assert back.edits == session.edits
    assert back.scores == session.scores  # int keys of cluster_sizes survive the round trip
    assert all(isinstance(k, int) for k in back.scores["cluster_sizes"])
    assert np.array_equal(back.features, session.features)


def test_autosave_every_n_edits_and_reopening_restores_them(session, tmp_path):
    session.path = None  # a fresh run: no session folder, so the autosave goes under the data folder
    model = model_with(session)
    saver = Autosaver(model, every=2, root=tmp_path / "data")
    inputs = list(session.inputs)
    model.rename(session.cluster_ids()[0], "first")
    assert find_autosave(inputs, saver.root) is None  # one edit: not yet
    model.set_excluded([4, 5], True)
    saver.wait()
    folder = find_autosave(inputs, saver.root)
    assert folder == autosave_folder(inputs, saver.root)
    back = session_io.load(folder)
    assert back.name_of(session.cluster_ids()[0]) == "first" and back.excluded[[4, 5]].all()
    assert back.edits == session.edits
    model.undo_stack.undo()  # an undo is a step too; on close the rest is written
    assert saver.save_now(wait=True) == folder
    assert not session_io.load(folder).excluded.any()


def test_a_due_autosave_waits_for_a_pause_in_the_edits_unless_they_go_on_without_one(
    qtbot, session, tmp_path
):
    from imgclust_desktop.gui.autosave import QUIET_MS

    session.path = None
    model = model_with(session)
    saver = Autosaver(model, every=2, root=tmp_path / "data")
    inputs = list(session.inputs)
    first = session.cluster_ids()[0]
    model.rename(first, "one")
    model.rename(first, "two")  # due, but not written inside the edit that made it due
    assert saver._thread is None and find_autosave(inputs, saver.root) is None
    qtbot.wait(QUIET_MS // 2)
    model.rename(first, "three")  # a further edit puts it off again
    qtbot.wait(QUIET_MS // 2 + 100)
    assert saver._thread is None
    qtbot.waitUntil(lambda: saver._thread is not None, timeout=QUIET_MS + 1000)  # a quiet moment: written
    saver.wait()
    assert session_io.load(find_autosave(inputs, saver.root)).name_of(first) == "three"
    for name in ("a", "b", "c"):  # edits without a pause: pending reaches 2 x every, written at once
        model.rename(first, name)
    written = saver._thread
    model.rename(first, "d")
    assert saver._thread is not written and saver.pending == 0
    saver.wait()
    assert session_io.load(find_autosave(inputs, saver.root)).name_of(first) == "d"


def test_autosaved_edits_come_back_when_the_same_folder_is_opened(
    qtbot, settings, tmp_path, tmp_path_factory, monkeypatch
):
    from imgclust_desktop.gui.main_window import MainWindow

    monkeypatch.setenv("IMGCLUST_DATA_DIR", str(tmp_path / "data"))
    edited = session_io.load(base_session_folder(tmp_path_factory.getbasetemp()))
    edited.rename(edited.cluster_ids()[0], "restored name")
    edited.set_excluded([2], True)
    session_io.save(edited, autosave_folder(edited.inputs), report=False)
    window = MainWindow(settings)
    qtbot.addWidget(window)
    window.open_paths(list(edited.inputs))  # the image folder, as if dropped again
    qtbot.waitUntil(lambda: window.worker is None and window.model.session is not None, timeout=60_000)
    restored = window.model.session
    assert restored.name_of(edited.cluster_ids()[0]) == "restored name" and restored.excluded[2]
    assert restored.path == autosave_folder(edited.inputs)
    assert restored.edits == edited.edits
    # saved somewhere on purpose: that folder holds the edits, and the older autosave no longer comes back
    window.save_session(str(tmp_path / "kept"))
    qtbot.waitUntil(lambda: window.worker is None, timeout=60_000)
    assert session_io.load(tmp_path / "kept").name_of(edited.cluster_ids()[0]) == "restored name"
    assert find_autosave(edited.inputs) is None


def test_double_click_opens_the_original_in_a_viewer(qtbot, settings, session):
    from imgclust_desktop.gui.main_window import MainWindow

    window = MainWindow(settings)
    qtbot.addWidget(window)
    window.model.set_session(session, None)
    row = 5
    window.scatter.imageActivated.emit(row)
    viewer = window.curation.viewer
    assert viewer is not None and viewer.isVisible()
    qtbot.waitUntil(lambda: viewer.image is not None, timeout=10_000)
    with Image.open(session.paths[row]) as original:
        size = original.size
    assert (viewer.image.width(), viewer.image.height()) == size  # the original file, not a 128 px thumbnail
    assert session.paths[row] in viewer.caption.text()
    assert session.name_of(int(session.labels[row])) in viewer.caption.text()
    viewer.close()
