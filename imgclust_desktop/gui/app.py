"""Entry point of the window: `imgclust-desktop [FOLDER|SESSION]` and `python -m imgclust_desktop`."""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from collections.abc import Sequence

from imgclust_desktop import __version__
from imgclust_desktop.gui.app_paths import APPLICATION, ORGANIZATION, icon_files


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imgclust-desktop",
        description="Open the imgclust window: cluster a folder of images, or reopen a saved session.",
    )
    parser.add_argument("path", nargs="?", help="an image folder to cluster, or a session folder to open")
    parser.add_argument("--version", action="version", version=f"imgclust-desktop {__version__}")
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="cluster the bundled demo images (or the given folder) in an offscreen window, print one summary line "
        "and exit: 0 when everything works, 1 with the reason when not",
    )
    return parser


def freeze_startup_objects() -> None:
    """Leave what startup made (modules, the window and its panels: ~100k objects, alive as long as the app)
    out of the garbage collector's full passes. Every few edits one walked them all: 40-120 ms in the middle
    of a re-cut at 100k images; after this, a few ms. Nothing made so far waits to be collected."""
    gc.freeze()


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments (before any Qt import, so --help is instant), then show the window."""
    start = time.perf_counter()
    args = build_parser().parse_args(argv)
    if args.path and not os.path.exists(args.path):
        print(f"imgclust-desktop: {args.path}: no such file or folder", file=sys.stderr)
        return 2
    if args.self_test:
        from imgclust_desktop.gui.selftest import run_self_test

        return run_self_test(args.path)

    from PySide6.QtCore import QCoreApplication, QTimer
    from PySide6.QtGui import QGuiApplication, QIcon
    from PySide6.QtWidgets import QApplication

    from imgclust_desktop.gui.display import explain_platform_failure
    from imgclust_desktop.gui.main_window import MainWindow

    QCoreApplication.setOrganizationName(ORGANIZATION)
    QCoreApplication.setApplicationName(APPLICATION)
    QCoreApplication.setApplicationVersion(__version__)
    with explain_platform_failure():  # no usable display plugin: one line saying what to install, exit 1
        app = QApplication.instance() or QApplication(sys.argv[:1])
    icon = QIcon()
    for path in icon_files():
        icon.addFile(str(path))
    app.setWindowIcon(icon)
    QGuiApplication.setDesktopFileName(APPLICATION)  # matches packaging/imgclust-desktop.desktop (Wayland)
    window = MainWindow()
    window.show()
    freeze_startup_objects()
    if args.path:
        # After the event loop starts, so the window paints before any work begins.
        QTimer.singleShot(0, lambda: window.open_paths([os.path.abspath(args.path)]))
    if os.environ.get("IMGCLUST_EXIT_AFTER_SHOWN"):
        # Startup measurement hook: report once the first paint has happened, then leave.
        def report() -> None:
            heavy = sorted(m for m in ("torch", "umap", "sklearn", "hdbscan") if m in sys.modules)
            print(f"shown {time.perf_counter() - start:.3f} heavy={','.join(heavy) or '-'}", flush=True)
            window.close()
            app.quit()

        QTimer.singleShot(0, report)
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(main())
