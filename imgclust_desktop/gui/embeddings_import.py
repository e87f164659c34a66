"""File > Import Embeddings…: cluster a person's own N x D array (one image path per row) in the worker."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog

from imgclust_desktop.gui import worker


class EmbeddingsImport(QObject):
    """Runs core.embeddings.run for the window; files not on disk stay in the session as placeholders."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window

    def choose(self) -> None:
        """Ask for the .npy, then its paths file (taken without asking when a paths.txt lies beside it)."""
        window = self.window
        features, _ = QFileDialog.getOpenFileName(
            window, "Import embeddings (N x D .npy)", window._last_dir(), "NumPy arrays (*.npy)"
        )
        if not features:
            return
        paths = str(Path(features).with_name("paths.txt"))
        if not os.path.isfile(paths):
            paths, _ = QFileDialog.getOpenFileName(
                window, "One image path per row", str(Path(features).parent), "Text files (*.txt);;All (*)"
            )
        if paths:
            window.settings.setValue("last_dir", str(Path(features).parent))
            self.run(features, paths)

    def run(self, features: str, paths: str | None = None) -> None:
        """Cluster the embeddings with the settings panel's choices (map method, PCA, clustering)."""
        window = self.window
        if window.busy():
            window.status_label.setText("Still working: cancel the current run first.")
            return
        window.inputs = []
        window._extraction = None
        window.model.set_session(None)
        window.skipped_panel.set_skipped([])
        window.central.setCurrentWidget(window.empty)
        window.empty.set_busy("Reading embeddings…")
        panel = window.settings_panel
        task = worker.embeddings_task(features, paths, panel.cluster_fields(), panel.extraction_fields())
        window._start(task, f"Clustering embeddings {Path(features).name}", self._finished)

    def _finished(self, result: tuple[Any, list[str]]) -> None:
        window = self.window
        session, _ = result
        window.inputs = [session.inputs[0]] if session.inputs else []  # the window title names the .npy
        window._run_finished(result)
        # Run re-clusters the stored features; there are no image folders to run the model on again.
        window.inputs = []
        window._extraction = window.settings_panel.extraction_fields()
        missing = int(session.missing.sum())
        if missing:
            window.status_label.setText(
                f"{len(session.paths):,} images in {window.model.cluster_count()} clusters; "
                f"{missing:,} files not on disk (shown as placeholders)"
            )


def install_import_action(window: Any, file_menu: Any) -> EmbeddingsImport:
    """Add File > Import Embeddings… to the window's File menu; returns the handler."""
    handler = EmbeddingsImport(window)
    action = QAction("&Import Embeddings…", window)
    action.triggered.connect(handler.choose)
    file_menu.addAction(action)
    window.import_embeddings_action = action
    return handler
