"""The cluster grid: medoid first, sort orders, selection both ways, virtualisation, diagnostics."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtGui import QColor, QImage
from sklearn.metrics import silhouette_samples
from views_support import fill_thumbnail_cache, make_session

from imgclust_desktop.gui.panels.cluster_diagnostics import silhouette_values
from imgclust_desktop.gui.panels.clusters import ClusterGridPanel, mean_of_thumbnails, stable_argsort
from imgclust_desktop.gui.session_model import SessionModel
from imgclust_desktop.gui.thumbs import ThumbnailProvider


def build(qtbot, tmp_path, n=300, k=5, seed=6):
    session = make_session(n, k, seed=seed)
    keys, cache = fill_thumbnail_cache(session, tmp_path / "cache", distinct=50)
    model = SessionModel()
    provider = ThumbnailProvider(keys, cache)
    model.set_session(session, provider)
    panel = ClusterGridPanel(model)
    qtbot.addWidget(panel)
    panel.resize(900, 500)
    panel.show()
    qtbot.waitExposed(panel)
    return panel, session, provider


def unit(rows):
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_each_cluster_shows_its_medoid_first_then_the_most_typical(qtbot, tmp_path):
    panel, session, provider = build(qtbot, tmp_path)
    for cid in session.cluster_ids():
        panel.show_cluster(cid)
        shown = [
            int(panel.images.index(r).data(Qt.ItemDataRole.UserRole + 1))
            for r in range(panel.images.rowCount())
        ]
        assert shown[0] == session.clusters[cid].medoid_index
        assert sorted(shown) == np.flatnonzero(session.labels == cid).tolist()
        distance = 1 - unit(session.features[shown]) @ unit(session.features[[shown[0]]])[0]
        assert np.all(np.diff(distance[1:]) >= -1e-6)
    provider.close()


def test_outlier_sort_puts_the_most_unusual_first_even_before_the_medoid(qtbot, tmp_path):
    panel, session, provider = build(qtbot, tmp_path)
    cid = session.cluster_ids()[0]
    panel.show_cluster(cid)
    panel.set_sort("outlier")
    rows = panel.images.rows
    assert np.all(np.diff(session.outlier_score[rows]) <= 0)
    medoid = session.clusters[cid].medoid_index
    assert rows[0] != medoid  # the medoid is typical: it is not the most unusual image
    position = panel.images.position_of(medoid)
    assert panel.images.index(position).data(Qt.ItemDataRole.UserRole + 2)  # still wears its badge
    provider.close()


def test_selection_mirrors_between_grid_and_model(qtbot, tmp_path):
    panel, session, provider = build(qtbot, tmp_path)
    cid = session.cluster_ids()[1]
    panel.show_cluster(cid)
    picks = [1, 2, 5]
    selection_model = panel.grid.selectionModel()
    selection_model.clearSelection()
    for p in picks:
        selection_model.select(panel.images.index(p), QItemSelectionModel.SelectionFlag.Select)
    assert sorted(panel.model.selection.tolist()) == sorted(int(panel.images.rows[p]) for p in picks)
    # a selection made elsewhere (scatter, dendrogram) inside another cluster brings that cluster up
    other = session.cluster_ids()[2]
    rows = np.flatnonzero(session.labels == other)[:4]
    panel.model.select(rows)
    assert panel.current_cluster == other
    selected = sorted(int(i.data(Qt.ItemDataRole.UserRole + 1)) for i in selection_model.selectedIndexes())
    assert selected == sorted(rows.tolist())
    provider.close()


def test_a_20k_image_cluster_only_loads_what_is_on_screen(qtbot, tmp_path):
    panel, session, provider = build(qtbot, tmp_path, n=20_000, k=1, seed=7)
    biggest = session.cluster_ids()[0]
    panel.show_cluster(biggest)
    assert panel.images.rowCount() == int((session.labels == biggest).sum()) > 15_000
    panel.grid.grab()
    qtbot.wait(300)
    stats = provider.stats()
    assert 0 < stats["images"] + stats["pending"] < 400  # a screenful plus the mean image sample
    bar = panel.grid.verticalScrollBar()
    bar.setValue(bar.maximum() // 2)  # jump to the middle: the new screenful is fetched, not the rest
    panel.grid.grab()
    middle = int(panel.grid.indexAt(panel.grid.viewport().rect().center()).data(Qt.ItemDataRole.UserRole + 1))
    qtbot.waitUntil(lambda: provider.peek(middle) is not None, timeout=3000)
    assert provider.stats()["images"] < 800
    provider.close()


def test_mean_image_is_the_average_of_the_thumbnails():
    images = []
    for rgb in ((200, 0, 0), (0, 100, 0), (40, 40, 250)):
        image = QImage(30, 20, QImage.Format.Format_RGB32)
        image.fill(QColor(*rgb))
        images.append(image)
    mean = mean_of_thumbnails(images, 16)
    assert mean.shape == (16, 16, 3)
    assert np.abs(mean.reshape(-1, 3) - np.array([80, 47, 83])).max() <= 1


def test_diagnostics_silhouette_matches_sklearn_and_shows_the_k_curve(qtbot, tmp_path):
    panel, session, provider = build(qtbot, tmp_path)
    panel.tabs.setCurrentWidget(panel.diagnostics)
    qtbot.waitUntil(lambda: panel.diagnostics.silhouette is not None, timeout=10_000)
    rows, values = panel.diagnostics.silhouette
    clustered = np.flatnonzero(session.labels >= 0)
    assert np.array_equal(rows, clustered)
    expected = silhouette_samples(session.features[clustered], session.labels[clustered], metric="cosine")
    assert np.allclose(values, expected, atol=1e-5)
    assert "mean" in panel.diagnostics.silhouette_plot.getPlotItem().titleLabel.text
    lines = [
        i.value() for i in panel.diagnostics.k_plot.getPlotItem().items if isinstance(i, pg.InfiniteLine)
    ]
    assert lines == [session.k_curve["chosen"]]
    provider.close()


def test_an_edit_behind_the_clusters_tab_keeps_the_k_curve_and_recomputes_the_silhouette_when_shown(
    qtbot, tmp_path
):
    panel, session, provider = build(qtbot, tmp_path)
    diagnostics = panel.diagnostics
    panel.tabs.setCurrentWidget(diagnostics)
    qtbot.waitUntil(lambda: diagnostics.silhouette is not None, timeout=10_000)
    k_items = list(diagnostics.k_plot.getPlotItem().items)
    panel.tabs.setCurrentIndex(0)  # the grid in front, diagnostics hidden
    moved = np.flatnonzero(session.labels == session.cluster_ids()[0])[:20]
    panel.model.assign(moved, session.cluster_ids()[1])  # an edit of the same session
    assert diagnostics.silhouette is None
    assert diagnostics.k_plot.getPlotItem().items == k_items  # the run's k curve is not redrawn
    panel.tabs.setCurrentWidget(diagnostics)
    qtbot.waitUntil(lambda: diagnostics.silhouette is not None, timeout=10_000)
    rows, values = diagnostics.silhouette
    expected = silhouette_samples(session.features[rows], session.labels[rows], metric="cosine")
    assert np.allclose(values, expected, atol=1e-5)  # the edited labels, not the ones before
    provider.close()


def test_silhouette_is_sampled_above_the_limit():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 900)
    features = rng.normal(size=(900, 4)) + labels[:, None]
    rows, values = silhouette_values(features, labels, sample=300, seed=1)
    assert len(rows) == len(values) == 300 and len(np.unique(rows)) == 300
    assert not np.array_equal(rows, np.arange(300))  # a random sample, not the first rows


def test_the_grid_order_is_the_stable_sort_whether_or_not_distances_tie():
    rng = np.random.default_rng(3)
    distinct = rng.random(5000).astype(np.float32)
    tied = np.round(distinct * 50) / 50  # many equal distances (duplicates): the row order decides
    with_nan = distinct.copy()
    with_nan[[7, 70, 700]] = np.nan
    for key in (distinct, tied, with_nan, distinct[:1], distinct[:0]):
        assert np.array_equal(stable_argsort(key), np.argsort(key, kind="stable"))
