"""Small dialogs: About (versions, model licence), errors with details, model download."""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable
from typing import Any

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import Qt, qVersion
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from imgclust_desktop import __version__
from imgclust_desktop.core.progress import Progress
from imgclust_desktop.gui.worker import PipelineWorker


def versions() -> dict[str, str]:
    """Versions of the app and the libraries it runs on; torch only if something already loaded it."""
    torch = sys.modules.get("torch")  # never import torch just to show a version: that costs seconds
    return {
        "imgclust-desktop": __version__,
        "Python": platform.python_version(),
        "Qt": qVersion(),
        "PySide6": pyside_version,
        "torch": getattr(torch, "__version__", "not loaded yet") if torch else "not loaded yet",
    }


def about_text(model: Any = None) -> str:
    """Rich text for the About box: versions and the current model's licence."""
    rows = "".join(f"<tr><td>{k}</td><td>&nbsp;{v}</td></tr>" for k, v in versions().items())
    model_html = ""
    if model is not None:
        model_html = f"<p><b>Model:</b> {model.display_name}<br>Licence: {model.licence}</p>"
    return (
        "<h3>imgclust-desktop</h3>"
        "<p>Turn a folder of images into an explorable map of visual groups, curate them and export.</p>"
        f"<table>{rows}</table>{model_html}"
        "<p>Your files are never modified: export copies, links or moves with an undo manifest.</p>"
    )


def show_about(parent: QWidget, model: Any = None) -> QMessageBox:
    """Open the About box (non-modal) and return it."""
    box = QMessageBox(parent)
    box.setWindowTitle("About imgclust-desktop")
    box.setTextFormat(Qt.TextFormat.RichText)
    box.setText(about_text(model))
    box.setIcon(QMessageBox.Icon.Information)
    box.setModal(False)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.show()
    return box


def show_error(parent: QWidget, title: str, message: str, details: str = "") -> QMessageBox:
    """A non-modal error box: the message up front, the traceback behind "Show Details…"."""
    box = QMessageBox(parent)
    box.setWindowTitle(title)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setText(message)
    if details:
        box.setDetailedText(details)
    box.setModal(False)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.show()
    return box


def _create_model(model_id: str) -> Callable[..., Any]:
    def task(*, on_progress, cancelled, on_event):
        from imgclust_desktop.core.models import registry

        return registry.create(model_id, device="cpu", on_progress=on_progress, cancelled=cancelled)

    return task


class ModelDownloadDialog(QDialog):
    """Asks before downloading a model's weights; downloads with progress and Cancel, or takes a local file."""

    def __init__(
        self,
        model: Any,
        parent: QWidget | None = None,
        task_factory: Callable[[str], Callable[..., Any]] = _create_model,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Model weights needed")
        self.model = model
        self.weights_path: str | None = None  # set when the person picks a local file instead
        self.worker: PipelineWorker | None = None
        self._task_factory = task_factory
        self.message = QLabel(
            f"<b>{model.display_name}</b> needs its weights, which are not on this computer yet.<br>"
            f"Licence: {model.licence}.<br>Download them once into the cache, or use a weights file you have."
        )
        self.message.setWordWrap(True)
        self.status = QLabel("")
        self.bar = QProgressBar()
        self.bar.setVisible(False)
        self.download_button = QPushButton("Download")
        self.local_button = QPushButton("Use a local weights file…")
        self.cancel_button = QPushButton("Cancel")
        self.download_button.clicked.connect(self.start_download)
        self.local_button.clicked.connect(self.choose_local_file)
        self.cancel_button.clicked.connect(self.cancel)
        buttons = QHBoxLayout()
        buttons.addWidget(self.local_button)
        buttons.addStretch(1)
        buttons.addWidget(self.download_button)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        layout.addWidget(self.bar)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        self.resize(460, self.sizeHint().height())

    def start_download(self) -> None:
        """Fetch the weights in a worker thread; the dialog accepts when they are in the cache."""
        self.download_button.setEnabled(False)
        self.local_button.setEnabled(False)
        self.bar.setVisible(True)
        self.bar.setRange(0, 0)
        self.status.setText("Connecting…")
        self.worker = PipelineWorker(self._task_factory(self.model.id), name="download")
        self.worker.progressed.connect(self._on_progress)
        self.worker.finished.connect(lambda _extractor: self.accept())
        self.worker.cancelled.connect(lambda: self._stopped("Download cancelled."))
        self.worker.failed.connect(lambda message, _details: self._stopped(f"Download failed: {message}"))
        self.worker.start()

    def _on_progress(self, p: Progress) -> None:
        if p.total:
            # QProgressBar holds an int: count in KiB so files over 2 GiB still fit.
            self.bar.setRange(0, max(1, p.total // 1024))
            self.bar.setValue(p.done // 1024)
            rate = f" at {p.rate / 1e6:.1f} MB/s" if p.rate else ""
            self.status.setText(f"{p.done / 1e6:.1f} of {p.total / 1e6:.1f} MB{rate}")
        else:
            self.status.setText(p.message or p.stage)

    def _stopped(self, message: str) -> None:
        self.worker = None
        self.bar.setVisible(False)
        self.status.setText(message)
        self.download_button.setEnabled(True)
        self.local_button.setEnabled(True)

    def choose_local_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Use a local weights file", "", "Weights (*.pt *.pth *.bin *.safetensors);;All files (*)"
        )
        if path:
            self.weights_path = path
            self.accept()

    def cancel(self) -> None:
        """Stop a download in progress, or close the dialog when none is running."""
        if self.worker is not None and self.worker.is_running():
            self.status.setText("Cancelling…")
            self.worker.cancel()
        else:
            self.reject()

    def reject(self) -> None:
        if self.worker is not None and self.worker.is_running():
            self.worker.cancel()  # Escape / window close while downloading: stop the download too
        super().reject()
