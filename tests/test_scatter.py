"""The thumbnail map: every image drawn, lasso and rectangle selection, clicks, zoomed-in thumbnails."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest
from skimage.measure import points_in_poly
from views_support import fill_thumbnail_cache, make_session

from imgclust_desktop.gui.panels.point_cloud import points_in_polygon
from imgclust_desktop.gui.panels.scatter import ScatterPanel
from imgclust_desktop.gui.session_model import SessionModel
from imgclust_desktop.gui.thumbs import ThumbnailProvider


@pytest.fixture
def session():
    return make_session(400, 6, seed=4)


@pytest.fixture
def panel(qtbot, session, tmp_path):
    keys, cache = fill_thumbnail_cache(session, tmp_path / "cache")
    model = SessionModel()
    provider = ThumbnailProvider(keys, cache)
    model.set_session(session, provider)
    widget = ScatterPanel(model)
    qtbot.addWidget(widget)
    widget.resize(900, 650)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    provider.close()


def star_polygon(centre, radius, vertices=40, seed=0) -> np.ndarray:
    """A non-convex, non-self-intersecting polygon (radius varies with angle)."""
    rng = np.random.default_rng(seed)
    angles = np.linspace(0, 2 * np.pi, vertices, endpoint=False)
    r = radius * rng.uniform(0.35, 1.0, vertices)
    return np.c_[centre[0] + r * np.cos(angles), centre[1] + r * np.sin(angles)]


def device_point(panel: ScatterPanel, x: float, y: float) -> QPoint:
    """Viewport pixel of a data-space position."""
    scene = panel.view.mapViewToScene(QPointF(x, y))
    return panel.canvas.mapFromScene(scene)


def test_every_image_is_one_drawn_point_and_hidden_groups_are_not(panel, session):
    panel.canvas.grab()
    assert panel.item.point_count == len(session.paths)
    assert panel.item.last_drawn_points == len(session.paths)
    # one GraphicsObject for the whole map, not one item per image
    assert len(panel.canvas.scene().items()) < 20

    hidden = int(np.bincount(session.labels[session.labels >= 0]).argmax())
    legend = panel.legend.model()
    row = next(
        i for i in range(legend.rowCount()) if legend.index(i).data(Qt.ItemDataRole.UserRole) == hidden
    )
    index = legend.index(row)
    QTest.mouseClick(
        panel.legend.viewport(), Qt.MouseButton.LeftButton, pos=panel.legend.visualRect(index).center()
    )
    panel.canvas.grab()
    assert panel.item.last_drawn_points == len(session.paths) - int((session.labels == hidden).sum())
    assert index.data(Qt.ItemDataRole.FontRole).strikeOut()
    assert not legend.index((row + 1) % legend.rowCount()).data(Qt.ItemDataRole.FontRole)


def test_points_in_polygon_agrees_with_an_independent_implementation():
    rng = np.random.default_rng(1)
    points = rng.uniform(-10, 10, size=(20_000, 2))
    for seed in range(5):
        polygon = star_polygon(
            rng.uniform(-3, 3, 2), rng.uniform(2, 9), vertices=int(rng.integers(3, 300)), seed=seed
        )
        ours = points_in_polygon(points, polygon)
        assert np.array_equal(ours, points_in_poly(points, polygon))
        assert 0 < ours.sum() < len(points)


def test_lasso_gesture_selects_exactly_the_points_inside(panel, session, qtbot):
    panel.set_tool("lasso")
    centre = session.coords.mean(axis=0)
    polygon = star_polygon(centre, 8.0, vertices=24, seed=3)
    pixels = [device_point(panel, x, y) for x, y in polygon]
    viewport = panel.canvas.viewport()
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, pos=pixels[0])
    for p in pixels[1:] + [pixels[0]]:
        QTest.qWait(12)  # pyqtgraph passes on at most 100 mouse moves a second
        QTest.mouseMove(viewport, p)
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=pixels[0])
    # the traced polygon is what the pixels map back to in data space
    traced = np.array(
        [(q.x(), q.y()) for q in (panel.view.mapSceneToView(panel.canvas.mapToScene(p)) for p in pixels)]
    )
    expected = np.flatnonzero(points_in_poly(session.coords.astype(np.float64), traced))
    assert len(expected) > 20
    assert np.array_equal(panel.model.selection, expected)


def test_rectangle_with_shift_adds_and_ctrl_subtracts(panel, session):
    panel.set_tool("rect")
    xy = session.coords
    x0, x1 = np.percentile(xy[:, 0], [10, 60])
    y0, y1 = np.percentile(xy[:, 1], [10, 60])
    viewport = panel.canvas.viewport()

    def drag(a, b, modifier=Qt.KeyboardModifier.NoModifier):
        pa, pb = device_point(panel, *a), device_point(panel, *b)
        QTest.mousePress(viewport, Qt.MouseButton.LeftButton, modifier, pa)
        for p in (pa + (pb - pa) / 2, pb):
            QTest.qWait(12)
            QTest.mouseMove(viewport, p)
        QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, modifier, pb)

    def inside(a, b):
        # the corners the gesture really made: data positions of the pixels pressed and released
        a, b = (panel.view.mapSceneToView(panel.canvas.mapToScene(device_point(panel, *c))) for c in (a, b))
        a, b = (a.x(), a.y()), (b.x(), b.y())
        (lx, hx), (ly, hy) = sorted((a[0], b[0])), sorted((a[1], b[1]))
        return set(np.flatnonzero((xy[:, 0] >= lx) & (xy[:, 0] <= hx) & (xy[:, 1] >= ly) & (xy[:, 1] <= hy)))

    first, second = ((x0, y0), (x1, y1)), ((x1, y0), (np.percentile(xy[:, 0], 90), y1))
    drag(*first)
    assert set(panel.model.selection) == inside(*first)
    drag(*second, Qt.KeyboardModifier.ShiftModifier)
    assert set(panel.model.selection) == inside(*first) | inside(*second)
    drag(*first, Qt.KeyboardModifier.ControlModifier)
    assert set(panel.model.selection) == inside(*second) - inside(*first)


def test_click_selects_a_point_and_double_click_activates_it(panel, session, qtbot):
    index = int(np.argmax(session.coords[:, 0]))  # the right-most point: nothing drawn on top of it
    where = device_point(panel, *session.coords[index])
    viewport = panel.canvas.viewport()
    QTest.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=where)
    assert panel.model.selection.tolist() == [index]
    with qtbot.waitSignal(panel.imageActivated, timeout=2000) as activated:
        QTest.mouseDClick(viewport, Qt.MouseButton.LeftButton, pos=where)
        QTest.mouseRelease(
            viewport, Qt.MouseButton.LeftButton, pos=where
        )  # QTest's double click stops at press
    assert activated.args == [index]
    rect = panel.view.viewRect()
    grid = np.stack(np.meshgrid(np.linspace(rect.left(), rect.right(), 30)[1:-1],
                                np.linspace(rect.top(), rect.bottom(), 30)[1:-1]), -1).reshape(-1, 2)  # fmt: skip
    gaps = np.min(np.linalg.norm(grid[:, None] - session.coords[None], axis=2), axis=1)
    QTest.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=device_point(panel, *grid[np.argmax(gaps)]))
    assert len(panel.model.selection) == 0


def test_zooming_in_draws_thumbnails_of_images_in_view_only(panel, session, qtbot):
    cluster = int(session.labels[session.labels >= 0][0])
    panel.zoom_to_cluster(cluster)
    panel.zoom_by(0.5)

    def thumbnails_drawn():
        panel.canvas.grab()
        assert len(panel.item.last_drawn_thumbs) >= 5

    qtbot.waitUntil(thumbnails_drawn, timeout=5000)
    rect = panel.view.viewRect()
    drawn = [index for index, _ in panel.item.last_drawn_thumbs]
    assert len(drawn) == len(set(drawn)) <= panel.item.max_thumbs
    for index in drawn:
        x, y = session.coords[index]
        margin = panel.item.footprint
        assert (
            rect.left() - margin <= x <= rect.right() + margin
            and rect.top() - margin <= y <= rect.bottom() + margin
        )
    panel.fit_all()
    panel.canvas.grab()
    assert panel.item.last_drawn_thumbs == []  # zoomed out: dots only


def test_keys_zoom_pan_and_fit(panel, session):
    start = panel.view.viewRect()
    QTest.keyClick(panel.canvas, Qt.Key.Key_Plus)
    zoomed = panel.view.viewRect()
    assert zoomed.width() < start.width() * 0.9
    QTest.keyClick(panel.canvas, Qt.Key.Key_Right)
    assert panel.view.viewRect().center().x() > zoomed.center().x()
    QTest.keyClick(panel.canvas, Qt.Key.Key_0)
    fitted = panel.view.viewRect()
    assert fitted.contains(QPointF(*session.coords.min(axis=0))) and fitted.contains(
        QPointF(*session.coords.max(axis=0))
    )


def test_colour_by_folder_lists_folders_with_their_counts(panel, session):
    panel.set_color_mode("folder")
    folders = [p.split("/")[-2] for p in session.paths]
    shown = {}
    legend = panel.legend.model()
    for i in range(legend.rowCount()):
        name, count = legend.index(i).data().rsplit("  (", 1)
        shown[name] = int(count.rstrip(")").replace(",", ""))
    assert shown == {f: folders.count(f) for f in set(folders)}
    panel.set_color_mode("outlier")
    panel.canvas.grab()
    assert panel.item.last_drawn_points == len(session.paths)
    with pytest.raises(ValueError):
        panel.set_color_mode("rainbow")


def test_an_edit_recolours_without_moving_the_view(panel, session):
    panel.zoom_by(0.5)
    before = panel.view.viewRect()
    rows = np.flatnonzero(session.labels == session.labels.max())
    session.assign(rows, 0)
    panel.model.notify()
    assert panel.view.viewRect() == before
    assert panel.legend.model().rowCount() == len(np.unique(session.labels))
