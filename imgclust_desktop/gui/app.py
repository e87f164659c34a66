"""Entry point of the window: `imgclust-desktop [FOLDER|SESSION]` and `python -m imgclust_desktop`."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from imgclust_desktop import __version__

ORGANIZATION = "imgclust"
APPLICATION = "imgclust-desktop"
MAX_RECENT = 8


def demo_folder() -> Path:
    """The bundled demo images: resources/demo in a source checkout or inside a PyInstaller bundle."""
    bundle = getattr(sys, "_MEIPASS", None)
    root = Path(bundle) if bundle else Path(__file__).resolve().parents[2]
    return root / "resources" / "demo"


def is_session_folder(path: str | os.PathLike) -> bool:
    return (Path(path) / "session.json").is_file()


def app_settings():  # -> QSettings; Qt is imported here, not at module level, so --help stays instant
    """The app's settings store (an INI file; tests point QSettings.setPath at a temporary folder)."""
    from PySide6.QtCore import QSettings

    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)


def recent_sessions(settings) -> list[str]:
    """Session folders opened or saved lately, newest first."""
    value = settings.value("recent_sessions", []) or []
    return [value] if isinstance(value, str) else list(value)  # INI stores a one-item list as a string


def add_recent_session(settings, folder: str) -> None:
    if folder:
        recent = [folder] + [p for p in recent_sessions(settings) if p != folder]
        settings.setValue("recent_sessions", recent[:MAX_RECENT])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imgclust-desktop",
        description="Open the imgclust window: cluster a folder of images, or reopen a saved session.",
    )
    parser.add_argument("path", nargs="?", help="an image folder to cluster, or a session folder to open")
    parser.add_argument("--version", action="version", version=f"imgclust-desktop {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments (before any Qt import, so --help is instant), then show the window."""
    start = time.perf_counter()
    args = build_parser().parse_args(argv)
    if args.path and not os.path.exists(args.path):
        print(f"imgclust-desktop: {args.path}: no such file or folder", file=sys.stderr)
        return 2

    from PySide6.QtCore import QCoreApplication, QTimer
    from PySide6.QtWidgets import QApplication

    from imgclust_desktop.gui.main_window import MainWindow

    QCoreApplication.setOrganizationName(ORGANIZATION)
    QCoreApplication.setApplicationName(APPLICATION)
    QCoreApplication.setApplicationVersion(__version__)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = MainWindow()
    window.show()
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
