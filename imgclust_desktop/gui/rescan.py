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

from imgclust_desktop.gui.app_paths import is_session_folder


def update_task(session: Any, inputs: list[str]) -> Any:
    """A worker task: core.update.update on a copy of the session, plus the thumbnail keys of its rows."""

    def task(*, on_progress, cancelled, on_event):
        from imgclust_desktop.core import update as update_mod
        from imgclust_desktop.gui.worker import file_keys

        result = update_mod.update(session, inputs, on_progress=on_progress, cancelled=cancelled)
        return result, file_keys(result.session.paths)

    return task


class _SwapSession(QUndoCommand):
    """Swap in another version of the session with its own thumbnails; undo brings the previous one back."""

    def __init__(self, model: Any, session: Any, thumbnails: Any, text: str) -> None:
        super().__init__(text)
        self.model = model
        self.old, self.old_thumbnails = model.session, model.thumbnails
        self.new, self.new_thumbnails = session, thumbnails

    def redo(self) -> None:
        self.model.set_session(self.new, self.new_thumbnails, keep_history=True)

    def undo(self) -> None:
        self.model.set_session(self.old, self.old_thumbnails, keep_history=True)


class UpdateSession(_SwapSession):
    """The whole update as one step: more rows, new thumbnails; undo brings the previous session back."""

    def __init__(self, model: Any, result: Any, thumbnails: Any) -> None:
        super().__init__(model, result.session, thumbnails, f"Add {len(result.added):,} new images")
        self.result = result


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
        self.model.sessionReplaced.connect(self._check_paths)
        self.relocate_box: Any = None  # the "images moved?" question, kept so tests and people can find it
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
            self.model.undo_stack.push(
                UpdateSession(self.model, result, make_thumbnails(keys, result.session))
            )
            self.window.inputs = list(result.session.inputs)
            self.window.skipped_panel.set_skipped(result.session.skipped)
            self.show_new()
        text = result.summary() if changed else "No new, changed or missing images."
        self.window.progress_panel.finish(f"Done: {text}")
        self.window.status_label.setText(text)

    # ---- moved collections
    def _check_paths(self, session: Any) -> None:
        """A session was opened: when most of its images are not where they were, offer to find them."""
        from PySide6.QtWidgets import QMessageBox

        from imgclust_desktop.core.relocate import needs_relocation

        if session is None or self.model.provisional or not needs_relocation(session):
            return
        box = QMessageBox(self.window)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Images moved?")
        box.setText("Most of this session's images are not where they were.")
        box.setInformativeText(
            f"For example {session.paths[0]} is missing. If the folder was renamed or the drive got another "
            "letter or mount point, locate the folder that holds the images now; the files found there are "
            "checked (sizes and a sample of contents) before the session is pointed at them."
        )
        locate = box.addButton("Locate Folder…", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Not Now", QMessageBox.ButtonRole.RejectRole)
        locate.clicked.connect(self.choose_new_root)
        self.relocate_box = box
        box.open()

    def choose_new_root(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        folder = QFileDialog.getExistingDirectory(self.window, "Where are the session's images now?")
        if folder:
            self.relocate_to(folder)

    def relocate_to(self, folder: str) -> bool:
        """Find and check the session's images under folder in the worker; swap the paths (undoable)."""
        if not self.can_update():
            return False
        session = self.model.session

        def task(*, on_progress, cancelled, on_event):
            from imgclust_desktop.core import relocate as relocate_mod
            from imgclust_desktop.gui.worker import file_keys

            found = relocate_mod.find_relocation(
                session, folder, on_progress=on_progress, cancelled=cancelled
            )
            if found is None:
                raise ValueError(f"the session's images are not under {folder}")
            if not found.verified:
                bad = (found.size_mismatch + found.content_mismatch)[:3]
                raise ValueError(f"the files under {folder} are not the session's images ({'; '.join(bad)})")
            moved = relocate_mod.relocate(session, found)
            return found, moved, file_keys(moved.paths)

        self.window._start(task, f"Looking for the images in {os.path.basename(folder)}", self._relocated)
        return True

    def _relocated(self, outcome: tuple[Any, Any, list[str]]) -> None:
        from imgclust_desktop.gui.session_model import make_thumbnails

        found, moved, keys = outcome
        text = f"Relocate images to {found.new_prefix}"
        self.model.undo_stack.push(_SwapSession(self.model, moved, make_thumbnails(keys, moved), text))
        self.window.inputs = list(moved.inputs)
        message = (
            f"Images found under {found.new_prefix}: {found.size_checked} sizes and {found.content_checked} "
            f"contents checked; {int(moved.missing.sum())} still missing"
        )
        self.window.progress_panel.finish(f"Done: {message}")
        self.window.status_label.setText(message)

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
