"""Where the app's files and settings live: resources, icons, the settings store, recent sessions.

A leaf module (no Qt at import time, nothing of the window's): the entry point (app.py), the window
(main_window.py) and the self-test (selftest.py) all read it, so none of them imports another back.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

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
