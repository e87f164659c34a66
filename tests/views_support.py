"""Realistic synthetic sessions for the view tests and benchmarks: blobs, folders, real JPEG thumbnails."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw


def make_session(
    n: int = 300,
    k: int = 6,
    *,
    seed: int = 0,
    noise_fraction: float = 0.05,
    dim: int = 32,
    root: str = "/data/photos",
) -> Any:
    """A clustered session of n images in k blobs (some noise), with features, linkage and a k-curve."""
    from scipy.cluster.hierarchy import linkage

    from imgclust_desktop.core.session import ClusterInfo, Session

    rng = np.random.default_rng(seed)
    centres = rng.uniform(-10, 10, size=(k, 2))
    sizes = rng.multinomial(n, rng.dirichlet(np.full(k, 3.0)))
    truth = np.repeat(np.arange(k), sizes)
    rng.shuffle(truth)
    coords = centres[truth] + rng.normal(0, 1.0, size=(n, 2))
    feature_centres = rng.normal(0, 1, size=(k, dim))
    features = feature_centres[truth] + rng.normal(0, 0.35, size=(n, dim))
    labels = truth.copy()
    labels[rng.random(n) < noise_fraction] = -1
    outlier = np.clip(np.linalg.norm(coords - centres[truth], axis=1) / 3.0, 0, 1)
    outlier[labels < 0] = np.clip(outlier[labels < 0] + 0.4, 0, 1)
    folders = [f"{name}" for name in ("beach", "forest", "city", "snow", "desert", "night", "food", "cats")]
    paths = [f"{root}/{folders[t % len(folders)]}/img_{i:05d}.jpg" for i, t in enumerate(truth)]
    cluster_ids = sorted(int(c) for c in np.unique(labels[labels >= 0]))
    medoids = {}
    for c in cluster_ids:
        rows = np.flatnonzero(labels == c)
        centre = features[rows].mean(axis=0)
        medoids[c] = int(rows[np.argmin(np.linalg.norm(features[rows] - centre, axis=1))])
    centroids = np.array([features[labels == c].mean(axis=0) for c in cluster_ids])
    link = linkage(centroids, method="ward") if len(cluster_ids) >= 2 else None
    ks = list(range(2, 11))
    fields = dict(
        paths=paths,
        features=features.astype(np.float32),
        coords=coords.astype(np.float32),
        labels=labels.astype(np.int64),
        outlier_score=outlier.astype(np.float32),
        duplicate_group=np.full(n, -1, dtype=np.int64),
        excluded=np.zeros(n, dtype=bool),
        model_id="synthetic",
        inputs=[root],
        params={"seed": seed},
        timings={},
        scores={"silhouette": 0.5},
        k_curve={
            "k": ks,
            "score": [float(0.6 - 0.02 * (x - k) ** 2) for x in ks],
            "criterion": "silhouette",
            "chosen": k,
        },
        linkage=link,
        linkage_cluster_ids=cluster_ids,
        skipped=[],
        edits=[],
        path=None,
    )
    names = {c: f"{folders[c % len(folders)]} {c}" for c in cluster_ids}
    clusters = {c: ClusterInfo(id=c, name=names[c], medoid_index=medoids[c]) for c in cluster_ids}
    return Session(clusters=clusters, **fields)


def thumbnail_jpeg(label: int, variant: int, size: int = 128) -> bytes:
    """A small real JPEG: a shape and colour per cluster, varied per image (aspect ratio too)."""
    rng = np.random.default_rng(variant)
    hue = (label * 47) % 360 if label >= 0 else 0
    sat = 70 if label >= 0 else 0
    w = size if variant % 3 else int(size * 0.75)
    h = size if variant % 3 != 1 else int(size * 0.75)
    image = Image.new("HSV", (w, h), (int(hue * 255 / 360), int(sat * 255 / 100 * 0.5), 235)).convert("RGB")
    draw = ImageDraw.Draw(image)
    colour = tuple(
        int(v)
        for v in Image.new("HSV", (1, 1), (int(hue * 255 / 360), int(sat * 2.55), 180))
        .convert("RGB")
        .getpixel((0, 0))
    )
    cx, cy, r = w / 2 + rng.normal(0, 8), h / 2 + rng.normal(0, 8), min(w, h) * (0.25 + 0.1 * rng.random())
    shape = label % 3 if label >= 0 else 3
    box = [cx - r, cy - r, cx + r, cy + r]
    if shape == 0:
        draw.ellipse(box, fill=colour)
    elif shape == 1:
        draw.rectangle(box, fill=colour)
    elif shape == 2:
        draw.polygon([(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)], fill=colour)
    else:
        draw.line([(0, 0), (w, h)], fill=(90, 90, 90), width=6)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def fill_thumbnail_cache(
    session: Any, cache_dir: Path, *, distinct: int | None = None
) -> tuple[list[str], Any]:
    """Write a thumbnail per image into a real ThumbnailCache; returns (keys, cache)."""
    from imgclust_desktop.core.cache import ThumbnailCache

    cache = ThumbnailCache(cache_dir)
    keys = [f"key-{i:07d}" for i in range(len(session.paths))]
    made: dict[tuple[int, int], bytes] = {}
    items = []
    for i, label in enumerate(np.asarray(session.labels)):
        variant = i if distinct is None else i % distinct
        jpeg = made.get((int(label), variant))
        if jpeg is None:
            jpeg = made[(int(label), variant)] = thumbnail_jpeg(int(label), variant)
        items.append((keys[i], {128: jpeg}))
        if len(items) >= 5000:
            cache.put_many(items)
            items = []
    cache.put_many(items)
    return keys, cache
