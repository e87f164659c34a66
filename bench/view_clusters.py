"""Tiny runnable example: the cluster grid and diagnostics (offscreen: saves /tmp/view_clusters*.png)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from PySide6.QtWidgets import QApplication  # noqa: E402
from view_scatter import settle  # noqa: E402
from views_support import fill_thumbnail_cache, make_session  # noqa: E402

from imgclust_desktop.gui.panels.clusters import ClusterGridPanel  # noqa: E402
from imgclust_desktop.gui.session_model import SessionModel  # noqa: E402
from imgclust_desktop.gui.thumbs import ThumbnailProvider  # noqa: E402


def main() -> None:
    app = QApplication.instance() or QApplication(sys.argv)
    session = make_session(500, 7, seed=3)
    keys, cache = fill_thumbnail_cache(session, Path(tempfile.mkdtemp()))
    model = SessionModel()
    model.set_session(session, ThumbnailProvider(keys, cache))
    panel = ClusterGridPanel(model)
    panel.resize(1000, 420)
    panel.show()
    settle(app, 1.0)
    rows = panel.images.rows
    model.select(rows[3:6])
    settle(app, 0.5)
    panel.grab().save("/tmp/view_clusters.png")
    panel.tabs.setCurrentIndex(1)
    settle(app, 2.0)
    panel.grab().save("/tmp/view_clusters_diagnostics.png")
    if "--show" in sys.argv:
        app.exec()


if __name__ == "__main__":
    main()
