"""Segment one image by colour: the original beside its class map, a legend of classes, save as PNG.

The decoding and the k-means run in a PipelineWorker (core.pixels), never on the GUI thread.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QImage, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from imgclust_desktop.gui.worker import PipelineWorker

PREVIEW_SIDE = 1600  # long edge of the pictures shown; the class map is saved at full size
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.tif *.tiff *.bmp *.webp *.gif *.heic);;All files (*)"


def to_qimage(rgb: np.ndarray, side: int = PREVIEW_SIDE) -> QImage:
    """An RGB uint8 array as a QImage (a copy), shrunk so its long edge is at most `side`."""
    height, width = rgb.shape[:2]
    step = max(1, int(np.ceil(max(height, width) / side)))
    small = np.ascontiguousarray(rgb[::step, ::step, :3])
    image = QImage(small.data, small.shape[1], small.shape[0], small.strides[0], QImage.Format.Format_RGB888)
    return image.copy()


class ScaledPicture(QLabel):
    """A label that shows its pixmap scaled to fit, aspect kept."""

    def __init__(self, placeholder: str) -> None:
        super().__init__(placeholder)
        self._source: QPixmap | None = None
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(200, 150)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_image(self, image: QImage) -> None:
        self._source = QPixmap.fromImage(image)
        self._rescale()

    def source_pixmap(self) -> QPixmap | None:
        return self._source

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        if self._source is not None:
            self.setPixmap(
                self._source.scaled(
                    self.size(),
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
            )


class PixelsPanel(QWidget):
    """Open an image, choose k (or automatic), see the class map and legend, save the map as PNG."""

    segmented = Signal(object)  # core.pixels.PixelClusters

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Segment image by colour")
        self.image_path: str | None = None
        self.image: np.ndarray | None = None
        self.result: Any = None
        self.worker: PipelineWorker | None = None

        self.open_button = QPushButton("Open image…")
        self.k_spin = QSpinBox()
        self.k_spin.setRange(2, 64)
        self.k_spin.setValue(4)
        self.k_spin.setPrefix("k = ")
        self.auto_k = QCheckBox("Choose k automatically")
        self.auto_k.setToolTip("Tries k = 2…10 on a sample of pixels and keeps the best silhouette")
        self.run_button = QPushButton("Segment")
        self.save_button = QPushButton("Save class map as PNG…")
        self.status = QLabel("Open an image to segment it by its colours.")
        controls = QHBoxLayout()
        for widget in (self.open_button, self.k_spin, self.auto_k, self.run_button, self.save_button):
            controls.addWidget(widget)
        controls.addStretch(1)

        self.original_view = ScaledPicture("Original")
        self.class_view = ScaledPicture("Class map")
        self.legend = QTableWidget(0, 3)
        self.legend.setHorizontalHeaderLabels(["Class", "Colour", "Area"])
        self.legend.verticalHeader().setVisible(False)
        self.legend.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        header = self.legend.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.legend.setMinimumWidth(230)
        self.legend.setMaximumWidth(320)
        splitter = QSplitter()
        for widget in (self.original_view, self.class_view, self.legend):
            splitter.addWidget(widget)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 3)
        splitter.setStretchFactor(2, 1)

        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.status)
        self.open_button.clicked.connect(self.choose_image)
        self.run_button.clicked.connect(self.run)
        self.save_button.clicked.connect(self.choose_save_path)
        self.auto_k.toggled.connect(lambda on: self.k_spin.setEnabled(not on))
        self.resize(1200, 600)
        self._update_buttons()

    # ---- actions
    def choose_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open an image to segment", "", IMAGE_FILTER)
        if path:
            self.open_image(path)

    def open_image(self, path: str) -> None:
        """Decode the image in the worker; the original appears when it is ready."""
        from imgclust_desktop.core.pixels import load_image

        def task(*, on_progress, cancelled, on_event):
            return load_image(path)

        def loaded(image: np.ndarray) -> None:
            self.image_path, self.image, self.result = path, image, None
            self.original_view.set_image(to_qimage(image))
            self.class_view.clear()
            self.class_view.setText("Class map")
            self.legend.setRowCount(0)
            height, width = image.shape[:2]
            self.status.setText(f"{os.path.basename(path)}: {width} × {height} pixels. Choose k and Segment.")

        self._start(task, f"Opening {os.path.basename(path)}…", loaded)

    def run(self) -> None:
        """Cluster the colours of the open image with the chosen k (or automatic k) in the worker."""
        from imgclust_desktop.core.pixels import cluster_pixels

        if self.image is None:
            self.status.setText("Open an image first.")
            return
        image, k = self.image, None if self.auto_k.isChecked() else self.k_spin.value()
        self.result = None

        def task(*, on_progress, cancelled, on_event):
            return cluster_pixels(image, k, on_progress=on_progress, cancelled=cancelled)

        self._start(
            task,
            "Choosing k and segmenting…" if k is None else f"Segmenting into {k} classes…",
            self.show_result,
        )

    def show_result(self, result: Any) -> None:
        from imgclust_desktop.core.pixels import class_map_image, legend_rows

        self.result = result
        self.class_view.set_image(to_qimage(class_map_image(result)))
        rows = legend_rows(result)
        self.legend.setRowCount(len(rows))
        for row, (cls, hex_colour, share) in enumerate(rows):
            swatch = QTableWidgetItem(hex_colour)
            swatch.setBackground(QColor(hex_colour))
            swatch.setForeground(QColor("white" if QColor(hex_colour).lightnessF() < 0.5 else "black"))
            self.legend.setItem(row, 0, QTableWidgetItem(str(cls)))
            self.legend.setItem(row, 1, swatch)
            self.legend.setItem(row, 2, QTableWidgetItem(f"{share * 100:.1f}%"))
        how = " (chosen by silhouette)" if result.k_curve else ""
        self.status.setText(f"{result.k} colour classes{how} in {result.seconds:.1f} s.")
        self.segmented.emit(result)

    def choose_save_path(self) -> None:
        if self.result is None:
            return
        stem = os.path.splitext(os.path.basename(self.image_path or "image"))[0]
        path, _ = QFileDialog.getSaveFileName(self, "Save class map", f"{stem}-classes.png", "PNG (*.png)")
        if path:
            self.save_class_map(path if path.lower().endswith(".png") else path + ".png")

    def save_class_map(self, path: str) -> None:
        """Write the full-size class map (and a legend PNG beside it) for the current result."""
        from imgclust_desktop.core.pixels import save_class_map

        if self.result is None:
            return
        legend = os.path.splitext(path)[0] + "-legend.png"
        try:
            save_class_map(self.result, path, legend_path=legend)
        except OSError as exc:
            QMessageBox.warning(self, "Cannot save the class map", f"{path}: {exc.strerror or exc}")
            return
        self.status.setText(f"Saved {path} and {os.path.basename(legend)}.")

    # ---- the worker
    def _start(self, task: Any, text: str, on_finished: Any) -> None:
        if self.worker is not None:
            self.worker.cancel()
        job = PipelineWorker(task, name="pixels")
        self.worker = job
        job.finished.connect(lambda result: job is self.worker and on_finished(result))
        job.failed.connect(lambda message, details: job is self.worker and self._failed(message))
        job.progressed.connect(lambda p: job is self.worker and self.status.setText(f"{text} {p.message}"))
        job.done.connect(lambda: self._done(job))
        self.status.setText(text)
        job.start()
        self._update_buttons()

    def _failed(self, message: str) -> None:
        self.status.setText(f"Failed: {message}")

    def _done(self, job: PipelineWorker) -> None:
        if job is self.worker:
            self.worker = None
        self._update_buttons()

    def _update_buttons(self) -> None:
        busy = self.worker is not None
        self.run_button.setEnabled(self.image is not None and not busy)
        self.save_button.setEnabled(self.result is not None and not busy)

    def closeEvent(self, event: Any) -> None:
        if self.worker is not None:
            self.worker.cancel()
        super().closeEvent(event)
