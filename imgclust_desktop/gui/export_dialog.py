"""The export dialog: what to export, where, how, under which names; a preview of every source ->
destination before anything happens; then progress and a summary. The plan shown is the plan run.

All the safety lives in core/export.py: nothing is overwritten, names are sanitised, moves are verified and
recorded in a manifest that can undo them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from imgclust_desktop.gui.worker import PipelineWorker

MODES = {
    "copy": "Copy (originals stay where they are)",
    "move": "Move (undo with the manifest)",
    "link": "Hard link (same drive, no extra space)",
    "symlink": "Symbolic link",
}
PREVIEW_ROWS = 2000  # the table shows this many; the count and the export cover the whole plan
PAST = {"copy": "copied", "move": "moved", "link": "linked", "symlink": "linked"}


class ExportDialog(QDialog):
    """Choose, preview, export. `plan` is the ExportPlan the preview shows and the Export button runs."""

    def __init__(self, model: Any, parent: QWidget | None = None, dest: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle("Export images")
        self.model = model
        self.session = model.session
        self.plan: Any = None
        self.manifest: Any = None
        self.worker: PipelineWorker | None = None
        self.error = ""
        self._timer = QTimer(self, singleShot=True, interval=150)  # re-plan once typing pauses
        self._timer.timeout.connect(self.update_preview)

        self.scope_kept = QRadioButton("Kept images of every cluster not excluded")
        self.scope_clusters = QRadioButton("The clusters ticked below")
        n_selected = len(model.selection)
        self.scope_selection = QRadioButton(f"The selected images ({n_selected:,})")
        self.scope_selection.setEnabled(n_selected > 0)
        self.scope = QButtonGroup(self)
        for button in (self.scope_kept, self.scope_clusters, self.scope_selection):
            self.scope.addButton(button)
            button.toggled.connect(self._schedule)
        self.scope_kept.setChecked(True)
        self.cluster_list = QListWidget()
        self.cluster_list.setMaximumHeight(140)
        self._fill_clusters()
        self.cluster_list.itemChanged.connect(self._cluster_ticked)
        self.include_excluded = QCheckBox("Include images marked excluded")
        self.include_excluded.toggled.connect(self._schedule)

        self.dest = QLineEdit(dest)
        self.dest.setPlaceholderText("Folder to export into")
        self.dest.textChanged.connect(self._schedule)
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._choose_dest)
        dest_row = QHBoxLayout()
        dest_row.addWidget(self.dest, 1)
        dest_row.addWidget(browse)
        self.mode = QComboBox()
        for key, text in MODES.items():
            self.mode.addItem(text, key)
        self.mode.currentIndexChanged.connect(self._schedule)
        self.pattern = QLineEdit("{name}")
        self.pattern.setToolTip(
            "Fields: {name} file name, {stem} name without extension, {ext} extension, {cluster} cluster id,"
            " {cluster_name}, {index} row in the session, {n} number within the cluster"
        )
        self.pattern.textChanged.connect(self._schedule)

        form = QFormLayout()
        form.addRow("Export", self.scope_kept)
        form.addRow("", self.scope_clusters)
        form.addRow("", self.cluster_list)
        form.addRow("", self.scope_selection)
        form.addRow("", self.include_excluded)
        form.addRow("Into", dest_row)
        form.addRow("Mode", self.mode)
        form.addRow("File names", self.pattern)

        self.preview = QTableWidget(0, 2)
        self.preview.setHorizontalHeaderLabels(["Source", "Destination"])
        self.preview.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.preview.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.preview.verticalHeader().setVisible(False)
        self.preview.setWordWrap(False)
        self.preview.setTextElideMode(Qt.TextElideMode.ElideLeft)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.bar = QProgressBar()
        self.bar.setVisible(False)
        self.export_button = QPushButton("Export")
        self.export_button.setDefault(True)
        self.export_button.clicked.connect(self.start_export)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        buttons = QHBoxLayout()
        buttons.addWidget(self.bar, 1)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.cancel_button)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel("Preview: nothing is written until you press Export"))
        layout.addWidget(self.preview, 1)
        layout.addWidget(self.summary)
        layout.addLayout(buttons)
        self.resize(820, 640)
        self.update_preview()

    # -- choosing ---------------------------------------------------------------------------------------
    def _fill_clusters(self) -> None:
        sizes = self.session.sizes()
        for cid in sorted(sizes):
            info = self.session.clusters.get(cid)
            excluded = info is not None and info.excluded
            item = QListWidgetItem(f"{self.session.name_of(cid)}  ({sizes[cid]:,})")
            item.setData(Qt.ItemDataRole.UserRole, cid)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked if excluded else Qt.CheckState.Checked)
            self.cluster_list.addItem(item)
        noise = int(np.sum(np.asarray(self.session.labels) < 0))
        if noise:
            item = QListWidgetItem(f"Noise  ({noise:,})")
            item.setData(Qt.ItemDataRole.UserRole, -1)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked)
            self.cluster_list.addItem(item)

    def chosen_clusters(self) -> list[int]:
        return [
            int(self.cluster_list.item(i).data(Qt.ItemDataRole.UserRole))
            for i in range(self.cluster_list.count())
            if self.cluster_list.item(i).checkState() == Qt.CheckState.Checked
        ]

    def set_chosen_clusters(self, ids: list[int]) -> None:
        """Tick exactly these clusters and export "the clusters ticked"."""
        wanted = {int(c) for c in ids}
        self.cluster_list.blockSignals(True)
        for i in range(self.cluster_list.count()):
            item = self.cluster_list.item(i)
            state = item.data(Qt.ItemDataRole.UserRole) in wanted
            item.setCheckState(Qt.CheckState.Checked if state else Qt.CheckState.Unchecked)
        self.cluster_list.blockSignals(False)
        self.scope_clusters.setChecked(True)
        self._schedule()

    def _cluster_ticked(self, _item: Any) -> None:
        self.scope_clusters.setChecked(True)
        self._schedule()

    def _choose_dest(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export into", self.dest.text() or str(Path.home()))
        if folder:
            self.dest.setText(folder)

    # -- preview ----------------------------------------------------------------------------------------
    def _schedule(self, *_: Any) -> None:
        if self.worker is None and self.manifest is None:
            self._timer.start()

    def update_preview(self) -> None:
        """Plan the export with the current choices and list it; nothing touches the disk."""
        from imgclust_desktop.core.export import plan_export

        self._timer.stop()
        self.plan, self.error = None, ""
        dest = self.dest.text().strip()
        if not dest:
            self.error = "Choose a folder to export into."
        else:
            clusters = indices = None
            if self.scope_clusters.isChecked():
                clusters = self.chosen_clusters()
            elif self.scope_selection.isChecked():
                indices = np.asarray(self.model.selection, dtype=np.int64)
            try:
                self.plan = plan_export(
                    self.session,
                    os.path.expanduser(dest),
                    clusters=clusters,
                    indices=indices,
                    mode=self.mode.currentData(),
                    name_pattern=self.pattern.text() or "{name}",
                    include_excluded=self.include_excluded.isChecked(),
                )
            except (ValueError, OSError) as exc:
                self.error = str(exc)
        self._show_plan()

    def _show_plan(self) -> None:
        items = [] if self.plan is None else self.plan.items[:PREVIEW_ROWS]
        self.preview.setRowCount(len(items))
        for row, (src, dst) in enumerate(items):
            for column, text in enumerate((src, dst)):
                cell = QTableWidgetItem(text)
                cell.setToolTip(text)
                self.preview.setItem(row, column, cell)
        if self.plan is None:
            self.summary.setText(self.error)
        else:
            more = f" (the first {PREVIEW_ROWS:,} are listed)" if len(self.plan) > PREVIEW_ROWS else ""
            folders = len(set(self.plan.clusters))
            self.summary.setText(
                f"{len(self.plan):,} files will be {PAST[self.plan.mode]} into {folders} folder(s) under "
                f"{self.plan.dest}{more}. Existing files are never overwritten."
            )
        self.export_button.setEnabled(self.plan is not None and len(self.plan) > 0)

    def preview_pairs(self) -> list[tuple[str, str]]:
        """The (source, destination) pairs the table lists."""
        return [
            (self.preview.item(r, 0).text(), self.preview.item(r, 1).text())
            for r in range(self.preview.rowCount())
        ]

    # -- running ----------------------------------------------------------------------------------------
    def start_export(self) -> None:
        """Run exactly the previewed plan in a worker thread."""
        if self.manifest is not None:
            self.accept()
            return
        if self.plan is None or len(self.plan) == 0 or self.worker is not None:
            return
        plan = self.plan
        outcome: dict[str, Any] = {}  # a cancelled worker sends no result: the manifest is kept here

        def task(*, on_progress, cancelled, on_event):
            from imgclust_desktop.core.export import run_export

            outcome["manifest"] = run_export(plan, on_progress=on_progress, cancelled=cancelled)
            return outcome["manifest"]

        for widget in (self.export_button, self.dest, self.mode, self.pattern, self.cluster_list):
            widget.setEnabled(False)
        self.bar.setVisible(True)
        self.bar.setRange(0, len(plan))
        self.bar.setValue(0)
        self.summary.setText(f"Exporting {len(plan):,} files…")
        self.worker = PipelineWorker(task, name="export")
        self.worker.progressed.connect(lambda p: self.bar.setValue(min(p.done, len(plan))))
        self.worker.finished.connect(self._finished)
        self.worker.failed.connect(self._failed)
        self.worker.cancelled.connect(
            lambda: self._finished(outcome["manifest"]) if "manifest" in outcome else self.reject()
        )
        self.worker.done.connect(self._done)
        self.worker.start()

    def _finished(self, manifest: Any) -> None:
        self.manifest = manifest
        failed = manifest.failed
        lines = [
            f"{manifest.done:,} of {len(self.plan):,} files {PAST[manifest.mode]} into {manifest.dest}"
            + (" (stopped early: finished files stay)" if manifest.cancelled else "")
        ]
        if failed:
            lines.append(f"{len(failed):,} failed, e.g. {failed[0].source}: {failed[0].reason}")
        lines.append(f"Manifest: {manifest.csv_path}")
        if manifest.mode == "move":
            lines.append("The moved files can be put back with: imgclust export --undo <manifest>")
        self.summary.setText("\n".join(lines))
        self.export_button.setText("Close")
        self.export_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    def _failed(self, message: str, _details: str) -> None:
        self.summary.setText(f"Export failed: {message}")
        self.cancel_button.setText("Close")

    def _done(self) -> None:
        self.worker = None
        self.bar.setVisible(False)

    def cancel(self) -> None:
        """Stop a running export (finished files stay, listed in the manifest) or close the dialog."""
        if self.worker is not None:
            self.worker.cancel()
            self.summary.setText("Stopping after the current file…")
        else:
            self.reject()

    def reject(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.worker.wait(5.0)
        super().reject()
