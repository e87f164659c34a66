"""Similar-image search: from the selection, from an image dragged in from outside the set, or from text.

The query is a feature vector (the mean of several); the session's SimilarityIndex answers it with the top k
or, in significance mode, with every image whose similarity is unusually high (Holm-adjusted p < alpha).
Outside images and text are embedded by the session's own model in a worker thread.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np
from PySide6.QtCore import QSize, Qt, QUrl, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from imgclust_desktop.gui.thumbs import decode_thumbnail, follow_provider, thumbnail_icon
from imgclust_desktop.gui.worker import PipelineWorker

ICON_PX = 96
RowRole = Qt.ItemDataRole.UserRole + 1


class ModelCache:
    """The session's extractor, created once in a worker and kept for later queries."""

    def __init__(self) -> None:
        self.key: tuple | None = None
        self.extractor: Any = None

    def get(self, session: Any, on_progress: Any, cancelled: Any) -> Any:
        from imgclust_desktop.core.models import registry

        params = session.params or {}
        key = (session.model_id, params.get("weights_path"), params.get("layer"), params.get("input_size"))
        if self.key != key or self.extractor is None:
            self.extractor = registry.create(
                session.model_id or registry.DEFAULT_MODEL,
                weights_path=params.get("weights_path"),
                layer=params.get("layer"),
                input_size=params.get("input_size") or None,
                on_progress=on_progress,
                cancelled=cancelled,
            )
            self.key = key
        return self.extractor


def embed_file_task(models: ModelCache, session: Any, path: str) -> Any:
    """A worker task: (feature vector [1, dim], 128 px thumbnail JPEG) of an image file."""

    def task(*, on_progress, cancelled, on_event):
        from imgclust_desktop.core.decode import decode
        from imgclust_desktop.core.features import decode_side, features_from_arrays

        extractor = models.get(session, on_progress, cancelled)
        decoded = decode(path, max_side=decode_side(extractor), thumb_sizes=(128,))
        vector = features_from_arrays([decoded.image], extractor, cancelled=cancelled)
        return _checked(vector, session), decoded.thumbnails.get(128)

    return task


def embed_text_task(models: ModelCache, session: Any, text: str) -> Any:
    def task(*, on_progress, cancelled, on_event):
        extractor = models.get(session, on_progress, cancelled)
        if not getattr(extractor, "has_text", False):
            raise ValueError(f"{session.model_id} has no text encoder: text search needs a CLIP model")
        return _checked(np.asarray(extractor.embed_text([text]), np.float32), session), None

    return task


def _checked(vector: np.ndarray, session: Any) -> np.ndarray:
    if vector.shape[1] != session.features.shape[1]:
        raise ValueError(
            f"the model gives {vector.shape[1]} features but the session holds {session.features.shape[1]}"
        )
    return vector


class SearchPanel(QWidget):
    """Query controls, a k slider / alpha mode, and the results as a thumbnail strip."""

    resultsChanged = Signal(object)  # list[(row, similarity)]
    imageActivated = Signal(int)

    def __init__(self, model: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.models = ModelCache()
        self.worker: PipelineWorker | None = None
        self.results: list[tuple[int, float]] = []
        self.query: np.ndarray | None = None
        self.exclude: list[int] = []
        self.query_label = ""
        self._index: Any = None
        self._index_of: Any = None
        self._items: dict[int, QListWidgetItem] = {}
        self._provider: Any = None
        self.setAcceptDrops(True)

        self.from_selection = QPushButton("Like selection")
        self.from_selection.setToolTip("Images most like the selected ones (their mean look)")
        self.from_selection.clicked.connect(self.search_selection)
        self.from_file = QPushButton("Image file…")
        self.from_file.setToolTip("Find images like a file from anywhere (or drop an image on this panel)")
        self.from_file.clicked.connect(self._choose_file)
        self.text = QLineEdit()
        self.text.setPlaceholderText("Describe what you look for (CLIP models)")
        self.text.returnPressed.connect(lambda: self.search_text(self.text.text()))
        self.mode = QComboBox()
        self.mode.addItem("Top k", "k")
        self.mode.addItem("Significant (alpha)", "alpha")
        self.mode.currentIndexChanged.connect(self._mode_changed)
        self.k_slider = QSlider(Qt.Orientation.Horizontal)
        self.k_slider.setRange(1, 200)
        self.k_slider.setValue(12)
        self.k_slider.setMaximumWidth(160)
        self.k_label = QLabel()
        self.k_slider.valueChanged.connect(self._k_changed)
        self.alpha = QDoubleSpinBox()
        self.alpha.setDecimals(3)
        self.alpha.setRange(0.001, 0.5)
        self.alpha.setSingleStep(0.01)
        self.alpha.setValue(0.05)
        self.alpha.setPrefix("alpha ")
        self.alpha.setVisible(False)
        self.alpha.valueChanged.connect(lambda _v: self.update_results())
        self.select_all = QPushButton("Select all results")
        self.select_all.setToolTip("Make the results the selection, ready for an edit")
        self.select_all.clicked.connect(self.select_results)
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(self.clear)

        controls = QHBoxLayout()
        for widget in (self.from_selection, self.from_file):
            controls.addWidget(widget)
        controls.addWidget(self.text, 1)
        options = QHBoxLayout()
        for widget in (self.mode, self.k_slider, self.k_label, self.alpha):
            options.addWidget(widget)
        options.addStretch(1)
        options.addWidget(self.select_all)
        options.addWidget(self.clear_button)

        self.query_picture = QLabel("Drop an\nimage here")
        self.query_picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.query_picture.setFixedSize(ICON_PX + 16, ICON_PX + 16)
        self.query_picture.setStyleSheet("QLabel { border: 2px dashed #999; color: #666; }")
        self.strip = QListWidget()
        self.strip.setViewMode(QListView.ViewMode.IconMode)
        self.strip.setFlow(QListView.Flow.LeftToRight)
        self.strip.setWrapping(False)
        self.strip.setMovement(QListView.Movement.Static)
        self.strip.setIconSize(QSize(ICON_PX, ICON_PX))
        self.strip.setGridSize(QSize(ICON_PX + 16, ICON_PX + 34))
        self.strip.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)
        self.strip.itemSelectionChanged.connect(self._strip_selected)
        self.strip.itemDoubleClicked.connect(lambda item: self.imageActivated.emit(int(item.data(RowRole))))
        results = QHBoxLayout()
        results.addWidget(self.query_picture)
        results.addWidget(self.strip, 1)
        self.status = QLabel("Select images on the map, drop an image file here, or type a description.")
        self.status.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(controls)
        layout.addLayout(options)
        layout.addLayout(results, 1)
        layout.addWidget(self.status)
        self._k_changed(self.k_slider.value())
        model.changed.connect(self._session_changed)
        self._session_changed()

    # -- queries ----------------------------------------------------------------------------------------
    def search_selection(self) -> None:
        rows = np.asarray(self.model.selection, dtype=np.int64)
        if self.model.session is None or len(rows) == 0:
            self.status.setText("Select one or more images first.")
            return
        self._set_query(self.model.session.features[rows], rows.tolist(), f"{len(rows):,} selected image(s)")
        self.query_picture.setText(f"{len(rows):,}\nselected")

    def search_file(self, path: str) -> None:
        """Query with an image file; one from the set uses its stored features, others go through the model."""
        session = self.model.session
        if session is None:
            self.status.setText("Open a folder or a session first.")
            return
        path = os.path.abspath(path)
        if path in session.paths:
            row = session.paths.index(path)
            self.model.select([row])
            self._set_query(session.features[[row]], [row], os.path.basename(path))
            return
        if not os.path.isfile(path):
            self.status.setText(f"{path} is not a file.")
            return
        self._run(embed_file_task(self.models, session, path), os.path.basename(path))

    def search_text(self, text: str) -> None:
        text = text.strip()
        if self.model.session is None or not text:
            return
        self._run(embed_text_task(self.models, self.model.session, text), f"“{text}”")

    def _run(self, task: Any, label: str) -> None:
        if self.worker is not None:
            self.worker.cancel()
        self.status.setText(f"Reading {label} with {self.model.session.model_id}…")
        job = PipelineWorker(task, name="search")
        self.worker = job
        job.finished.connect(lambda result: job is self.worker and self._embedded(result, label))
        job.failed.connect(
            lambda message, _d: job is self.worker and self.status.setText(f"Search: {message}")
        )
        job.done.connect(lambda: self._job_done(job))
        job.start()

    def _job_done(self, job: PipelineWorker) -> None:
        if job is self.worker:
            self.worker = None

    def _embedded(self, result: tuple[np.ndarray, bytes | None], label: str) -> None:
        vector, jpeg = result
        if jpeg:
            image = decode_thumbnail(jpeg)
            self.query_picture.setPixmap(
                QPixmap.fromImage(image).scaled(
                    ICON_PX, ICON_PX, Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
            )  # fmt: skip
        else:
            self.query_picture.setText(label)
        self._set_query(vector, [], label)

    def _set_query(self, vectors: np.ndarray, exclude: list[int], label: str) -> None:
        self.query, self.exclude, self.query_label = np.asarray(vectors, np.float32), list(exclude), label
        self.update_results()

    # -- results ----------------------------------------------------------------------------------------
    def index(self) -> Any:
        from imgclust_desktop.core.search import SimilarityIndex

        session = self.model.session
        if self._index is None or self._index_of is not session.features:
            self._index, self._index_of = SimilarityIndex(session.features), session.features
        return self._index

    def update_results(self) -> None:
        """Answer the current query with the current k or alpha."""
        session = self.model.session
        if session is None or self.query is None:
            return
        if self.mode.currentData() == "alpha":
            hits = self.index().query_significant(self.query, alpha=self.alpha.value())
            skip = set(self.exclude)
            self.results = [(i, s) for i, s, _p in hits if i not in skip]
        else:
            self.results = self.index().query(self.query, k=self.k_slider.value(), exclude=self.exclude)
        self._fill_strip()
        rows = [r for r, _ in self.results]
        self.model.set_highlight(rows)
        mode = f"alpha {self.alpha.value():g}" if self.mode.currentData() == "alpha" else "top k"
        self.status.setText(f"{len(rows):,} images like {self.query_label} ({mode})")
        self.resultsChanged.emit(self.results)

    def result_rows(self) -> list[int]:
        return [r for r, _ in self.results]

    def select_results(self) -> None:
        """Make the results the selection, ready for an edit (move, exclude…)."""
        if self.results:
            self.model.select(self.result_rows(), "replace")

    def clear(self) -> None:
        self.query, self.results, self.exclude = None, [], []
        self.strip.clear()
        self._items = {}
        self.query_picture.setText("Drop an\nimage here")
        self.model.set_highlight([])
        self.resultsChanged.emit([])

    def _fill_strip(self) -> None:
        session = self.model.session
        self._sync_provider()
        self.strip.blockSignals(True)
        self.strip.clear()
        self._items = {}
        for row, similarity in self.results:
            item = QListWidgetItem(self._icon(row), f"{similarity:.3f}")
            item.setData(RowRole, row)
            item.setToolTip(f"{session.paths[row]}\n{session.name_of(int(session.labels[row]))}")
            item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter)
            self.strip.addItem(item)
            self._items[row] = item
        self.strip.blockSignals(False)

    def _icon(self, row: int) -> QIcon:
        return thumbnail_icon(self._provider, row, ICON_PX)

    def _sync_provider(self) -> None:
        self._provider = follow_provider(self._provider, self.model, self._thumbnail_ready)

    def _thumbnail_ready(self, row: int) -> None:
        item = self._items.get(row)
        if item is not None:
            item.setIcon(self._icon(row))

    def _strip_selected(self) -> None:
        rows = [int(item.data(RowRole)) for item in self.strip.selectedItems()]
        if rows:
            self.model.select(rows, "replace")

    # -- controls ---------------------------------------------------------------------------------------
    def _k_changed(self, value: int) -> None:
        self.k_label.setText(f"k = {value}")
        self.update_results()

    def _mode_changed(self, _index: int) -> None:
        alpha = self.mode.currentData() == "alpha"
        self.alpha.setVisible(alpha)
        self.k_slider.setVisible(not alpha)
        self.k_label.setVisible(not alpha)
        self.update_results()

    def _session_changed(self) -> None:
        session = self.model.session
        has_session = session is not None and not getattr(self.model, "provisional", False)
        for widget in (self.from_selection, self.from_file, self.select_all):
            widget.setEnabled(has_session)
        self.text.setEnabled(has_session and _has_text(session))
        if session is None or (self._index_of is not None and self._index_of is not session.features):
            self.clear()
            self._index = self._index_of = None
        elif self.results:
            self._fill_strip()  # names may have changed

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Find images like…", "", "Images (*.*)")
        if path:
            self.search_file(path)

    # -- drag and drop from outside ---------------------------------------------------------------------
    def dragEnterEvent(self, event: Any) -> None:
        urls = [u for u in event.mimeData().urls() if u.isLocalFile()]
        if len(urls) == 1 and os.path.isfile(urls[0].toLocalFile()):
            event.acceptProposedAction()

    def dropEvent(self, event: Any) -> None:
        urls = [QUrl(u).toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            event.acceptProposedAction()
            self.search_file(urls[0])


def _has_text(session: Any) -> bool:
    return session is not None and _model_has_text(session.model_id)


@functools.lru_cache(maxsize=16)
def _model_has_text(model_id: str) -> bool:
    """A model's family never changes: asked once per model id, not on every edit (the registry looks for
    downloaded weights on disk: ~3 ms of every re-cut)."""
    try:
        from imgclust_desktop.core.models import registry

        return registry.get_info(model_id).family == "clip"
    except Exception:  # an unknown model id (synthetic sessions): no text tower
        return False
