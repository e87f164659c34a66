"""The real main window, offscreen: drops, runs, cancel, re-cluster, sessions, dialogs, remembered state."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import write_groups
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from imgclust_desktop.gui import dialogs
from imgclust_desktop.gui.main_window import MainWindow

RUN_TIMEOUT_MS = 120_000


@pytest.fixture
def window(qtbot, settings):
    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    yield win
    if win.worker is not None:
        win.worker.cancel()
        win.worker.wait(5)


def fast_settings(win: MainWindow) -> None:
    """PCA map and k-means keep each run to a few seconds; the model is the real default one."""
    panel = win.settings_panel
    panel.embedding.setCurrentIndex(panel.embedding.findData("pca"))
    panel.method.setCurrentIndex(panel.method.findData("kmeans"))
    panel.space.setCurrentIndex(panel.space.findData("reduced"))
    panel.k_min.setValue(2)
    panel.k_max.setValue(5)


def drop(target: QWidget, *paths: Path) -> None:
    """A drag from a file manager: DragEnter then Drop carrying file URLs, sent to any widget in the window."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    buttons, modifiers = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    with warnings.catch_warnings():  # PySide marks the QPoint constructor deprecated; it is the one Qt has
        warnings.simplefilter("ignore", DeprecationWarning)
        enter = QDragEnterEvent(QPoint(20, 20), Qt.DropAction.CopyAction, mime, buttons, modifiers)
    QApplication.sendEvent(target, enter)
    assert enter.isAccepted(), "the window refused the drag"
    QApplication.sendEvent(
        target, QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime, buttons, modifiers)
    )


def wait_idle(qtbot, win: MainWindow, timeout: int = RUN_TIMEOUT_MS) -> None:
    qtbot.waitUntil(lambda: win.worker is None, timeout=timeout)


def test_dropping_a_folder_runs_shows_clusters_and_saves_without_blocking(qtbot, window, tmp_path):
    folder = write_groups(tmp_path / "images")
    (folder / "group0" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    fast_settings(window)
    ticks: list[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(50)
    events: list[str] = []
    drop(window.empty.headline, folder)  # a drop on a child widget reaches the window
    assert window.worker is not None
    window.worker.event.connect(lambda kind, _payload: events.append(kind))
    started = time.perf_counter()
    wait_idle(qtbot, window)
    elapsed = time.perf_counter() - started
    timer.stop()

    session = window.model.session
    assert session is not None and not window.model.provisional
    assert len(session.paths) == 24
    assert window.model.cluster_count() >= 2
    assert window.central.currentWidget() is window.scatter
    assert "preview" in events  # the map was shown before the run ended
    # The broken file is listed with a reason, and the list can be copied.
    assert window.skipped_panel.table.rowCount() == 1
    assert "broken.png" in window.skipped_panel.copy()
    assert "broken.png" in QGuiApplication.clipboard().text()
    # The GUI thread kept serving its event loop: at most a 1 s gap anywhere in a multi-second run.
    gaps = np.diff([started, *ticks])
    assert len(ticks) >= elapsed / 0.05 * 0.3 and gaps.max() < 1.0, (len(ticks), elapsed, gaps.max())
    assert window.save_action.isEnabled() and window.settings_panel.run_button.text() == "Re-cluster"

    # Save, then drop the session folder: it opens as a session, not as a folder of images.
    labels = session.labels.copy()
    target = tmp_path / "saved-session"
    window.save_session(str(target))
    wait_idle(qtbot, window)
    assert (target / "session.json").is_file() and window.recent_sessions()[0] == str(target)
    window.model.set_session(None)
    drop(window.scatter, target)
    wait_idle(qtbot, window)
    assert window.error_box is None and window.model.session is not session
    assert np.array_equal(window.model.session.labels, labels)
    assert window.skipped_panel.table.rowCount() == 1  # the skipped list travels with the session
    assert window.can_recluster()  # same model as the panel: features are reused


def test_recluster_reuses_features_and_is_undoable(qtbot, window, image_folder, monkeypatch):
    from imgclust_desktop.core.models import base

    calls = []
    original = base.TorchExtractor.embed
    monkeypatch.setattr(
        base.TorchExtractor, "embed", lambda self, batch: calls.append(1) or original(self, batch)
    )
    fast_settings(window)
    window.open_paths([str(image_folder)])
    wait_idle(qtbot, window)
    assert calls, "the first run must have run the model"
    first = window.model.session
    calls.clear()

    panel = window.settings_panel
    panel.auto_k.setChecked(False)
    panel.k.setValue(4)
    assert window.can_recluster() and panel.run_button.text() == "Re-cluster"
    panel.run_button.click()
    wait_idle(qtbot, window)
    assert calls == []  # no image went through the network again
    assert window.model.cluster_count() == 4 and window.model.session is not first
    window.undo_action.trigger()
    assert window.model.session is first
    window.redo_action.trigger()
    assert window.model.cluster_count() == 4

    # The dendrogram's cut line merges clusters; lowering it again splits them back (from the same base).
    top = float(window.model.session.linkage[:, 2].max())
    window.dendrogram.cutChanged.emit(top * 1.01)
    assert window.model.cluster_count() == 1
    window.dendrogram.cutChanged.emit(float(window.model.session.linkage[:, 2].min()) * 0.5)
    assert window.model.cluster_count() == 4
    window.undo_action.trigger()
    assert window.model.cluster_count() == 1

    panel.embedding.setCurrentIndex(panel.embedding.findData("umap"))  # a new map needs a full run
    assert not window.can_recluster() and panel.run_button.text() == "Run"


def test_cancel_mid_run_stops_fast_and_leaves_the_window_usable(qtbot, window, tmp_path):
    folder = write_groups(tmp_path / "many", groups=3, per_group=100, size=64)
    fast_settings(window)
    window.open_paths([str(folder)])
    job = window.worker
    stages: list[str] = []
    job.progressed.connect(lambda p: stages.append(p.stage))
    qtbot.waitUntil(lambda: any("feature" in s for s in stages), timeout=RUN_TIMEOUT_MS)
    window.cancel_action.trigger()
    wait_idle(qtbot, window, timeout=3000)
    assert job.ended_at - job.cancel_requested_at < 1.5
    assert window.model.session is None and window.central.currentWidget() is window.empty
    assert window.empty.open_folder.isVisible() and window.open_folder_action.isEnabled()
    assert window.progress_panel.title.text() == "Cancelled" and window.error_box is None


def test_a_failed_run_shows_details_and_the_window_stays_usable(qtbot, window, tmp_path):
    empty = tmp_path / "nothing-here"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    fast_settings(window)
    window.open_paths([str(empty)])
    wait_idle(qtbot, window)
    box = window.error_box
    assert isinstance(box, QMessageBox) and box.isVisible() and not box.isModal()
    assert box.text() and "Traceback" in box.detailedText()
    assert window.model.session is None and window.open_folder_action.isEnabled()


def test_window_state_and_settings_are_remembered(qtbot, settings):
    first = MainWindow(settings)
    qtbot.addWidget(first)
    first.resize(700, 520)  # within the 800x600 offscreen screen that restoreGeometry clamps to
    first.show()
    qtbot.waitExposed(first)
    panel = first.settings_panel
    panel.method.setCurrentIndex(panel.method.findData("agglomerative"))
    panel.seed.setValue(7)
    first.docks["skipped"].raise_()
    size = (first.width(), first.height())
    first.close()

    second = MainWindow(settings)
    qtbot.addWidget(second)
    assert second.settings_panel.method.currentData() == "agglomerative"
    assert second.settings_panel.seed.value() == 7
    assert second.settings_panel.linkage.isEnabled()  # dependent widgets follow the restored method
    assert size != (1280, 820) and (second.width(), second.height()) == size


def test_about_box_lists_versions_and_the_model_licence(qtbot, window):
    window.show_about()
    text = window.about_box.text()
    from PySide6.QtCore import qVersion

    assert qVersion() in text and "imgclust-desktop" in text
    assert window.settings_panel.selected_model().licence in text


def test_model_download_dialog_shows_progress_and_cancels(qtbot, window):
    info = window.settings_panel.selected_model()

    def slow_download(model_id):
        def task(*, on_progress, cancelled, on_event):
            from imgclust_desktop.core.progress import Cancelled, Progress

            for done in range(0, 10_000):
                if cancelled():
                    raise Cancelled()
                on_progress(Progress("downloading", done * 1024 * 1024, 10_000 * 1024 * 1024, rate=5e6))
                time.sleep(0.02)

        return task

    dialog = dialogs.ModelDownloadDialog(info, window, task_factory=slow_download)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.download_button.click()
    qtbot.waitUntil(lambda: dialog.bar.value() > 0, timeout=5000)
    assert "MB" in dialog.status.text() and not dialog.download_button.isEnabled()
    dialog.cancel_button.click()
    qtbot.waitUntil(lambda: dialog.status.text() == "Download cancelled.", timeout=1500)
    assert dialog.isVisible() and dialog.download_button.isEnabled()


def test_model_download_dialog_accepts_a_local_weights_file(qtbot, window, tmp_path, monkeypatch):
    weights = tmp_path / "my-weights.pt"
    weights.write_bytes(b"weights")
    monkeypatch.setattr(dialogs.QFileDialog, "getOpenFileName", lambda *a, **k: (str(weights), ""))
    dialog = dialogs.ModelDownloadDialog(window.settings_panel.selected_model(), window)
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.accepted, timeout=1000):
        dialog.local_button.click()
    assert dialog.weights_path == str(weights)


def test_a_long_stage_message_wraps_and_keeps_the_right_docks_inside_the_window(window, qtbot):
    from imgclust_desktop.core.progress import Progress

    window.resize(1280, 820)
    panel = window.progress_panel
    panel.start("Clustering 70,000 images")
    message = "15 nearest neighbours of 70,000 images in the 50-d PCA space, chunk 12 of 35, exact search"
    panel.update_progress(Progress("neighbours", 12, 35, message=message))
    qtbot.wait(50)
    assert message in panel.stage.text()  # all of it is shown, on several lines
    assert panel.minimumSizeHint().width() < 300
    for name in ("settings", "progress"):
        dock = window.docks[name]
        assert dock.geometry().right() <= window.width()
    assert window.docks["progress"].width() == window.docks["settings"].width()


def test_the_model_note_says_small_images_get_a_middle_layers_fewer_features(window):
    """The default model's 1280-d head is not what digits-sized images get (core/pipeline.choose_input)."""
    from imgclust_desktop.core.pipeline import SMALL_SOURCE_EDGE

    panel = window.settings_panel
    note = panel.model_note.text()
    assert note.startswith(f"{panel.selected_model().dim}-d features")
    assert f"images of {SMALL_SOURCE_EDGE} px or less" in note and "middle layer" in note
