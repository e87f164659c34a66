"""Tiny runnable example: the cluster tree on a synthetic session (offscreen: saves /tmp/view_dendrogram*.png)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from PySide6.QtWidgets import QApplication  # noqa: E402
from view_scatter import settle  # noqa: E402
from views_support import fill_thumbnail_cache, make_session  # noqa: E402

from imgclust_desktop.gui.panels.dendrogram import DendrogramPanel  # noqa: E402
from imgclust_desktop.gui.session_model import SessionModel  # noqa: E402
from imgclust_desktop.gui.thumbs import ThumbnailProvider  # noqa: E402


def main() -> None:
    app = QApplication.instance() or QApplication(sys.argv)
    for k, size in ((8, (900, 420)), (30, (900, 420))):
        session = make_session(600, k, seed=2)
        keys, cache = fill_thumbnail_cache(session, Path(tempfile.mkdtemp()))
        model = SessionModel()
        model.set_session(session, ThumbnailProvider(keys, cache))
        panel = DendrogramPanel(model)
        panel.resize(*size)
        panel.show()
        settle(app, 0.8)
        heights = sorted(session.linkage[:, 2])
        panel.set_cut_height(float(heights[-3]) * 1.01)
        panel.select_node(len(session.linkage) + len(session.linkage) - 2)
        settle(app, 0.3)
        panel.grab().save(f"/tmp/view_dendrogram_{k}.png")
        print(k, "clusters; cut count", panel.cut_count)
    if "--show" in sys.argv:
        app.exec()


if __name__ == "__main__":
    main()
