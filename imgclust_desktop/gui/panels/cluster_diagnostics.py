"""Cluster quality at a glance: a per-sample silhouette plot and the auto-k curve (pyqtgraph)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from imgclust_desktop.gui import colors

SILHOUETTE_SAMPLE = 5000  # above this many clustered images, a seeded random sample keeps it under a second


def silhouette_values(
    features: np.ndarray, labels: np.ndarray, *, sample: int = SILHOUETTE_SAMPLE, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(row indices, per-sample silhouette) over clustered rows, cosine metric, sampled above `sample`."""
    from imgclust_desktop.core.cosine import cosine_silhouettes

    labels = np.asarray(labels)
    rows = np.flatnonzero(labels >= 0)
    if len(rows) > sample:
        rows = np.sort(np.random.default_rng(seed).choice(rows, sample, replace=False))
    if len(np.unique(labels[rows])) < 2 or len(rows) < 3:
        return rows[:0], np.zeros(0)
    return rows, cosine_silhouettes(np.asarray(features)[rows], labels[rows])


class DiagnosticsView(QWidget):
    """Silhouette per sample (grouped by cluster) beside the k-selection curve; computed when first shown."""

    _computed = Signal(object, object)  # session, (rows, values): delivered from the worker thread

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session: Any = None
        self._pending = False
        self._stale = False  # the silhouette plot shows an earlier cut: cleared before it is next shown
        self.silhouette: tuple[np.ndarray, np.ndarray] | None = None
        self.silhouette_plot = pg.PlotWidget(background="w", title="Silhouette per image")
        self.silhouette_plot.setMouseEnabled(x=False, y=True)
        self.silhouette_plot.setMenuEnabled(False)
        self.silhouette_plot.getAxis("bottom").setLabel("silhouette (cosine)")
        self.k_plot = pg.PlotWidget(background="w", title="Choosing k")
        self.k_plot.setMenuEnabled(False)
        self.k_plot.getAxis("bottom").setLabel("k (clusters)")
        for plot in (self.silhouette_plot, self.k_plot):
            for axis in ("left", "bottom"):
                plot.getAxis(axis).setTextPen("k")
                plot.getAxis(axis).enableAutoSIPrefix(False)  # "(x0.001)" scaling reads badly on scores
        self.scores = QLabel()
        self.scores.setStyleSheet("color: #333; padding: 4px;")
        self.scores.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        plots = QHBoxLayout()
        plots.addWidget(self.silhouette_plot, 3)
        plots.addWidget(self.k_plot, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.scores)
        layout.addLayout(plots, 1)
        self._computed.connect(self._show_silhouette)
        self._show_scores()
        self._show_k_curve()

    def set_session(self, session: Any) -> None:
        """Forget the silhouette: it is recomputed (and its old plot cleared) the next time the view is shown.

        The scores and the k curve belong to the run: an edit or a re-cut of the same session keeps them and
        their plot (redrawn, even a hidden plot costs its scene a new layout: ~30 ms of every re-cut).
        """
        new_run = session is not self.session
        self.session = session
        self.silhouette = None
        self._pending = False
        self._stale = True
        if new_run:
            self._show_scores()
            self._show_k_curve()
        if self.isVisible():
            self.compute()

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self.compute()

    def compute(self) -> None:
        """Start the silhouette computation off the GUI thread (once per session)."""
        session = self.session
        if self.silhouette is not None or self._pending:
            return
        if self._stale:
            self.silhouette_plot.clear()
            self._stale = False
        if session is None:
            return
        features = getattr(session, "features", None)
        if features is None or len(features) != len(session.labels):
            return
        self._pending = True
        _title(self.silhouette_plot, "Silhouette per image (computing…)")
        labels = np.asarray(session.labels).copy()

        def work() -> None:
            try:
                result = silhouette_values(features, labels)
            except Exception as error:  # a degenerate clustering must not take the window down
                result = error
            try:
                self._computed.emit(session, result)
            except RuntimeError:  # the view was closed meanwhile
                pass

        threading.Thread(target=work, name="silhouette", daemon=True).start()

    def _show_silhouette(self, session: Any, result: Any) -> None:
        if session is not self.session:
            return
        self._pending = False
        plot = self.silhouette_plot
        plot.clear()
        if isinstance(result, Exception) or len(result[0]) == 0:
            reason = result if isinstance(result, Exception) else "fewer than two clusters"
            _title(plot, f"Silhouette: not available ({reason})")
            self.silhouette = (np.zeros(0, dtype=np.int64), np.zeros(0))
            return
        self.silhouette = result
        rows, values = result
        labels = np.asarray(session.labels)[rows]
        ticks, y = [], 0.0
        for cid in np.unique(labels):
            v = np.sort(values[labels == cid])
            bars = pg.BarGraphItem(x0=0, y0=y + np.arange(len(v)), height=1.0, width=v,
                                   brush=colors.cluster_color(int(cid)), pen=None)  # fmt: skip
            plot.addItem(bars)
            ticks.append((y + len(v) / 2, _short_name(session, int(cid))))
            y += len(v) + max(3, len(values) // 60)  # a gap between clusters
        mean = float(values.mean())
        plot.addItem(pg.InfiniteLine(mean, angle=90, pen=pg.mkPen(QColor(200, 40, 40), width=1.5,
                                                                   style=Qt.PenStyle.DashLine)))  # fmt: skip
        plot.getAxis("left").setTicks([ticks if len(ticks) <= 40 else ticks[:: len(ticks) // 40 + 1], []])
        sampled = (
            f", sample of {len(values):,}"
            if len(values) < int((np.asarray(session.labels) >= 0).sum())
            else ""
        )
        _title(plot, f"Silhouette per image: mean {mean:.2f}{sampled}")
        plot.setXRange(min(-0.1, float(values.min())), max(0.5, float(values.max())), padding=0.02)
        plot.setYRange(0, y, padding=0.01)

    def _show_k_curve(self) -> None:
        plot = self.k_plot
        plot.clear()
        curve = None if self.session is None else getattr(self.session, "k_curve", None)
        if not curve or not curve.get("k"):
            _title(plot, "Choosing k: the method chose k itself")
            return
        k = np.asarray(curve["k"], dtype=float)
        score = np.asarray(curve["score"], dtype=float)
        plot.plot(k, score, pen=pg.mkPen(QColor(31, 119, 180), width=2), symbol="o", symbolSize=6,
                  symbolBrush=QColor(31, 119, 180))  # fmt: skip
        chosen = curve.get("chosen")
        if chosen is not None:
            plot.addItem(pg.InfiniteLine(float(chosen), angle=90, label=f"k = {chosen}",
                                         labelOpts={"position": 0.08, "color": (180, 30, 30), "fill": (255, 255, 255, 200)},
                                         pen=pg.mkPen(QColor(200, 40, 40), style=Qt.PenStyle.DashLine)))  # fmt: skip
        criterion = str(curve.get("criterion", "score")).replace("_", " ")
        plot.getAxis("left").setLabel(criterion)
        _title(plot, f"Choosing k by {criterion}")

    def _show_scores(self) -> None:
        scores = {} if self.session is None else dict(getattr(self.session, "scores", None) or {})
        parts = [f"{name.replace('_', ' ')}: {value:.3g}" for name, value in scores.items()
                 if isinstance(value, (int, float, np.floating))]  # fmt: skip
        self.scores.setText("   ·   ".join(parts) if parts else "No quality scores for this clustering.")


def _title(plot: pg.PlotWidget, text: str) -> None:
    plot.setTitle(text, color="#222", size="10pt")


def _short_name(session: Any, cluster_id: int) -> str:
    try:
        name = str(session.name_of(cluster_id))
    except Exception:
        name = f"Cluster {cluster_id}"
    return name if len(name) <= 18 else name[:17] + "…"
