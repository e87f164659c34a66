"""The window's granularity control: fewer / more groups over the cluster tree, drill-down, undo, warnings."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QToolBar
from tree_support import make_tree_session

from imgclust_desktop.gui.granularity import height_of_level, slider_levels, tree_count_at
from imgclust_desktop.gui.main_window import MainWindow


@pytest.fixture
def window(qtbot, settings):
    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    win.model.set_session(make_tree_session())
    return win


def legend_names(win: MainWindow) -> list[str]:
    legend = win.scatter.legend.model()
    return [legend.index(i).data() for i in range(legend.rowCount())]


def map_colours(win: MainWindow) -> np.ndarray:
    """The colour each point of the map is drawn with (rgb rows)."""
    item = win.scatter.item
    return item.palette[item.color_index]


def test_the_slider_recuts_and_legend_map_grid_and_dendrogram_follow(window, qtbot):
    session = window.model.session
    control = window.granularity.control
    assert control.isEnabled() and control.count.value() == session.tree.default_k
    coarse = session.tree.levels[0]
    colours_before = map_colours(window)
    assert len(np.unique(colours_before, axis=0)) == session.tree.default_k
    control.slider.setValue(control.position_of(coarse))  # a keyboard step: re-cuts once it settles
    qtbot.waitUntil(lambda: session.level == coarse, timeout=3000)
    assert len(session.cluster_ids()) == coarse
    assert len(legend_names(window)) == coarse
    colours = map_colours(window)
    assert len(np.unique(colours, axis=0)) == coarse  # the map is recoloured: one colour per group
    for cid in session.cluster_ids():  # and every point of a group has that group's colour
        assert len(np.unique(colours[session.labels == cid], axis=0)) == 1
    # the dendrogram waits behind the cluster grid's tab; brought to the front, it shows the new level
    assert window.dendrogram.cut_count != coarse
    window.docks["dendrogram"].raise_()
    qtbot.waitUntil(lambda: window.dendrogram.cut_count == coarse, timeout=3000)
    assert len(window.dendrogram.cluster_ids) == coarse
    assert window.model.undo_stack.count() == 1
    assert all(session.name_of(c) in " ".join(legend_names(window)) for c in session.cluster_ids())


def test_the_count_box_gives_any_cut_and_undo_restores_labels_byte_for_byte(window):
    session = window.model.session
    before_labels, before_level = session.labels.copy(), session.level
    before_clusters = dict(session.clusters)
    finer = session.tree.n_leaves - 1
    window.granularity.control.count.setValue(finer)
    assert session.level == finer and len(session.cluster_ids()) == finer
    assert len(legend_names(window)) == finer
    window.model.undo_stack.undo()
    assert session.labels.tobytes() == before_labels.tobytes() and session.labels.dtype == before_labels.dtype
    assert session.level == before_level and session.clusters == before_clusters
    assert len(legend_names(window)) == len(before_clusters)
    window.model.undo_stack.redo()
    assert session.level == finer


def test_a_rename_survives_a_round_trip_to_a_finer_level_and_back(window, monkeypatch):
    session = window.model.session
    asked = []
    monkeypatch.setattr(
        QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or QMessageBox.StandardButton.Yes
    )
    default = session.level
    finer = session.tree.finer(default)
    split_there = set(session.tree.node_of_clusters(finer).tolist())
    cid = next(c for c in session.cluster_ids() if session.clusters[c].node not in split_there)
    rows = np.flatnonzero(session.labels == cid)
    window.model.rename(cid, "sunsets")
    assert window.granularity.recut(finer)
    assert asked and "sunsets" in asked[-1]  # split at the finer level: asked first
    assert window.granularity.recut(default)
    assert session.name_of(int(session.labels[rows[0]])) == "sunsets"
    assert np.all(session.labels[rows] == session.labels[rows[0]])


def test_declining_the_warning_leaves_everything_as_it_was(window, monkeypatch):
    session = window.model.session
    window.model.rename(session.cluster_ids()[0], "sunsets")
    before = session.labels.copy()
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.No)
    assert not window.granularity.recut(session.tree.n_leaves)
    assert np.array_equal(session.labels, before) and session.name_of(session.cluster_ids()[0]) == "sunsets"
    assert window.model.undo_stack.count() == 1  # the rename only
    assert window.granularity.control.count.value() == len(session.cluster_ids())


def show_dendrogram(win: MainWindow, qtbot) -> None:
    win.docks["dendrogram"].raise_()
    qtbot.waitUntil(lambda: win.dendrogram.linkage is not None, timeout=3000)


def test_show_sub_groups_from_the_context_menu_and_collapse_back(window, qtbot):
    show_dendrogram(window, qtbot)
    session = window.model.session
    window.granularity.recut(session.tree.levels[0])
    before = session.labels.copy()
    cid = max(session.cluster_ids(), key=lambda c: int(np.sum(before == c)))
    menu = window.curation.actions.context_menu(cid)
    actions = {a.text(): a for a in menu.actions()}
    assert "Show sub-groups" in actions and "Collapse into parent" in actions
    actions["Show sub-groups"].trigger()
    parts = np.unique(session.labels[before == cid])
    assert len(parts) == 2
    assert np.array_equal(session.labels[before != cid], before[before != cid])
    assert len(window.dendrogram.cluster_ids) == len(np.unique(before)) + 1
    new = int(parts[parts != cid][0])
    assert window.granularity.collapse(new)
    assert np.array_equal(session.labels, before)
    window.model.undo_stack.undo()
    window.model.undo_stack.undo()
    assert np.array_equal(session.labels, before)
    window.model.undo_stack.undo()  # the re-cut
    assert session.level == session.tree.default_k


def test_the_dendrogram_line_recuts_both_ways(window, qtbot):
    show_dendrogram(window, qtbot)
    session = window.model.session
    tree = session.tree
    default = tree.default_k
    for k in (tree.levels[0], default, tree.n_leaves):  # coarser, back, and below every drawn merge
        window.dendrogram.set_cut_height(height_of_level(tree, k))
        window.dendrogram.cutChanged.emit(window.dendrogram.cut_height())
        assert session.level == k and len(session.cluster_ids()) == k
        assert window.dendrogram.cut_count == k


def test_slider_stops_include_the_stored_levels_and_heights_map_back_to_counts():
    tree = make_tree_session().tree
    stops = slider_levels(tree)
    assert set(tree.levels) <= set(stops) and stops[0] == 1 and stops[-1] == tree.n_leaves
    for k in range(1, tree.n_leaves + 1):
        assert tree_count_at(tree, height_of_level(tree, k)) == k


def test_a_fresh_window_clusters_with_the_tree_so_it_can_be_recut(window):
    fields = window.settings_panel.cluster_fields()
    assert fields["method"] == "tree" and fields["k"] is None


def test_hundreds_of_groups_fill_the_legend_list_map_and_dendrogram_without_an_item_each(qtbot, settings):
    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.resize(1300, 850)
    win.show()
    qtbot.waitExposed(win)
    session = make_tree_session(themes=5, kinds=6, per_kind=50)  # 1,500 images, hundreds of leaves
    win.model.set_session(session)
    win.central.setCurrentWidget(win.scatter)
    show_dendrogram(win, qtbot)
    finest = session.tree.n_leaves
    assert finest > 300  # more than the dendrogram pictures: its leaves become dots
    assert win.granularity.recut(finest)
    ids = session.cluster_ids()
    assert len(ids) == finest
    legend = win.scatter.legend.model()
    assert legend.rowCount() == finest
    assert (
        legend.index(finest - 1).data()
        == f"{session.name_of(ids[-1])}  ({int(np.sum(session.labels == ids[-1])):,})"
    )
    item = win.scatter.item
    assert len(item.palette) <= 51  # one sprite per palette colour, not per group
    colours = map_colours(win)
    for cid in ids[:: max(1, finest // 40)]:  # each group drawn in its own colour
        assert np.all(colours[session.labels == cid] == colours[np.flatnonzero(session.labels == cid)[0]])
    win.dendrogram.plot.grab()
    assert win.dendrogram.leaves.last_drawn == finest
    assert len(win.dendrogram.plot.scene().items()) < 40  # one item for all the leaves
    listed = win.clusters.clusters.model()
    assert listed.rowCount() < finest  # behind the dendrogram's tab the cluster list waited
    win.docks["clusters"].raise_()
    qtbot.waitUntil(lambda: listed.rowCount() == finest, timeout=3000)
    sizes = [
        int(np.sum(session.labels == listed.index(r).data(Qt.ItemDataRole.UserRole))) for r in range(finest)
    ]
    assert sizes == sorted(sizes, reverse=True)  # biggest first
    assert win.clusters.images.rowCount() == np.sum(session.labels == win.clusters.current_cluster)
    win.scatter.show_only(ids[0])  # hiding every group but one from the legend
    assert item.visible.sum() == np.sum(session.labels == ids[0])
    assert legend.index(1).data(Qt.ItemDataRole.FontRole).strikeOut()


def test_the_toolbar_undo_button_keeps_its_label_and_tells_what_it_undoes(window):
    toolbar = window.findChild(QToolBar, "toolbar-main")
    undo = next(a for a in toolbar.actions() if a.text() == "Undo")
    redo = next(a for a in toolbar.actions() if a.text() == "Redo")
    session = window.model.session
    assert not undo.isEnabled() and not redo.isEnabled()
    default, coarse = session.level, session.tree.levels[0]
    window.granularity.recut(coarse)
    assert undo.text() == "Undo" and undo.isEnabled()  # the row of buttons does not move
    assert undo.toolTip() == f"Undo Show {coarse} groups"  # what the Edit menu says
    undo.trigger()
    assert session.level == default and redo.isEnabled() and not undo.isEnabled()
    redo.trigger()
    assert session.level == coarse


def test_while_idle_the_window_works_out_the_slider_stops_so_a_recut_only_reads_them(
    qtbot, settings, monkeypatch
):
    from imgclust_desktop.core import names

    def open_window(ahead: bool) -> MainWindow:
        win = MainWindow(settings)
        qtbot.addWidget(win)
        win.granularity.prepare_ahead = ahead
        win.model.set_session(make_tree_session(themes=4, kinds=4, per_kind=15))
        return win

    named: list[int] = []
    real = names.cluster_names
    monkeypatch.setattr(names, "cluster_names", lambda *a, **kw: named.append(1) or real(*a, **kw))
    win = open_window(ahead=True)
    qtbot.waitUntil(lambda: not win.granularity._ahead_timer.isActive(), timeout=5000)
    session = win.model.session
    stops = win.granularity.control.levels  # the slider's: the stored levels and steps between them
    assert set(session.tree.levels) < set(stops)
    assert len(named) == len(stops)  # each stop once, in idle turns of the event loop
    shown = {}
    for k in stops:
        before = len(named)
        assert win.granularity.recut(k) or k == session.level
        assert len(named) == before  # the names were ready
        shown[k] = legend_names(win)
    cold = open_window(ahead=False)
    qtbot.wait(50)
    named.clear()
    for k in stops:
        cold.granularity.recut(k)
        assert legend_names(cold) == shown[k]  # the same names, worked out when asked
    assert len(named) == len(stops) - 1  # the level it opened at was named on opening
