"""Write a labelled photo set: each class folder is one real scene seen through many random views.

Usage: python bench/make_photoset.py DEST [--per-scene 40] [--scenes astronaut coffee ...] [--seed 0]
Writes DEST/photoset/<scene>/<scene>_<n>.jpg. The scenes are real photographs bundled with scikit-image
and scikit-learn (nothing is downloaded). Each view is a random crop (35-100 % of the area, aspect 3:4 to
4:3), a horizontal flip half the time, a colour shift (brightness, contrast, saturation, per-channel
white balance), a random output size (long edge 160-400 px) and a JPEG quality from 20 to 95, so a
clustering must group views by what they show, not by their exact pixels. The same seed writes the same
files.
"""

from __future__ import annotations

import argparse
import io
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from skimage import data

        return getattr(data, name)()

    return load


def _sklearn(filename: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image

        return load_sample_image(filename)

    return load


# Photographs only (no synthetic test patterns); all ship inside the wheels, none needs a download.
SCENES: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": _skimage("astronaut"),
    "chelsea": _skimage("chelsea"),
    "coffee": _skimage("coffee"),
    "rocket": _skimage("rocket"),
    "hubble": _skimage("hubble_deep_field"),
    "ihc": _skimage("immunohistochemistry"),
    "retina": _skimage("retina"),
    "camera": _skimage("camera"),
    "coins": _skimage("coins"),
    "moon": _skimage("moon"),
    "page": _skimage("page"),
    "grass": _skimage("grass"),
    "china": _sklearn("china.jpg"),
    "flower": _sklearn("flower.jpg"),
}


def load_scene(name: str) -> Image.Image:
    """The scene's photograph as an RGB PIL image (grey photos are stacked to three channels)."""
    if name not in SCENES:
        raise ValueError(f"unknown scene {name!r}; choose from {', '.join(SCENES)}")
    pixels = np.asarray(SCENES[name]())
    if pixels.dtype != np.uint8:
        pixels = (255 * (pixels.astype(np.float64) / max(float(pixels.max()), 1e-9))).astype(np.uint8)
    if pixels.ndim == 2:
        pixels = np.stack([pixels] * 3, axis=-1)
    return Image.fromarray(pixels[..., :3]).convert("RGB")


def random_view(photo: Image.Image, rng: np.random.Generator) -> tuple[bytes, dict]:
    """One random view of photo as JPEG bytes, and the parameters that made it."""
    width, height = photo.size
    area = rng.uniform(0.35, 1.0) * width * height
    aspect = float(np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3))))
    crop_w = int(min(width, round(np.sqrt(area * aspect))))
    crop_h = int(min(height, round(np.sqrt(area / aspect))))
    left = int(rng.integers(0, width - crop_w + 1))
    top = int(rng.integers(0, height - crop_h + 1))
    view = photo.crop((left, top, left + crop_w, top + crop_h))
    flip = bool(rng.random() < 0.5)
    if flip:
        view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    brightness, contrast, saturation = rng.uniform(0.7, 1.3), rng.uniform(0.7, 1.3), rng.uniform(0.6, 1.4)
    view = ImageEnhance.Brightness(view).enhance(brightness)
    view = ImageEnhance.Contrast(view).enhance(contrast)
    view = ImageEnhance.Color(view).enhance(saturation)
    balance = rng.uniform(0.85, 1.15, size=3)
    shifted = np.asarray(view, dtype=np.float32) * balance
    view = Image.fromarray(np.clip(shifted, 0, 255).astype(np.uint8))
    long_edge = int(rng.integers(160, 401))
    scale = long_edge / max(view.size)
    view = view.resize(
        (max(1, round(view.size[0] * scale)), max(1, round(view.size[1] * scale))), Image.Resampling.LANCZOS
    )
    quality = int(rng.integers(20, 96))
    buffer = io.BytesIO()
    view.save(buffer, "JPEG", quality=quality)
    params = {
        "crop": (left, top, crop_w, crop_h),
        "flip": flip,
        "brightness": round(float(brightness), 3),
        "contrast": round(float(contrast), 3),
        "saturation": round(float(saturation), 3),
        "white_balance": [round(float(b), 3) for b in balance],
        "size": view.size,
        "jpeg_quality": quality,
    }
    return buffer.getvalue(), params


def make_photoset(
    dest: Path, *, per_scene: int = 40, scenes: Sequence[str] | None = None, seed: int = 0
) -> Path:
    """Write DEST/photoset/<scene>/<scene>_<n>.jpg; returns the photoset folder."""
    if per_scene < 1:
        raise ValueError("per_scene must be at least 1")
    names = list(scenes or SCENES)
    root = Path(dest) / "photoset"
    for name in names:
        photo = load_scene(name)
        # Seeded by name, so a scene's views do not depend on which other scenes are chosen.
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for n in range(per_scene):
            jpeg, _ = random_view(photo, rng)
            (folder / f"{name}_{n:03d}.jpg").write_bytes(jpeg)
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dest", type=Path, help="parent folder; the set goes to DEST/photoset")
    parser.add_argument("--per-scene", type=int, default=40, help="views per scene (default 40)")
    parser.add_argument("--scenes", nargs="+", choices=list(SCENES), help="subset of scenes (default all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    root = make_photoset(args.dest, per_scene=args.per_scene, scenes=args.scenes, seed=args.seed)
    count = sum(1 for _ in root.glob("*/*.jpg"))
    print(f"{root}: {count} images, {len(list(root.iterdir()))} scenes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
