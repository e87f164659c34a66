"""The Modes menu: cluster the faces in a folder, segment one image by colour.

`install_modes_menu(window)` adds the menu to the main window using only its public parts (start_run,
busy, model, progress_panel, skipped_panel, status_label). Faces: crops are cut in a worker into a cache
folder, then the window's normal run clusters them; when that session arrives it is told where its crops
came from, so "Open source photo" and "Export faces by person" reach the photos.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QUrl
from PySide6.QtGui import QAction, QDesktopServices
from PySide6.QtWidgets import QFileDialog, QMessageBox

from imgclust_desktop.gui.worker import PipelineWorker


def faces_folder_for(folder: str) -> Path:
    """Where the crops of a photo folder go: the user cache, one stable folder per photo folder."""
    from imgclust_desktop.core.cache import default_cache_dir

    digest = hashlib.sha1(os.path.abspath(folder).encode("utf-8")).hexdigest()[:16]
    return default_cache_dir() / "faces" / f"{Path(folder).name or 'photos'}-{digest}"


class FacesMode(QObject):
    """Runs face extraction for the window, then hands the crops to the window's own clustering run."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self.worker: PipelineWorker | None = None
        self.extraction: Any = None  # the last FaceExtraction, until its session arrives
        self.pixels_panel: Any = None
        window.model.changed.connect(self._session_changed)
        window.progress_panel.cancelRequested.connect(self.cancel)

    # ---- faces
    def choose_folder(self) -> None:
        start = str(self.window.settings.value("last_dir", "") or Path.home())
        folder = QFileDialog.getExistingDirectory(self.window, "Cluster the faces in a folder", start)
        if folder:
            self.cluster_faces(folder)

    def cluster_faces(self, folder: str) -> None:
        """Detect and crop the faces under `folder` (in a worker), then cluster the crops."""
        from imgclust_desktop.core.faces import extract_face_crops

        if self.window.busy() or self.worker is not None:
            self.window.status_label.setText("Still working: cancel the current run first.")
            return
        folder = os.path.abspath(folder)
        crops = faces_folder_for(folder)

        def task(*, on_progress, cancelled, on_event):
            return extract_face_crops([folder], crops, on_progress=on_progress, cancelled=cancelled)

        job = PipelineWorker(task, name="faces")
        self.worker = job
        title = f"Finding faces in {Path(folder).name}"
        job.progressed.connect(lambda p: job is self.worker and self.window.progress_panel.update_progress(p))
        job.finished.connect(lambda result: job is self.worker and self._extracted(folder, result))
        job.failed.connect(lambda message, details: job is self.worker and self._failed(title, message))
        job.cancelled.connect(lambda: job is self.worker and self.window.progress_panel.finish("Cancelled"))
        job.done.connect(lambda: self._done(job))
        self.window.progress_panel.start(title)
        self.window.status_label.setText(title + "…")
        job.start()

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def _done(self, job: PipelineWorker) -> None:
        if job is self.worker:
            self.worker = None

    def _failed(self, title: str, message: str) -> None:
        self.window.progress_panel.finish("Failed")
        self.window.status_label.setText(f"{title} failed: {message}")
        QMessageBox.warning(self.window, f"{title} failed", message)

    def _extracted(self, folder: str, extraction: Any) -> None:
        found = f"{len(extraction.crops)} faces in {extraction.sources} images"
        none = f"{len(extraction.no_face)} images without a face"
        self.window.progress_panel.finish(f"Done: {found}; {none}")
        if len(extraction.crops) < 3:
            QMessageBox.information(
                self.window, "Too few faces", f"Found {found} ({none}); clustering needs at least 3 faces."
            )
            return
        self.extraction = extraction
        self.worker = None  # the window's run starts now; it checks only its own worker
        self.window.status_label.setText(f"{found}; clustering the faces…")
        self.window.start_run([str(extraction.folder)])

    def _session_changed(self) -> None:
        """Tag the finished session of crops with its face map and list the faceless images as skipped."""
        session, extraction = self.window.model.session, self.extraction
        if session is None or extraction is None or self.window.model.provisional:
            return
        if not session.paths or Path(session.paths[0]).parent != extraction.folder:
            return
        from imgclust_desktop.core.faces import FACES_CSV, NO_FACE_REASON, face_params
        from imgclust_desktop.core.sources import Skipped

        self.extraction = None
        session.params["faces"] = face_params(extraction)
        no_face = [Skipped(p, NO_FACE_REASON) for p in extraction.no_face]
        others = [s for s in session.skipped if Path(s.path).name != FACES_CSV]
        session.skipped = list(extraction.skipped) + no_face + others
        self.window.skipped_panel.set_skipped(session.skipped)

    def selected_sources(self) -> list[str]:
        """The source photos of the selected face crops (empty when the session is not of faces)."""
        from imgclust_desktop.core.faces import face_map_for

        session = self.window.model.session
        if session is None:
            return []
        mapping = face_map_for(session)
        paths = [session.paths[int(r)] for r in self.window.model.selection]
        return list(dict.fromkeys(mapping[p].source_path for p in paths if p in mapping))

    def open_selected_source(self) -> None:
        """Open the photo each selected face was cut from in the system viewer (first 5)."""
        sources = self.selected_sources()
        if not sources:
            self.window.status_label.setText("Select a face crop of a faces session first.")
            return
        for path in sources[:5]:
            QDesktopServices.openUrl(QUrl.fromLocalFile(path))
        self.window.status_label.setText(
            f"Opened {os.path.basename(sources[0])}" + (" …" if len(sources) > 1 else "")
        )

    def export_by_person(self, dest: str | None = None) -> None:
        """Copy each person's (cluster's) source photos into DEST/<cluster name>/, with a manifest."""
        from imgclust_desktop.core import export
        from imgclust_desktop.core.faces import FacesError, plan_source_export

        session = self.window.model.session
        if session is None or self.window.busy() or self.worker is not None:
            return
        if dest is None:
            dest = QFileDialog.getExistingDirectory(self.window, "Export each person's photos into")
            if not dest:
                return
        try:
            plan = plan_source_export(session, dest)
        except (FacesError, ValueError) as exc:
            QMessageBox.warning(self.window, "Cannot export by person", str(exc))
            return

        def task(*, on_progress, cancelled, on_event):
            return export.run_export(plan, on_progress=on_progress, cancelled=cancelled)

        job = PipelineWorker(task, name="export")
        self.worker = job
        job.progressed.connect(lambda p: self.window.progress_panel.update_progress(p))
        job.finished.connect(lambda manifest: self._exported(plan, manifest))
        job.failed.connect(lambda message, details: self._failed("Export by person", message))
        job.done.connect(lambda: self._done(job))
        self.window.progress_panel.start(f"Exporting {len(plan)} photos by person")
        job.start()

    def _exported(self, plan: Any, manifest: Any) -> None:
        text = f"{manifest.done} photos copied into {plan.dest}; {len(manifest.failed)} failed"
        self.window.progress_panel.finish(f"Done: {text}")
        self.window.status_label.setText(f"{text} (manifest {manifest.csv_path})")

    # ---- pixels
    def open_pixels(self) -> Any:
        """Show the colour-segmentation window (one, reused)."""
        from imgclust_desktop.gui.panels.pixels import PixelsPanel

        if self.pixels_panel is None:
            self.pixels_panel = PixelsPanel()
        self.pixels_panel.show()
        self.pixels_panel.raise_()
        return self.pixels_panel


def install_modes_menu(window: Any) -> FacesMode:
    """Add the Modes menu (faces, colour segmentation) to the main window; returns its controller."""
    mode = FacesMode(window)
    menu = window.menuBar().addMenu("&Modes")
    entries = [
        ("Cluster &faces in folder…", mode.choose_folder),
        ("&Segment image by colour…", mode.open_pixels),
        (None, None),
        ("&Open source photo of selected face", mode.open_selected_source),
        ("&Export faces by person…", mode.export_by_person),
    ]
    for text, slot in entries:
        if text is None:
            menu.addSeparator()
            continue
        action = QAction(text, window)
        action.triggered.connect(
            lambda _checked=False, slot=slot: slot()
        )  # not the checked flag as an argument
        menu.addAction(action)
    return mode
