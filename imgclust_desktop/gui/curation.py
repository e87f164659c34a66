"""The window's curation wiring in one place: search / duplicates / outliers panels, the edit actions and
context menus, the image viewer, the export dialog and autosave. MainWindow creates one Curation.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject

from imgclust_desktop.gui import dialogs
from imgclust_desktop.gui.autosave import DEFAULT_EVERY, Autosaver, find_autosave
from imgclust_desktop.gui.edit_actions import CurationActions
from imgclust_desktop.gui.panels.duplicates import DuplicatesPanel
from imgclust_desktop.gui.panels.outliers import OutliersPanel
from imgclust_desktop.gui.panels.search import SearchPanel


class Curation(QObject):
    """Built by MainWindow after its map and cluster grid; owns the curation panels and actions."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        model = window.model
        self.model = model
        self.search = SearchPanel(model)
        self.duplicates = DuplicatesPanel(model)
        self.outliers = OutliersPanel(model)
        self.actions = CurationActions(model, window, self._grid_cluster)
        self.actions.find_similar = self.find_similar
        every = int(window.settings.value("autosave/every", DEFAULT_EVERY) or DEFAULT_EVERY)
        self.autosaver = Autosaver(model, every=every)
        self.autosaver.saved.connect(lambda folder: window.status_label.setText(f"Autosaved to {folder}"))
        self.autosaver.failed.connect(lambda message: window.status_label.setText(message))
        model.splitFailed.connect(lambda message: window.status_label.setText(f"Split: {message}"))
        self.viewer: Any = None
        self.export_dialog: Any = None
        for panel in (window.scatter, window.clusters, self.search, self.duplicates, self.outliers):
            if hasattr(panel, "imageActivated"):
                panel.imageActivated.connect(self.show_image)
        for panel in (window.scatter, window.clusters):
            if hasattr(panel, "contextMenuRequested"):
                panel.contextMenuRequested.connect(self.actions.context_menu)

    def _grid_cluster(self) -> int | None:
        return getattr(self.window.clusters, "current_cluster", None)

    def find_similar(self) -> None:
        """Edit > Find Similar: search from the selection and bring the Search dock forward."""
        dock = self.window.docks.get("search")
        if dock is not None:
            dock.show()
            dock.raise_()
        self.search.search_selection()

    def show_image(self, row: int) -> None:
        """Double-click on an image anywhere: the original file in a viewer, with its path and cluster."""
        session = self.model.session
        if session is None or not 0 <= row < len(session.paths):
            return
        cluster = session.name_of(int(session.labels[row]))
        extra = f"Outlier score {float(session.outlier_score[row]):.2f}"
        if bool(session.excluded[row]):
            extra += " · excluded from export"
        self.viewer = dialogs.ImageViewer(session.paths[row], cluster, self.window, extra)
        self.viewer.show()

    def open_export(self) -> None:
        from imgclust_desktop.gui.export_dialog import ExportDialog

        if self.model.session is None or self.model.provisional:
            return
        last = str(self.window.settings.value("export/last_dir", "") or "")
        self.export_dialog = ExportDialog(self.model, self.window, dest=last)
        self.export_dialog.finished.connect(self._export_closed)
        self.export_dialog.open()

    def _export_closed(self, _result: int) -> None:
        dialog = self.export_dialog
        if dialog is not None and dialog.dest.text().strip():
            self.window.settings.setValue("export/last_dir", dialog.dest.text().strip())

    # -- autosave ---------------------------------------------------------------------------------------
    def autosave_for(self, inputs: list[str]) -> Path | None:
        return find_autosave(inputs, self.autosaver.root)

    def saved_to(self, folder: str) -> None:
        """An explicit save: later autosaves go to that folder, and the per-input autosave (now older than
        that folder) is dropped so opening the inputs again does not bring back a stale state."""
        self.autosaver.pending = 0
        self.autosaver._new_session(self.model.session)
        session = self.model.session
        stale = find_autosave(list(session.inputs), self.autosaver.root) if session is not None else None
        if stale is not None and Path(folder).resolve() != stale.resolve():
            shutil.rmtree(stale, ignore_errors=True)  # our own folder under the data dir, never the person's

    def on_close(self) -> None:
        """Write unsaved edits before the window goes."""
        self.autosaver.save_now(wait=True)
