"""Lists of coloured groups (the map's legend, the cluster grid's list of clusters) as one light list model.

A re-cut into 2,000 groups resets the model: no list items and no icons are made up front. The texts sit in
Qt's own string list (the view's layout asks the row count of every row, which stays in C++); Qt asks
Python only for the swatch, key and style of the rows it paints (a screenful), and a swatch is drawn once
per colour.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QStringListModel, Qt
from PySide6.QtGui import QColor, QFont, QIcon

KeyRole = Qt.ItemDataRole.UserRole  # the group's key: a cluster id, a folder index; None for a header row
HIDDEN_TEXT = QColor(150, 150, 150)
ROW_FLAGS = Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEnabled  # not editable, not draggable


class SwatchListModel(QStringListModel):
    """Rows of (key, text, rgb, tooltip or None for the text); hidden keys are greyed and struck out; an
    optional header row."""

    def __init__(self, swatch: Callable[[tuple], QIcon], parent: Any = None) -> None:
        super().__init__(parent)
        self._swatch = swatch
        self._icons: dict[tuple, QIcon] = {}  # rgb -> icon: a few dozen palette colours, drawn once each
        self._rows: list[tuple[Any, str, tuple, str | None]] = []
        self._row_of: dict[Any, int] = {}
        self._header: QIcon | None = None
        self.hidden: set = set()
        self._struck = QFont()
        self._struck.setStrikeOut(True)

    def set_rows(
        self, rows: list[tuple[Any, str, tuple, str | None]], hidden: set | None = None, header: Any = None
    ) -> None:
        """Replace every row; header: (icon, text) of an unselectable first row, or None."""
        self._header = None if header is None else header[0]
        self._rows = rows
        offset = 0 if header is None else 1
        self._row_of = {row[0]: i + offset for i, row in enumerate(rows)}
        self.hidden = set() if hidden is None else set(hidden)
        self.setStringList(([] if header is None else [header[1]]) + [row[1] for row in rows])

    def set_hidden(self, keys: set) -> None:
        """Grey out and strike through these keys' rows (a repaint, not a reset)."""
        self.hidden = set(keys)
        if self.rowCount():
            roles = [Qt.ItemDataRole.FontRole, Qt.ItemDataRole.ForegroundRole]
            self.dataChanged.emit(self.index(0), self.index(self.rowCount() - 1), roles)

    def keys(self) -> list:
        """Every row's key, header excluded, in order."""
        return [row[0] for row in self._rows]

    def row_of(self, key: Any) -> int | None:
        """The row showing this key (None: not listed)."""
        return self._row_of.get(key)

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if self._header is not None and index.row() == 0:
            return Qt.ItemFlag.ItemIsEnabled  # shown at full contrast, never selected
        return ROW_FLAGS if index.isValid() else Qt.ItemFlag.NoItemFlags

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if not index.isValid():
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return super().data(index, role)
        position = index.row()
        if self._header is not None:
            if position == 0:
                return self._header if role == Qt.ItemDataRole.DecorationRole else None
            position -= 1
        if position >= len(self._rows):
            return None
        key, text, rgb, tooltip = self._rows[position]
        if role == KeyRole:
            return key
        if role == Qt.ItemDataRole.DecorationRole:
            icon = self._icons.get(rgb)
            if icon is None:
                icon = self._icons[rgb] = self._swatch(rgb)
            return icon
        if role == Qt.ItemDataRole.ToolTipRole:  # the whole text where a narrow list elides it
            return text if tooltip is None else tooltip
        if role == Qt.ItemDataRole.FontRole:
            return self._struck if key in self.hidden else None
        if role == Qt.ItemDataRole.ForegroundRole:
            return HIDDEN_TEXT if key in self.hidden else None
        return None
