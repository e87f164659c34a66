"""`imgclust-desktop --self-test`: the real window clusters the demo images offscreen, then reports.

A bundle (or a source checkout) can be checked on a machine without a display: this drives the same
MainWindow, worker thread and pipeline a person uses, with a throwaway cache, data and settings folder so
the person's own ones are never read or written, and exits 0 with one summary line or 1 with the reason.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

# What a bundle must be able to read: the decoders come from Qt's imageformats plugins (jpeg, gif are
# built in or plugins depending on the build; webp and tiff are always plugins and easy to leave out).
REQUIRED_QT_FORMATS = ("jpeg", "png", "webp", "tiff")
DEFAULT_TIMEOUT_S = 900.0


class SelfTestError(Exception):
    """A self-test step that did not do what it must; str(e) is the reason printed to the person."""


def run_self_test(folder: str | os.PathLike | None = None, *, timeout: float = DEFAULT_TIMEOUT_S) -> int:
    """Cluster `folder` (default: the bundled demo images) in an offscreen window; 0 when it worked."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="imgclust-self-test-") as scratch:
        try:
            what, stages = _run(Path(folder) if folder else None, Path(scratch), timeout)
        except SelfTestError as error:
            print(f"self-test FAILED: {error}", file=sys.stderr, flush=True)
            return 1
        except Exception as error:  # an import or plugin failure in a bundle must still say what broke
            print(f"self-test FAILED: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
            return 1
    print(f"self-test ok: {what}, {time.perf_counter() - started:.1f} s [{stages}]", flush=True)
    return 0


def _run(folder: Path | None, scratch: Path, timeout: float) -> tuple[str, str]:
    """(what ran, per-stage seconds) or SelfTestError."""
    # Offscreen unless the caller chose a platform: the check needs no display and shows nothing.
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    # A fresh cache makes the model really run, and nothing of the person's is read or overwritten.
    os.environ["IMGCLUST_CACHE_DIR"] = str(scratch / "cache")
    os.environ["IMGCLUST_DATA_DIR"] = str(scratch / "data")

    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtGui import QImageReader
    from PySide6.QtWidgets import QApplication

    from imgclust_desktop.gui.app_paths import demo_folder
    from imgclust_desktop.gui.display import explain_platform_failure
    from imgclust_desktop.gui.main_window import MainWindow

    source = folder or demo_folder()
    if not source.is_dir():
        raise SelfTestError(f"image folder {source} is missing")
    with explain_platform_failure():
        app = QApplication.instance() or QApplication(sys.argv[:1])
    readable = {bytes(f).decode() for f in QImageReader.supportedImageFormats()}
    missing = [f for f in REQUIRED_QT_FORMATS if f not in readable]
    if missing:
        raise SelfTestError(f"Qt cannot read {', '.join(missing)} (imageformats plugins missing)")

    settings = QSettings(str(scratch / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings)
    window.show()
    window.start_run([str(source)])
    job = window.worker
    if job is None:
        raise SelfTestError(f"the window did not start a run: {window.status_label.text()}")
    outcome: dict[str, str] = {}
    job.failed.connect(lambda message, details: outcome.setdefault("failed", message))
    job.cancelled.connect(lambda: outcome.setdefault("failed", "the run was cancelled"))
    job.done.connect(app.quit)

    def give_up() -> None:
        outcome.setdefault("failed", f"no result after {timeout:.0f} s")
        job.cancel()
        app.quit()

    QTimer.singleShot(int(timeout * 1000), give_up)
    app.exec()
    if "failed" in outcome:
        raise SelfTestError(outcome["failed"])
    session = window.model.session
    if session is None:
        raise SelfTestError("the run ended without a session")
    images, clusters = len(session.paths), window.model.cluster_count()
    if clusters < 1:
        raise SelfTestError(f"{images} images but no clusters found")
    if window.grab().isNull():
        raise SelfTestError("the window could not be drawn")
    device = session.params.get("device", "?")
    window.close()
    stages = ", ".join(
        f"{name} {seconds:.1f}" for name, seconds in session.timings.items() if name != "total"
    )
    return (
        f"{images} images, {clusters} clusters ({session.model_id} on {device}, Qt {app.platformName()})",
        f"{stages} s",
    )
