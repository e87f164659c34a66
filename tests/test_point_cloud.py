"""The map at many points: a colour raster when points outnumber pixels, a rasterised-polygon lasso."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint
from PySide6.QtGui import QImage
from skimage.measure import points_in_poly
from test_scatter import star_polygon
from views_support import make_session

from imgclust_desktop.gui.panels import point_cloud
from imgclust_desktop.gui.panels.point_cloud import _thumbnail_footprint, points_in_polygon
from imgclust_desktop.gui.panels.scatter import ScatterPanel
from imgclust_desktop.gui.session_model import SessionModel


def test_grid_lasso_gives_the_exact_answer():
    rng = np.random.default_rng(2)
    points = rng.uniform(-10, 10, size=(60_000, 2))
    for seed in range(8):
        polygon = star_polygon(
            rng.uniform(-3, 3, 2), rng.uniform(2, 9), vertices=int(rng.integers(3, 400)), seed=seed
        )
        grid = points_in_polygon(points, polygon, grid_above=0)
        assert np.array_equal(grid, points_in_poly(points, polygon))
        assert np.array_equal(grid, points_in_polygon(points, polygon, grid_above=10**9))
    assert points_in_polygon(points.astype(np.float32), polygon, grid_above=0).sum() == grid.sum()


@pytest.fixture
def big_panel(qtbot):
    session = make_session(6000, 5, seed=1)
    model = SessionModel()
    model.set_session(session, None)
    panel = ScatterPanel(model)
    qtbot.addWidget(panel)
    panel.resize(700, 500)
    panel.show()
    qtbot.waitExposed(panel)
    return panel, model, session


def colours_on_screen(panel) -> set[tuple[int, int, int]]:
    image = panel.canvas.grab().toImage()
    return {
        image.pixelColor(x, y).getRgb()[:3]
        for x in range(0, image.width(), 3)
        for y in range(0, image.height(), 3)
    }


def test_raster_above_its_size_shows_the_same_clusters_as_dots_and_keeps_selection(big_panel):
    panel, model, session = big_panel
    panel.canvas.grab()
    assert not panel.item.last_drawn_raster and panel.item.last_drawn_points == 6000
    palette = {tuple(int(c) for c in rgb) for rgb in panel.item.palette[np.unique(panel.item.color_index)]}
    panel.item.raster_above = 1000  # as if there were 1M points
    panel.item.update()
    shown = colours_on_screen(panel)
    assert panel.item.last_drawn_raster and panel.item.last_drawn_points == 6000
    assert palette <= shown  # every cluster colour is on screen, exactly
    # a selection keeps its colour and fades the rest, as the dots do
    biggest = int(np.bincount(session.labels[session.labels >= 0]).argmax())
    model.select(np.flatnonzero(session.labels == biggest), "replace")
    shown = colours_on_screen(panel)
    chosen = tuple(
        int(c)
        for c in panel.item.palette[panel.item.color_index[np.flatnonzero(session.labels == biggest)[0]]]
    )
    assert chosen in shown and len(palette - shown) >= len(palette) - 2
    # zoomed in past the size, the dots (and hover, thumbnails) come back
    panel.zoom_to_cluster(biggest)
    panel.zoom_by(0.05)
    panel.canvas.grab()
    assert not panel.item.last_drawn_raster and 0 < panel.item.last_drawn_points <= 1000


def canvas_pixels(panel) -> np.ndarray:
    """The map's pixels, grabbed with the whole panel: the map is painted below the toolbar, shifted as it is
    in a window."""
    image = panel.grab().toImage().convertToFormat(QImage.Format.Format_ARGB32)
    pixels = np.frombuffer(image.constBits(), np.uint8, count=image.sizeInBytes())
    pixels = pixels.reshape(image.height(), image.bytesPerLine() // 4, 4)
    top_left = panel.canvas.mapTo(panel, QPoint(0, 0))
    rows = slice(top_left.y(), top_left.y() + panel.canvas.height())
    return pixels[rows, top_left.x() : top_left.x() + panel.canvas.width()].copy()


def test_dots_painted_over_are_skipped_and_the_picture_is_the_same_pixel_for_pixel(
    big_panel, qtbot, monkeypatch
):
    panel, model, session = big_panel
    panel.resize(420, 320)  # 6,000 dots in a small map: most are painted over by later ones
    qtbot.waitUntil(lambda: panel.canvas.height() < 320)
    item = panel.item
    panel.canvas.grab()
    assert item.last_drawn_points == 6000 and item.last_hidden_points > 3000
    # fitted, then dots cut by every edge of the map, then zoomed in (sparser, fractional pixel positions)
    for move in (panel.fit_all, lambda: panel.pan_by(0.37, -0.21), lambda: panel.zoom_by(0.45)):
        move()
        with monkeypatch.context() as patch:
            patch.setattr(point_cloud, "CULL_OVERDRAW", 0.0)  # look for covered dots however sparse
            skipped = canvas_pixels(panel)
            assert 0 < item.last_hidden_points < item.last_drawn_points
            drawn = item.last_drawn_points
            patch.setattr(point_cloud, "CULL_OVERDRAW", float("inf"))  # draw every dot
            every = canvas_pixels(panel)
            assert item.last_hidden_points == 0 and item.last_drawn_points == drawn
        assert np.array_equal(skipped, every)
    # a re-cut recolours the same dots: the covered ones are not searched again, the picture stays exact
    panel.fit_all()
    before = canvas_pixels(panel)
    cached = item._hidden_cache
    recoloured = np.where(session.labels >= 0, (session.labels + 3) % 7, session.labels)
    item.set_colors(np.where(recoloured >= 0, recoloured + 1, 0), item.palette, draw_rank=recoloured >= 0)
    skipped = canvas_pixels(panel)
    assert item._hidden_cache is cached and item.last_hidden_points > 3000
    assert not np.array_equal(skipped, before)
    with monkeypatch.context() as patch:
        patch.setattr(point_cloud, "CULL_OVERDRAW", float("inf"))
        assert np.array_equal(skipped, canvas_pixels(panel))
    # with a selection the other dots fade (no longer opaque): every dot is drawn
    model.select(np.flatnonzero(session.labels == session.labels[0]), "replace")
    panel.canvas.grab()
    assert item.last_hidden_points == 0 and item.last_drawn_points == 6000


def test_a_repaint_of_the_same_view_draws_the_kept_raster_and_a_change_redraws_it(big_panel):
    panel, model, session = big_panel
    panel.item.raster_above = 1000  # as if there were 1M points
    rasters = []
    rasterise = panel.item._rasterise
    panel.item._rasterise = lambda *args: rasters.append(1) or rasterise(*args)
    panel.item.update()
    before = colours_on_screen(panel)
    panel.canvas.grab()
    assert len(rasters) == 1 and panel.item.last_drawn_raster  # drawn again, not worked out again
    hidden = int(session.labels[0])
    colour = tuple(int(c) for c in panel.item.palette[panel.item.color_index[0]])
    panel.set_hidden({hidden})  # the points change: a new raster without that group's colour
    assert colour in before and colour not in colours_on_screen(panel) and len(rasters) == 2
    panel.zoom_by(0.9)  # the view changes
    panel.canvas.grab()
    assert len(rasters) == 3


def test_data_bounds_are_the_extent_of_all_or_some_points(big_panel):
    panel, _, session = big_panel
    coords = np.asarray(session.coords, np.float64)
    rect = panel.item.data_bounds()
    assert (rect.left(), rect.top()) == tuple(coords.min(axis=0))
    assert (rect.right(), rect.bottom()) == tuple(coords.max(axis=0))
    rows = np.flatnonzero(session.labels == session.labels[0])
    rect = panel.item.data_bounds(rows)
    assert (rect.left(), rect.bottom()) == (coords[rows, 0].min(), coords[rows, 1].max())


def test_the_thumbnail_size_is_not_fooled_by_rows_stored_in_map_order():
    # a 200 x 200 grid of points one unit apart: the sample must be spread like a random one whatever
    # the order of the rows (every n-th row of a grid in row order lies on a few lines only)
    grid = np.stack(np.meshgrid(np.arange(200.0), np.arange(200.0)), axis=-1).reshape(-1, 2)
    shuffled = grid[np.random.default_rng(0).permutation(len(grid))]
    in_order, mixed = _thumbnail_footprint(grid), _thumbnail_footprint(shuffled)
    assert abs(in_order - mixed) / mixed < 0.1
    assert 0.3 < mixed <= 1.0  # bounded by the uniform spacing, one unit
