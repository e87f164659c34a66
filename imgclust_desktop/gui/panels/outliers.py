"""Outliers: the most unusual images first (by outlier score), for quick exclusion."""

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
    QVBoxLayout,
    QWidget,
)

from imgclust_desktop.gui.thumbs import follow_provider, thumbnail_icon

ICON_PX = 96
MAX_SHOWN = 500  # the tail that matters; a person does not page through 100k "unusual" images
RowRole = Qt.ItemDataRole.UserRole + 1


def outlier_order(outlier_score: np.ndarray, limit: int = MAX_SHOWN) -> np.ndarray:
    """Rows by outlier score, highest first (ties by row), at most `limit` of them."""
    score = np.nan_to_num(np.asarray(outlier_score, dtype=np.float64), nan=0.0)
    rows = np.arange(len(score))
    return np.lexsort((rows, -score))[:limit]


class OutliersPanel(QWidget):
    """A grid of the most unusual images with their score; exclude or keep the selected ones."""

    imageActivated = Signal(int)

    def __init__(self, model: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.rows = np.zeros(0, dtype=np.int64)
        self._provider: Any = None
        self._items: dict[int, QListWidgetItem] = {}
        self._syncing = False

        self.minimum = QDoubleSpinBox()
        self.minimum.setRange(0.0, 1.0)
        self.minimum.setDecimals(2)
        self.minimum.setSingleStep(0.05)
        self.minimum.setValue(0.5)
        self.minimum.setPrefix("score ≥ ")
        self.select_above = QPushButton("Select")
        self.select_above.setToolTip("Select every shown image at or above this outlier score")
        self.select_above.clicked.connect(lambda: self.select_at_least(self.minimum.value()))
        self.exclude_button = QPushButton("Exclude selected")
        self.exclude_button.clicked.connect(lambda: self._mark(True))
        self.keep_button = QPushButton("Keep selected")
        self.keep_button.clicked.connect(lambda: self._mark(False))
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.grid = QListWidget()
        self.grid.setViewMode(QListView.ViewMode.IconMode)
        self.grid.setResizeMode(QListView.ResizeMode.Adjust)
        self.grid.setMovement(QListView.Movement.Static)
        self.grid.setIconSize(QSize(ICON_PX, ICON_PX))
        self.grid.setGridSize(QSize(ICON_PX + 20, ICON_PX + 36))
        self.grid.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)
        self.grid.itemSelectionChanged.connect(self._grid_selected)
        self.grid.itemDoubleClicked.connect(lambda item: self.imageActivated.emit(int(item.data(RowRole))))
        controls = QHBoxLayout()
        controls.addWidget(self.minimum)
        controls.addWidget(self.select_above)
        controls.addStretch(1)
        controls.addWidget(self.exclude_button)
        controls.addWidget(self.keep_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(controls)
        layout.addWidget(self.grid, 1)
        layout.addWidget(self.summary)
        model.changed.connect(self.refresh)
        model.selectionChanged.connect(self._show_selection)
        self.refresh()

    def refresh(self) -> None:
        session = self.model.session
        self._sync_provider()
        self.grid.blockSignals(True)
        self.grid.clear()
        self._items = {}
        if session is None or getattr(self.model, "provisional", False):
            self.rows = np.zeros(0, dtype=np.int64)
            self.grid.blockSignals(False)
            self.summary.setText("")
            return
        self.rows = outlier_order(session.outlier_score)
        for row in self.rows.tolist():
            excluded = bool(session.excluded[row])
            score = float(session.outlier_score[row])
            item = QListWidgetItem(self._icon(row), f"{score:.2f}{'  excluded' if excluded else ''}")
            item.setData(RowRole, row)
            item.setToolTip(f"{session.paths[row]}\n{session.name_of(int(session.labels[row]))}")
            item.setForeground(QColor(180, 40, 40) if excluded else QColor(40, 40, 40))
            self.grid.addItem(item)
            self._items[row] = item
        self.grid.blockSignals(False)
        n_excluded = int(session.excluded.sum())
        shown = (
            f"All {len(self.rows):,} images"
            if len(self.rows) == len(session.paths)
            else f"The {len(self.rows):,} most unusual of {len(session.paths):,} images"
        )
        self.summary.setText(f"{shown}, most unusual first; {n_excluded:,} excluded in all")
        self._show_selection(self.model.selection)

    def select_at_least(self, minimum: float) -> np.ndarray:
        """Select every listed image with outlier score >= minimum; returns those rows."""
        session = self.model.session
        if session is None:
            return np.zeros(0, dtype=np.int64)
        rows = self.rows[np.asarray(session.outlier_score)[self.rows] >= minimum]
        self.model.select(rows)
        self._show_selection(rows)
        return rows

    def _mark(self, flag: bool) -> None:
        rows = [int(item.data(RowRole)) for item in self.grid.selectedItems()]
        self.model.set_excluded(rows, flag)

    def _grid_selected(self) -> None:
        if self._syncing:
            return
        rows = [int(item.data(RowRole)) for item in self.grid.selectedItems()]
        self.model.select(rows)

    def _show_selection(self, rows: Any) -> None:
        self._syncing = True
        try:
            wanted = set(np.asarray(rows, dtype=np.int64).tolist())
            for row, item in self._items.items():
                item.setSelected(row in wanted)
        finally:
            self._syncing = False

    def _icon(self, row: int) -> QIcon:
        return thumbnail_icon(self._provider, row, ICON_PX)

    def _sync_provider(self) -> None:
        self._provider = follow_provider(self._provider, self.model, self._thumbnail_ready)

    def _thumbnail_ready(self, row: int) -> None:
        item = self._items.get(row)
        if item is not None:
            item.setIcon(self._icon(row))
