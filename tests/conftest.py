"""Shared fixtures: Qt runs offscreen, and every test session gets its own cache and settings folders."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Set before Qt or the core read them: no window on screen, no writes to the person's real cache.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="imgclust-tests-"))
os.environ["IMGCLUST_CACHE_DIR"] = str(_SESSION_DIR / "cache")
os.environ["IMGCLUST_DATA_DIR"] = str(_SESSION_DIR / "data")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def isolated_qsettings():
    """Point every QSettings (INI, user and system scope) at a temporary folder for the test session."""
    from PySide6.QtCore import QCoreApplication, QSettings

    QCoreApplication.setOrganizationName("imgclust-tests")
    QCoreApplication.setApplicationName("imgclust-desktop-tests")
    for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
        QSettings.setPath(QSettings.Format.IniFormat, scope, str(_SESSION_DIR / "settings"))
    yield _SESSION_DIR / "settings"


@pytest.fixture
def settings(tmp_path):
    """A QSettings file of this test's own, so one test's window state cannot leak into another's."""
    from PySide6.QtCore import QSettings

    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


def write_groups(root: Path, groups: int = 3, per_group: int = 8, size: int = 48, seed: int = 0) -> Path:
    """Write `groups` visually distinct folders of small PNGs (a colour and a pattern each) under root."""
    rng = np.random.default_rng(seed)
    colours = [(220, 40, 40), (40, 180, 60), (40, 70, 220), (230, 200, 40), (160, 60, 200)]
    yy, xx = np.mgrid[0:size, 0:size]
    patterns = [
        (xx // 6) % 2 == 0,  # vertical stripes
        ((xx // 8) + (yy // 8)) % 2 == 0,  # checkerboard
        (xx - size / 2) ** 2 + (yy - size / 2) ** 2 < (size / 3) ** 2,  # disc
        (yy // 6) % 2 == 0,
        xx > yy,
    ]
    for g in range(groups):
        folder = root / f"group{g}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_group):
            base = np.full((size, size, 3), 245, np.float32)
            base[patterns[g % len(patterns)]] = colours[g % len(colours)]
            noisy = base + rng.normal(0, 12, base.shape)
            Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(folder / f"img{i:02d}.png")
    return root


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """3 groups x 8 tiny generated images."""
    return write_groups(tmp_path / "images")
