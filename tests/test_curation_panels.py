"""Near-duplicates and outliers views on a real session, and the window's curation wiring (menus, export)."""

from __future__ import annotations

import numpy as np
import pytest
from curation_support import fresh_session, model_with

from imgclust_desktop.gui.panels.duplicates import DuplicatesPanel, RowRole
from imgclust_desktop.gui.panels.outliers import OutliersPanel


@pytest.fixture
def session(tmp_path_factory, tmp_path):
    return fresh_session(tmp_path_factory.getbasetemp(), tmp_path)


def test_keep_one_exclude_the_rest_per_duplicate_group_and_undo(qtbot, session):
    model = model_with(session)
    panel = DuplicatesPanel(model)
    qtbot.addWidget(panel)
    copy = next(i for i, p in enumerate(session.paths) if " copy." in p)
    original = session.paths.index(session.paths[copy].replace(" copy.", "."))
    assert any({copy, original} <= set(g) for g in panel.groups)  # the exact copy pair is a group
    assert panel.group_list.count() == len(panel.groups)

    panel.group_list.setCurrentRow(next(k for k, g in enumerate(panel.groups) if copy in g))
    panel.images.item(0).setSelected(True)
    kept = int(panel.images.item(0).data(RowRole))
    panel.keep_button.click()
    group = next(g for g in panel.groups if copy in g)
    assert not session.excluded[kept] and session.excluded[[r for r in group if r != kept]].all()
    assert int(session.excluded.sum()) == len(group) - 1

    model.undo_stack.undo()
    assert not session.excluded.any()
    panel.keep_all_button.click()
    assert int(session.excluded.sum()) == sum(len(g) - 1 for g in panel.groups)
    for g in panel.groups:
        assert int((~session.excluded[g]).sum()) == 1


def test_regrouping_at_a_strict_threshold_keeps_only_true_copies(qtbot, session):
    model = model_with(session)
    panel = DuplicatesPanel(model)
    qtbot.addWidget(panel)
    panel.find_groups(0.999)
    qtbot.waitUntil(lambda: panel.worker is None, timeout=30_000)
    copy = next(i for i, p in enumerate(session.paths) if " copy." in p)
    original = session.paths.index(session.paths[copy].replace(" copy.", "."))
    assert [sorted(g) for g in panel.groups] == [sorted([copy, original])]


def test_outliers_are_listed_most_unusual_first_and_can_be_excluded(qtbot, session):
    model = model_with(session)
    panel = OutliersPanel(model)
    qtbot.addWidget(panel)
    scores = session.outlier_score[panel.rows]
    assert len(panel.rows) == len(session.paths) and np.all(np.diff(scores) <= 0)
    threshold = float(np.sort(session.outlier_score)[-3])
    chosen = panel.select_at_least(threshold)
    assert set(chosen.tolist()) == set(np.flatnonzero(session.outlier_score >= threshold).tolist())
    assert sorted(model.selection.tolist()) == sorted(chosen.tolist())
    panel.exclude_button.click()
    assert np.array_equal(np.flatnonzero(session.excluded), np.sort(chosen))
    assert "excluded" in panel.grid.item(0).text()
    model.undo_stack.undo()
    assert not session.excluded.any()


def test_the_window_offers_export_and_the_edit_actions(qtbot, settings, session, monkeypatch, tmp_path):
    from imgclust_desktop.gui.main_window import MainWindow

    monkeypatch.setenv("IMGCLUST_DATA_DIR", str(tmp_path / "data"))
    window = MainWindow(settings)
    qtbot.addWidget(window)
    assert not window.export_action.isEnabled()
    window.model.set_session(session, None)
    assert window.export_action.isEnabled()
    texts = [a.text() for a in window.menuBar().actions()[1].menu().actions()]
    assert "&Split Cluster…" in texts and "E&xclude Selection" in texts
    window.model.select([0, 1])
    actions = window.curation.actions
    assert actions.exclude.isEnabled() and actions.move_new.isEnabled()
    menu = actions.context_menu(int(session.labels[0]))
    entries = [a.text() for a in menu.actions()]
    assert "Move to" in entries and "&Split Cluster…" in entries
    actions.exclude.trigger()
    assert session.excluded[[0, 1]].all() and window.undo_action.isEnabled()
    window.export_action.trigger()
    dialog = window.curation.export_dialog
    assert dialog is not None and dialog.isVisible()
    dialog.reject()
    window.close()  # closing writes the unsaved edit into the session's own folder
    from imgclust_desktop.core import session as session_io

    assert session_io.load(session.path).excluded[[0, 1]].all()
