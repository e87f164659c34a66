"""Compare the face detectors core.faces offers on photos that ship with scikit-image.

Run: .venv/bin/python bench/faces.py
Positives: the astronaut (1 face), the cameraman (1 face, turned), a "group" of 6 LFW faces (scikit-image's
lfw_subset, 25 px faces scaled to 100 px and tiled on grey), and the 100 LFW faces one by one (each
scaled to 100 px on a 160 px grey canvas). Negatives: every other bundled colour/grey photo without a
person (coffee, chelsea the cat, rocket, hubble, ...) and the 100 LFW non-face patches.
"""

from __future__ import annotations

import time

import numpy as np
from PIL import Image
from skimage import data

from imgclust_desktop.core.faces import detect_faces

NEGATIVE_PHOTOS = (
    "coffee",
    "chelsea",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "brick",
    "coins",
    "moon",
    "page",
    "retina",
    "grass",
    "gravel",
    "clock",
    "logo",
)


def rgb(name: str) -> np.ndarray:
    image = getattr(data, name)()
    if image.ndim == 2:
        image = np.stack([image] * 3, -1)
    return np.ascontiguousarray(image[..., :3]).astype(np.uint8)


def on_canvas(patch: np.ndarray, side: int = 100, canvas: int = 160) -> np.ndarray:
    small = Image.fromarray((patch * 255).astype(np.uint8)).resize((side, side), Image.Resampling.BICUBIC)
    out = np.full((canvas, canvas), 128, np.uint8)
    offset = (canvas - side) // 2
    out[offset : offset + side, offset : offset + side] = np.asarray(small)
    return np.stack([out] * 3, -1)


def lfw_group(faces: np.ndarray, count: int = 6) -> np.ndarray:
    tiles = [on_canvas(faces[i]) for i in range(count)]
    return np.concatenate([np.concatenate(tiles[:3], 1), np.concatenate(tiles[3:6], 1)], 0)


def main() -> None:
    lfw = data.lfw_subset()
    faces, non_faces = lfw[:100], lfw[100:]
    photos = {
        "astronaut": (rgb("astronaut"), 1),
        "camera": (rgb("camera"), 1),
        "lfw group": (lfw_group(faces), 6),
    }
    print(f"{'detector':<9} {'photo':<12} {'faces':>5} {'found':>5}")
    for detector in ("haar", "lbp"):
        started = time.perf_counter()
        for name, (image, truth) in photos.items():
            print(f"{detector:<9} {name:<12} {truth:>5} {len(detect_faces(image, detector=detector)):>5}")
        hits = sum(bool(detect_faces(on_canvas(f), detector=detector, min_size=40)) for f in faces)
        false_lfw = sum(bool(detect_faces(on_canvas(f), detector=detector, min_size=40)) for f in non_faces)
        false_photos = {n: len(detect_faces(rgb(n), detector=detector)) for n in NEGATIVE_PHOTOS}
        seconds = time.perf_counter() - started
        print(
            f"{detector}: LFW faces found {hits}/100, LFW non-faces flagged {false_lfw}/100, "
            f"false faces in {len(NEGATIVE_PHOTOS)} photos without people: {sum(false_photos.values())} "
            f"({ {k: v for k, v in false_photos.items() if v} }), {seconds:.1f} s for all"
        )
    eyes = [f.eyes is not None for f in detect_faces(rgb("astronaut"))]
    print(f"haar on the astronaut: eyes found for {sum(eyes)}/{len(eyes)} faces")


if __name__ == "__main__":
    main()
