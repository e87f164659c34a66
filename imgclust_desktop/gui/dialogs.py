"""Small dialogs: About (versions, model licence), errors with details, model download, image viewer."""

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


def _decode_for_viewer(path: str, max_side: int) -> Callable[..., Any]:
    def task(*, on_progress, cancelled, on_event):
        from imgclust_desktop.core.decode import decode

        decoded = decode(path, max_side=max_side, thumb_sizes=())
        return decoded.image, decoded.original_size

    return task


class ImageViewer(QDialog):
    """The original file of one image (decoded off the GUI thread), with its path and cluster."""

    MAX_SIDE = 2048

    def __init__(self, path: str, cluster: str, parent: QWidget | None = None, extra: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle(path.replace("\\", "/").rsplit("/", 1)[-1])
        self.path = path
        self.image: Any = None  # QImage once decoded
        self.picture = QLabel("Loading…")
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setMinimumSize(320, 240)
        self.caption = QLabel()
        self.caption.setTextFormat(Qt.TextFormat.PlainText)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.caption.setWordWrap(True)
        self._lines = [path, f"Cluster: {cluster}"] + ([extra] if extra else [])
        self.caption.setText("\n".join(self._lines))
        close = QPushButton("Close")
        close.clicked.connect(self.accept)
        row = QHBoxLayout()
        row.addWidget(self.caption, 1)
        row.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.picture, 1)
        layout.addLayout(row)
        self.resize(900, 720)
        self.worker = PipelineWorker(_decode_for_viewer(path, self.MAX_SIDE), name="viewer")
        self.worker.finished.connect(self._decoded)
        self.worker.failed.connect(
            lambda message, _d: self.picture.setText(f"Cannot show this image: {message}")
        )
        self.worker.start()

    def _decoded(self, result: tuple[Any, tuple[int, int]]) -> None:
        from PySide6.QtGui import QImage

        array, (width, height) = result
        h, w = array.shape[:2]
        self.image = QImage(array.data, w, h, w * 3, QImage.Format.Format_RGB888).copy()
        self.caption.setText("\n".join(self._lines + [f"{width} x {height} pixels"]))
        self._fit()

    def _fit(self) -> None:
        if self.image is None:
            return
        from PySide6.QtGui import QPixmap

        pixmap = QPixmap.fromImage(self.image).scaled(
            self.picture.size(),
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )
        self.picture.setPixmap(pixmap)

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._fit()

    def done(self, result: int) -> None:
        self.worker.cancel()
        super().done(result)


def ask_text(parent: QWidget, title: str, label: str, text: str = "") -> str | None:
    """A one-line text question (cluster names); None when cancelled."""
    from PySide6.QtWidgets import QInputDialog

    value, ok = QInputDialog.getText(parent, title, label, text=text)
    return value if ok else None
