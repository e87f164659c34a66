"""The thumbnail map: every image a dot at its 2-D position, thumbnails when zoomed in, lasso selection."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QActionGroup,
)
from PySide6.QtWidgets import (
    QComboBox,
    QLabel,
    QListView,
    QMenu,
    QSizePolicy,
    QSplitter,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from imgclust_desktop.core.labels import label_counts
from imgclust_desktop.gui import colors
from imgclust_desktop.gui.panels.legend import KeyRole, SwatchListModel
from imgclust_desktop.gui.panels.map_tools import (
    HighlightRings,
    HoverCard,
    SelectViewBox,
    ramp_icon,
    selection_mode,
    swatch,
)
from imgclust_desktop.gui.panels.point_cloud import PointCloudItem, points_in_polygon
from imgclust_desktop.gui.thumbs import follow_provider

COLOR_MODES = {"cluster": "Cluster", "outlier": "Outlier score", "folder": "Folder"}
_OUTLIER_LEVELS = 32


class ScatterPanel(QWidget):
    """The central map of a SessionModel: pan/zoom, level-of-detail thumbnails, legend, selection tools."""

    imageActivated = Signal(int)
    contextMenuRequested = Signal(object, object)  # cluster id under the cursor (or None), global QPoint

    def __init__(self, model: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.color_mode = "cluster"
        self._hidden: dict[str, set] = {"cluster": set(), "folder": set()}
        self._session: Any = None
        self._coords_id: int | None = None
        self._group = np.zeros(0, dtype=np.int64)
        self._folders: list[str] = []
        self._folder_index: np.ndarray | None = None
        self._provider: Any = None

        self.view = SelectViewBox()
        self.canvas = pg.GraphicsView(background="w")
        self.canvas.setCentralItem(self.view)
        self.canvas.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.item = PointCloudItem()
        self.item.thumbnail_source = self._thumbnail
        self.view.addItem(self.item, ignoreBounds=True)
        self.rings = HighlightRings()  # search results
        self.view.addItem(self.rings, ignoreBounds=True)
        self.hover = HoverCard(self.canvas)

        self.legend_menu_hooks: list[Any] = []  # callables (menu, cluster id) adding cluster actions
        self.legend_model = SwatchListModel(swatch, self)
        self.legend = QListView()
        self.legend.setModel(self.legend_model)
        self.legend.setUniformItemSizes(True)  # 2,000 groups: laid out without asking every row
        self.legend.setMinimumWidth(150)
        self.legend.setToolTip("Click to show or hide; right-click to zoom to a group")
        self.legend.clicked.connect(self._legend_clicked)
        self.legend.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.legend.customContextMenuRequested.connect(self._legend_menu)

        self.toolbar = self._build_toolbar()
        splitter = QSplitter()
        splitter.addWidget(self.canvas)
        splitter.addWidget(self.legend)
        splitter.setStretchFactor(0, 1)
        splitter.setSizes([800, 180])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.toolbar)
        layout.addWidget(splitter, 1)

        self._repaint = QTimer(self, singleShot=True, interval=40)
        self._repaint.timeout.connect(self.item.update)
        self._refit_on_resize = False
        self.view.sigResized.connect(self._view_resized)
        self.view.sigRangeChangedManually.connect(self._user_moved_view)
        self.view.clicked.connect(self._clicked)
        self.view.polygonDrawn.connect(self._polygon_drawn)
        self.view.rightClicked.connect(self._right_clicked)
        self.canvas.scene().sigMouseMoved.connect(self._mouse_moved)
        self.canvas.installEventFilter(self)
        self.canvas.viewport().installEventFilter(self)
        model.changed.connect(self.refresh)
        model.selectionChanged.connect(self._selection_changed)
        if hasattr(model, "highlightChanged"):
            model.highlightChanged.connect(self._highlight_changed)
        self.refresh()

    # -- toolbar ----------------------------------------------------------------------------------------
    def _build_toolbar(self) -> QToolBar:
        bar = QToolBar()
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        group = QActionGroup(self)
        self.tool_actions: dict[str, QAction] = {}
        for tool, text, tip in (
            ("pan", "Pan", "Drag to pan, wheel to zoom, click to select"),
            ("rect", "Rectangle", "Drag a rectangle to select (Shift adds, Ctrl/Alt subtracts)"),
            ("lasso", "Lasso", "Draw around images to select (Shift adds, Ctrl/Alt subtracts)"),
        ):
            action = QAction(text, self, checkable=True, toolTip=tip)
            action.triggered.connect(lambda _=False, t=tool: self.set_tool(t))
            group.addAction(action)
            bar.addAction(action)
            self.tool_actions[tool] = action
        self.tool_actions["pan"].setChecked(True)
        bar.addSeparator()
        bar.addWidget(QLabel(" Colour by "))
        self.color_combo = QComboBox()
        for mode, text in COLOR_MODES.items():
            self.color_combo.addItem(text, mode)
        self.color_combo.currentIndexChanged.connect(
            lambda i: self.set_color_mode(self.color_combo.itemData(i))
        )
        bar.addWidget(self.color_combo)
        bar.addSeparator()
        bar.addAction(QAction("Fit all", self, toolTip="Show every image (0)", triggered=self.fit_all))
        bar.addAction(
            QAction(
                "Zoom to selection",
                self,
                toolTip="Zoom to the selected images",
                triggered=self.zoom_to_selection,
            )
        )
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        bar.addWidget(spacer)
        self.status = QLabel()
        self.status.setContentsMargins(0, 0, 8, 0)
        bar.addWidget(self.status)
        return bar

    def set_tool(self, tool: str) -> None:
        """Left drag pans ("pan"), draws a rectangle ("rect") or a freehand lasso ("lasso")."""
        self.view.tool = tool
        self.tool_actions[tool].setChecked(True)
        if tool == "lasso":  # a big lasso rasterises its outline with PIL: imported now, not on release
            import PIL.ImageDraw  # noqa: F401
        cursor = Qt.CursorShape.OpenHandCursor if tool == "pan" else Qt.CursorShape.CrossCursor
        self.canvas.viewport().setCursor(cursor)

    # -- session ----------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the session: new positions refit the view, edits only recolour."""
        session = self.model.session
        self._sync_provider()
        coords = None if session is None else getattr(session, "coords", None)
        if coords is None or len(coords) != len(session.paths):
            self._session, self._coords_id = None, None
            self.item.set_points(np.zeros((0, 2)), np.zeros(0, dtype=np.int64), np.zeros((0, 3)))
            self._fill_legend([], [], [], np.zeros((0, 3), np.uint8))
            self._update_status()
            return
        new_map = session is not self._session or id(coords) != self._coords_id
        self._session, self._coords_id = session, id(coords)
        if new_map:
            n = len(coords)
            self.item.dot_px = 10 if n <= 2_000 else 8 if n <= 20_000 else 6
            self.item._sprite = self.item.dot_px + 4
            self._folders, self._folder_index = [], None  # grouped on first use (3 s at 1M paths)
            self.item.set_points(
                np.asarray(coords, dtype=np.float64), np.zeros(n, dtype=np.int64), np.zeros((1, 3))
            )
        self._apply_colors()
        self.item.set_selection(self.model.selection)
        if new_map:
            self.fit_all()
            self._refit_on_resize = True  # until the person pans or zooms, a resize keeps everything in view
        self._update_status()

    def _sync_provider(self) -> None:
        self._provider = follow_provider(self._provider, self.model, self._thumbnail_ready)

    def _thumbnail(self, index: int) -> Any:
        self._sync_provider()
        return None if self._provider is None else self._provider.get(index)

    def _thumbnail_ready(self, index: int) -> None:
        self._repaint.start()  # coalesce a burst of arrivals into one repaint
        if self.hover.isVisible() and self.hover.index == index:
            self._show_hover(index, None)

    # -- colours and legend ----------------------------------------------------------------------------
    def set_color_mode(self, mode: str) -> None:
        """Colour points by "cluster", "outlier" score or parent "folder" (the ground truth)."""
        if mode not in COLOR_MODES:
            raise ValueError(f"colour mode must be one of {list(COLOR_MODES)}, not {mode!r}")
        self.color_mode = mode
        self.color_combo.blockSignals(True)
        self.color_combo.setCurrentIndex(list(COLOR_MODES).index(mode))
        self.color_combo.blockSignals(False)
        if self._session is not None:
            self._apply_colors()

    def _grouping(self) -> str:
        return "folder" if self.color_mode == "folder" else "cluster"

    def _group_folders(self) -> None:
        """Parent-folder name of every point, biggest folder first (the "folder" colours)."""
        if self._folder_index is not None:
            return
        folders, inverse = _folder_codes(self._session.paths)
        counts = np.bincount(inverse, minlength=len(folders))
        rank = np.empty(len(counts), dtype=np.int64)
        rank[np.argsort(-counts, kind="stable")] = np.arange(len(counts))
        self._folders = list(np.asarray(folders)[np.argsort(rank)])
        self._folder_index = rank[inverse]

    def _apply_colors(self) -> None:
        session = self._session
        labels = np.asarray(session.labels, dtype=np.int64)
        cluster_ids, sizes = label_counts(labels)
        if self.color_mode == "folder":
            self._group_folders()
            palette = np.array([colors.group_rgb(k) for k in range(len(self._folders))], dtype=np.uint8)
            self.item.set_colors(self._folder_index, palette)
            self._group = self._folder_index
            counts = np.bincount(self._folder_index, minlength=len(self._folders))
            keys, names, sizes, rgb = list(range(len(self._folders))), self._folders, counts.tolist(), palette
        else:
            if self.color_mode == "outlier":
                score = getattr(session, "outlier_score", None)
                score = np.zeros(len(labels)) if score is None else np.nan_to_num(np.asarray(score, float))
                slot = np.clip(
                    (np.clip(score, 0, 1) * _OUTLIER_LEVELS).astype(np.int64), 0, _OUTLIER_LEVELS - 1
                )
                self.item.set_colors(slot, colors.ramp_rgb(_OUTLIER_LEVELS), draw_rank=slot)
            else:
                # the cluster palette with noise first: a point's colour is a lookup of its label, and the
                # map draws as many sprites as there are colours, not one per cluster (2,000 groups)
                palette = np.vstack([colors.NOISE_RGB, colors.PALETTE_RGB])
                slot = np.where(labels >= 0, np.mod(labels, len(colors.PALETTE_RGB)) + 1, 0)
                self.item.set_colors(slot, palette, draw_rank=labels >= 0)  # noise underneath
            self._group = labels
            rgb = colors.labels_rgb(cluster_ids).reshape(-1, 3)
            keys, sizes, names = cluster_ids.tolist(), sizes.tolist(), session.name_of
            noise = int((labels < 0).sum())
            if noise:
                keys, sizes = [*keys, -1], [*sizes, noise]
                rgb = np.vstack([rgb, colors.NOISE_RGB.reshape(1, 3)])
        self._fill_legend(keys, names, sizes, rgb)
        self._apply_visibility()

    def _fill_legend(self, keys: list, names: Any, sizes: list, rgb: np.ndarray) -> None:
        header = (ramp_icon(), "Outlier score 0 → 1") if self.color_mode == "outlier" and keys else None
        self.legend_model.set_groups(
            keys, names, sizes, rgb, tooltips=True, hidden=self._hidden[self._grouping()], header=header
        )

    def _legend_clicked(self, index: Any) -> None:
        key = index.data(KeyRole)
        if key is None:
            return
        hidden = self._hidden[self._grouping()]
        hidden.symmetric_difference_update({key})
        self.legend_model.set_hidden(hidden)
        self._apply_visibility()

    def _legend_menu(self, pos) -> None:
        index = self.legend.indexAt(pos)
        key = index.data(KeyRole) if index.isValid() else None
        menu = QMenu(self)
        if key is not None:
            menu.addAction(
                "Zoom to this group", lambda: self._zoom_to_rows(np.flatnonzero(self._group == key))
            )
            menu.addAction("Show only this group", lambda: self.show_only(key))
            if self.color_mode == "cluster":
                for add_actions in self.legend_menu_hooks:  # (menu, cluster): e.g. "Show sub-groups"
                    add_actions(menu, int(key))
        menu.addAction("Show all", lambda: self.show_only(None))
        menu.exec(self.legend.mapToGlobal(pos))

    def show_only(self, key: Any) -> None:
        """Hide every legend group but `key` (None shows all)."""
        grouping = self._grouping()
        self._hidden[grouping] = set() if key is None else set(self.legend_model.keys()) - {key}
        self.legend_model.set_hidden(self._hidden[grouping])
        self._apply_visibility()

    def set_hidden(self, keys: set) -> None:
        """Hide these legend groups (cluster ids, or folder indices in folder mode)."""
        self._hidden[self._grouping()] = set(keys)
        if self._session is not None:
            self._apply_colors()

    def _apply_visibility(self) -> None:
        hidden = self._hidden[self._grouping()]
        mask = np.ones(len(self._group), dtype=bool) if not hidden else ~np.isin(self._group, list(hidden))
        self.item.set_visible(mask)

    # -- view -------------------------------------------------------------------------------------------
    def _view_resized(self, *_: Any) -> None:
        if self._refit_on_resize:
            self.fit_all()

    def _user_moved_view(self, *_: Any) -> None:
        self._refit_on_resize = False

    def fit_all(self) -> None:
        """Show every visible image."""
        self._fit(self.item.data_bounds())

    def zoom_to_cluster(self, cluster_id: int) -> None:
        """Frame the images of one cluster."""
        if self._session is not None:
            self._zoom_to_rows(np.flatnonzero(np.asarray(self._session.labels) == cluster_id))

    def zoom_to_selection(self) -> None:
        """Frame the selected images, or everything when nothing is selected."""
        rows = np.asarray(self.model.selection)
        self._zoom_to_rows(rows) if len(rows) else self.fit_all()

    def _zoom_to_rows(self, rows: np.ndarray) -> None:
        if len(rows):
            self._refit_on_resize = False
            self._fit(self.item.data_bounds(rows))

    def _fit(self, rect: QRectF | None) -> None:
        if rect is None:
            return
        pad = max(rect.width(), rect.height(), 1e-6) * 0.04 + self.item.footprint / 2
        self.view.setRange(rect.adjusted(-pad, -pad, pad, pad), padding=0)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.KeyPress and obj is self.canvas:
            return self._key(event)
        if (
            event.type() == QEvent.Type.NativeGesture
            and event.gestureType() == Qt.NativeGestureType.ZoomNativeGesture
        ):
            factor = max(0.2, 1.0 - event.value())  # trackpad pinch: value > 0 spreads the fingers
            self.zoom_by(factor, self.view.mapSceneToView(self.canvas.mapToScene(event.position().toPoint())))
            return True
        if event.type() == QEvent.Type.Leave and obj is self.canvas.viewport():
            self.hover.hide()
        return super().eventFilter(obj, event)

    def zoom_by(self, factor: float, centre: QPointF | None = None) -> None:
        """Zoom by a factor of the visible span (< 1 zooms in) around a data point (default: the middle)."""
        # work from the rectangle on screen, not pyqtgraph's target range: with the aspect locked the two
        # differ and scaleBy/translateBy on the target would jump the view
        rect = self.view.viewRect()
        c = rect.center() if centre is None else centre
        self._refit_on_resize = False
        self.view.setRange(
            QRectF(c.x() - (c.x() - rect.left()) * factor, c.y() - (c.y() - rect.top()) * factor,
                   rect.width() * factor, rect.height() * factor), padding=0)  # fmt: skip

    def pan_by(self, fraction_x: float, fraction_y: float) -> None:
        """Move the view by fractions of its width and height."""
        rect = self.view.viewRect()
        self._refit_on_resize = False
        self.view.setRange(rect.translated(rect.width() * fraction_x, rect.height() * fraction_y), padding=0)

    def _key(self, event) -> bool:
        key, k = event.key(), Qt.Key
        if key in (k.Key_Plus, k.Key_Equal):
            self.zoom_by(0.8)
        elif key in (k.Key_Minus, k.Key_Underscore):
            self.zoom_by(1.25)
        elif key == k.Key_0:
            self.fit_all()
        elif key in (k.Key_Left, k.Key_Right, k.Key_Up, k.Key_Down):
            dx = {k.Key_Left: -0.1, k.Key_Right: 0.1}.get(key, 0.0)
            dy = {k.Key_Down: -0.1, k.Key_Up: 0.1}.get(key, 0.0)
            self.pan_by(dx, dy)
        elif key == k.Key_Escape:
            self.model.select([], "replace")
        else:
            return False
        return True

    # -- selection and hover ----------------------------------------------------------------------------
    def select_polygon(self, polygon: np.ndarray, mode: str = "replace") -> np.ndarray:
        """Select the visible images inside a data-space polygon; returns the rows it found."""
        rows = np.flatnonzero(points_in_polygon(self.item.coords, polygon) & self.item.visible)
        self.model.select(rows, mode)
        return rows

    def _polygon_drawn(self, polygon: np.ndarray, modifiers: Any) -> None:
        self.select_polygon(polygon, selection_mode(modifiers))

    def _clicked(self, pos: QPointF, modifiers: Any, double: bool) -> None:
        index = self.item.index_at(pos)
        if double:
            if index is not None:
                self.imageActivated.emit(index)
            return
        mode = selection_mode(modifiers)
        if index is not None:
            self.model.select([index], mode)
        elif mode == "replace":
            self.model.select([], "replace")

    def _right_clicked(self, pos: QPointF, global_pos: Any) -> None:
        """Right click: an image outside the selection becomes the selection; then ask for the edit menu."""
        index = self.item.index_at(pos)
        if index is not None and index not in set(np.asarray(self.model.selection).tolist()):
            self.model.select([index], "replace")
        cluster = None if index is None or self._session is None else int(self._session.labels[index])
        self.contextMenuRequested.emit(cluster, global_pos)

    def _highlight_changed(self, rows: Any) -> None:
        coords = self.item.coords
        self.rings.show_rows(coords, np.asarray(rows) if len(coords) else np.zeros(0, dtype=np.int64))

    def _selection_changed(self, rows: Any) -> None:
        self.item.set_selection(np.asarray(rows))
        self._update_status()

    def _update_status(self) -> None:
        n = self.item.point_count
        selected = len(self.model.selection) if n else 0
        self.status.setText(f"{n:,} images" + (f" · {selected:,} selected" if selected else ""))

    def _mouse_moved(self, scene_pos: QPointF) -> None:
        if self._session is None or not self.view.sceneBoundingRect().contains(scene_pos):
            self.hover.hide()
            return
        index = self.item.index_at(self.view.mapSceneToView(scene_pos))
        if index is None:
            self.hover.hide()
            return
        if self.hover.index != index or not self.hover.isVisible():
            self._show_hover(index, self.canvas.mapFromScene(scene_pos))

    def _show_hover(self, index: int, at: Any) -> None:
        session = self._session
        label = int(session.labels[index])
        lines = [session.paths[index], f"Cluster: {session.name_of(label)}"]
        score = getattr(session, "outlier_score", None)
        if score is not None:
            lines.append(f"Outlier score: {float(score[index]):.2f}")
        if self._folders:
            lines.append(f"Folder: {self._folders[self._folder_index[index]]}")
        if getattr(session, "excluded", None) is not None and bool(session.excluded[index]):
            lines.append("Excluded from export")
        missing = getattr(session, "missing", None)
        if missing is not None and len(missing) > index and bool(missing[index]):
            lines.append("File missing: not on disk (kept in the session)")
        image = self._provider.get(index) if self._provider is not None else None
        self.hover.show_image(index, image, "\n".join(lines))
        if at is not None:
            # beside the cursor, flipped to stay inside the canvas
            x, y = at.x() + 16, at.y() + 16
            if x + self.hover.width() > self.canvas.width():
                x = at.x() - 16 - self.hover.width()
            if y + self.hover.height() > self.canvas.height():
                y = at.y() - 16 - self.hover.height()
            self.hover.move(max(0, x), max(0, y))
        self.hover.show()
        self.hover.raise_()


def _folder_codes(paths: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct parent-folder names, index of each path's name): np.unique's answer, without
    os.path calls and a sort of n strings (1M paths: ~0.3 s instead of ~3 s)."""
    codes: dict[str, int] = {}
    sep = os.sep
    inverse = np.fromiter(
        (codes.setdefault(p.rpartition(sep)[0].rpartition(sep)[2] or "(root)", len(codes)) for p in paths),
        dtype=np.int64,
        count=len(paths),
    )
    names = sorted(codes)
    remap = np.empty(len(codes), dtype=np.int64)
    remap[[codes[name] for name in names]] = np.arange(len(names))
    return np.asarray(names, dtype=object), remap[inverse]
