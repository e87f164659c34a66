"""Open a saved session folder in the window, as File > Open Session does, and time it; optional screenshots.

    QT_QPA_PLATFORM=offscreen python bench/open_session.py SESSION [--screenshots DIR]

Times (wall and process CPU) from MainWindow.open_session(SESSION) until the map has painted every point
(the load runs in the worker thread, as in the app), then a zoomed-out repaint. With --screenshots, grabs
the window zoomed out and zoomed in on the biggest cluster's medoid (open-1-zoomed-out.png,
open-2-zoomed-in.png). Under Xvfb (unset QT_QPA_PLATFORM) the grabs are what a person sees.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QApplication


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("session", type=Path)
    parser.add_argument("--screenshots", type=Path)
    args = parser.parse_args()
    app = QApplication([])
    from imgclust_desktop.gui.main_window import MainWindow

    window = MainWindow()
    window.resize(1600, 1000)
    window.show()
    app.processEvents()
    wall, cpu = time.perf_counter(), time.process_time()
    window.open_session(str(args.session))
    while window.model.session is None or window.busy():
        app.processEvents()
        time.sleep(0.002)
    scatter = window.scatter
    scatter.canvas.viewport().repaint()
    app.processEvents()
    opened_wall, opened_cpu = time.perf_counter() - wall, time.process_time() - cpu
    n = len(window.model.session.paths)
    clock = time.process_time()
    scatter.canvas.viewport().repaint()
    repaint = time.process_time() - clock
    print(
        f"{n:,} images: opened and painted in {opened_wall:.2f} s wall / {opened_cpu:.2f} s CPU; "
        f"zoomed-out repaint {repaint * 1000:.0f} ms CPU (raster: {scatter.item.last_drawn_raster})"
    )
    if args.screenshots:
        args.screenshots.mkdir(parents=True, exist_ok=True)
        window.grab().save(str(args.screenshots / "open-1-zoomed-out.png"))
        session = window.model.session
        sizes = session.sizes()
        biggest = max(sizes, key=sizes.get)
        medoid = session.clusters[biggest].medoid_index
        x, y = (float(v) for v in session.coords[medoid])
        for _ in range(5):  # 3^5 = 243 times closer: a few dozen of 1M points, drawn as thumbnails
            scatter.zoom_by(1 / 3, QPointF(x, y))
            app.processEvents()
        settle = time.perf_counter() + 3.0  # thumbnails load in their own thread and repaint as they come
        while time.perf_counter() < settle:
            app.processEvents()
            time.sleep(0.02)
        scatter.canvas.viewport().repaint()
        app.processEvents()
        window.grab().save(str(args.screenshots / "open-2-zoomed-in.png"))
        print(f"screenshots in {args.screenshots}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
