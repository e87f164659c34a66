"""One GraphicsObject that draws every image of the map: sprite dots, then thumbnails when zoomed in."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import internals
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QPixmap, QTransform

ThumbnailSource = Callable[[int], QImage | None]


RASTER_ABOVE = 100_000  # on-screen points above which the map is drawn as a colour raster
RASTER_CELL = 2  # device pixels per raster cell: each point fills a 2 x 2 block, like a small dot
GRID_LASSO_ABOVE = 50_000  # candidate points above which the lasso classifies by a rasterised polygon
LASSO_GRID = 1024
CULL_OVERDRAW = 3.0  # dot pixels per screen pixel above which the dots painted over are found and skipped
_SCATTER = 2_654_435_761  # a prime near 2^32 / golden ratio (Knuth's multiplicative hash)


def points_in_polygon(
    points: np.ndarray, polygon: np.ndarray, *, grid_above: int = GRID_LASSO_ABOVE
) -> np.ndarray:
    """Boolean mask of `points` [n, 2] inside the closed `polygon` [m, 2] (even-odd ray casting).

    Above grid_above candidates the polygon is rasterised once (1024^2 cells): points in cells well
    inside or outside are decided by one lookup, and only points in cells the outline crosses are
    ray-cast exactly. The answer is the same; the cost is O(n) with a small constant (1M points).
    """
    points = np.asarray(points)
    poly = np.asarray(polygon, dtype=np.float64)
    inside = np.zeros(len(points), dtype=bool)
    if len(poly) < 3 or len(points) == 0:
        return inside
    lo_xy, hi_xy = poly.min(axis=0), poly.max(axis=0)
    lo, hi = lo_xy, hi_xy
    if points.dtype == np.float32:
        # Compared in float32, not promoted to float64 on every row (the map's 1M coordinates): the box,
        # rounded outwards, is a superset of the exact one, and what it adds lies outside the polygon.
        lo = np.nextafter(lo_xy.astype(np.float32), np.float32(-np.inf))
        hi = np.nextafter(hi_xy.astype(np.float32), np.float32(np.inf))
    box = np.flatnonzero(
        (points[:, 0] >= lo[0]) & (points[:, 0] <= hi[0]) & (points[:, 1] >= lo[1]) & (points[:, 1] <= hi[1])
    )
    if len(box) == 0:
        return inside
    if len(box) > grid_above:
        inside[box] = _grid_inside(points[box], poly, lo_xy, hi_xy)
        return inside
    inside[box] = _ray_cast(np.asarray(points[box], dtype=np.float64), poly)
    return inside


def _grid_inside(points: np.ndarray, poly: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Inside test through a rasterised polygon; points in cells on its outline are ray-cast exactly."""
    from PIL import Image, ImageDraw

    g = LASSO_GRID
    scale = (g - 1) / np.maximum(hi - lo, 1e-300)
    vertices = [tuple(v) for v in ((poly - lo) * scale).tolist()]
    fill = Image.new("L", (g, g), 0)
    ImageDraw.Draw(fill).polygon(vertices, fill=1)
    edge = Image.new("L", (g, g), 0)
    # 3 cells wide: every cell the true outline passes through is marked, so a cell not marked lies
    # wholly on one side of the outline and its fill value is the answer for every point in it.
    ImageDraw.Draw(edge).line(vertices + [vertices[0]], fill=1, width=3, joint="curve")
    unsure = np.asarray(edge, bool).copy()
    # grown by one cell: the fill of a spike thinner than a cell can land beside the drawn line
    grown = unsure.copy()
    grown[1:] |= unsure[:-1]
    grown[:-1] |= unsure[1:]
    grown[:, 1:] |= unsure[:, :-1]
    grown[:, :-1] |= unsure[:, 1:]
    state = np.asarray(fill, np.uint8) + 2 * grown.astype(np.uint8)  # 0 out, 1 in, >= 2 unsure
    # in the points' own precision: float32 rounding moves a point by far less than a cell, and a cell
    # next to the outline is ray-cast anyway (the marked band is grown by a cell)
    at, step = lo.astype(points.dtype), scale.astype(points.dtype)
    cx = np.clip(((points[:, 0] - at[0]) * step[0] + 0.5).astype(np.int32), 0, g - 1)
    cy = np.clip(((points[:, 1] - at[1]) * step[1] + 0.5).astype(np.int32), 0, g - 1)
    cell = state[cy, cx]
    result = cell == 1
    unsure = np.flatnonzero(cell >= 2)
    if len(unsure):
        result[unsure] = _ray_cast(np.asarray(points[unsure], dtype=np.float64), poly)
    return result


def _ray_cast(points: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Exact even-odd test of points [n, 2] (all inside the polygon's bounding box)."""
    box = np.arange(len(points))
    # Sort candidates by y once; each edge then only touches the candidates in its own y-span, so the
    # work is ~ (crossings per scanline) * n instead of (vertices * n): a 500-vertex lasso stays cheap.
    order = box[np.argsort(points[box, 1], kind="stable")]
    ys, xs = points[order, 1], points[order, 0]
    flips = np.zeros(len(order), dtype=bool)
    x1, y1 = poly[:, 0], poly[:, 1]
    x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
    starts = np.searchsorted(ys, np.minimum(y1, y2), side="left")
    stops = np.searchsorted(ys, np.maximum(y1, y2), side="left")
    for e in np.flatnonzero(stops > starts):
        s, t = starts[e], stops[e]
        x_cross = x1[e] + (ys[s:t] - y1[e]) * (x2[e] - x1[e]) / (y2[e] - y1[e])
        flips[s:t] ^= xs[s:t] < x_cross
    inside = np.zeros(len(points), dtype=bool)
    inside[order] = flips
    return inside


def hidden_sprites(
    left: np.ndarray, top: np.ndarray, opaque: np.ndarray, touched: np.ndarray, width: int, height: int
) -> np.ndarray:
    """Mask of the sprites (in drawing order, bottom first) that leave no trace: every pixel they touch is
    painted over by a fully opaque pixel of a later sprite, so skipping them gives the same picture, pixel
    for pixel. left, top: the device pixel of each sprite's corner; opaque, touched: boolean [s, s] masks of
    the sprite's fully opaque and non-transparent pixels. Pixels off the width x height device count as
    covered (nothing drawn there shows)."""
    n = len(left)
    pad = 2 * opaque.shape[0]  # the map draws sprites whose corner lies at most 1.5 sprites off the device
    stride = width + 2 * pad
    # per pixel, the last sprite that paints it opaquely (-1: none); the padding counts as painted over
    last = np.full((height + 2 * pad, stride), n, np.int32)
    last[pad : pad + height, pad : pad + width] = -1
    last = last.ravel()
    corner = ((top + pad) * stride + (left + pad)).astype(np.int32)
    rank = np.arange(n, dtype=np.int32)
    for dy, dx in zip(*np.nonzero(opaque), strict=True):
        np.maximum.at(last, corner + np.int32(dy * stride + dx), rank)
    covered_by = np.full(n, n, np.int32)  # per sprite, the lowest of those last painters over its pixels
    for dy, dx in zip(*np.nonzero(touched), strict=True):
        np.minimum(covered_by, last[corner + np.int32(dy * stride + dx)], out=covered_by)
    return covered_by > rank


def qt_round(values: np.ndarray) -> np.ndarray:
    """Round half away from zero, as qRound does (the raster engine places a translated pixmap with it)."""
    return (np.sign(values) * np.floor(np.abs(values) + 0.5)).astype(np.int64)


def _pixel_offset(painter: QPainter) -> tuple[int, int] | None:
    """The whole-pixel shift from the painter's (reset) coordinates to the device's pixels; None when the
    device transform does more (a high-DPI scale) or shifts by a fraction of a pixel."""
    device = painter.deviceTransform()
    if device.type() not in (QTransform.TransformationType.TxNone, QTransform.TransformationType.TxTranslate):
        return None
    dx, dy = device.dx(), device.dy()
    return (int(dx), int(dy)) if dx == int(dx) and dy == int(dy) else None


class ViewSizedItem(pg.GraphicsObject):
    """An item that draws in pixels, not data units (dots, thumbnails, labels): it claims the visible view
    as its bounds and is added with ignoreBounds, so it never widens the range."""

    def __init__(self) -> None:
        super().__init__()
        self._bounds: QRectF | None = None

    def boundingRect(self) -> QRectF:
        if self._bounds is None:
            rect = self.viewRect()
            self._bounds = QRectF() if rect is None else QRectF(rect)
        return self._bounds

    def viewRangeChanged(self) -> None:
        self.prepareGeometryChange()
        self._bounds = None
        super().viewRangeChanged()

    def viewTransformChanged(self) -> None:
        self.prepareGeometryChange()
        self._bounds = None
        super().viewTransformChanged()


class PointCloudItem(ViewSizedItem):
    """Draws n points from prepared arrays with one drawPixmapFragments call, thumbnails when zoomed in."""

    def __init__(self, dot_px: int = 8) -> None:
        super().__init__()
        self.dot_px = dot_px
        self.thumb_min_px = 36.0  # below this on screen a thumbnail is unreadable: draw the dot
        self.thumb_max_px = 150.0  # beyond the 128 px source it only blurs
        self.max_thumbs = 400
        self.footprint = 1.0  # side of one thumbnail in data units, set from the point spacing
        self.thumbnail_source: ThumbnailSource | None = None
        self.coords = np.zeros((0, 2))
        self._extent: tuple[np.ndarray, np.ndarray] | None = None  # (low, high) corner of every point
        self.color_index = np.zeros(0, dtype=np.int64)
        self.palette = np.zeros((0, 3), dtype=np.uint8)
        self.visible = np.zeros(0, dtype=bool)
        self.selected = np.zeros(0, dtype=bool)
        self._order: np.ndarray | None = np.zeros(0, dtype=np.int64)  # see _draw_order; None: to work out
        self._draw_rank: np.ndarray | None = None
        self._atlas: QPixmap | None = None
        self._sprite = dot_px + 4
        self._sprite_masks: tuple[np.ndarray, np.ndarray] | None = None  # a sprite's (opaque, touched) pixels
        self._screen_cache: tuple | None = None  # (view key, draw order, the dots on screen): see _on_screen
        self._hidden_cache: tuple | None = None  # (view key, dots on screen, those not painted over)
        self.last_hidden_points = 0  # dots the last paint skipped because later dots cover them entirely
        self._fragments = internals.PrimitiveArray(QPainter.PixmapFragment, 10)
        self.last_drawn_points = 0  # how many dots the last paint drew (tests and benchmarks)
        self.raster_above = RASTER_ABOVE
        self.last_drawn_raster = False  # the last paint drew the colour raster instead of dots
        self._raster_cache: tuple | None = None  # (x, y, colour, faded colour) in draw order
        self._raster_image: np.ndarray | None = None
        # the last raster: (view transform and size, QImage over _raster_image or None, points on screen);
        # a repaint of the same view and points (a window opening paints several times) draws it again
        self._raster_drawn: tuple | None = None
        self.last_drawn_thumbs: list[tuple[int, QRectF]] = []  # (index, device rect), top last

    # -- data -------------------------------------------------------------------------------------------
    def set_points(self, coords: np.ndarray, color_index: np.ndarray, palette: np.ndarray) -> None:
        """New positions and colours (index into `palette` [p, 3] uint8 per point)."""
        self.coords = np.ascontiguousarray(coords, dtype=np.float64).reshape(-1, 2)
        n = len(self.coords)
        self.visible = np.ones(n, dtype=bool)
        self.selected = np.zeros(n, dtype=bool)
        self._screen_cache = self._hidden_cache = None
        self._extent = extent(self.coords) if n else None
        self.footprint = _thumbnail_footprint(self.coords, self._extent)
        self.set_colors(color_index, palette)

    def set_colors(
        self, color_index: np.ndarray, palette: np.ndarray, draw_rank: np.ndarray | None = None
    ) -> None:
        """Recolour without moving anything; points with a lower `draw_rank` are drawn underneath."""
        self.color_index = np.asarray(color_index, dtype=np.int64)
        palette = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
        if not np.array_equal(palette, self.palette):  # a re-cut keeps the palette: keep its sprites too
            self.palette = palette
            self._atlas = None
        self._draw_rank = None if draw_rank is None else np.asarray(draw_rank)
        self._update_order()

    def set_visible(self, mask: np.ndarray) -> None:
        """Which points are shown (hidden legend entries are False)."""
        self.visible = np.asarray(mask, dtype=bool)
        self._update_order()

    def set_selection(self, indices: np.ndarray) -> None:
        """Highlight these row indices."""
        self.selected = np.zeros(len(self.coords), dtype=bool)
        indices = np.asarray(indices, dtype=np.int64)
        self.selected[indices[(indices >= 0) & (indices < len(self.coords))]] = True
        self._raster_drawn = None
        self.update()

    @property
    def point_count(self) -> int:
        return len(self.coords)

    def _update_order(self) -> None:
        self._order = None  # worked out once at the next paint, however many changes come before it
        self._raster_cache = self._raster_drawn = None
        self.update()

    @property
    def _draw_order(self) -> np.ndarray:
        """The visible indices, bottom to top."""
        if self._order is None:
            vis = np.flatnonzero(self.visible)
            if self._draw_rank is not None and len(self._draw_rank) == len(self.coords) and len(vis):
                rank = self._draw_rank[vis]
                if rank.min() != rank.max():  # one rank for all (no noise): row order, no sort of n ranks
                    vis = vis[np.argsort(rank, kind="stable")]
            self._order = vis
        return self._order

    def _build_atlas(self) -> QPixmap:
        s = self._sprite
        image = QImage(s * (len(self.palette) + 1), s, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        d = float(self.dot_px)
        for k, rgb in enumerate(self.palette):
            painter.setPen(QPen(QColor(40, 40, 40, 160), 0.8))
            painter.setBrush(QColor(int(rgb[0]), int(rgb[1]), int(rgb[2])))
            painter.drawEllipse(QRectF(k * s + (s - d) / 2, (s - d) / 2, d, d))
        # last sprite: the selection ring, drawn over a selected dot
        k = len(self.palette)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(QPen(QColor(255, 255, 255), 3.0))
        painter.drawEllipse(QRectF(k * s + 1.5, 1.5, s - 3, s - 3))
        painter.setPen(QPen(QColor(0, 0, 0), 1.6))
        painter.drawEllipse(QRectF(k * s + 1.5, 1.5, s - 3, s - 3))
        painter.end()
        argb = np.frombuffer(image.constBits(), np.uint32, count=image.sizeInBytes() // 4)
        argb = argb.reshape(s, image.bytesPerLine() // 4)[:, : s * len(self.palette)]
        alpha = (argb >> 24).reshape(s, len(self.palette), s)  # [row, colour, column]
        self._sprite_masks = ((alpha == 255).all(axis=1), (alpha > 0).any(axis=1))  # over every colour
        self._hidden_cache = None
        return QPixmap.fromImage(image)

    # -- geometry (the bounds are the visible view: fit_all works from the data bounds instead) --------------
    def data_bounds(self, indices: np.ndarray | None = None) -> QRectF | None:
        """Data rectangle around the given (default: visible) points."""
        if indices is None and self._extent is not None and self.visible.all():
            lo, hi = self._extent  # everything shown: worked out once (a 1M-point map opens on this)
        else:
            points = self.coords[np.flatnonzero(self.visible) if indices is None else np.asarray(indices)]
            if len(points) == 0:
                return None
            lo, hi = extent(points)
        return QRectF(QPointF(lo[0], lo[1]), QPointF(hi[0], hi[1]))

    # -- painting -----------------------------------------------------------------------------------------
    def paint(self, painter: QPainter, *args) -> None:
        self.last_drawn_points = 0
        self.last_drawn_thumbs = []
        self.last_drawn_raster = False
        if len(self._draw_order) == 0:
            return
        t = painter.transform()
        device = painter.device()
        width, height = device.width(), device.height()
        painter.save()
        painter.resetTransform()
        order = self._draw_order
        if (
            len(order) > self.raster_above
            and t.m12() == 0
            and t.m21() == 0
            and self._paint_raster(painter, t, width, height)
        ):
            painter.restore()
            return
        view = (t.m11(), t.m21(), t.m12(), t.m22(), t.dx(), t.dy())
        order, px, py = self._on_screen(order, view, width, height)
        self._draw_dots(painter, order, px, py, view)
        side = self.footprint * float(np.hypot(t.m11(), t.m12()))
        if self.thumbnail_source is not None and side >= self.thumb_min_px and len(order):
            self._draw_thumbnails(painter, order, px, py, min(side, self.thumb_max_px), width, height)
        painter.restore()

    def _on_screen(self, order: np.ndarray, view: tuple, width: int, height: int) -> tuple:
        """(rows, x, y): the dots in drawing order within a sprite of the device, at their device pixels.
        Kept while the view and the drawing order stay the same: a re-cut only recolours the dots."""
        key = (view, width, height, self._sprite)
        cached = self._screen_cache
        if cached is not None and cached[0] == key and np.array_equal(cached[1], order):
            return cached[2]
        m11, m21, m12, m22, dx, dy = view
        xy = self.coords[order]
        px = m11 * xy[:, 0] + m21 * xy[:, 1] + dx
        py = m12 * xy[:, 0] + m22 * xy[:, 1] + dy
        margin = self._sprite
        on_screen = (px > -margin) & (px < width + margin) & (py > -margin) & (py < height + margin)
        shown = (order[on_screen], px[on_screen], py[on_screen])
        self._screen_cache = (key, order, shown)
        return shown

    def _raster_arrays(self) -> tuple:
        """float32 x, y and opaque ARGB colours (full and faded) of the drawn points, in draw order."""
        if self._raster_cache is None:
            order = self._draw_order
            # every point drawn in row order (all shown, no noise to put underneath): read rows in place
            in_place = len(order) == len(self.coords) and bool(np.all(order[1:] > order[:-1]))
            rows = slice(None) if in_place else order
            rgb = self.palette.astype(np.uint32)  # per palette entry, then one gather per point
            faded_rgb = (rgb * 3 + 255 * 7) // 10  # 30 % colour on white, as the dots fade with a selection
            slots = self.color_index[rows]
            colour = (0xFF000000 | (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]).astype(np.uint32)[slots]
            faded = (0xFF000000 | (faded_rgb[:, 0] << 16) | (faded_rgb[:, 1] << 8) | faded_rgb[:, 2]).astype(
                np.uint32
            )[slots]
            xs, ys = (self.coords[rows, k].astype(np.float32) for k in (0, 1))
            self._raster_cache = (xs, ys, colour, faded)
        return self._raster_cache

    def _paint_raster(self, painter: QPainter, t, width: int, height: int) -> bool:
        """Draw the points as one colour image (top-most point per 2 x 2 cell); False if too few on screen.

        When points outnumber pixels, sprites cost ~200 ms per frame at 1M points and show nothing more:
        a raster costs a few vectorised passes over the coordinates, and none when the view, the points and
        the selection are the ones of the last raster. Selected points keep their colour and the rest fade,
        as with dots.
        """
        cell = RASTER_CELL
        w, h = (width + cell - 1) // cell, (height + cell - 1) // cell
        view = (t.m11(), t.m22(), t.dx(), t.dy(), w, h, self.raster_above)
        if self._raster_drawn is None or self._raster_drawn[0] != view:
            self._raster_drawn = (view, *self._rasterise(t, w, h))
        _, qimage, count = self._raster_drawn
        if qimage is None:
            return False
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        painter.drawImage(QRectF(0, 0, w * cell, h * cell), qimage)
        self.last_drawn_points = count
        self.last_drawn_raster = True
        return True

    def _rasterise(self, t, w: int, h: int) -> tuple[QImage | None, int]:
        """The raster of w x h cells for view transform t, and the points on it (None: too few for one)."""
        xs, ys, colour, faded = self._raster_arrays()
        cell = RASTER_CELL
        ix = xs * np.float32(t.m11() / cell) + np.float32(t.dx() / cell)
        iy = ys * np.float32(t.m22() / cell) + np.float32(t.dy() / cell)
        on = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
        count = int(np.count_nonzero(on))
        if count <= self.raster_above:
            return None, count
        every = count == len(xs)
        flat = iy.astype(np.int32) * np.int32(w) + ix.astype(np.int32)
        if not every:
            flat = flat[on]
        image = np.zeros(w * h, np.uint32)
        selected = self.selected[self._draw_order] if self.selected.any() else None
        if selected is None:
            image[flat] = colour if every else colour[on]  # later points overwrite: top-most wins
        else:
            if not every:
                selected = selected[on]
            image[flat] = faded if every else faded[on]
            image[flat[selected]] = (colour if every else colour[on])[selected]
        self._raster_image = image  # the QImage reads this buffer: keep it alive while drawn
        return QImage(image.data, w, h, 4 * w, QImage.Format.Format_ARGB32_Premultiplied), count

    def _draw_dots(
        self, painter: QPainter, order: np.ndarray, px: np.ndarray, py: np.ndarray, view: tuple
    ) -> None:
        """One sprite per dot (the painted-over ones left out), a ring over the selected ones; `view`: the
        transform's coefficients, under which the dots found painted over are remembered."""
        if self._atlas is None:
            self._atlas = self._build_atlas()
        self.last_drawn_points = len(order)
        selected = self.selected[order] if self.selected.any() else np.zeros(len(order), bool)
        n_sel = int(selected.sum())
        self.last_hidden_points = 0
        if n_sel == 0 and self._can_skip_hidden(painter, len(order)):
            drawn = len(order)
            order, px, py = self._uncovered(painter, order, px, py, view)
            self.last_hidden_points = drawn - len(order)
        total = len(order) + n_sel
        self._fragments.resize(total)
        frag = self._fragments.ndarray()
        s = self._sprite
        frag[: len(order), 0] = px
        frag[: len(order), 1] = py
        frag[: len(order), 2] = self.color_index[order] * s
        frag[:, 3] = 0.0
        frag[:, 4:6] = s
        frag[:, 6:8] = 1.0
        frag[:, 8] = 0.0
        # with a selection, fade the rest so the chosen images stand out at any density
        frag[: len(order), 9] = np.where(selected, 1.0, 0.3) if n_sel else 1.0
        if n_sel:
            frag[len(order) :, 0] = px[selected]
            frag[len(order) :, 1] = py[selected]
            frag[len(order) :, 2] = len(self.palette) * s
            frag[len(order) :, 9] = 1.0
        painter.drawPixmapFragments(*self._fragments.drawargs(), self._atlas)

    def _can_skip_hidden(self, painter: QPainter, dots: int) -> bool:
        """True when dots painted over can be left out without changing a pixel: the sprites land on whole
        device pixels at full opacity, and they are dense enough for the search to pay (a re-cut at 100,000
        dots draws about a third of them)."""
        device = painter.device()
        touched = int(self._sprite_masks[1].sum()) if self._sprite_masks is not None else 0
        return (
            dots * touched > CULL_OVERDRAW * device.width() * device.height()
            and painter.opacity() == 1.0
            and painter.compositionMode() == QPainter.CompositionMode.CompositionMode_SourceOver
            and not painter.testRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            and device.devicePixelRatio() == 1.0
            and _pixel_offset(painter) is not None
        )

    def _uncovered(
        self, painter: QPainter, order: np.ndarray, px: np.ndarray, py: np.ndarray, view: tuple
    ) -> tuple:
        """(rows, x, y) of the dots no later dots cover entirely; kept while the view and the dots stay the
        same (a re-cut only recolours them)."""
        device = painter.device()
        # where each sprite's corner lands, rounded where the raster engine rounds it: in the pixels of the
        # window's backing store, which a widget's painter reaches through a whole-pixel offset
        ox, oy = _pixel_offset(painter)
        key = (device.width(), device.height(), ox, oy, self._sprite, view)
        cached = self._hidden_cache
        if (
            cached is not None
            and cached[0] == key
            and (cached[1] is order or np.array_equal(cached[1], order))
        ):
            return cached[2]
        left = qt_round(px - self._sprite / 2 + ox) - ox
        top = qt_round(py - self._sprite / 2 + oy) - oy
        shown = ~hidden_sprites(left, top, *self._sprite_masks, device.width(), device.height())
        uncovered = (order[shown], px[shown], py[shown])
        self._hidden_cache = (key, order, uncovered)
        return uncovered

    def _draw_thumbnails(self, painter, order, px, py, side, width, height) -> None:
        inside = (px > -side / 2) & (px < width + side / 2) & (py > -side / 2) & (py < height + side / 2)
        cand, cx, cy = order[inside], px[inside], py[inside]
        if len(cand) == 0:
            return
        dist = np.hypot(cx - width / 2, cy - height / 2)
        by_centre = np.argsort(dist, kind="stable")
        # One thumbnail per screen cell (nearest the centre wins), so zoomed-out clumps show a tidy
        # sample instead of a pile; cells are a bit smaller than a thumbnail so neighbours overlap a little.
        cell = side * 0.75
        keys = np.floor(cx / cell).astype(np.int64) * 1_000_003 + np.floor(cy / cell).astype(np.int64)
        _, first = np.unique(keys[by_centre], return_index=True)
        keep = by_centre[np.sort(first)][: self.max_thumbs]
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        frame = QPen()
        frame.setWidthF(2.0)
        for k in keep[::-1]:  # nearest the centre drawn last, on top
            index = int(cand[k])
            image = self.thumbnail_source(index)
            if image is None:
                continue
            w, h = image.width(), image.height()
            scale = side / max(w, h, 1)
            rect = QRectF(cx[k] - w * scale / 2, cy[k] - h * scale / 2, w * scale, h * scale)
            painter.drawImage(rect, image)
            rgb = self.palette[self.color_index[index]]
            if self.selected[index]:
                painter.setPen(QPen(QColor(0, 0, 0), 4.0))
                painter.drawRect(rect.adjusted(-2, -2, 2, 2))
                frame.setColor(QColor(255, 255, 255))
            else:
                frame.setColor(QColor(int(rgb[0]), int(rgb[1]), int(rgb[2])))
            painter.setPen(frame)
            painter.drawRect(rect)
            self.last_drawn_thumbs.append((index, rect))

    # -- hit testing --------------------------------------------------------------------------------------
    def index_at(self, pos: QPointF, radius_px: float | None = None) -> int | None:
        """Row index under a data-space position: a drawn thumbnail first, else the nearest dot."""
        view = self.getViewBox()
        if view is None or len(self._draw_order) == 0:
            return None
        widget = self.getViewWidget()
        if widget is None:
            return None
        dev = self.deviceTransform(widget.viewportTransform()).map(pos)
        for index, rect in reversed(self.last_drawn_thumbs):
            if rect.contains(dev) and self.visible[index]:
                return index
        pixel = view.viewPixelSize()
        radius = (radius_px or self.dot_px / 2 + 3) * max(pixel[0], pixel[1])
        x, y = pos.x(), pos.y()
        near = np.flatnonzero(
            (np.abs(self.coords[:, 0] - x) <= radius)
            & (np.abs(self.coords[:, 1] - y) <= radius)
            & self.visible
        )
        if len(near) == 0:
            return None
        d = np.hypot(self.coords[near, 0] - x, self.coords[near, 1] - y)
        return int(near[np.argmin(d)])


def extent(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) corner of points [n, 2], column by column: numpy reduces an [n, 2] array along axis 0
    two values per step, about ten times slower (40 ms at 1M points, and a map opens on several)."""
    x, y = points[:, 0], points[:, 1]
    return np.array([x.min(), y.min()]), np.array([x.max(), y.max()])


def _thumbnail_footprint(
    coords: np.ndarray, bounds: tuple[np.ndarray, np.ndarray] | None = None, sample: int = 1_000
) -> float:
    """Data-space side of a thumbnail: about two neighbour spacings, bounded by the uniform spacing.

    The spacing is the median nearest-neighbour distance within a fixed sample of rows, scaled
    to the whole set (it goes with 1 / sqrt(density)): a brute-force search over the sample costs the same
    at 1M points as at 10k, where a KD-tree over every point took about a second (and scipy's import two
    more). 1,000 rows: a 2,000-row search took 90 ms of the 1M-point map's opening, for a median within a
    few percent of it. bounds: extent(coords), when known.
    """
    n = len(coords)
    if n < 2:
        return 1.0
    lo, hi = extent(coords) if bounds is None else bounds
    span = hi - lo
    uniform = float(np.sqrt(max(span[0] * span[1], 1e-12) / n)) or 1.0
    m = min(n, sample)
    # rows scattered by a multiplicative hash (distinct: the factor is a prime above any n): a random-like
    # choice, as spread out as numpy.random's (its import took 75 ms), and unlike evenly spaced rows not
    # fooled by rows stored in map order
    points = coords if m == n else coords[np.arange(m, dtype=np.int64) * _SCATTER % n]
    x, y = (np.array(points[:, k], np.float64) for k in (0, 1))
    d2 = np.square(x[:, None] - x[None, :])  # differences, not |a|^2 + |b|^2 - 2ab: exact for close points
    d2 += np.square(y[:, None] - y[None, :])
    np.fill_diagonal(d2, np.inf)
    nearest = np.sort(d2.min(axis=1))  # its median by hand: np.median's first call imports numpy.ma (70 ms)
    median = 0.5 * (float(nearest[(m - 1) // 2]) + float(nearest[m // 2]))
    nn = float(np.sqrt(max(median, 0.0)) * np.sqrt(m / n)) or uniform
    return float(np.clip(2.0 * nn, nn, uniform))
