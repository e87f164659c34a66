"""The search panel on a real session: an outside near-copy finds its original first, selection queries,
the k slider and alpha mode, results ringed on the map and turned into a selection, a drop from outside."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from curation_support import folder_of, fresh_session, model_with
from PIL import Image, ImageEnhance
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from imgclust_desktop.gui.panels.scatter import ScatterPanel
from imgclust_desktop.gui.panels.search import SearchPanel


@pytest.fixture
def setup(qtbot, tmp_path_factory, tmp_path):
    session = fresh_session(tmp_path_factory.getbasetemp(), tmp_path)
    model = model_with(session)
    panel = SearchPanel(model)
    scatter = ScatterPanel(model)
    for widget in (panel, scatter):
        qtbot.addWidget(widget)
    return session, model, panel, scatter


def near_copy(source: str, target) -> str:
    """Slightly brighter, re-encoded as JPEG, outside the image set."""
    image = ImageEnhance.Brightness(Image.open(source).convert("RGB")).enhance(1.08)
    image.save(target, "JPEG", quality=85)
    return str(target)


def wait_search(qtbot, panel) -> None:
    qtbot.waitUntil(lambda: panel.worker is None, timeout=120_000)


def test_an_outside_near_copy_finds_its_original_first(qtbot, setup, tmp_path):
    session, model, panel, scatter = setup
    original = next(i for i, p in enumerate(session.paths) if p.endswith("rocket/rocket_005.jpg"))
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    query = near_copy(session.paths[original], outside / "query.jpg")

    panel.search_file(query)
    assert panel.worker is not None  # the model runs in the worker, not on the GUI thread
    wait_search(qtbot, panel)
    rows = panel.result_rows()
    assert rows[0] == original
    assert len(rows) == panel.k_slider.value() == 12
    assert panel.strip.count() == 12 and panel.strip.item(0).data(Qt.ItemDataRole.UserRole + 1) == original
    truth = folder_of(session)
    assert np.all(truth[rows[:7]] == "rocket")  # the nearest ones are the original's own folder
    assert np.array_equal(model.highlight, rows)
    assert np.array_equal(scatter.rings.rows, rows)  # ringed on the map

    panel.select_all.click()
    assert sorted(model.selection.tolist()) == sorted(rows)


def test_selection_query_k_slider_and_significance_mode(qtbot, setup):
    session, model, panel, _scatter = setup
    truth = folder_of(session)
    row = int(np.flatnonzero(truth == "cat")[2])
    model.select([row])
    panel.from_selection.click()
    assert row not in panel.result_rows()  # the query image itself is not a result
    panel.k_slider.setValue(5)
    rows = panel.result_rows()
    assert len(rows) == 5 and np.all(truth[rows] == "cat")
    sims = [s for _r, s in panel.results]
    assert sims == sorted(sims, reverse=True)

    panel.mode.setCurrentIndex(panel.mode.findData("alpha"))
    assert panel.alpha.isVisibleTo(panel) and not panel.k_slider.isVisibleTo(panel)
    significant = panel.result_rows()
    assert row not in significant
    assert 0 < len(significant) < len(session.paths) - 1
    assert np.mean(truth[significant] == "cat") > 0.5
    panel.alpha.setValue(0.001)
    assert len(panel.result_rows()) <= len(significant)


def test_dropping_an_image_file_on_the_panel_searches_with_it(qtbot, setup, tmp_path):
    session, model, panel, _scatter = setup
    original = next(i for i, p in enumerate(session.paths) if p.endswith("cat/cat_006.jpg"))
    query = near_copy(session.paths[original], tmp_path / "dropped.jpg")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(query)])
    buttons, modifiers = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        enter = QDragEnterEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime, buttons, modifiers)
    QApplication.sendEvent(panel, enter)
    assert enter.isAccepted()
    QApplication.sendEvent(
        panel, QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, buttons, modifiers)
    )
    wait_search(qtbot, panel)
    assert panel.result_rows()[0] == original
    assert panel.query_picture.pixmap() is not None and not panel.query_picture.pixmap().isNull()


def test_a_file_that_is_not_an_image_gives_a_message(qtbot, setup, tmp_path):
    _session, _model, panel, _scatter = setup
    bad = tmp_path / "notes.png"
    bad.write_text("not really a picture")
    panel.search_file(str(bad))
    wait_search(qtbot, panel)
    assert panel.results == [] and panel.status.text().startswith("Search:")
