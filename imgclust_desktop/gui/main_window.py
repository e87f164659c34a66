"""The main window: map in the centre, panels as docks, menus, drag and drop, runs in a worker thread."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, QUrl
from PySide6.QtGui import QAction, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QProgressBar,
    QStackedWidget,
    QWidget,
)

from imgclust_desktop.gui import dialogs, worker
from imgclust_desktop.gui.app_paths import (
    add_recent_session,
    app_settings,
    demo_folder,
    is_session_folder,
    recent_sessions,
)
from imgclust_desktop.gui.curation import Curation
from imgclust_desktop.gui.dock_views import refresh_while_shown
from imgclust_desktop.gui.embeddings_import import install_import_action
from imgclust_desktop.gui.panels.progress import EmptyState, ProgressPanel, describe
from imgclust_desktop.gui.panels.settings import SettingsPanel
from imgclust_desktop.gui.panels.skipped import SkippedPanel
from imgclust_desktop.gui.progressive import progressive_task
from imgclust_desktop.gui.session_model import SessionModel, make_thumbnails


class MainWindow(QMainWindow):
    """Owns the SessionModel, the panels and the one worker that runs core tasks."""

    def __init__(self, settings: QSettings | None = None) -> None:
        super().__init__()
        self.setWindowTitle("imgclust")
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)
        self.settings = settings or app_settings()
        self.model = SessionModel(self)
        self.worker: worker.PipelineWorker | None = None
        self.inputs: list[str] = []
        self.error_box: Any = None  # the last error dialog, kept so tests and people can find it
        self._extraction: dict | None = None  # extraction settings that produced the current session
        self._run_thumbs: Any = None  # ThumbnailProvider indexed by scan order during a run
        self._row_thumbs: Any = None  # ThumbnailProvider indexed by session row during a run
        self._scan_skipped: list[Any] = []
        self._twins: list[tuple[QAction, QAction]] = []  # (undo/redo action, its toolbar copy)

        self.empty = EmptyState(demo_folder())
        self.empty.open_folder.clicked.connect(self.choose_folder)
        self.empty.open_session.clicked.connect(self.choose_session)
        self.empty.demo.clicked.connect(self.open_demo)
        self.scatter = self._view("scatter", "ScatterPanel", "The map appears here after a run.")
        self.central = QStackedWidget()
        self.central.addWidget(self.empty)
        self.central.addWidget(self.scatter)
        self.setCentralWidget(self.central)

        self.settings_panel = SettingsPanel()
        self.progress_panel = ProgressPanel()
        self.skipped_panel = SkippedPanel()
        self.clusters = self._view("clusters", "ClusterGridPanel", "Cluster thumbnails appear here.")
        self.dendrogram = self._view("dendrogram", "DendrogramPanel", "The cluster tree appears here.")
        # search, duplicates and outliers panels, edit actions, image viewer, export dialog, autosave
        self.curation = Curation(self)
        right, bottom = Qt.DockWidgetArea.RightDockWidgetArea, Qt.DockWidgetArea.BottomDockWidgetArea
        self.docks = {
            "settings": self._dock(self.settings_panel, "Settings", right),
            "progress": self._dock(self.progress_panel, "Progress", right),
            "clusters": self._dock(self.clusters, "Clusters", bottom),
            "dendrogram": self._dock(self.dendrogram, "Dendrogram", bottom),
            "skipped": self._dock(self.skipped_panel, "Skipped files", bottom),
            "search": self._dock(self.curation.search, "Search", bottom),
            "duplicates": self._dock(self.curation.duplicates, "Duplicates", bottom),
            "outliers": self._dock(self.curation.outliers, "Outliers", bottom),
        }
        for name in ("dendrogram", "skipped", "search", "duplicates", "outliers"):
            self.tabifyDockWidget(self.docks["clusters"], self.docks[name])
        self.docks["clusters"].raise_()
        for name in ("clusters", "dendrogram", "duplicates", "outliers"):  # a tab behind waits to be shown
            refresh_while_shown(self.docks[name], self.model.changed, self.docks[name].widget())
        # The right column runs full height, so the bottom docks sit under the map only.
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self.resizeDocks([self.docks["settings"]], [360], Qt.Orientation.Horizontal)
        self.resizeDocks(
            [self.docks["settings"], self.docks["progress"]], [600, 260], Qt.Orientation.Vertical
        )
        self.resizeDocks([self.docks["clusters"]], [280], Qt.Orientation.Vertical)

        self._build_actions()
        from imgclust_desktop.gui.faces import install_modes_menu

        self.modes = install_modes_menu(self)
        from imgclust_desktop.gui.rescan import install_rescan

        self.rescan = install_rescan(self)  # File > Rescan Folders; drops onto an open session add to it

        from imgclust_desktop.gui.granularity import install_granularity

        self.granularity = install_granularity(self)  # fewer / more groups over the cluster tree
        self.status_label = QLabel("Ready")
        self.status_bar_progress = QProgressBar()
        self.status_bar_progress.setMaximumWidth(180)
        self.status_bar_progress.setVisible(False)
        self.statusBar().addWidget(self.status_label, 1)
        self.statusBar().addPermanentWidget(self.status_bar_progress)

        self.settings_panel.applyRequested.connect(self.apply_settings)
        self.settings_panel.changed.connect(self._update_actions)
        self.progress_panel.cancelRequested.connect(self.cancel_run)
        self.model.changed.connect(self._update_actions)
        if hasattr(self.dendrogram, "cutChanged"):
            self.dendrogram.cutChanged.connect(self.cut_dendrogram)
        self.resize(1280, 820)
        self._restore()
        self._update_actions()

    # ---- construction helpers
    def _view(self, module: str, class_name: str, placeholder: str) -> QWidget:
        """A views-helper panel built on the SessionModel, or a placeholder while that module is absent."""
        name = f"imgclust_desktop.gui.panels.{module}"
        try:
            return getattr(importlib.import_module(name), class_name)(self.model)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
        label = QLabel(placeholder)
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        return label

    def _dock(self, widget: QWidget, title: str, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock-{title.lower().replace(' ', '-')}")  # saveState needs stable names
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _action(self, menu: Any, text: str, slot: Any, shortcut: Any = None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_actions(self) -> None:
        keys = QKeySequence.StandardKey
        file_menu = self.menuBar().addMenu("&File")
        self.open_folder_action = self._action(file_menu, "Open &Folder…", self.choose_folder, keys.Open)
        self.open_session_action = self._action(
            file_menu, "Open &Session…", self.choose_session, "Ctrl+Shift+O"
        )
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self.demo_action = self._action(file_menu, "Open &Demo Images", self.open_demo)
        self.embeddings_import = install_import_action(self, file_menu)
        self.demo_action.setEnabled(demo_folder().is_dir())
        file_menu.addSeparator()
        self.save_action = self._action(file_menu, "&Save Session…", self.choose_save_folder, keys.Save)
        self.export_action = self._action(file_menu, "&Export…", self.curation.open_export, "Ctrl+E")
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, keys.Quit)

        edit_menu = self.menuBar().addMenu("&Edit")
        self.undo_action = self.model.undo_stack.createUndoAction(self, "&Undo")
        self.undo_action.setShortcut(QKeySequence(keys.Undo))
        self.redo_action = self.model.undo_stack.createRedoAction(self, "&Redo")
        self.redo_action.setShortcut(QKeySequence(keys.Redo))
        edit_menu.addActions([self.undo_action, self.redo_action])
        self.curation.actions.add_to_menu(edit_menu)
        edit_menu.addSeparator()
        preferences = QKeySequence(keys.Preferences)
        self.preferences_action = self._action(
            edit_menu,
            "&Preferences…",
            self.show_preferences,
            preferences if not preferences.isEmpty() else "Ctrl+,",
        )

        run_menu = self.menuBar().addMenu("&Run")
        self.run_action = self._action(run_menu, "&Run / Re-cluster", self.apply_settings, "Ctrl+R")
        self.cancel_action = self._action(run_menu, "&Cancel", self.cancel_run, "Esc")

        view_menu = self.menuBar().addMenu("&View")
        for dock in self.docks.values():
            view_menu.addAction(dock.toggleViewAction())
        if hasattr(self.scatter, "fit_all"):
            view_menu.addSeparator()
            self._action(view_menu, "&Fit All", self.scatter.fit_all, "Ctrl+0")

        help_menu = self.menuBar().addMenu("&Help")
        self._action(help_menu, "&About imgclust", self.show_about)

        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("toolbar-main")
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        toolbar.addActions(
            [self.open_folder_action, self.open_session_action, self.save_action, self.export_action]
        )
        toolbar.addSeparator()
        toolbar.addActions(
            [self._toolbar_twin(self.undo_action, "Undo"), self._toolbar_twin(self.redo_action, "Redo")]
        )
        toolbar.addSeparator()
        toolbar.addActions([self.run_action, self.cancel_action, self.preferences_action])

    def _toolbar_twin(self, action: QAction, label: str) -> QAction:
        """The toolbar's copy of an undo/redo action under a label that stays put (the full text is its tooltip):
        the stack renames its action after every edit ("Undo Show 324 groups"), which resized the toolbar row
        and repainted all of it, ~10 ms of a re-cut."""
        twin = QAction(label, self, enabled=action.isEnabled(), toolTip=action.text().replace("&", ""))
        twin.triggered.connect(action.trigger)
        action.enabledChanged.connect(twin.setEnabled)
        action.changed.connect(self._retell_twins)
        self._twins.append((action, twin))
        return twin

    def _retell_twins(self) -> None:
        for action, twin in self._twins:
            twin.setToolTip(action.text().replace("&", ""))

    # ---- opening things
    def open_paths(self, paths: list[str]) -> None:
        """Open what was dropped or passed: one session folder opens it, anything else starts a run."""
        paths = [os.path.abspath(p) for p in paths if p]
        if not paths:
            return
        autosaved = self.curation.autosave_for(paths)
        if len(paths) == 1 and is_session_folder(paths[0]):
            self.open_session(paths[0])
        elif autosaved is not None and not self.busy():
            # the edits made on these inputs last time were autosaved: bring them back
            self.open_session(str(autosaved))
            self.status_label.setText("Restoring your autosaved edits (Run starts over)…")
        else:
            self.start_run(paths)

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images", self._last_dir())
        if folder:
            self.settings.setValue("last_dir", folder)
            self.open_paths([folder])

    def choose_session(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a session folder", self._last_dir())
        if folder:
            self.open_session(folder)

    def open_demo(self) -> None:
        self.open_paths([str(demo_folder())])

    def _last_dir(self) -> str:
        return str(self.settings.value("last_dir", "") or Path.home())

    # ---- running core work
    def busy(self) -> bool:
        return self.worker is not None

    def start_run(self, inputs: list[str]) -> None:
        """Cluster these folders/files with the current settings (asks first if weights must download)."""
        if self.busy():
            self.status_label.setText("Still working: cancel the current run first.")
            return
        info = self.settings_panel.selected_model()
        if info is not None and info.needs_download and not self.settings_panel.weights.text().strip():
            self.download_dialog = dialogs.ModelDownloadDialog(info, self)
            self.download_dialog.accepted.connect(lambda: self._after_download(inputs))
            self.download_dialog.open()
            return
        self.inputs = list(inputs)
        extraction = self.settings_panel.extraction_fields()
        self.settings_panel.save(self.settings)
        fields = dict(extraction, inputs=self.inputs)
        self._extraction = extraction
        self.model.set_session(None)
        self.skipped_panel.set_skipped([])
        self.central.setCurrentWidget(self.empty)
        self.empty.set_busy("Reading images…")
        # big folders: a sample's map first, the rest added as it comes (same protocol as pipeline_task)
        task = progressive_task(fields, self.settings_panel.cluster_fields())
        self._start(task, f"Clustering {self._describe_inputs()}", self._run_finished)

    def _after_download(self, inputs: list[str]) -> None:
        if self.download_dialog.weights_path:
            self.settings_panel.weights.setText(self.download_dialog.weights_path)
        self.settings_panel.populate_models()  # the downloaded model no longer says "needs download"
        self.start_run(inputs)

    def can_recluster(self) -> bool:
        """True when only clustering settings differ from the current session's: features can be reused."""
        session = self.model.session
        return (
            session is not None
            and not self.model.provisional
            and len(session.paths) > 0
            and self._extraction == self.settings_panel.extraction_fields()
        )

    def apply_settings(self) -> None:
        """The Run button: re-cluster from stored features when possible, else run everything again."""
        if self.can_recluster():
            self.recluster()
        elif self.inputs:
            self.start_run(self.inputs)
        else:
            self.status_label.setText("Open a folder first.")

    def recluster(self) -> None:
        """Re-cluster the current session with the panel's clustering settings (no re-extraction)."""
        if self.busy() or self.model.session is None:
            return
        fields = self.settings_panel.cluster_fields()
        self.settings_panel.save(self.settings)
        self._start(
            worker.recluster_task(self.model.session, fields),
            f"Re-clustering ({fields['method']})",
            lambda new: self.model.replace(new, f"Re-cluster ({fields['method']})"),
        )

    def open_session(self, folder: str) -> None:
        if self.busy():
            self.status_label.setText("Still working: cancel the current run first.")
            return
        self.model.set_session(None)
        self.central.setCurrentWidget(self.empty)
        self.empty.set_busy("Opening session…")
        self._start(worker.load_session_task(folder), f"Opening {Path(folder).name}", self._session_loaded)

    def choose_save_folder(self) -> None:
        if self.model.session is None or self.busy():
            return
        suggestion = str(
            Path(self._last_dir()) / f"{Path(self.inputs[0]).name if self.inputs else 'images'}-session"
        )
        folder, _ = QFileDialog.getSaveFileName(self, "Save session as a folder", suggestion)
        if folder:
            self.save_session(folder)

    def save_session(self, folder: str) -> None:
        """Write the current session to a folder (in the worker: montages and report take time)."""
        task = worker.save_session_task(self.model.session, folder)
        self._start(task, f"Saving {Path(folder).name}", self._session_saved)

    def cancel_run(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.status_label.setText("Cancelling…")

    def _start(self, task: Any, title: str, on_finished: Any) -> None:
        job = worker.PipelineWorker(task, name=title.split()[0].lower())
        self.worker = job
        # Each slot checks the sender is still the current job: a cancelled job's late signals are ignored.
        job.progressed.connect(lambda p: job is self.worker and self._on_progress(p))
        job.event.connect(lambda kind, payload: job is self.worker and self._on_event(kind, payload))
        job.finished.connect(lambda result: job is self.worker and on_finished(result))
        job.failed.connect(
            lambda message, details: job is self.worker and self._on_failed(title, message, details)
        )
        job.cancelled.connect(lambda: job is self.worker and self._on_cancelled())
        job.done.connect(lambda: self._on_done(job))
        self.progress_panel.start(title)
        self.status_label.setText(title + "…")
        self.status_bar_progress.setVisible(True)
        self.status_bar_progress.setRange(0, 0)
        job.start()
        self._update_actions()

    def _on_progress(self, p: Any) -> None:
        self.progress_panel.update_progress(p)
        self.status_label.setText(describe(p))
        if p.total:
            self.status_bar_progress.setRange(0, p.total)
            self.status_bar_progress.setValue(min(p.done, p.total))
        else:
            self.status_bar_progress.setRange(0, 0)

    def _on_event(self, kind: str, payload: Any) -> None:
        """Progressive results: thumbnails as they decode, the map after embedding, colours after clustering."""
        if kind == "thumbnail_keys":
            self._run_thumbs = make_thumbnails(payload)
            self.model.thumbnails = self._run_thumbs
        elif kind == "thumbnails" and self._run_thumbs is not None:
            for index, jpeg in payload:
                self._run_thumbs.put(index, jpeg)
        elif kind == "row_keys":
            self._row_thumbs = make_thumbnails(payload)
        elif kind == "scanned":
            self._scan_skipped = list(payload.skipped)
            self.skipped_panel.set_skipped(self._scan_skipped)
            self.empty.set_busy(f"Reading {len(payload.files):,} images…")
        elif kind == "features":
            self.skipped_panel.set_skipped(self._scan_skipped + list(payload.skipped))
        elif kind == "preview":
            self.model.set_session(payload, self._row_thumbs, provisional=True)
            self.central.setCurrentWidget(self.scatter)

    def _run_finished(self, result: tuple[Any, list[str]]) -> None:
        session, keys = result
        self._show_session(session, keys)
        self.progress_panel.finish(
            f"Done: {len(session.paths):,} images in {self.model.cluster_count()} clusters"
        )

    def _session_loaded(self, result: tuple[Any, list[str]]) -> None:
        session, keys = result
        self.inputs = list(session.inputs)
        panel = dict(self.settings_panel.extraction_fields())
        # A loaded session can be re-clustered when the panel's model matches the one it was made with.
        self._extraction = dict(panel, model_id=session.model_id)
        self._show_session(session, keys)
        add_recent_session(self.settings, str(session.path or ""))
        self.progress_panel.finish(f"Done: opened {len(session.paths):,} images")

    def _session_saved(self, folder: str) -> None:
        self.model.session.path = Path(folder)
        self.curation.saved_to(folder)
        add_recent_session(self.settings, folder)
        self.progress_panel.finish(f"Done: saved to {folder}")
        self.status_label.setText(f"Saved session to {folder}")

    def _show_session(self, session: Any, keys: list[str]) -> None:
        self.model.set_session(session, make_thumbnails(keys, session))
        self.skipped_panel.set_skipped(session.skipped)
        self.central.setCurrentWidget(self.scatter)
        self.empty.set_busy(None)
        self.setWindowTitle(f"imgclust — {self._describe_inputs()}")
        self.status_label.setText(f"{len(session.paths):,} images in {self.model.cluster_count()} clusters")

    def _on_failed(self, title: str, message: str, details: str) -> None:
        self.progress_panel.finish("Failed")
        self.status_label.setText(f"{title} failed: {message}")
        self._reset_centre()
        self.error_box = dialogs.show_error(self, f"{title} failed", message, details)

    def _on_cancelled(self) -> None:
        self.progress_panel.finish("Cancelled")
        self.status_label.setText("Cancelled.")
        self._reset_centre()

    def _on_done(self, job: worker.PipelineWorker) -> None:
        if job is self.worker:
            self.worker = None
            self._run_thumbs = self._row_thumbs = None
            self.status_bar_progress.setVisible(False)
            self._update_actions()

    def _reset_centre(self) -> None:
        if self.model.provisional:
            self.model.set_session(None)
        if self.model.session is None:
            self.central.setCurrentWidget(self.empty)
            self.empty.set_busy(None)

    def cut_dendrogram(self, height: float) -> None:
        """The dendrogram's cut line moved: re-cut the cluster tree there, or (no tree) merge the clusters
        it joins; undoable either way."""
        if self.busy():
            return
        if getattr(self.model.session, "tree", None) is not None:
            self.granularity.recut_to_height(height)
        else:
            self.model.cut_tree(height)

    # ---- state of actions, recent sessions, dialogs
    def _update_actions(self) -> None:
        busy, has_session = self.busy(), self.model.session is not None and not self.model.provisional
        for action in (self.open_folder_action, self.open_session_action, self.demo_action):
            action.setEnabled(not busy and (action is not self.demo_action or demo_folder().is_dir()))
        self.save_action.setEnabled(has_session and not busy)
        self.export_action.setEnabled(has_session and not busy)
        self.run_action.setEnabled(not busy and bool(self.inputs or has_session))
        self.cancel_action.setEnabled(busy)
        self.settings_panel.run_button.setEnabled(not busy)
        self.settings_panel.set_run_label(self.can_recluster())

    def _describe_inputs(self) -> str:
        if not self.inputs:
            return "images"
        first = Path(self.inputs[0]).name or self.inputs[0]
        return first if len(self.inputs) == 1 else f"{first} and {len(self.inputs) - 1} more"

    def recent_sessions(self) -> list[str]:
        return recent_sessions(self.settings)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = [p for p in self.recent_sessions() if is_session_folder(p)]
        for folder in recent:
            self.recent_menu.addAction(folder, lambda f=folder: self.open_session(f))
        if not recent:
            self.recent_menu.addAction("No recent sessions").setEnabled(False)

    def show_preferences(self) -> None:
        self.docks["settings"].show()
        self.docks["settings"].raise_()
        self.settings_panel.model.setFocus()

    def show_about(self) -> None:
        self.about_box = dialogs.show_about(self, self.settings_panel.selected_model())

    # ---- drag and drop, window state
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [QUrl(url).toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            if self.rescan.accepts_drop(paths):
                self.rescan.update(paths)
            else:
                self.open_paths(paths)

    def _restore(self) -> None:
        geometry, state = self.settings.value("window/geometry"), self.settings.value("window/state")
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)
        self.settings_panel.restore(self.settings)

    def closeEvent(self, event: Any) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings_panel.save(self.settings)
        self.settings.sync()
        self.curation.on_close()  # unsaved edits go to the session folder or the autosave folder
        if self.worker is not None:
            self.worker.cancel()
            self.worker.wait(2.0)  # stages stop within ~0.2 s; the thread is a daemon if one does not
        super().closeEvent(event)
