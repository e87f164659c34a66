"""File > Rescan Folders and drops onto an open session: core.update in the worker, one undoable step.

The update runs through the window's worker (progress in the Progress dock, Esc / Cancel stops it). Its
result replaces the session as one UpdateSession command, so Edit > Undo takes the whole update back.
New images are ringed on the map and reachable through Edit > Select New Images until the person marks
them seen (Edit > Mark New Images as Seen); new clusters are named "New 1", "New 2", ...
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QKeySequence, QUndoCommand

from imgclust_desktop.gui.app import is_session_folder


def update_task(session: Any, inputs: list[str]) -> Any:
    """A worker task: core.update.update on a copy of the session, plus the thumbnail keys of its rows."""

    def task(*, on_progress, cancelled, on_event):
        from imgclust_desktop.core import update as update_mod
        from imgclust_desktop.gui.worker import file_keys

        result = update_mod.update(session, inputs, on_progress=on_progress, cancelled=cancelled)
        return result, file_keys(result.session.paths)

    return task


class UpdateSession(QUndoCommand):
    """Swap in the updated session (more rows, new thumbnails); undo brings the previous one back."""

    def __init__(self, model: Any, result: Any, thumbnails: Any) -> None:
        super().__init__(f"Add {len(result.added):,} new images")
        self.model, self.result = model, result
        self.old, self.old_thumbnails = model.session, model.thumbnails
        self.new, self.new_thumbnails = result.session, thumbnails

    def redo(self) -> None:
        self.model.set_session(self.new, self.new_thumbnails, keep_history=True)

    def undo(self) -> None:
        self.model.set_session(self.old, self.old_thumbnails, keep_history=True)


class Rescan(QObject):
    """The window's rescan/add-images feature: actions, drops, the worker hand-off and the New marks."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self.model = window.model
        self.last: Any = None  # the last core UpdateResult applied
        file_menu = _menu(window, "File")
        self.rescan_action = QAction("Rescan &Folders", window, shortcut=QKeySequence("F5"))
        self.rescan_action.setToolTip(
            "Add new images from the session's folders; the map and your edits stay"
        )
        self.rescan_action.triggered.connect(lambda: self.update([]))
        file_menu.insertAction(window.save_action, self.rescan_action)
        self.add_action = QAction("&Add Images to Session…", window)
        self.add_action.triggered.connect(lambda: self.choose_and_add())
        file_menu.insertAction(window.save_action, self.add_action)
        file_menu.insertSeparator(window.save_action)
        self.select_new_action = QAction("Select &New Images", window, shortcut=QKeySequence("Ctrl+Shift+A"))
        self.select_new_action.triggered.connect(lambda: self.select_new())
        self.seen_action = QAction("Mark New Images as &Seen", window)
        self.seen_action.triggered.connect(lambda: self.mark_seen())
        edit_menu = _menu(window, "Edit")
        edit_menu.addSeparator()
        edit_menu.addActions([self.select_new_action, self.seen_action])
        self.model.changed.connect(self._refresh)
        self._refresh()

    # ---- starting an update
    def can_update(self) -> bool:
        session = self.model.session
        return session is not None and not self.model.provisional and not self.window.busy()

    def accepts_drop(self, paths: list[str]) -> bool:
        """Dropped files/folders go into the open session (a dropped session folder still opens)."""
        if not self.can_update():
            return False
        return not (len(paths) == 1 and is_session_folder(paths[0]))

    def choose_and_add(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        folder = QFileDialog.getExistingDirectory(self.window, "Add a folder of images to the session")
        if folder:
            self.update([folder])

    def update(self, inputs: list[str]) -> bool:
        """Rescan the session's inputs plus `inputs` in the worker; False when it cannot start now."""
        if not self.can_update():
            self.window.status_label.setText(
                "Open a session first."
                if self.model.session is None
                else "Still working: wait or cancel first."
            )
            return False
        inputs = [os.path.abspath(p) for p in inputs]
        what = "Rescanning folders" if not inputs else f"Adding {os.path.basename(inputs[0]) or inputs[0]}"
        self.window._start(update_task(self.model.session, inputs), what, self._finished)
        return True

    def _finished(self, outcome: tuple[Any, list[str]]) -> None:
        from imgclust_desktop.gui.session_model import make_thumbnails

        result, keys = outcome
        self.last = result
        changed = result.added or result.missing or result.reattached or result.changed
        if changed:
            self.model.undo_stack.push(UpdateSession(self.model, result, make_thumbnails(keys)))
            self.window.inputs = list(result.session.inputs)
            self.window.skipped_panel.set_skipped(result.session.skipped)
            self.show_new()
        text = result.summary() if changed else "No new, changed or missing images."
        self.window.progress_panel.finish(f"Done: {text}")
        self.window.status_label.setText(text)

    # ---- the New marks
    def new_rows(self) -> np.ndarray:
        from imgclust_desktop.core.update import unseen_rows

        session = self.model.session
        return np.zeros(0, np.int64) if session is None else unseen_rows(session)

    def show_new(self) -> None:
        """Ring the new images on the map."""
        self.model.set_highlight(self.new_rows())

    def select_new(self) -> None:
        """Select the new images (and ring them) so they can be looked at, moved or excluded together."""
        rows = self.new_rows()
        self.model.set_highlight(rows)
        self.model.select(rows)
        if len(rows) and hasattr(self.window.scatter, "zoom_to_selection"):
            self.window.scatter.zoom_to_selection()

    def mark_seen(self, rows: Any = None) -> None:
        """The person has looked at the new images: drop their marks and rings."""
        from imgclust_desktop.core.update import mark_seen

        if self.model.session is None:
            return
        mark_seen(self.model.session, rows)
        self.model.set_highlight(self.new_rows())
        self._refresh()

    def _refresh(self) -> None:
        has_new = self.model.session is not None and len(self.new_rows()) > 0
        self.select_new_action.setEnabled(has_new)
        self.seen_action.setEnabled(has_new)


def _menu(window: Any, title: str) -> Any:
    for action in window.menuBar().actions():
        if action.menu() is not None and action.text().replace("&", "") == title:
            return action.menu()
    return window.menuBar().addMenu(title)


def install_rescan(window: Any) -> Rescan:
    """Add the rescan actions to the window's File and Edit menus; returns the helper."""
    return Rescan(window)
