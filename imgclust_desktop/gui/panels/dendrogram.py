"""The cluster tree: linkage of clusters, medoid thumbnails on the leaves, a draggable cut line.

The branches are one line item and the leaves one item that paints them (a thumbnail and a name each, or a
dot when there are too many to picture), so a re-cut into 2,000 groups adds no scene items.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import internals
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QGraphicsItem, QLabel, QVBoxLayout, QWidget

from imgclust_desktop.core.tree import leaf_spans
from imgclust_desktop.gui import colors
from imgclust_desktop.gui.panels.map_tools import selection_mode
from imgclust_desktop.gui.panels.point_cloud import ViewSizedItem
from imgclust_desktop.gui.thumbs import follow_provider

_BAND_PX = 150  # pixels under the leaves for the medoid thumbnail and the rotated label
_THUMB_MAX_PX = 56
_HIT_PX = 6  # how close a click must land to a branch
_MAX_LEAF_PICTURES = 300  # more groups than this are drawn as dots under the tree, not pictures
_WIDE_LEAF_PX = 90  # leaves at least this far apart get their name written across, not down
_MAX_DRAWN_LEAVES = 3000  # more clusters than this: the branches below the top 3,000 are drawn folded


def tree_layout(
    linkage: np.ndarray, spans: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """x, y of every node (leaves first, then merges in linkage order): the leaves at 0, 1, 2, ... in
    scipy's leaves_list order (without importing scipy.cluster: 1.2 s of opening a session), a merge midway
    between its children at its height."""
    linkage = np.asarray(linkage, dtype=np.float64)
    n_leaves = len(linkage) + 1
    x = np.full(2 * n_leaves - 1, np.nan)
    x[:n_leaves] = (leaf_spans(linkage) if spans is None else spans)[0][:n_leaves]
    # a merge sits midway between its children: all merges whose children are placed, a round at a time
    # (as many rounds as the tree is deep; a chain's last merges are placed one by one after 64 rounds)
    children = linkage[:, :2].astype(np.int64)
    pending = np.arange(len(linkage))
    for _ in range(64):
        if pending.size == 0:
            break
        a, b = x[children[pending, 0]], x[children[pending, 1]]
        ready = ~(np.isnan(a) | np.isnan(b))
        x[n_leaves + pending[ready]] = (a[ready] + b[ready]) / 2
        pending = pending[~ready]
    if pending.size:
        xs = x.tolist()
        for j, (a, b) in zip(pending.tolist(), children[pending].tolist(), strict=True):
            xs[n_leaves + j] = (xs[a] + xs[b]) / 2
        x = np.asarray(xs)
    y = np.r_[np.zeros(n_leaves), linkage[:, 2]]
    return x, y


def branch_segments(linkage: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x and y of the line pairs drawing each merge: a leg up from each child, then the bar across."""
    a, b = linkage[:, 0].astype(np.int64), linkage[:, 1].astype(np.int64)
    height = linkage[:, 2]
    xs = np.column_stack([x[a], x[a], x[b], x[b], x[a], x[b]]).ravel()
    ys = np.column_stack([y[a], height, y[b], height, height, height]).ravel()
    return xs, ys


def drawn_segments(
    linkage: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    most: int = _MAX_DRAWN_LEAVES,
    spans: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """branch_segments of the whole tree, or, above `most` leaves, of its top most - 1 merges with every
    branch they leave out drawn collapsed: a wedge from the branch's top down to its first and last leaf.

    The top merges are the last rows (a merge always comes after its children's), the highest in a
    monotone tree. Below them the branches are narrower than a pixel of any screen (3,000 leaves across the
    panel), and drawing each of 25,000 clusters' merges took 35 ms a paint.
    """
    n_leaves = len(linkage) + 1
    if n_leaves <= most:
        return branch_segments(linkage, x, y)
    first = len(linkage) - (most - 1)
    xs, ys = branch_segments(linkage[first:], x, y)
    children = linkage[first:, :2].astype(np.int64).ravel()
    folded = children[(children >= n_leaves) & (children < n_leaves + first)]
    start, size = leaf_spans(linkage) if spans is None else spans
    left, right = start[folded].astype(np.float64), (start[folded] + size[folded] - 1).astype(np.float64)
    top, ground = y[folded], np.zeros(len(folded))
    wedge_x = np.column_stack([left, x[folded], x[folded], right]).ravel()
    wedge_y = np.column_stack([ground, top, top, ground]).ravel()
    return np.r_[xs, wedge_x], np.r_[ys, wedge_y]


def subtree(linkage: np.ndarray, node: int) -> tuple[list[int], list[int]]:
    """The leaves (linkage leaf numbers) and the merges (linkage rows) under one node."""
    n_leaves = len(linkage) + 1
    leaves, merges, stack = [], [], [int(node)]
    while stack:
        top = stack.pop()
        if top < n_leaves:
            leaves.append(top)
        else:
            merges.append(top - n_leaves)
            stack += [int(linkage[top - n_leaves, 1]), int(linkage[top - n_leaves, 0])]
    return leaves, merges


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
        self._medoid_rows: set[int] = set()
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
        self.branches = pg.PlotDataItem(pen=_branch_pen(0), connect="pairs")
        # the branches keep a picture of themselves: the cut line, its label and the leaves repaint over it
        # without drawing the tree again (a re-cut painted the whole tree twice)
        self.branches.curve.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
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
        self.leaves = LeavesItem()
        self.view.addItem(self.leaves, ignoreBounds=True)
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
        self._relayout.timeout.connect(lambda: self._place_leaves(reread=False))
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
        self.cluster_ids = list(map(int, linkage_ids))
        spans = leaf_spans(self.linkage)
        self._x, self._y = tree_layout(self.linkage, spans)
        n_leaves = len(self.cluster_ids)
        self.branches.setData(*drawn_segments(self.linkage, self._x, self._y, spans=spans))
        self.branches.setPen(_branch_pen(len(self.linkage)))
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

    def _thumbnail_ready(self, index: int) -> None:
        if self.linkage is not None and index in self._medoid_rows:
            self.leaves.update()  # one repaint per burst of arrivals: Qt merges update() calls

    def _place_leaves(self, *, reread: bool = True) -> None:
        """Fit the leaves' band to the panel's height; reread: the leaves' clusters, medoids and sizes too
        (not on a resize: counting a million labels again for it took 15 ms)."""
        if self.linkage is None:
            self.leaves.set_leaves(None, [], np.zeros(0), 0.0, None)
            return
        height_px = max(self.view.height(), 1.0)
        band = min(_BAND_PX, height_px * 0.5)
        top = float(self.linkage[:, 2].max()) * 1.08 or 1.0
        # keep a fixed pixel band under y=0 for the leaves whatever the panel's height
        self.view.setYRange(-top * band / max(height_px - band, 1.0), top, padding=0)
        if not reread:
            self.leaves.band = band
            self.leaves.update()
            return
        session = self.model.session
        self.leaves.set_leaves(
            session, self.cluster_ids, self._x[: len(self.cluster_ids)], band, self._provider
        )
        self._medoid_rows = set(self.leaves.medoids.values())

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
        ids = [self.cluster_ids[leaf] for leaf in subtree(self.linkage, node)[0]]
        rows = np.flatnonzero(np.isin(np.asarray(self.model.session.labels), ids))
        self.model.select(rows, mode)
        self._show_chosen(node)
        return rows

    def _show_chosen(self, node: int | None) -> None:
        self._highlight_node = node
        if node is None or node < len(self.cluster_ids):
            self.chosen.setData([], [])
            return
        merges = subtree(self.linkage, node)[1]
        self.chosen.setData(*branch_segments(self.linkage[merges], self._x, self._y))

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


class LeavesItem(ViewSizedItem):
    """Every leaf of the drawn tree in one item: under each leaf (in pixels, whatever the zoom) the
    cluster's medoid thumbnail in its colour and its name with its size, or a dot when they are many."""

    def __init__(self) -> None:
        super().__init__()
        self.session: Any = None
        self.cluster_ids: list[int] = []
        self.x = np.zeros(0)
        self.band = 0.0
        self.provider: Any = None
        self.medoids: dict[int, int] = {}  # cluster id -> medoid row
        self.sizes = np.zeros(0, dtype=np.int64)
        self._dot_atlas: QPixmap | None = None
        self._fragments = internals.PrimitiveArray(QPainter.PixmapFragment, 10)
        self.last_drawn = 0  # leaves the last paint drew (tests and benchmarks)
        self.last_dots = 0  # discs the last paint of dots drew

    def set_leaves(
        self, session: Any, cluster_ids: list[int], x: np.ndarray, band: float, provider: Any
    ) -> None:
        """The leaves to draw: their clusters, in display order at these x positions, in a band of pixels."""
        self.session, self.cluster_ids, self.x = session, cluster_ids, x
        self.band, self.provider = band, provider
        clusters = getattr(session, "clusters", {}) if session is not None else {}
        pictured = cluster_ids if len(cluster_ids) <= _MAX_LEAF_PICTURES else []  # else dots: no medoids
        self.medoids = {
            cid: int(clusters[cid].medoid_index)
            for cid in pictured
            if cid in clusters and clusters[cid].medoid_index is not None
        }
        labels = np.asarray(session.labels) if session is not None else np.zeros(0, dtype=np.int64)
        self.sizes = np.bincount(labels[labels >= 0], minlength=max(cluster_ids, default=0) + 1)
        self.update()

    def paint(self, painter: QPainter, *args: Any) -> None:
        self.last_drawn = 0
        if not self.cluster_ids:
            return
        t = painter.transform()
        width = painter.device().width()
        spacing = abs(t.m11())  # leaves sit one data unit apart
        px = t.m11() * self.x + t.dx()
        py = t.dy()  # y = 0
        painter.save()
        painter.resetTransform()
        shown = np.flatnonzero((px > -_THUMB_MAX_PX) & (px < width + _THUMB_MAX_PX))
        if len(self.cluster_ids) > _MAX_LEAF_PICTURES:  # too many to picture: coloured dots on the axis
            self._paint_dots(painter, px[shown], py, np.asarray(self.cluster_ids)[shown])
        else:
            rgb = [tuple(c) for c in colors.labels_rgb(np.asarray(self.cluster_ids)).reshape(-1, 3).tolist()]
            for leaf in shown.tolist():
                cid = self.cluster_ids[leaf]
                index = self.medoids.get(cid)
                image = self.provider.get(index) if self.provider is not None and index is not None else None
                text = f"{self.session.name_of(int(cid))} ({int(self.sizes[cid]):,})"
                draw_leaf(painter, QPointF(px[leaf], py + 3), image, text, spacing, self.band, rgb[leaf])
        self.last_drawn = len(shown)
        painter.restore()

    def _paint_dots(self, painter: QPainter, xs: np.ndarray, y: float, cluster_ids: np.ndarray) -> None:
        """A 6-pixel disc in its cluster's colour under each leaf, all in one call from a strip of the
        palette's discs (2,000 leaves: one drawPixmap each took ~10 ms); where leaves are closer than a
        pixel, only the last of each pixel column, the one painted on top (25,000 leaves: 25 times fewer)."""
        if self._dot_atlas is None:
            self._dot_atlas = _dot_strip()
        steps = np.diff(xs)
        if len(xs) > 1 and np.min(np.abs(steps)) < 1:
            column = np.floor(xs).astype(np.int64)
            if (steps >= 0).all():  # in display order, left to right: the last of each run of a column
                last = np.flatnonzero(np.append(column[1:] != column[:-1], True))
            else:
                last = np.sort(len(xs) - 1 - np.unique(column[::-1], return_index=True)[1])
            xs, cluster_ids = xs[last], cluster_ids[last]
        self.last_dots = len(xs)
        self._fragments.resize(len(xs))
        frag = self._fragments.ndarray()
        frag[:, 0] = xs
        frag[:, 1] = y
        frag[:, 2] = np.mod(cluster_ids, len(colors.PALETTE_RGB)) * 6
        frag[:, 3] = 0.0
        frag[:, 4:6] = 6.0
        frag[:, 6:8] = 1.0
        frag[:, 8] = 0.0
        frag[:, 9] = 1.0
        painter.drawPixmapFragments(*self._fragments.drawargs(), self._dot_atlas)

    def hoverEvent(self, ev: Any) -> None:
        """The name of the leaf under the cursor as the tooltip."""
        if ev.isExit() or not self.cluster_ids:
            self.setToolTip("")
            return
        slot = int(round(ev.pos().x()))  # leaves sit at x = 0, 1, 2, ... in display order
        leaf = np.flatnonzero(self.x == slot)
        self.setToolTip(self.session.name_of(int(self.cluster_ids[int(leaf[0])])) if len(leaf) else "")


def _branch_pen(merges: int) -> QPen:
    """The branches' pen: 1.5 px for a small tree, 1 px past 500 merges (under the view's scaling a wider
    line is stroked as a polygon: 15,000 segments took 11 ms at 1.5 px against 3 ms at 1 px)."""
    return pg.mkPen(QColor(70, 70, 70), width=1.5 if merges <= 500 else 1)


def _dot_strip() -> QPixmap:
    """The palette's discs side by side, 6 x 6 pixels each (a leaf's dot when there are too many to picture)."""
    strip = QPixmap(6 * len(colors.PALETTE_RGB), 6)
    strip.fill(Qt.GlobalColor.transparent)
    painter = QPainter(strip)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    for slot, rgb in enumerate(colors.PALETTE_RGB.tolist()):
        painter.setBrush(QColor(*rgb))
        painter.drawEllipse(QRectF(6 * slot + 0.5, 0.5, 5, 5))
    painter.end()
    return strip


def draw_leaf(
    painter: QPainter, top: QPointF, image: QImage | None, text: str, spacing: float, band: float, rgb: tuple
) -> None:
    """One leaf's label, centred under `top`: the medoid thumbnail in a cluster-coloured frame, then the
    name written downwards (across, wrapped, when the leaves are wide apart)."""
    wide = spacing >= _WIDE_LEAF_PX
    width = int(min(spacing - 6, 150)) if wide else int(max(6, min(spacing - 2, _THUMB_MAX_PX + 4)))
    painter.save()
    painter.translate(top.x() - width / 2, top.y())
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
    painter.restore()


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
