"""Pixels mode: segment one image by clustering its pixel colours with k-means.

k-means learns its centres on a random sample of pixels (all of them when the image is small) and then
every pixel goes to its nearest centre in chunks, so a 24 MP photo takes seconds (bench/pixels.py). k is
given, or chosen by the best silhouette over a range on a small sample. Classes come out ordered by area,
largest first, each with its mean colour (the palette) and its share of the image.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from .progress import CancelFlag, Progress, ProgressCallback, check_cancel, never_cancelled, no_progress

FIT_SAMPLE = 100_000  # pixels k-means is fitted on
AUTO_SAMPLE = 10_000  # pixels each candidate k is fitted on when choosing k
SILHOUETTE_SAMPLE = 2_000  # pixels the silhouette is measured on
CHUNK = 1 << 20  # pixels assigned per step (bounded memory, a cancel check each step)


@dataclass
class PixelClusters:
    labels: np.ndarray  # uint8 [H, W] (uint16 past 255 classes): class of each pixel, 0 = largest area
    palette: np.ndarray  # uint8 [k, 3]: the mean colour of each class
    shares: np.ndarray  # float64 [k]: each class's fraction of the pixels, descending, sums to 1
    k_curve: (
        dict | None
    )  # {"k": [...], "score": [...], "criterion": "silhouette", "chosen": k} when automatic
    sampled: int  # pixels the centres were learned from
    seconds: float

    @property
    def k(self) -> int:
        return len(self.palette)


def load_image(path: str | os.PathLike) -> np.ndarray:
    """The full-resolution RGB pixels of an image file (EXIF orientation, alpha on white); DecodeError."""
    from .decode import decode

    return decode(os.fspath(path), max_side=1 << 30, thumb_sizes=()).image


def cluster_pixels(
    image: np.ndarray,
    k: int | None = None,
    *,
    k_range: tuple[int, int] = (2, 10),
    sample_size: int = FIT_SAMPLE,
    seed: int = 0,
    on_progress: ProgressCallback = no_progress,
    cancelled: CancelFlag = never_cancelled,
) -> PixelClusters:
    """Cluster an RGB uint8 image's pixel colours into k classes (k=None: best silhouette in k_range)."""
    from sklearn.cluster import KMeans

    started = time.perf_counter()
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    if image.ndim != 3 or image.shape[2] < 3 or image.size == 0:
        raise ValueError(f"expected an RGB image, got an array of shape {image.shape}")
    height, width = image.shape[:2]
    pixels = image[..., :3].reshape(-1, 3)
    rng = np.random.default_rng(seed)
    sample = _sample(pixels, sample_size, rng)
    distinct = len(np.unique(sample, axis=0))
    k_curve = None
    if k is None:
        k, k_curve = choose_k(sample, k_range, seed=seed, on_progress=on_progress, cancelled=cancelled)
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    k = min(k, distinct)  # k-means cannot make more classes than there are colours
    check_cancel(cancelled)
    on_progress(Progress("pixels", 0, len(pixels), message=f"fitting {k} colour classes"))
    model = KMeans(n_clusters=k, n_init=2, random_state=seed).fit(sample)
    centres = model.cluster_centers_
    labels = assign(pixels, model, on_progress=on_progress, cancelled=cancelled)
    counts = np.bincount(labels, minlength=k)
    order = np.argsort(-counts, kind="stable")  # class 0 = largest area
    rank = np.empty(k, np.int64)
    rank[order] = np.arange(k)
    dtype = np.uint8 if k <= 256 else np.uint16
    labels = rank.astype(dtype)[labels].reshape(height, width)
    palette = np.clip(np.rint(centres[order]), 0, 255).astype(np.uint8)
    shares = counts[order] / counts.sum()
    return PixelClusters(labels, palette, shares, k_curve, len(sample), time.perf_counter() - started)


def _sample(pixels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    if len(pixels) <= size:
        return pixels.astype(np.float32)
    return pixels[rng.choice(len(pixels), size, replace=False)].astype(np.float32)


def choose_k(
    sample: np.ndarray,
    k_range: tuple[int, int] = (2, 10),
    *,
    seed: int = 0,
    on_progress: ProgressCallback = no_progress,
    cancelled: CancelFlag = never_cancelled,
) -> tuple[int, dict]:
    """The k in k_range with the best silhouette of k-means on a sample of pixel colours."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(seed)
    fit_on = sample[rng.choice(len(sample), min(len(sample), AUTO_SAMPLE), replace=False)]
    scored_on = fit_on[: min(len(fit_on), SILHOUETTE_SAMPLE)]
    distinct = len(np.unique(fit_on, axis=0))
    low, high = k_range[0], min(k_range[1], distinct)
    if low < 2 or high < low:
        return max(1, min(low, distinct)), {"k": [], "score": [], "criterion": "silhouette", "chosen": 1}
    ks, scores = [], []
    for i, k in enumerate(range(low, high + 1)):
        check_cancel(cancelled)
        on_progress(Progress("choosing k", i, high - low + 1, message=f"trying k = {k}"))
        # One thread: on 10k points OpenMP start-up costs more than it saves, and 20x more on a busy machine.
        with threadpool_limits(1):
            model = KMeans(n_clusters=k, n_init=2, random_state=seed).fit(fit_on)
            labels = model.predict(scored_on)
            score = silhouette_score(scored_on, labels) if len(set(labels.tolist())) > 1 else -1.0
        ks.append(k)
        scores.append(float(score))
    on_progress(Progress("choosing k", len(ks), len(ks)))
    best = ks[int(np.argmax(scores))]
    return best, {"k": ks, "score": scores, "criterion": "silhouette", "chosen": best}


def assign(
    pixels: np.ndarray,
    model,
    *,
    on_progress: ProgressCallback = no_progress,
    cancelled: CancelFlag = never_cancelled,
) -> np.ndarray:
    """Index of the nearest k-means centre for every pixel ([n, 3] uint8), in bounded chunks."""
    labels = np.empty(len(pixels), np.int64)
    for start in range(0, len(pixels), CHUNK):
        check_cancel(cancelled)
        # KMeans.predict runs sklearn's threaded nearest-centre code: ~5x numpy's (n, 3) @ (3, k) here.
        labels[start : start + CHUNK] = model.predict(pixels[start : start + CHUNK].astype(np.float32))
        on_progress(Progress("pixels", min(start + CHUNK, len(pixels)), len(pixels), message="assigning"))
    return labels


def class_map_image(result: PixelClusters) -> np.ndarray:
    """The class map as an RGB uint8 image: every pixel painted with its class's palette colour."""
    return result.palette[result.labels]


def save_class_map(
    result: PixelClusters, path: str | os.PathLike, *, legend_path: str | os.PathLike | None = None
) -> None:
    """Write the class map as PNG (and a legend PNG: swatch, colour and area share per class)."""
    from PIL import Image

    _save_png(Image.fromarray(class_map_image(result)), path)
    if legend_path is not None:
        _save_png(legend_image(result), legend_path)


def _save_png(image, path: str | os.PathLike) -> None:
    # Written beside the target then renamed: a failed save never leaves half a file under the name.
    path = os.fspath(path)
    tmp = f"{path}.part"
    try:
        image.save(tmp, format="PNG", compress_level=1)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def legend_rows(result: PixelClusters) -> list[tuple[int, str, float]]:
    """(class, "#rrggbb", share) per class, largest first."""
    return [
        (i, "#{:02x}{:02x}{:02x}".format(*map(int, colour)), float(share))
        for i, (colour, share) in enumerate(zip(result.palette, result.shares, strict=True))
    ]


def legend_image(result: PixelClusters, row_height: int = 28, width: int = 260):
    """A small PIL image listing each class: a colour swatch, its hex colour and its area share."""
    from PIL import Image, ImageDraw

    rows = legend_rows(result)
    legend = Image.new("RGB", (width, row_height * len(rows) + 8), "white")
    draw = ImageDraw.Draw(legend)
    for i, (cls, hex_colour, share) in enumerate(rows):
        top = 4 + i * row_height
        draw.rectangle(
            [6, top + 3, 6 + row_height - 6, top + row_height - 3], fill=hex_colour, outline="black"
        )
        draw.text((row_height + 8, top + 8), f"class {cls}  {hex_colour}  {share * 100:5.1f}%", fill="black")
    return legend
