"""Classical features for parity with clustimage: raw pixels, HOG and perceptual hashes (no torch)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .base import as_rgb_uint8, fit_square

HASH_BITS = 8  # hash_size: an 8x8 grid -> 64-bit hashes, imagehash's default
COLOR_BINBITS = 3  # colorhash: 14 bins x 3 bits = 42 bits
HOG_ORIENTATIONS, HOG_CELL = 8, 8  # clustimage's HOG settings


@dataclass(frozen=True)
class ClassicalSpec:
    display_name: str
    input_size: int
    dim: Callable[[int], int]  # output width for a given input size
    description: str


CATALOGUE: dict[str, ClassicalSpec] = {
    "pixels": ClassicalSpec(
        "Raw pixels (colour, 32 px)",
        32,
        lambda s: s * s * 3,
        "Resized RGB pixels; PCA later compresses them.",
    ),
    "pixels-gray": ClassicalSpec(
        "Raw pixels (grayscale, 64 px)",
        64,
        lambda s: s * s,
        "Resized grayscale pixels, clustimage's default.",
    ),
    "hog": ClassicalSpec(
        "HOG (edges and shapes)",
        128,
        lambda s: HOG_ORIENTATIONS * (s // HOG_CELL) ** 2,
        "Histogram of oriented gradients on a 128 px grayscale image.",
    ),
    "ahash": ClassicalSpec(
        "Average hash", 128, lambda s: HASH_BITS**2, "64-bit perceptual hash: near-duplicates."
    ),
    "phash": ClassicalSpec(
        "Perceptual hash (DCT)", 128, lambda s: HASH_BITS**2, "64-bit DCT hash: robust to edits."
    ),
    "dhash": ClassicalSpec(
        "Difference hash", 128, lambda s: HASH_BITS**2, "64-bit gradient hash: near-duplicates."
    ),
    "whash": ClassicalSpec("Wavelet hash", 128, lambda s: HASH_BITS**2, "64-bit Haar-wavelet hash."),
    "colorhash": ClassicalSpec(
        "Colour hash",
        128,
        lambda s: 14 * COLOR_BINBITS,
        "42-bit hue/saturation histogram hash: groups by colour.",
    ),
}


def create(model_id: str, *, input_size: int | None = None) -> ClassicalExtractor:
    """Build a classical extractor; input_size overrides the resize side where it matters."""
    spec = CATALOGUE[model_id]
    size = int(input_size or spec.input_size)
    if not 8 <= size <= 1024:
        raise ValueError(f"input size {size} is out of range (8..1024)")
    if model_id == "hog" and size < HOG_CELL:
        raise ValueError(f"HOG needs at least {HOG_CELL} px")
    return ClassicalExtractor(model_id, spec, size)


class ClassicalExtractor:
    """One class for all classical features; preprocess returns a uint8 numpy batch."""

    needs_download = False
    licence = "n/a (no weights)"
    has_text = False
    device = "cpu"

    def __init__(self, model_id: str, spec: ClassicalSpec, input_size: int) -> None:
        self.id = model_id
        self.display_name = spec.display_name
        self.input_size = input_size
        self.dim = spec.dim(input_size)
        self.grayscale = model_id in ("pixels-gray", "hog")
        self.cache_key = f"{model_id}@{input_size}"

    def preprocess(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """RGB arrays -> uint8 [n, S, S, 3] (or [n, S, S] grayscale), squashed like clustimage does."""
        s = self.input_size
        squares = [fit_square(as_rgb_uint8(im), s, "squash") for im in images]
        batch = np.stack(squares) if squares else np.zeros((0, s, s, 3), np.uint8)
        if self.grayscale:
            # ITU-R 601 luma, the same weights PIL's convert("L") uses
            batch = (batch @ np.array([0.299, 0.587, 0.114], np.float32)).round().astype(np.uint8)
        return batch

    def embed(self, batch: np.ndarray) -> np.ndarray:
        """float32 [n, dim]: pixels in [0, 1], HOG histograms, or hash bits as 0/1."""
        if len(batch) == 0:
            return np.zeros((0, self.dim), np.float32)
        if self.id.startswith("pixels"):
            return batch.reshape(len(batch), -1).astype(np.float32) / 255.0
        if self.id == "hog":
            from skimage.feature import hog

            return np.stack(
                [
                    hog(
                        image,
                        orientations=HOG_ORIENTATIONS,
                        pixels_per_cell=(HOG_CELL, HOG_CELL),
                        cells_per_block=(1, 1),
                        feature_vector=True,
                    )
                    for image in batch
                ]
            ).astype(np.float32)
        return np.stack([self._hash_bits(image) for image in batch])

    def _hash_bits(self, image: np.ndarray) -> np.ndarray:
        import imagehash
        from PIL import Image

        pil = Image.fromarray(image)
        if self.id == "colorhash":
            value = imagehash.colorhash(pil, binbits=COLOR_BINBITS)
        else:
            function = {"ahash": imagehash.average_hash}.get(self.id) or getattr(imagehash, self.id)
            value = function(pil, hash_size=HASH_BITS)
        return np.asarray(value.hash, dtype=np.float32).reshape(-1)
