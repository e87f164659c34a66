"""Cluster palette shared by every view: noise grey, 50 distinct colours, then cycling."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtGui import QColor

from ..core.palette import NOISE_HEX, PALETTE_HEX


def _hex_to_rgb(value: str) -> tuple[int, int, int]:
    return int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16)


PALETTE_RGB = np.array([_hex_to_rgb(h) for h in PALETTE_HEX], dtype=np.uint8)
NOISE_RGB = np.array(_hex_to_rgb(NOISE_HEX), dtype=np.uint8)


def cluster_rgb(cluster_id: int) -> tuple[int, int, int]:
    """RGB of one cluster id; -1 (noise) and other negatives are grey."""
    if cluster_id < 0:
        return tuple(int(v) for v in NOISE_RGB)
    return tuple(int(v) for v in PALETTE_RGB[cluster_id % len(PALETTE_RGB)])


def cluster_color(cluster_id: int) -> QColor:
    """QColor of one cluster id (noise grey)."""
    return QColor(*cluster_rgb(cluster_id))


def group_rgb(group_index: int) -> tuple[int, int, int]:
    """RGB of the n-th category of any grouping (folders, ...): same palette, no grey."""
    return tuple(int(v) for v in PALETTE_RGB[group_index % len(PALETTE_RGB)])


def labels_rgb(labels: np.ndarray) -> np.ndarray:
    """uint8 [n, 3] colours for an array of cluster labels."""
    labels = np.asarray(labels)
    out = PALETTE_RGB[np.mod(labels, len(PALETTE_RGB))]
    out[labels < 0] = NOISE_RGB
    return out


def ramp_rgb(levels: int = 32) -> np.ndarray:
    """uint8 [levels, 3] perceptual ramp (viridis) for continuous values such as outlier scores."""
    import pyqtgraph as pg

    table = pg.colormap.get("viridis").getLookupTable(nPts=levels, alpha=False)
    return np.asarray(table, dtype=np.uint8)[:, :3]


def contrasting_text(rgb: Sequence[int]) -> QColor:
    """Black or white, whichever reads better on the given background."""
    r, g, b = rgb[:3]
    return QColor(0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 150 else QColor(255, 255, 255)
