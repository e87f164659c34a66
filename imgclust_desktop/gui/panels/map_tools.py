"""Gestures and overlays of the map: the selecting ViewBox (pan, rectangle, lasso), the hover card, the
search-result rings and the legend's little pictures."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QIcon,
    QLinearGradient,
    QPainter,
    QPainterPath,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import QFrame, QGraphicsPathItem, QLabel, QVBoxLayout, QWidget

from imgclust_desktop.gui import colors


def selection_mode(modifiers: Qt.KeyboardModifier) -> str:
    """Shift adds to the selection, Ctrl/Cmd/Alt subtracts, no modifier replaces it."""
    mods = Qt.KeyboardModifier
    if modifiers & mods.ShiftModifier:
        return "add"
    if modifiers & (mods.ControlModifier | mods.AltModifier | mods.MetaModifier):
        return "subtract"
    return "replace"


class SelectViewBox(pg.ViewBox):
    """A ViewBox whose left drag pans, draws a rectangle or a lasso, depending on `tool`."""

    clicked = Signal(QPointF, object, bool)  # data position, modifiers, double-click
    polygonDrawn = Signal(object, object)  # np.ndarray [m, 2] in data coordinates, modifiers
    rightClicked = Signal(QPointF, object)  # data position, global screen position (QPoint)

    def __init__(self) -> None:
        super().__init__(lockAspect=True, enableMenu=False)
        self.tool = "pan"
        self._trace: list[QPointF] = []
        self._outline = QGraphicsPathItem()
        pen = QPen(QColor(20, 20, 20), 1.5, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self._outline.setPen(pen)
        self._outline.setBrush(QColor(30, 120, 220, 40))
        self._outline.setZValue(1e6)
        self._outline.setVisible(False)
        self.addItem(self._outline, ignoreBounds=True)

    def mouseClickEvent(self, ev) -> None:
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self.clicked.emit(self.mapToView(ev.pos()), ev.modifiers(), bool(ev.double()))
        elif ev.button() == Qt.MouseButton.RightButton:
            ev.accept()
            self.rightClicked.emit(self.mapToView(ev.pos()), ev.screenPos().toPoint())
        else:
            super().mouseClickEvent(ev)

    def mouseDragEvent(self, ev, axis=None) -> None:
        if self.tool == "pan" or ev.button() != Qt.MouseButton.LeftButton:
            super().mouseDragEvent(ev, axis)
            return
        ev.accept()
        here = self.mapToView(ev.pos())
        if ev.isStart():
            self._trace = [self.mapToView(ev.buttonDownPos())]
        if self.tool == "lasso":
            self._trace.append(here)
        else:
            self._trace = [self._trace[0], here]
        self._outline.setPath(self._trace_path())
        self._outline.setVisible(True)
        if ev.isFinish():
            self._outline.setVisible(False)
            polygon = self._trace_polygon()
            self._trace = []
            if len(polygon) >= 3:
                self.polygonDrawn.emit(polygon, ev.modifiers())

    def _trace_polygon(self) -> np.ndarray:
        pts = np.array([(p.x(), p.y()) for p in self._trace], dtype=np.float64)
        if self.tool == "rect" and len(pts) == 2:
            (x0, y0), (x1, y1) = pts
            pts = np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
        return pts

    def _trace_path(self) -> QPainterPath:
        path = QPainterPath()
        pts = self._trace_polygon()
        if len(pts):
            path.moveTo(*pts[0])
            for x, y in pts[1:]:
                path.lineTo(x, y)
            path.closeSubpath()
        return path


class HoverCard(QFrame):
    """A tooltip-like overlay: a larger preview, the path, cluster name and outlier score."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet(
            "HoverCard { background: rgba(255,255,255,240); border: 1px solid #888; border-radius: 4px; }"
        )
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        self.picture = QLabel()
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setFixedSize(192, 192)
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setFixedWidth(220)
        self.text.setTextFormat(Qt.TextFormat.PlainText)
        layout.addWidget(self.picture, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.text)
        self.index: int | None = None
        self.hide()

    def show_image(self, index: int, image: Any, text: str) -> None:
        self.index = index
        if image is None:
            self.picture.setText("loading…")
        else:
            pixmap = QPixmap.fromImage(image).scaled(
                192, 192, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
            )
            self.picture.setPixmap(pixmap)
        self.text.setText(text)
        self.adjustSize()


class HighlightRings(pg.ScatterPlotItem):
    """Rings around a few rows of the map (search results), drawn above the point cloud."""

    def __init__(self) -> None:
        pen = pg.mkPen(QColor(255, 120, 0), width=2.5)
        super().__init__(size=18, pen=pen, brush=None, symbol="o", pxMode=True)
        self.setZValue(1e5)
        self.rows = np.zeros(0, dtype=np.int64)

    def show_rows(self, coords: np.ndarray, rows: np.ndarray) -> None:
        """Ring these rows (indices into coords); an empty array clears the rings."""
        rows = np.asarray(rows, dtype=np.int64)
        rows = rows[(rows >= 0) & (rows < len(coords))]
        self.rows = rows
        points = np.asarray(coords, dtype=np.float64)[rows]
        self.setData(x=points[:, 0], y=points[:, 1]) if len(rows) else self.clear()


# ---- legend drawing helpers (used by the scatter's legend)


def swatch(rgb: Any) -> QIcon:
    pixmap = QPixmap(14, 14)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QPen(QColor(60, 60, 60), 1))
    painter.setBrush(QColor(int(rgb[0]), int(rgb[1]), int(rgb[2])))
    painter.drawEllipse(QRectF(1.5, 1.5, 11, 11))
    painter.end()
    return QIcon(pixmap)


def ramp_icon() -> QIcon:
    pixmap = QPixmap(40, 14)
    painter = QPainter(pixmap)
    gradient = QLinearGradient(0, 0, 40, 0)
    ramp = colors.ramp_rgb(8)
    for k, rgb in enumerate(ramp):
        gradient.setColorAt(k / (len(ramp) - 1), QColor(*(int(v) for v in rgb)))
    painter.fillRect(pixmap.rect(), gradient)
    painter.end()
    return QIcon(pixmap)
