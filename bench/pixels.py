"""Time pixel-colour segmentation (core.pixels) on a generated 24 MP photo-like image.

Run: .venv/bin/python bench/pixels.py [--megapixels 24] [--k 4]
The image has 4 colour regions (sky, field, a disc, a stripe) with noise; the bench reports the seconds
for fixed k and for automatic k, whether the recovered area shares match the drawn ones, and the time to
decode the same picture from a JPEG and to write the class map PNG.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from imgclust_desktop.core.pixels import cluster_pixels, load_image, save_class_map

COLOURS = np.array([(70, 130, 220), (60, 170, 70), (230, 200, 40), (200, 50, 50)], np.float32)


def regions(height: int, width: int) -> np.ndarray:
    """Class per pixel: sky above, field below, a disc and a vertical stripe."""
    yy, xx = np.ogrid[:height, :width]
    truth = np.where(yy < height * 0.4, 0, 1).astype(np.uint8) * np.ones((1, width), np.uint8)
    truth[(yy - height * 0.6) ** 2 + (xx - width * 0.3) ** 2 < (height * 0.2) ** 2] = 2
    truth[:, int(width * 0.75) : int(width * 0.85)] = 3
    return truth


def make_image(height: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    truth = regions(height, width)
    rng = np.random.default_rng(seed)
    image = np.empty((height, width, 3), np.uint8)
    for start in range(0, height, 500):  # row blocks keep the float noise small in memory
        block = COLOURS[truth[start : start + 500]] + rng.normal(0, 10, (min(500, height - start), width, 3))
        image[start : start + 500] = np.clip(block, 0, 255).astype(np.uint8)
    return image, truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, default=24)
    parser.add_argument("--k", type=int, default=4)
    args = parser.parse_args()
    width = int(round((args.megapixels * 1e6 * 1.5) ** 0.5))
    height = int(round(args.megapixels * 1e6 / width))
    clock = time.perf_counter()
    image, truth = make_image(height, width)
    print(
        f"image {width} x {height} = {width * height / 1e6:.1f} MP, generated in {time.perf_counter() - clock:.1f} s"
    )
    true_shares = np.sort(np.bincount(truth.ravel(), minlength=4) / truth.size)[::-1]

    for k in (args.k, None):
        result = cluster_pixels(image, k)
        error = (
            np.abs(np.sort(result.shares)[::-1][: len(true_shares)] - true_shares).max()
            if result.k == 4
            else None
        )
        curve = ""
        if result.k_curve:
            pairs = zip(result.k_curve["k"], result.k_curve["score"], strict=True)
            curve = " (silhouette " + ", ".join(f"k{k_}={s:.3f}" for k_, s in pairs) + ")"
        print(
            f"k={'auto' if k is None else k}: {result.seconds:.2f} s, {result.k} classes{curve}"
            f", fitted on {result.sampled:,} pixels, largest share error vs drawn regions "
            + (f"{error:.4f}" if error is not None else "n/a")
        )

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "photo.jpg"
        Image.fromarray(image).save(source, quality=90)
        clock = time.perf_counter()
        loaded = load_image(source)
        decoded = time.perf_counter() - clock
        result = cluster_pixels(loaded, args.k)
        clock = time.perf_counter()
        save_class_map(result, Path(tmp) / "classes.png", legend_path=Path(tmp) / "legend.png")
        saved = time.perf_counter() - clock
        print(
            f"from a JPEG file: decode {decoded:.2f} s + cluster {result.seconds:.2f} s + save class map PNG "
            f"{saved:.2f} s = {decoded + result.seconds + saved:.2f} s"
        )


if __name__ == "__main__":
    main()
