"""Tiny runnable example: the thumbnail map on a synthetic session (offscreen: saves /tmp/view_scatter*.png)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from PySide6.QtWidgets import QApplication  # noqa: E402
from views_support import fill_thumbnail_cache, make_session  # noqa: E402

from imgclust_desktop.gui.panels.scatter import ScatterPanel  # noqa: E402
from imgclust_desktop.gui.session_model import SessionModel  # noqa: E402
from imgclust_desktop.gui.thumbs import ThumbnailProvider  # noqa: E402


def settle(app: QApplication, seconds: float = 1.0) -> None:
    """Let the thumbnail loader deliver and the view repaint."""
    import time

    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.01)


def main() -> None:
    app = QApplication.instance() or QApplication(sys.argv)
    session = make_session(400, 7, seed=1)
    keys, cache = fill_thumbnail_cache(session, Path(tempfile.mkdtemp()))
    model = SessionModel()
    model.set_session(session, ThumbnailProvider(keys, cache))
    panel = ScatterPanel(model)
    panel.resize(1000, 700)
    panel.show()
    settle(app, 0.3)
    panel.grab().save("/tmp/view_scatter.png")
    panel.zoom_to_cluster(int(session.labels[session.labels >= 0][0]))
    settle(app, 1.0)
    panel.grab().save("/tmp/view_scatter_zoom.png")
    panel.zoom_by(0.4)
    settle(app, 1.0)
    panel.grab().save("/tmp/view_scatter_zoom2.png")
    panel.fit_all()
    model.select(range(0, 400, 7))
    panel.set_color_mode("folder")
    settle(app, 0.3)
    panel.grab().save("/tmp/view_scatter_folder.png")
    panel.set_color_mode("outlier")
    settle(app, 0.3)
    panel.grab().save("/tmp/view_scatter_outlier.png")
    if "--show" in sys.argv:
        app.exec()


if __name__ == "__main__":
    main()
