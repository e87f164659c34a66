"""The window adds images to an open session: File > Rescan Folders and drops, in the background, undoable."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import write_groups
from test_main_window import drop, wait_idle
from test_update import add_images, make_session

from imgclust_desktop.gui.main_window import MainWindow


@pytest.fixture
def opened(qtbot, settings, tmp_path):
    """A window showing a real saved session (3 groups x 8 images), cluster 0 renamed by the person."""
    images, folder = make_session(tmp_path)
    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    win.open_session(str(folder))
    wait_idle(qtbot, win)
    win.model.rename(0, "Stripes")
    yield win, images, tmp_path
    if win.worker is not None:
        win.worker.cancel()
        win.worker.wait(5)


def test_rescan_adds_new_images_in_the_background_as_one_undoable_step(qtbot, opened):
    win, images, root = opened
    before = win.model.session
    n, coords, labels = len(before.paths), before.coords.copy(), before.labels.copy()
    steps = win.model.undo_stack.count()
    add_images(images, root)

    win.rescan.rescan_action.trigger()
    assert win.worker is not None  # the work runs in the worker thread, the window stays responsive
    wait_idle(qtbot, win)

    after = win.model.session
    assert after is not before and len(after.paths) == n + 20
    assert np.abs(after.coords[:n] - coords).max() <= 1e-4 and np.array_equal(after.labels[:n], labels)
    assert after.name_of(0) == "Stripes"
    assert win.model.undo_stack.count() == steps + 1
    assert win.model.undo_stack.undoText() == "Add 20 new images"
    # the new rows have thumbnails (made while their features were computed)
    qtbot.waitUntil(lambda: win.model.thumbnails.get(n + 19) is not None, timeout=10_000)
    new_rows = np.arange(n, n + 20)
    assert np.array_equal(np.sort(win.model.highlight), new_rows)  # ringed on the map
    assert "20 added" in win.status_label.text()
    assert any(after.name_of(c).startswith("New") for c in after.cluster_ids())

    win.rescan.select_new_action.trigger()
    assert np.array_equal(win.model.selection, new_rows)

    win.model.undo_stack.undo()
    assert win.model.session is before and len(before.paths) == n and before.name_of(0) == "Stripes"
    assert len(win.model.highlight) == 0
    win.model.undo_stack.redo()
    assert win.model.session is after

    win.rescan.seen_action.trigger()
    assert len(win.model.highlight) == 0 and not win.rescan.select_new_action.isEnabled()


def test_dropping_a_folder_on_an_open_session_adds_it(qtbot, opened):
    win, images, root = opened
    more = write_groups(root / "more", groups=2, per_group=5, size=48, seed=4)
    n = len(win.model.session.paths)

    drop(win.scatter, more)
    assert win.worker is not None
    wait_idle(qtbot, win)

    session = win.model.session
    assert len(session.paths) == n + 10 and str(more) in session.inputs
    assert session.edits[-1]["op"] == "update"


def test_cancelling_a_rescan_leaves_the_session_alone(qtbot, opened):
    win, images, root = opened
    before = win.model.session
    steps = win.model.undo_stack.count()
    add_images(images, root)

    win.rescan.rescan_action.trigger()
    win.cancel_run()
    wait_idle(qtbot, win)
    assert win.model.session is before and win.model.undo_stack.count() == steps
    assert win.status_label.text() == "Cancelled."


def test_opening_a_moved_session_offers_to_relocate_and_relocating_is_undoable(qtbot, settings, tmp_path):
    import shutil

    images, folder = make_session(tmp_path)
    target = tmp_path / "elsewhere"
    shutil.move(images, target)
    win = open_window(qtbot, settings, folder)
    box = win.rescan.relocate_box
    assert box is not None and box.isVisible() and "not where they were" in box.text()
    box.reject()
    before = win.model.session

    assert win.rescan.relocate_to(str(target))
    wait_idle(qtbot, win)
    moved = win.model.session
    assert moved is not before and all(p.startswith(str(target)) for p in moved.paths)
    assert not moved.missing.any() and "contents checked" in win.status_label.text()
    assert np.array_equal(moved.coords, before.coords) and np.array_equal(moved.labels, before.labels)
    win.model.undo_stack.undo()
    assert win.model.session is before


def open_window(qtbot, settings, folder) -> MainWindow:
    """The real window with a saved session opened, as File > Open Session does."""
    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.show()
    win.open_session(str(folder))
    wait_idle(qtbot, win)
    return win


def test_a_session_whose_thumbnails_are_not_in_the_cache_shows_its_images(
    qtbot, settings, tmp_path, monkeypatch
):
    """A session made with another --cache-dir (or --no-cache, or on another machine): the window decodes
    the files themselves instead of leaving every tile grey."""
    images, folder = make_session(tmp_path)
    monkeypatch.setenv("IMGCLUST_CACHE_DIR", str(tmp_path / "empty-cache"))
    win = open_window(qtbot, settings, folder)
    provider = win.model.thumbnails
    provider.get(0)  # scheduled, if the views have not asked for it yet
    qtbot.waitUntil(lambda: provider.peek(0) is not None, timeout=10_000)
    image = provider.peek(0)
    from PIL import Image

    with Image.open(win.model.session.paths[0]) as source:
        pixel = source.convert("RGB").getpixel((source.width // 2, source.height // 2))
    shown = image.pixelColor(image.width() // 2, image.height() // 2)
    assert (
        max(abs(a - b) for a, b in zip((shown.red(), shown.green(), shown.blue()), pixel, strict=True)) < 40
    )
