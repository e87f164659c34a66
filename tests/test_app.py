"""The entry point: argument handling before Qt, fast startup without heavy imports, the empty state."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from imgclust_desktop import __version__
from imgclust_desktop.gui import app, app_paths

HEAVY = ("torch", "umap", "sklearn", "hdbscan")


def run_module(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "imgclust_desktop", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_help_and_version_work_without_a_display():
    # No QT_QPA_PLATFORM here: argparse runs before Qt, so these work on a headless server.
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    help_run = subprocess.run(
        [sys.executable, "-m", "imgclust_desktop", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert help_run.returncode == 0
    assert "usage: imgclust-desktop" in help_run.stdout and "session folder" in help_run.stdout
    version_run = run_module("--version")
    assert version_run.returncode == 0 and version_run.stdout.strip() == f"imgclust-desktop {__version__}"


def test_missing_path_is_reported_not_crashed(tmp_path, capsys):
    assert app.main([str(tmp_path / "nope")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_window_shows_without_heavy_imports(tmp_path):
    """Start the real entry point in a fresh process; it reports once the window has painted.

    How fast is a benchmark's job (bench/gui.py, IMGCLUST_EXIT_AFTER_SHOWN), not a timed test's: what
    must hold everywhere is that torch, UMAP, sklearn and hdbscan wait until a run needs them."""
    env = {"IMGCLUST_EXIT_AFTER_SHOWN": "1", "XDG_CONFIG_HOME": str(tmp_path), "HOME": str(tmp_path)}
    start = time.perf_counter()
    result = run_module(env=env)
    wall = time.perf_counter() - start
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("shown "))
    _, seconds, heavy = line.split()
    assert heavy == "heavy=-", f"imported at startup: {heavy}"
    assert 0 < float(seconds) < wall


def test_demo_folder_in_a_checkout_and_in_a_bundle(monkeypatch, tmp_path):
    repo = Path(__file__).resolve().parents[1]
    assert app_paths.demo_folder() == repo / "resources" / "demo"
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert app_paths.demo_folder() == tmp_path / "resources" / "demo"


def test_empty_state_invites_a_drop(qtbot, settings):
    from imgclust_desktop.gui.main_window import MainWindow

    window = MainWindow(settings)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    assert window.central.currentWidget() is window.empty
    assert "Drop a folder" in window.empty.headline.text()
    assert window.empty.open_folder.isVisible() and window.empty.open_session.isVisible()
    assert window.empty.demo.isEnabled() == app_paths.demo_folder().is_dir()
    assert window.acceptDrops()
    assert not window.save_action.isEnabled() and not window.cancel_action.isEnabled()
    assert window.status_label.text() == "Ready"
