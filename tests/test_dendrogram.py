"""The cluster tree: the cut line counts clusters like scipy's fcluster, a branch click selects its images."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest
from scipy.cluster.hierarchy import fcluster, to_tree
from views_support import fill_thumbnail_cache, make_session

from imgclust_desktop.gui.panels.dendrogram import DendrogramPanel
from imgclust_desktop.gui.session_model import SessionModel
from imgclust_desktop.gui.thumbs import ThumbnailProvider


@pytest.fixture
def panel(qtbot, tmp_path):
    session = make_session(300, 7, seed=5)
    keys, cache = fill_thumbnail_cache(session, tmp_path / "cache")
    model = SessionModel()
    provider = ThumbnailProvider(keys, cache)
    model.set_session(session, provider)
    widget = DendrogramPanel(model)
    qtbot.addWidget(widget)
    widget.resize(800, 420)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    provider.close()


def to_pixel(panel: DendrogramPanel, x: float, y: float):
    return panel.plot.mapFromScene(panel.view.mapViewToScene(QPointF(x, y)))


def test_cut_line_count_follows_fcluster_at_every_height(panel):
    linkage = panel.linkage
    heights = np.sort(linkage[:, 2])
    cuts = np.r_[heights[0] / 2, (heights[:-1] + heights[1:]) / 2, heights[-1] * 1.05]
    assert panel.cut_count == len(linkage) + 1  # starts with every cluster on its own
    for height in cuts:
        panel.set_cut_height(float(height))
        expected = len(np.unique(fcluster(linkage, t=height, criterion="distance")))
        assert panel.cut_count == expected
        assert f"{expected} clusters" in panel.cut_line.label.format
    assert panel.cut_count == 1


def test_dragging_the_cut_line_emits_the_new_height(panel, qtbot):
    heights = np.sort(panel.linkage[:, 2])
    start = to_pixel(panel, 0.5, panel.cut_height())
    target_height = float((heights[-2] + heights[-1]) / 2)  # between the last two merges: two groups
    end = to_pixel(panel, 0.5, target_height)
    viewport = panel.plot.viewport()
    with qtbot.waitSignal(panel.cutChanged, timeout=3000) as cut:
        QTest.mousePress(viewport, Qt.MouseButton.LeftButton, pos=start)
        for step in np.linspace(0, 1, 6)[1:]:
            QTest.qWait(12)
            QTest.mouseMove(viewport, start + (end - start) * float(step))
        QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=end)
    assert cut.args[0] == pytest.approx(target_height, rel=0.05)
    assert panel.cut_count == 2


def test_clicking_a_branch_selects_the_images_of_its_clusters(panel):
    session = panel.model.session
    root = to_tree(panel.linkage)
    branch = root.get_left() if root.get_left().count > 1 else root.get_right()
    leaves = branch.pre_order()  # linkage leaf numbers under that branch
    expected_ids = {panel.cluster_ids[leaf] for leaf in leaves}
    expected = np.flatnonzero(np.isin(session.labels, list(expected_ids)))
    # the branch's horizontal bar: at its merge height, between its two children
    x = float(panel._x[branch.id])
    QTest.mouseClick(panel.plot.viewport(), Qt.MouseButton.LeftButton, pos=to_pixel(panel, x, branch.dist))
    assert np.array_equal(panel.model.selection, expected)
    # a click on a leaf (its thumbnail under the axis) selects that one cluster
    leaf = 0
    QTest.mouseClick(
        panel.plot.viewport(),
        Qt.MouseButton.LeftButton,
        pos=to_pixel(panel, float(panel._x[leaf]), 0) + QPointF(0, 20).toPoint(),
    )
    assert np.array_equal(panel.model.selection, np.flatnonzero(session.labels == panel.cluster_ids[leaf]))


def test_a_session_without_a_tree_says_so(qtbot):
    session = make_session(60, 1, seed=1)
    model = SessionModel()
    model.set_session(session)
    widget = DendrogramPanel(model)
    qtbot.addWidget(widget)
    assert widget.linkage is None
    assert "Fewer than two clusters" in widget.message.text()


def _scipy_layout(z: np.ndarray) -> np.ndarray:
    from scipy.cluster.hierarchy import leaves_list

    n = len(z) + 1
    x = np.zeros(2 * n - 1)
    x[leaves_list(z)] = np.arange(n)
    for j, (a, b) in enumerate(z[:, :2].astype(int).tolist()):
        x[n + j] = (x[a] + x[b]) / 2
    return x


def test_the_layout_puts_leaves_in_scipys_order_and_merges_midway():
    from scipy.cluster.hierarchy import linkage

    from imgclust_desktop.gui.panels.dendrogram import tree_layout

    points = np.random.default_rng(3).normal(size=(300, 4))
    for method in ("ward", "single", "average"):
        z = linkage(points, method=method)
        x, y = tree_layout(z)
        np.testing.assert_array_equal(x, _scipy_layout(z))
        np.testing.assert_array_equal(y[300:], z[:, 2])


def test_the_layout_of_a_chain_and_of_a_linkage_whose_counts_are_not_leaves():
    from scipy.cluster.hierarchy import linkage

    from imgclust_desktop.gui.panels.dendrogram import tree_layout

    chain = linkage(np.arange(2000.0)[:, None] ** 2, method="single")  # 1,999 rounds deep: placed one by one
    np.testing.assert_array_equal(tree_layout(chain)[0], _scipy_layout(chain))
    z = linkage(np.random.default_rng(4).normal(size=(200, 3)), method="ward")
    images = z.copy()
    images[:, 3] *= 7  # image counts, not leaves
    np.testing.assert_array_equal(tree_layout(images)[0], _scipy_layout(z))


def test_beyond_three_thousand_leaves_the_low_branches_are_drawn_folded_into_wedges():
    """Above _MAX_DRAWN_LEAVES clusters only the top merges are drawn one by one; each branch below them is
    a wedge from its top to its first and last leaf. The picture spans the same leaves and heights."""
    from scipy.cluster.hierarchy import linkage

    from imgclust_desktop.core.tree import leaf_spans
    from imgclust_desktop.gui.panels.dendrogram import branch_segments, drawn_segments, tree_layout

    z = linkage(np.random.default_rng(6).normal(size=(9000, 3)), method="ward")
    x, y = tree_layout(z)
    full_x, full_y = branch_segments(z, x, y)
    assert drawn_segments(z, x, y, most=20000)[0].size == full_x.size  # few enough: every merge
    xs, ys = drawn_segments(z, x, y, most=3000)
    assert xs.size <= 6 * 2999 + 4 * 3000 < full_x.size  # at most 3,000 wedges under 2,999 merges
    assert (xs.min(), xs.max(), ys.max()) == (full_x.min(), full_x.max(), full_y.max())
    first = len(z) - 2999
    start, size = leaf_spans(z)
    children = z[first:, :2].astype(int).ravel()
    folded = children[(children >= 9000) & (children < 9000 + first)]
    assert folded.size > 0 and size[folded].sum() + np.sum(children < 9000) == 9000  # every leaf, once
    wedges = np.column_stack([xs[6 * 2999 :].reshape(-1, 4), ys[6 * 2999 :].reshape(-1, 4)])
    np.testing.assert_array_equal(wedges[:, 0], start[folded])  # from the first leaf ...
    np.testing.assert_array_equal(wedges[:, 3], start[folded] + size[folded] - 1)  # ... to the last
    np.testing.assert_array_equal(wedges[:, 5], y[folded])  # up to the branch's own height


def test_leaves_closer_than_a_pixel_paint_the_same_dots_from_one_per_column(qtbot):
    """25,000 leaves across a panel: one disc per pixel column (the one painted last) covers the pixels a
    disc per leaf covers."""
    from PySide6.QtGui import QColor, QImage, QPainter

    from imgclust_desktop.gui.panels.dendrogram import LeavesItem

    rng = np.random.default_rng(8)
    xs = np.sort(rng.uniform(3, 997, size=25000))
    ids = rng.integers(0, 5000, size=25000)

    def picture(draw) -> np.ndarray:
        image = QImage(1000, 12, QImage.Format.Format_RGB32)
        image.fill(QColor("white"))
        painter = QPainter(image)
        draw(painter)
        painter.end()
        return np.frombuffer(image.constBits(), np.uint8).reshape(12, 1000, 4).copy()

    item = LeavesItem()
    thinned = picture(lambda p: item._paint_dots(p, xs, 3.0, ids))
    one_by_one = picture(
        lambda p: [item._paint_dots(p, xs[i : i + 1], 3.0, ids[i : i + 1]) for i in range(len(xs))]
    )
    covered = np.any(one_by_one[..., :3] != 255, axis=2)
    assert covered.mean() > 0.3  # dots were drawn
    assert np.mean(np.any(thinned[..., :3] != 255, axis=2) == covered) > 0.99  # the same band
    picture(lambda p: item._paint_dots(p, xs, 3.0, ids))
    assert item.last_dots <= 995  # a disc per pixel column (25 times fewer), not a grey smear of 25,000
    shuffled = rng.permutation(len(xs))  # leaves not left to right: thinned by sorting columns instead
    mixed = picture(lambda p: item._paint_dots(p, xs[shuffled], 3.0, ids[shuffled]))
    assert item.last_dots <= 995
    assert np.mean(np.any(mixed[..., :3] != 255, axis=2) == covered) > 0.99
