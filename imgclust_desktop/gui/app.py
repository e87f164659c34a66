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


def resource_root() -> Path:
    """Where resources/ and icons/ are: the source checkout, or sys._MEIPASS inside a PyInstaller bundle."""
    bundle = getattr(sys, "_MEIPASS", None)
    return Path(bundle) if bundle else Path(__file__).resolve().parents[2]


def demo_folder() -> Path:
    """The bundled demo images: resources/demo in a source checkout or inside a PyInstaller bundle."""
    return resource_root() / "resources" / "demo"


def icon_files() -> list[Path]:
    """The application icon's PNG sizes (icons/png/imgclust-<size>.png), smallest first."""
    files = (resource_root() / "icons" / "png").glob("imgclust-*.png")
    return sorted(files, key=lambda p: (len(p.stem), p.stem))  # imgclust-16 before imgclust-128


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
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="cluster the bundled demo images (or the given folder) in an offscreen window, print one summary line "
        "and exit: 0 when everything works, 1 with the reason when not",
    )
    return parser


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

    from imgclust_desktop.gui.main_window import MainWindow

    QCoreApplication.setOrganizationName(ORGANIZATION)
    QCoreApplication.setApplicationName(APPLICATION)
    QCoreApplication.setApplicationVersion(__version__)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    icon = QIcon()
    for path in icon_files():
        icon.addFile(str(path))
    app.setWindowIcon(icon)
    QGuiApplication.setDesktopFileName(APPLICATION)  # matches packaging/imgclust-desktop.desktop (Wayland)
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
