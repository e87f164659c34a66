"""Run settings: model, map, clustering and its parameters; knows which changes need re-extraction."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

EMBEDDINGS = [("umap", "UMAP"), ("tsne", "t-SNE"), ("pca", "PCA")]
METHODS = [
    ("tree", "Cluster tree (any number of groups)"),  # the core default: re-cut without re-clustering
    ("kmeans", "k-means (automatic k)"),
    ("hdbscan", "HDBSCAN (density, finds k itself)"),
    ("kmedoids", "k-medoids"),
    ("agglomerative", "Agglomerative (hierarchical)"),
    ("dbscan", "DBSCAN"),
    ("optics", "OPTICS"),
    ("gmm", "Gaussian mixture"),
]
CRITERIA = [
    ("silhouette", "Silhouette"),
    ("davies_bouldin", "Davies-Bouldin"),
    ("calinski_harabasz", "Calinski-Harabasz"),
    ("elbow", "Elbow"),
]
LINKAGES = [("ward", "Ward"), ("average", "Average"), ("complete", "Complete"), ("single", "Single")]
SPACES = [("umap", "Low-dimensional UMAP space"), ("reduced", "PCA space")]
DEVICES = [("auto", "Automatic"), ("cpu", "CPU"), ("cuda", "CUDA GPU"), ("mps", "Apple GPU (MPS)")]
TAKES_K = {"tree", "kmeans", "kmedoids", "agglomerative", "gmm"}
EXTRACTION_KEYS = ("model_id", "weights_path", "embedding", "pca_components", "seed", "device")


def _combo(items: list[tuple[str, str]]) -> QComboBox:
    box = QComboBox()
    # Long item texts must not widen the dock: the closed box elides, the open list shows them whole.
    box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    box.setMinimumContentsLength(10)
    for value, text in items:
        box.addItem(text, value)
    return box


def _spin(low: int, high: int, value: int, special: str | None = None) -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setValue(value)
    if special:
        box.setSpecialValueText(special)  # shown at the minimum: "auto"
    return box


class SettingsPanel(QWidget):
    """Every run setting; `applyRequested` when the person presses Run / Re-cluster."""

    applyRequested = Signal()
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.models: dict[str, Any] = {}  # id -> core.models.registry.ModelInfo
        self.model = _combo([])
        self.model_note = QLabel()
        self.model_note.setWordWrap(True)
        self.model_note.setStyleSheet("color: palette(mid)")
        self.weights = QLineEdit()
        self.weights.setPlaceholderText("bundled / downloaded weights")
        browse = QToolButton()
        browse.setText("…")
        browse.setToolTip("Use a local weights file")
        browse.clicked.connect(self.choose_weights_file)
        self.device = _combo(DEVICES)
        self.embedding = _combo(EMBEDDINGS)
        self.pca = _spin(0, 1024, 50, "off")
        self.seed = _spin(0, 2**31 - 1, 0)
        self.method = _combo(METHODS)
        self.auto_k = QCheckBox("choose k automatically")
        self.auto_k.setChecked(True)
        self.k = _spin(2, 1000, 8)
        self.k_min = _spin(2, 1000, 2)
        self.k_max = _spin(2, 1000, 25)
        self.criterion = _combo(CRITERIA)
        self.linkage = _combo(LINKAGES)
        self.min_cluster_size = _spin(1, 100000, 1, "auto")
        self.min_cluster_size.setToolTip("HDBSCAN's smallest cluster; auto tries 0.5-5 % of the images")
        self.keep_noise = QCheckBox("leave uncertain images unassigned")
        self.keep_noise.setToolTip(
            "HDBSCAN: images between groups stay out of every cluster (noise) instead of joining the nearest"
        )
        self.eps = QDoubleSpinBox()
        self.eps.setRange(0.0, 1000.0)
        self.eps.setDecimals(3)
        self.eps.setSingleStep(0.05)
        self.eps.setSpecialValueText("auto")
        self.space = _combo(SPACES)
        self.run_button = QPushButton("Run")
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(self.applyRequested)

        weights_row = QHBoxLayout()
        weights_row.setContentsMargins(0, 0, 0, 0)
        weights_row.addWidget(self.weights, 1)
        weights_row.addWidget(browse)
        features = QFormLayout()
        features.addRow("Model:", self.model)
        features.addRow("", self.model_note)
        features.addRow("Weights file:", weights_row)
        features.addRow("Device:", self.device)
        features.addRow("PCA dims:", self.pca)
        features.addRow("Map:", self.embedding)
        features.addRow("Seed:", self.seed)
        k_range = QHBoxLayout()
        k_range.setContentsMargins(0, 0, 0, 0)
        k_range.addWidget(self.k_min)
        k_range.addWidget(QLabel("to"))
        k_range.addWidget(self.k_max)
        clustering = QFormLayout()
        clustering.addRow("Method:", self.method)
        clustering.addRow("", self.auto_k)
        clustering.addRow("k:", self.k)
        clustering.addRow("k range:", k_range)
        clustering.addRow("Criterion:", self.criterion)
        clustering.addRow("Linkage:", self.linkage)
        clustering.addRow("Min size:", self.min_cluster_size)
        clustering.addRow("", self.keep_noise)
        clustering.addRow("eps:", self.eps)
        clustering.addRow("Cluster in:", self.space)
        self._k_widgets = [self.k, self.k_min, self.k_max, self.criterion, self.auto_k]

        body = QWidget()
        layout = QVBoxLayout(body)
        for title, form in (("Features and map", features), ("Clustering", clustering)):
            group = QGroupBox(title)
            group.setLayout(form)
            layout.addWidget(group)
        layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(body)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # wrap, never side-scroll
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 0, 6, 6)
        outer.addWidget(scroll, 1)
        outer.addWidget(self.run_button)

        self.populate_models()
        for box in (
            self.model,
            self.device,
            self.embedding,
            self.method,
            self.criterion,
            self.linkage,
            self.space,
        ):
            box.currentIndexChanged.connect(self._on_changed)
        for spin in (self.pca, self.seed, self.k, self.k_min, self.k_max, self.min_cluster_size, self.eps):
            spin.valueChanged.connect(self._on_changed)
        self.auto_k.toggled.connect(self._on_changed)
        self.keep_noise.toggled.connect(self._on_changed)
        self.weights.textChanged.connect(self._on_changed)
        self._on_changed()

    def populate_models(self) -> None:
        """Fill the model list from the registry, marking models whose weights must be downloaded."""
        from imgclust_desktop.core.models import registry

        current = self.model.currentData()
        self.model.blockSignals(True)
        self.model.clear()
        self.models = {info.id: info for info in registry.list_models()}
        for info in self.models.values():
            suffix = "  (needs download)" if info.needs_download else ""
            self.model.addItem(info.display_name + suffix, info.id)
            self.model.setItemData(self.model.count() - 1, info.description, Qt.ItemDataRole.ToolTipRole)
        index = self.model.findData(current or registry.DEFAULT_MODEL)
        self.model.setCurrentIndex(max(index, 0))
        self.model.blockSignals(False)

    def selected_model(self) -> Any:
        """The ModelInfo of the chosen model."""
        return self.models.get(self.model.currentData())

    def choose_weights_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Use a local weights file", "", "Weights (*.pt *.pth *.bin *.safetensors);;All files (*)"
        )
        if path:
            self.weights.setText(path)

    def _on_changed(self, *_: object) -> None:
        method = self.method.currentData()
        takes_k = method in TAKES_K
        for widget in self._k_widgets:
            widget.setEnabled(takes_k)
        if takes_k:
            self.k.setEnabled(not self.auto_k.isChecked())
            for widget in (self.k_min, self.k_max, self.criterion):
                widget.setEnabled(self.auto_k.isChecked())
        self.linkage.setEnabled(method == "agglomerative")
        self.min_cluster_size.setEnabled(method == "hdbscan")
        self.keep_noise.setEnabled(method == "hdbscan")
        self.eps.setEnabled(method in ("dbscan", "optics"))
        info = self.selected_model()
        if info is not None:
            small = ""
            if info.family == "efficientnet":  # the pipeline's small-image pass (core/pipeline.choose_input)
                from imgclust_desktop.core.pipeline import SMALL_SOURCE_EDGE

                small = f" (images of {SMALL_SOURCE_EDGE} px or less: fewer, from a middle layer)"
            note = f"{info.dim}-d features{small} · licence: {info.licence}"
            if info.needs_download and not self.weights.text().strip():
                note += " · weights will be downloaded once"
            self.model_note.setText(note)
        self.changed.emit()

    def extraction_fields(self) -> dict:
        """PipelineRequest fields other than inputs and cluster (changing these needs a full run)."""
        pca = self.pca.value()
        return {
            "model_id": self.model.currentData(),
            "weights_path": self.weights.text().strip() or None,
            "embedding": self.embedding.currentData(),
            "pca_components": pca or None,
            "seed": self.seed.value(),
            "device": self.device.currentData(),
        }

    def cluster_fields(self) -> dict:
        """ClusterParams fields as plain data (built into ClusterParams off the GUI thread)."""
        method = self.method.currentData()
        k_low, k_high = sorted((self.k_min.value(), self.k_max.value()))
        fixed_k = method in TAKES_K and not self.auto_k.isChecked()
        return {
            "method": method,
            "k": self.k.value() if fixed_k else None,
            "k_range": (k_low, max(k_high, k_low + 1)),
            "criterion": self.criterion.currentData(),
            "linkage": self.linkage.currentData(),
            "space": self.space.currentData(),
            "min_cluster_size": self.min_cluster_size.value() if self.min_cluster_size.value() > 1 else None,
            "eps": self.eps.value() or None,
            "assign_noise": not self.keep_noise.isChecked(),
            "seed": self.seed.value(),
        }

    def set_run_label(self, recluster: bool) -> None:
        """Say what pressing the button will do: a quick re-cluster or a full run."""
        self.run_button.setText("Re-cluster" if recluster else "Run")

    def save(self, settings: QSettings) -> None:
        """Remember every setting under the "run/" group."""
        settings.beginGroup("run")
        for key, box in self._combos().items():
            settings.setValue(key, box.currentData())
        for key, spin in self._spins().items():
            settings.setValue(key, spin.value())
        settings.setValue("auto_k", self.auto_k.isChecked())
        settings.setValue("keep_noise", self.keep_noise.isChecked())
        settings.setValue("weights_path", self.weights.text())
        settings.endGroup()

    def restore(self, settings: QSettings) -> None:
        """Bring back what save() stored; unknown or stale values are ignored."""
        settings.beginGroup("run")
        for key, box in self._combos().items():
            index = box.findData(settings.value(key))
            if index >= 0:
                box.setCurrentIndex(index)
        for key, spin in self._spins().items():
            value = settings.value(key)
            try:
                if value is not None:
                    spin.setValue(type(spin.value())(value))
            except (TypeError, ValueError):
                pass
        self.auto_k.setChecked(str(settings.value("auto_k", True)).lower() in ("true", "1"))
        self.keep_noise.setChecked(str(settings.value("keep_noise", False)).lower() in ("true", "1"))
        self.weights.setText(str(settings.value("weights_path", "") or ""))
        settings.endGroup()

    def _combos(self) -> dict[str, QComboBox]:
        return {
            "model_id": self.model,
            "device": self.device,
            "embedding": self.embedding,
            "method": self.method,
            "criterion": self.criterion,
            "linkage": self.linkage,
            "space": self.space,
        }

    def _spins(self) -> dict[str, QSpinBox | QDoubleSpinBox]:
        return {
            "pca": self.pca,
            "seed": self.seed,
            "k": self.k,
            "k_min": self.k_min,
            "k_max": self.k_max,
            "min_cluster_size": self.min_cluster_size,
            "eps": self.eps,
        }
