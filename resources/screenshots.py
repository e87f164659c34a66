"""Screenshots of the real window on the demo images, for the README: run under a real X server.

Usage: xvfb-run -s "-screen 0 1600x1000x24" .venv/bin/python resources/screenshots.py [OUT_DIR]

Opens the demo folder, waits for the run to finish, then grabs the whole X screen (not a widget
render) at three zoom levels of the map: all clusters, one cluster, and close enough to see thumbnails,
then at three granularity levels of the cluster tree (fewer groups, the default, more groups).
Writes OUT_DIR/screenshot.png (the README picture), OUT_DIR/screenshots/map-*.png and levels-*.png.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from imgclust_desktop.gui.app_paths import demo_folder
from imgclust_desktop.gui.main_window import MainWindow


def settle(app: QApplication, seconds: float) -> None:
    """Let the event loop run (thumbnail loads, repaints) for a while."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def grab(app: QApplication, path: Path) -> None:
    settle(app, 1.5)
    path.parent.mkdir(parents=True, exist_ok=True)
    QGuiApplication.primaryScreen().grabWindow(0).save(str(path))
    print(path)


def grab_levels(app: QApplication, window: MainWindow, folder: Path) -> None:
    """The same folder at three granularity levels (fewer groups, the default, more), dendrogram in view."""
    tree = window.model.session.tree
    if tree is None:
        return
    default = tree.default_k
    fewer = max([k for k in tree.levels if k < default] or [tree.clamp(default // 2)])
    more = tree.clamp(max(tree.finer(default), default * 2))
    window.docks["dendrogram"].show()
    window.docks["dendrogram"].raise_()
    for i, (k, what) in enumerate(((fewer, "fewer"), (default, "default"), (more, "more")), start=1):
        window.granularity.recut(k)
        window.scatter.fit_all()
        grab(app, folder / f"levels-{i}-{what}.png")


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent)
    QCoreApplication.setApplicationName("imgclust-desktop-screenshots")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = MainWindow()
    screen = QGuiApplication.primaryScreen().geometry()
    window.setGeometry(screen)
    window.show()
    method = window.settings_panel.method
    method.setCurrentIndex(
        method.findData("tree")
    )  # the default; a remembered other method would hide the tree
    QTimer.singleShot(0, lambda: window.open_paths([str(demo_folder())]))
    deadline = time.monotonic() + 900
    settle(app, 2)
    while (window.busy() or window.model.session is None) and time.monotonic() < deadline:
        settle(app, 0.5)
    if window.model.session is None:
        print("the demo run did not finish", file=sys.stderr)
        return 1
    scatter = window.scatter
    scatter.fit_all()
    grab(app, out / "screenshot.png")
    grab(app, out / "screenshots" / "map-1-all.png")
    biggest = max(window.model.session.sizes().items(), key=lambda item: item[1])[0]
    scatter.zoom_to_cluster(biggest)
    grab(app, out / "screenshots" / "map-2-cluster.png")
    scatter.zoom_by(0.25)
    grab(app, out / "screenshots" / "map-3-close.png")
    grab_levels(app, window, out / "screenshots")
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
