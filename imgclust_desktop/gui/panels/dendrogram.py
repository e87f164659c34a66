"""The cluster tree: linkage of clusters, medoid thumbnails on the leaves, a draggable cut line."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPixmapItem, QLabel, QVBoxLayout, QWidget

from imgclust_desktop.gui import colors
from imgclust_desktop.gui.panels.map_tools import selection_mode
from imgclust_desktop.gui.thumbs import follow_provider

_BAND_PX = 150  # pixels under the leaves for the medoid thumbnail and the rotated label
_THUMB_MAX_PX = 56
_HIT_PX = 6  # how close a click must land to a branch
_MAX_LEAF_ITEMS = 300  # more groups than this are drawn as dots under the tree, not pictures
_WIDE_LEAF_PX = 90  # leaves at least this far apart get their name written across, not down


def tree_layout(linkage: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
    """x, y of every node (leaves first, then merges in linkage order) and the leaves under each node."""
    from scipy.cluster.hierarchy import leaves_list

    linkage = np.asarray(linkage, dtype=np.float64)
    n_leaves = len(linkage) + 1
    x = np.zeros(2 * n_leaves - 1)
    y = np.zeros(2 * n_leaves - 1)
    x[leaves_list(linkage)] = np.arange(n_leaves)
    members: list[list[int]] = [[i] for i in range(n_leaves)]
    for j, (a, b, height, _) in enumerate(linkage):
        node = n_leaves + j
        x[node] = (x[int(a)] + x[int(b)]) / 2
        y[node] = height
        members.append(members[int(a)] + members[int(b)])
    return x, y, members


def count_at(linkage: np.ndarray, height: float) -> int:
    """How many clusters a cut at this height leaves (scipy fcluster, distance criterion)."""
    from scipy.cluster.hierarchy import fcluster

    return int(
        len(np.unique(fcluster(np.asarray(linkage, dtype=np.float64), t=height, criterion="distance")))
    )


class _HeightAxis(pg.AxisItem):
    """Left axis that leaves the label band under y=0 free of tick marks."""

    def tickValues(self, minVal, maxVal, size):
        return [
            (spacing, [v for v in values if v >= 0])
            for spacing, values in super().tickValues(minVal, maxVal, size)
        ]


class DendrogramPanel(QWidget):
    """Cluster linkage drawn as a tree; dragging the cut line previews the count, releasing emits it."""

    cutChanged = Signal(float)
    contextMenuRequested = Signal(object, object)  # (cluster id, global QPoint): right-click on a group

    def __init__(self, model: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.linkage: np.ndarray | None = None
        self.tree: Any = None  # the session's ClusterTree, when it has one: the line then re-cuts it
        self.cluster_ids: list[int] = []
        self.cut_count = 0
        self._x = self._y = np.zeros(0)
        self._members: list[list[int]] = []
        self._leaf_items: list[QGraphicsPixmapItem] = []
        self._provider: Any = None
        self._highlight_node: int | None = None

        self.plot = pg.PlotWidget(background="w", axisItems={"left": _HeightAxis("left")})
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.setMenuEnabled(False)
        self.plot.hideAxis("bottom")
        self.plot.getAxis("left").setLabel("merge height")
        self.plot.getAxis("left").setTextPen("k")
        self.view = self.plot.getViewBox()
        self.branches = pg.PlotDataItem(pen=pg.mkPen(QColor(70, 70, 70), width=1.5), connect="pairs")
        self.chosen = pg.PlotDataItem(pen=pg.mkPen(QColor(30, 110, 220), width=3.5), connect="pairs")
        self.view.addItem(self.branches)
        self.view.addItem(self.chosen)
        self.cut_line = pg.InfiniteLine(
            angle=0, movable=True, pen=pg.mkPen(QColor(210, 50, 50), width=2, style=Qt.PenStyle.DashLine),
            hoverPen=pg.mkPen(QColor(230, 60, 60), width=3),
            label="", labelOpts={"position": 0.92, "color": (180, 30, 30), "fill": (255, 255, 255, 220),
                                 "anchors": [(1, 1), (1, 1)]},
        )  # fmt: skip
        self.cut_line.setZValue(10)
        self.view.addItem(self.cut_line, ignoreBounds=True)
        self.cut_line.sigPositionChanged.connect(self._cut_moved)
        self.cut_line.sigPositionChangeFinished.connect(
            lambda line: self.cutChanged.emit(float(line.value()))
        )
        self.message = QLabel()
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setStyleSheet("color: #666; padding: 12px;")
        self.hint = QLabel(
            "Drag the red line to choose how many groups; click a branch to select its images."
        )
        self.hint.setStyleSheet("color: #555; padding: 2px 6px;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.hint)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.message, 1)

        self._relayout = QTimer(self, singleShot=True, interval=30)
        self._relayout.timeout.connect(self._place_leaves)
        self.view.sigResized.connect(lambda _=None: self._relayout.start())
        self.plot.scene().sigMouseClicked.connect(self._clicked)
        model.changed.connect(self.refresh)
        model.selectionChanged.connect(self._selection_changed)
        self.refresh()

    # -- state ------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the linkage, names, sizes and medoids from the session."""
        session = self.model.session
        self._sync_provider()
        self.tree = None if session is None else getattr(session, "tree", None)
        linkage = None if session is None else getattr(session, "linkage", None)
        linkage_ids = [] if session is None else session.linkage_cluster_ids
        if self.tree is not None:  # the tree above the current clusters, each cluster a collapsed leaf
            from imgclust_desktop.core.recut import cluster_linkage

            linkage, linkage_ids = cluster_linkage(session)
        if linkage is None or len(linkage) < 1:
            self.linkage = None
            self.plot.hide()
            self.hint.hide()
            self.message.show()
            self.message.setText("No cluster tree yet." if session is None else
                                 "Fewer than two clusters: there is no tree to cut.")  # fmt: skip
            return
        self.message.hide()
        self.plot.show()
        self.hint.show()
        new_tree = self.linkage is None or not np.array_equal(self.linkage, linkage)
        self.linkage = np.asarray(linkage, dtype=np.float64)
        self.cluster_ids = [int(c) for c in linkage_ids]
        self._x, self._y, self._members = tree_layout(self.linkage)
        n_leaves = len(self.cluster_ids)
        segments = []
        for a, b, height, _ in self.linkage:
            for child in (int(a), int(b)):
                segments += [(self._x[child], self._y[child]), (self._x[child], height)]
            segments += [(self._x[int(a)], height), (self._x[int(b)], height)]
        segments = np.asarray(segments)
        self.branches.setData(segments[:, 0], segments[:, 1])
        top = float(self.linkage[:, 2].max()) or 1.0
        self.cut_line.setBounds((0.0, top * 1.08))
        if self.tree is not None:  # the line sits at the session's level; it moves both ways
            from imgclust_desktop.gui.granularity import height_of_level

            self.hint.setText(
                "Drag the red line up for fewer groups, down for more; "
                "right-click a group to show its sub-groups."
            )
            self._highlight_node = None
            self.chosen.setData([], [])
            level = session.level if session.level is not None else len(self.cluster_ids)
            self.set_cut_height(height_of_level(self.tree, level))
        elif new_tree:
            self._highlight_node = None
            self.chosen.setData([], [])
            # start just under the lowest merge: every current cluster is its own group
            self.set_cut_height(float(self.linkage[:, 2].min()) * 0.5)
        else:
            self._cut_moved(self.cut_line)
        self.view.setXRange(-0.6, n_leaves - 0.4, padding=0)
        self._place_leaves()

    def cut_height(self) -> float:
        """Where the cut line is."""
        return float(self.cut_line.value())

    def set_cut_height(self, height: float) -> None:
        """Move the cut line (updates the live count, does not emit cutChanged)."""
        self.cut_line.setValue(height)
        self._cut_moved(self.cut_line)

    def _cut_moved(self, line: Any) -> None:
        if self.linkage is None:
            return
        if self.tree is not None:
            from imgclust_desktop.gui.granularity import tree_count_at

            self.cut_count = tree_count_at(self.tree, float(line.value()))
        else:
            self.cut_count = count_at(self.linkage, float(line.value()))
        self.cut_line.label.setFormat(f"{self.cut_count} clusters  (height {float(line.value()):.3g})")

    # -- leaves -----------------------------------------------------------------------------------------
    def _sync_provider(self) -> None:
        self._provider = follow_provider(self._provider, self.model, self._thumbnail_ready)

    def _medoids(self) -> dict[int, int]:
        session = self.model.session
        out = {}
        for cid in self.cluster_ids:
            info = getattr(session, "clusters", {}).get(cid)
            if info is not None and info.medoid_index is not None:
                out[cid] = int(info.medoid_index)
        return out

    def _thumbnail_ready(self, index: int) -> None:
        if self.linkage is not None and index in self._medoids().values():
            self._relayout.start()

    def _place_leaves(self) -> None:
        for item in self._leaf_items:
            self.view.removeItem(item)
        self._leaf_items = []
        if self.linkage is None:
            return
        height_px = max(self.view.height(), 1.0)
        band = min(_BAND_PX, height_px * 0.5)
        top = float(self.linkage[:, 2].max()) * 1.08 or 1.0
        # keep a fixed pixel band under y=0 for the leaves whatever the panel's height
        self.view.setYRange(-top * band / max(height_px - band, 1.0), top, padding=0)
        spacing = self.view.width() / max(len(self.cluster_ids), 1)
        session = self.model.session
        labels = np.asarray(session.labels)
        sizes = np.bincount(labels[labels >= 0], minlength=max(self.cluster_ids, default=0) + 1)
        if len(self.cluster_ids) > _MAX_LEAF_ITEMS:  # too many to picture: one item of coloured dots
            dots = pg.ScatterPlotItem(
                x=self._x[: len(self.cluster_ids)], y=np.zeros(len(self.cluster_ids)), size=5, pen=None,
                brush=[pg.mkBrush(*colors.cluster_rgb(c)) for c in self.cluster_ids],
            )  # fmt: skip
            self.view.addItem(dots, ignoreBounds=True)
            self._leaf_items.append(dots)
            return
        medoids = self._medoids()
        for leaf, cid in enumerate(self.cluster_ids):
            index = medoids.get(cid)
            image = self._provider.get(index) if self._provider is not None and index is not None else None
            name = _cluster_name(session, cid)
            pixmap = leaf_pixmap(
                image, f"{name} ({int(sizes[cid]):,})", spacing, band, colors.cluster_rgb(cid)
            )
            item = QGraphicsPixmapItem(pixmap)
            item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
            item.setOffset(-pixmap.width() / 2, 3)
            item.setPos(QPointF(self._x[leaf], 0))
            item.setToolTip(name)
            self.view.addItem(item, ignoreBounds=True)
            self._leaf_items.append(item)

    # -- selection --------------------------------------------------------------------------------------
    def node_at(self, pos: QPointF) -> int | None:
        """The tree node under a data-space position: a leaf below the axis, a branch above it."""
        if self.linkage is None:
            return None
        px, py = self.view.viewPixelSize()
        n_leaves = len(self.cluster_ids)
        if pos.y() < 0:
            slot = int(round(pos.x()))  # leaves sit at x = 0, 1, 2, ... in display order
            if not 0 <= slot < n_leaves:
                return None
            return int(np.flatnonzero(self._x[:n_leaves] == slot)[0])
        best, best_d = None, _HIT_PX
        for j, (a, b, height, _) in enumerate(self.linkage):
            xa, xb = sorted((self._x[int(a)], self._x[int(b)]))
            dx = max(xa - pos.x(), 0.0, pos.x() - xb) / px
            d = np.hypot(dx, (pos.y() - height) / py)
            if d < best_d:
                best, best_d = n_leaves + j, d
            for child in (int(a), int(b)):  # a vertical leg belongs to the child below it
                lo, hi = self._y[child], height
                dy = max(lo - pos.y(), 0.0, pos.y() - hi) / py
                d = np.hypot((pos.x() - self._x[child]) / px, dy)
                if d < best_d:
                    best, best_d = child, d
        return best

    def select_node(self, node: int, mode: str = "replace") -> np.ndarray:
        """Select the images of every cluster under a tree node; returns the rows."""
        ids = [self.cluster_ids[leaf] for leaf in self._members[node]]
        rows = np.flatnonzero(np.isin(np.asarray(self.model.session.labels), ids))
        self.model.select(rows, mode)
        self._show_chosen(node)
        return rows

    def _show_chosen(self, node: int | None) -> None:
        self._highlight_node = node
        if node is None or node < len(self.cluster_ids):
            self.chosen.setData([], [])
            return
        n_leaves = len(self.cluster_ids)
        segments, stack = [], [node]
        while stack:
            j = stack.pop() - n_leaves
            if j < 0:
                continue
            a, b, height = int(self.linkage[j, 0]), int(self.linkage[j, 1]), self.linkage[j, 2]
            for child in (a, b):
                segments += [(self._x[child], self._y[child]), (self._x[child], height)]
                stack.append(child)
            segments += [(self._x[a], height), (self._x[b], height)]
        segments = np.asarray(segments)
        self.chosen.setData(segments[:, 0], segments[:, 1])

    def _clicked(self, ev: Any) -> None:
        if self.linkage is None or not self.view.sceneBoundingRect().contains(ev.scenePos()):
            return
        node = self.node_at(self.view.mapSceneToView(ev.scenePos()))
        if ev.button() == Qt.MouseButton.RightButton:
            if node is not None and node < len(self.cluster_ids):
                self.contextMenuRequested.emit(self.cluster_ids[node], ev.screenPos().toPoint())
                ev.accept()
            return
        if ev.button() != Qt.MouseButton.LeftButton:
            return
        if node is not None:
            self.select_node(node, selection_mode(ev.modifiers()))
        ev.accept()

    def _selection_changed(self, rows: Any) -> None:
        if len(np.asarray(rows)) == 0:
            self._show_chosen(None)


def leaf_pixmap(image: QImage | None, text: str, spacing: float, band: float, rgb: tuple) -> QPixmap:
    """A leaf's label: the medoid thumbnail in a cluster-coloured frame, then the name written upwards."""
    wide = spacing >= _WIDE_LEAF_PX
    width = int(min(spacing - 6, 150)) if wide else int(max(6, min(spacing - 2, _THUMB_MAX_PX + 4)))
    pixmap = QPixmap(width, int(band))
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    side = min(width, _THUMB_MAX_PX + 4) - 4
    left = (width - side - 4) / 2  # the picture is centred over the branch
    y = 0
    if side >= 14:
        frame = QRectF(left + 1, 1, side + 2, side + 2)
        painter.fillRect(frame, QColor(*rgb))
        if image is not None:
            target = QRectF(left + 2, 2, side, side)
            painter.drawImage(target, image, _centre_square(image))
        y = side + 6
    else:
        painter.setBrush(QColor(*rgb))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.drawEllipse(QRectF(width / 2 - 3, 0, 6, 6))
        y = 9
    font = QFont()
    font.setPointSizeF(8.5 if spacing >= 18 else 7.0)
    painter.setFont(font)
    metrics = QFontMetrics(font)
    if wide:  # few groups: the name reads across, wrapped under the picture, instead of down the band
        box = QRectF(0, y, width, band - y - 2)
        painter.setPen(QPen(QColor(30, 30, 30)))
        flags = Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap
        lines = max(1, int(box.height() // metrics.lineSpacing()))
        painter.drawText(box, flags, _wrapped(metrics, text, int(width), lines))
    elif spacing >= 9:
        room = int(band - y - 2)
        elided = metrics.elidedText(text, Qt.TextElideMode.ElideRight, room)
        painter.setPen(QPen(QColor(30, 30, 30)))
        painter.translate(width / 2 + metrics.ascent() / 2 - 1, y)
        painter.rotate(90)  # read top to bottom, like a rotated axis label under the leaf
        painter.drawText(0, 0, elided)
    painter.end()
    return pixmap


def _wrapped(metrics: QFontMetrics, text: str, width: int, lines: int) -> str:
    """text word-wrapped to `width` pixels on at most `lines` lines, the last one elided."""
    out: list[str] = []
    words = text.split()
    while words and len(out) < lines:
        line = words.pop(0)
        while words and metrics.horizontalAdvance(f"{line} {words[0]}") <= width:
            line = f"{line} {words.pop(0)}"
        if len(out) == lines - 1 and words:
            line = f"{line} {' '.join(words)}"
            words = []
        out.append(metrics.elidedText(line, Qt.TextElideMode.ElideRight, width))
    return "\n".join(out)


def _centre_square(image: QImage) -> QRectF:
    w, h = image.width(), image.height()
    side = min(w, h)
    return QRectF((w - side) / 2, (h - side) / 2, side, side)


def _cluster_name(session: Any, cluster_id: int) -> str:
    try:
        return str(session.name_of(cluster_id))
    except Exception:  # a cluster id the session no longer names (after a merge)
        return f"Cluster {cluster_id}"
