"""Lists of coloured groups (the map's legend, the cluster grid's list of clusters) as one light list model.

A re-cut into 25,000 groups resets the model: no list items, texts or icons are made up front. The model
keeps the groups as columns; the row count sits in Qt's own string list (the view's layout asks it for
every row, and it stays in C++); Qt asks Python only for the rows it paints (a screenful), and a swatch is
drawn once per colour.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QStringListModel, Qt
from PySide6.QtGui import QColor, QFont, QIcon

KeyRole = Qt.ItemDataRole.UserRole  # the group's key: a cluster id, a folder index; None for a header row
HIDDEN_TEXT = QColor(150, 150, 150)
ROW_FLAGS = Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEnabled  # not editable, not draggable


class SwatchListModel(QStringListModel):
    """Groups as columns (keys, names, image counts, colours); hidden keys are greyed and struck out; an
    optional header row. A row's text, "name  (count)", is made when Qt asks for it."""

    def __init__(self, swatch: Callable[[tuple], QIcon], parent: Any = None) -> None:
        super().__init__(parent)
        self._swatch = swatch
        self._icons: dict[tuple, QIcon] = {}  # rgb -> icon: a few dozen palette colours, drawn once each
        self._keys: list = []
        self._key_array = np.zeros(0, np.int64)
        self._names: Sequence[str] | Callable[[Any], str] = []
        self._counts: list[int] = []
        self._rgb = np.zeros((0, 3), np.uint8)
        self._notes: dict = {}
        self._tooltips = False
        self._header: tuple[QIcon, str] | None = None
        self.hidden: set = set()
        self._struck = QFont()
        self._struck.setStrikeOut(True)

    def set_groups(
        self,
        keys: Sequence[int],
        names: Sequence[str] | Callable[[Any], str],
        counts: Sequence[int],
        rgb: np.ndarray,
        *,
        notes: dict | None = None,
        tooltips: bool = False,
        hidden: set | None = None,
        header: tuple[QIcon, str] | None = None,
    ) -> None:
        """Replace every row: one per key, with its name, image count and colour (uint8 [rows, 3]).

        names: one per key, or a function of the key asked for the rows Qt paints (a session's name_of:
        looking up 25,000 names took 3 ms a list). notes: key -> words after the count (" — excluded");
        tooltips: "name: N images" as the tooltip, else the row's text; header: (icon, text) of an
        unselectable first row. Nothing per row is made here: a re-cut into 25,000 groups built every
        row's text and colour before (20 ms a list), and Qt asks for a screenful.
        """
        self._keys = list(keys)
        self._key_array = np.asarray(self._keys, np.int64)
        self._names, self._counts = names if callable(names) else list(names), list(counts)
        self._rgb = np.asarray(rgb, np.uint8).reshape(-1, 3)
        self._notes = dict(notes or {})
        self._tooltips = tooltips
        self._header = header
        self.hidden = set() if hidden is None else set(hidden)
        # the row count stays in Qt's own list (the layout asks it once or twice per row); the texts do not
        self.setStringList([""] * (len(self._keys) + (header is not None)))

    def set_hidden(self, keys: set) -> None:
        """Grey out and strike through these keys' rows (a repaint, not a reset)."""
        self.hidden = set(keys)
        if self.rowCount():
            roles = [Qt.ItemDataRole.FontRole, Qt.ItemDataRole.ForegroundRole]
            self.dataChanged.emit(self.index(0), self.index(self.rowCount() - 1), roles)

    def keys(self) -> list:
        """Every row's key, header excluded, in order."""
        return list(self._keys)

    def row_of(self, key: Any) -> int | None:
        """The row showing this key (None: not listed)."""
        if not isinstance(key, (int, np.integer)):
            return None
        hit = np.flatnonzero(self._key_array == key)
        return int(hit[0]) + (self._header is not None) if hit.size else None

    def name(self, position: int) -> str:
        """The name of group row `position` (header not counted)."""
        names = self._names
        return names(self._keys[position]) if callable(names) else names[position]

    def text(self, position: int) -> str:
        """The text of group row `position` (header not counted)."""
        key = self._keys[position]
        return f"{self.name(position)}  ({self._counts[position]:,}){self._notes.get(key, '')}"

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if self._header is not None and index.row() == 0:
            return Qt.ItemFlag.ItemIsEnabled  # shown at full contrast, never selected
        return ROW_FLAGS if index.isValid() else Qt.ItemFlag.NoItemFlags

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if not index.isValid():
            return None
        position = index.row()
        if self._header is not None:
            if position == 0:
                if role == Qt.ItemDataRole.DisplayRole:
                    return self._header[1]
                return self._header[0] if role == Qt.ItemDataRole.DecorationRole else None
            position -= 1
        if position >= len(self._keys):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.text(position)
        key = self._keys[position]
        if role == KeyRole:
            return key
        if role == Qt.ItemDataRole.DecorationRole:
            rgb = tuple(self._rgb[position].tolist())
            icon = self._icons.get(rgb)
            if icon is None:
                icon = self._icons[rgb] = self._swatch(rgb)
            return icon
        if role == Qt.ItemDataRole.ToolTipRole:  # the whole text where a narrow list elides it
            if self._tooltips:
                return f"{self.name(position)}: {self._counts[position]:,} images"
            return self.text(position)
        if role == Qt.ItemDataRole.FontRole:
            return self._struck if key in self.hidden else None
        if role == Qt.ItemDataRole.ForegroundRole:
            return HIDDEN_TEXT if key in self.hidden else None
        return None
