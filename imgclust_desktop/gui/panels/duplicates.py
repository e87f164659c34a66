"""Near-duplicates: groups of look-alike images, and "keep one, exclude the rest" per group or for all.

Groups start as the session's own (analyse's duplicate_group); a different similarity threshold regroups
from the stored features in a worker thread (core.analyse.duplicate_groups).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from imgclust_desktop.gui.thumbs import follow_provider, thumbnail_icon
from imgclust_desktop.gui.worker import PipelineWorker

ICON_PX = 96
RowRole = Qt.ItemDataRole.UserRole + 1


def groups_of(duplicate_group: np.ndarray, outlier_score: np.ndarray | None = None) -> list[list[int]]:
    """Rows of each duplicate group, most typical (lowest outlier score) first; biggest groups first."""
    groups = np.asarray(duplicate_group, dtype=np.int64)
    score = np.zeros(len(groups)) if outlier_score is None else np.asarray(outlier_score, np.float64)
    out = []
    for g in np.unique(groups[groups >= 0]).tolist():
        rows = np.flatnonzero(groups == g)
        out.append(rows[np.lexsort((rows, score[rows]))].tolist())
    out.sort(key=lambda rows: (-len(rows), rows[0]))
    return out


class DuplicatesPanel(QWidget):
    """Group list on the left, the chosen group's images on the right, keep-one buttons."""

    imageActivated = Signal(int)

    def __init__(self, model: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.groups: list[list[int]] = []
        self.worker: PipelineWorker | None = None
        self._provider: Any = None
        self._source: Any = None  # the session the groups were computed for

        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.80, 0.999)
        self.threshold.setDecimals(3)
        self.threshold.setSingleStep(0.005)
        self.threshold.setValue(0.97)
        self.threshold.setPrefix("similarity ≥ ")
        self.regroup = QPushButton("Find groups")
        self.regroup.setToolTip("Regroup at this similarity threshold (from the stored features)")
        self.regroup.clicked.connect(lambda: self.find_groups(self.threshold.value()))
        self.keep_button = QPushButton("Keep one, exclude the rest")
        self.keep_button.setToolTip(
            "In this group keep the selected image (or the first) and exclude the others"
        )
        self.keep_button.clicked.connect(self.keep_one_in_current)
        self.keep_all_button = QPushButton("Keep one in every group")
        self.keep_all_button.clicked.connect(self.keep_one_in_all)
        self.summary = QLabel()
        self.summary.setWordWrap(True)

        self.group_list = QListWidget()
        self.group_list.currentRowChanged.connect(self._show_group)
        self.images = QListWidget()
        self.images.setViewMode(QListView.ViewMode.IconMode)
        self.images.setResizeMode(QListView.ResizeMode.Adjust)
        self.images.setMovement(QListView.Movement.Static)
        self.images.setIconSize(QSize(ICON_PX, ICON_PX))
        self.images.setGridSize(QSize(ICON_PX + 20, ICON_PX + 36))
        self.images.itemSelectionChanged.connect(self._images_selected)
        self.images.itemDoubleClicked.connect(lambda item: self.imageActivated.emit(int(item.data(RowRole))))
        splitter = QSplitter()
        splitter.addWidget(self.group_list)
        splitter.addWidget(self.images)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([200, 700])
        self.group_list.setMinimumWidth(120)

        controls = QHBoxLayout()
        controls.addWidget(self.threshold)
        controls.addWidget(self.regroup)
        controls.addStretch(1)
        actions = QHBoxLayout()
        actions.addWidget(self.keep_button)
        actions.addWidget(self.keep_all_button)
        actions.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(controls)
        layout.addLayout(actions)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.summary)
        model.changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        """New session: its own groups; an edit: the same groups, new exclusion marks."""
        session = self.model.session
        if session is None or getattr(self.model, "provisional", False):
            self.set_groups([])
            self._source = None
            return
        if session is not self._source:
            self._source = session
            self.set_groups(groups_of(session.duplicate_group, session.outlier_score))
        else:
            self._fill_list()

    def set_groups(self, groups: list[list[int]]) -> None:
        self.groups = [list(g) for g in groups]
        self._fill_list()

    def find_groups(self, threshold: float) -> None:
        """Regroup at a threshold in the worker (exact cosine on the stored features)."""
        session = self.model.session
        if session is None:
            return
        features = session.features

        def task(*, on_progress, cancelled, on_event):
            from imgclust_desktop.core.analyse import duplicate_groups

            return duplicate_groups(features, threshold)

        job = PipelineWorker(task, name="duplicates")
        self.worker = job
        self.summary.setText(f"Looking for images at similarity ≥ {threshold:g}…")
        job.finished.connect(
            lambda groups: job is self.worker and self.set_groups(groups_of(groups, session.outlier_score))
        )
        job.failed.connect(lambda message, _d: self.summary.setText(f"Failed: {message}"))
        job.done.connect(lambda: setattr(self, "worker", None) if job is self.worker else None)
        job.start()

    def _fill_list(self) -> None:
        session = self.model.session
        current = max(self.group_list.currentRow(), 0)
        self.group_list.blockSignals(True)
        self.group_list.clear()
        for number, rows in enumerate(self.groups, start=1):
            kept = 0 if session is None else int((~session.excluded[rows]).sum())
            item = QListWidgetItem(f"Group {number}: {len(rows)} images, {kept} kept")
            item.setForeground(QColor(20, 20, 20) if kept > 1 else QColor(120, 120, 120))
            self.group_list.addItem(item)
        self.group_list.blockSignals(False)
        extra = sum(len(g) - 1 for g in self.groups)
        self.summary.setText(
            f"{len(self.groups):,} group(s) of near-duplicates; keeping one of each drops {extra:,} images"
            if self.groups
            else "No near-duplicates found."
        )
        for button in (self.keep_button, self.keep_all_button):
            button.setEnabled(bool(self.groups))
        if self.groups:
            self.group_list.setCurrentRow(min(current, len(self.groups) - 1))
            self._show_group(self.group_list.currentRow())
        else:
            self.images.clear()

    def _show_group(self, number: int) -> None:
        self.images.clear()
        session = self.model.session
        if session is None or not 0 <= number < len(self.groups):
            return
        self._sync_provider()
        for row in self.groups[number]:
            excluded = bool(session.excluded[row])
            item = QListWidgetItem(self._icon(row), "excluded" if excluded else "kept")
            item.setData(RowRole, row)
            item.setToolTip(session.paths[row])
            item.setForeground(QColor(180, 40, 40) if excluded else QColor(30, 110, 30))
            self.images.addItem(item)

    def keep_one_in_current(self) -> None:
        number = self.group_list.currentRow()
        if not 0 <= number < len(self.groups):
            return
        chosen = [int(i.data(RowRole)) for i in self.images.selectedItems()]
        keep = chosen[0] if chosen else self.groups[number][0]
        self.model.keep_one_per_group([(keep, self.groups[number])])

    def keep_one_in_all(self) -> None:
        """Every group keeps its most typical image (lowest outlier score)."""
        self.model.keep_one_per_group([(rows[0], rows) for rows in self.groups])

    def _images_selected(self) -> None:
        rows = [int(item.data(RowRole)) for item in self.images.selectedItems()]
        if rows:
            self.model.select(rows)

    def _icon(self, row: int) -> QIcon:
        return thumbnail_icon(self._provider, row, ICON_PX)

    def _sync_provider(self) -> None:
        self._provider = follow_provider(self._provider, self.model, self._thumbnail_ready)

    def _thumbnail_ready(self, row: int) -> None:
        for i in range(self.images.count()):
            item = self.images.item(i)
            if item.data(RowRole) == row:
                item.setIcon(self._icon(row))
