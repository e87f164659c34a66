"""Files the run could not use, each with the reason, selectable and copyable."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtGui import QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)


class SkippedPanel(QWidget):
    """A two-column table (path, reason) with Copy; Ctrl+C copies the selected rows as TSV."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.summary = QLabel("No skipped files.")
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["File", "Reason"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setColumnWidth(0, 260)
        self.copy_button = QPushButton("Copy list")
        self.copy_button.setToolTip("Copy the selected rows (or all rows) as tab-separated text")
        self.copy_button.clicked.connect(self.copy)
        QShortcut(QKeySequence.StandardKey.Copy, self.table, self.copy)

        top = QHBoxLayout()
        top.addWidget(self.summary, 1)
        top.addWidget(self.copy_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        self.set_skipped([])

    def set_skipped(self, skipped: Sequence[Any]) -> None:
        """Show a list of core.sources.Skipped (anything with .path and .reason)."""
        self.table.setRowCount(len(skipped))
        for row, item in enumerate(skipped):
            path_item = QTableWidgetItem(str(item.path))
            path_item.setToolTip(str(item.path))
            self.table.setItem(row, 0, path_item)
            self.table.setItem(row, 1, QTableWidgetItem(str(item.reason)))
        n = len(skipped)
        self.summary.setText("No skipped files." if n == 0 else f"{n:,} file{'s' if n != 1 else ''} skipped:")
        self.copy_button.setEnabled(n > 0)

    def as_text(self, rows: Sequence[int] | None = None) -> str:
        """Rows (all by default) as 'path<TAB>reason' lines."""
        if rows is None:
            rows = range(self.table.rowCount())
        return "\n".join(f"{self.table.item(r, 0).text()}\t{self.table.item(r, 1).text()}" for r in rows)

    def copy(self) -> str:
        """Put the selected rows (all rows when none are selected) on the clipboard; returns the text."""
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        text = self.as_text(rows or None)
        QGuiApplication.clipboard().setText(text)
        return text
