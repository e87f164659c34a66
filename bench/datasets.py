"""Write the public benchmark sets as class folders: DATA/<set>/<class>/<file>.

Usage: python bench/datasets.py DATA [digits] [fashion-mnist] [fashion-mnist-70k] [fashion-mnist-1m] [many-groups]
                                     [digits-0-1] [digits-3-8] [fashion-trouser-bag] [fashion-shirt-coat]
       (no set named: digits, fashion-mnist, many-groups and the four two-group folders)

  digits             1,797 8x8 handwritten digits bundled with scikit-learn, 10 classes
  fashion-mnist      the 10,000-image test split of Fashion-MNIST, 10 classes
                     (Debian: apt-get install dataset-fashion-mnist)
  fashion-mnist-70k  all 70,000 Fashion-MNIST images (train + test), for the scaling runs
  fashion-mnist-1m   every one of those 70,000 in 15 variants (1,050,000 PNGs, about 4 GB on disk): the
                     original and 14 augmented copies (shift of up to 2 px, mirror, contrast 0.75-1.25,
                     noise), for the one-million-image run (bench/scaling.py --source fashion-mnist-1m)
  digits-0-1, digits-3-8, fashion-trouser-bag, fashion-shirt-coat
                     two-group folders: two classes of digits or of the Fashion-MNIST test split (360, 357,
                     2,000 and 2,000 images), for the automatic level on a folder of 2 groups
  many-groups        100 groups of 8 views each (800 JPEGs), like the bursts of a photo library: every
                     group is one real photo seen through 8 random shots (crop of 75-100 % of the area,
                     flip, a tilt of up to 6 degrees, exposure and colour shift, size, JPEG quality). The
                     photos: 16 scikit-image / scikit-learn samples and the pictures of the Debian packages
                     plasma-workspace-wallpapers, ukui-wallpapers, lomiri-wallpapers, mate-backgrounds
                     (nature) and gnome-backgrounds (apt-get install them first).

The class folder is the ground truth: `imgclust evaluate SESSION --truth parent-folder` scores a clustering of
DATA/<set> against it. The same seed writes the same files. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import gzip
import io
import re
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")  # where Debian's dataset-fashion-mnist installs it
FASHION_CLASSES = (
    "tshirt_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot",
)  # fmt: skip
# Where the Debian wallpaper packages install their photos (plasma: one folder per wallpaper, several sizes).
WALLPAPER_GLOBS = (
    "/usr/share/wallpapers/*/contents/images",  # plasma-workspace-wallpapers
    "/usr/share/backgrounds",  # ukui-wallpapers, lomiri-wallpapers
    "/usr/share/backgrounds/mate/nature",  # mate-backgrounds (its photographs; not its abstract gradients)
    "/usr/share/backgrounds/gnome",  # gnome-backgrounds (a light and a dark version of each: light only)
)
# Pictures left out because another source is the same picture to the eye: groups must be tellable apart.
NEAR_TWINS = {"lomiri-default-background"}  # the same orange-purple gradient as warty-final-ubuntu
PICTURE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
TILES = 1
VIEWS = 8


def _write_pngs(dest: Path, images: np.ndarray, labels: np.ndarray, class_names: list[str]) -> None:
    for name in class_names:
        (dest / name).mkdir(parents=True, exist_ok=True)
    for i, (pixels, label) in enumerate(zip(images, labels.tolist(), strict=True)):
        Image.fromarray(pixels).save(dest / class_names[label] / f"{i:05d}.png")
    print(f"{dest}: {len(images)} images, {len(set(labels.tolist()))} classes")


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits as uint8 pixels (0-16 scaled to 0-255) and their labels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return np.round(bunch.images * (255 / 16)).astype(np.uint8), bunch.target


def digits(data: Path) -> None:
    _write_pngs(data / "digits", *_digits_arrays(), [str(d) for d in range(10)])


def _idx_file(name: str, header: int) -> np.ndarray:
    with gzip.open(FASHION_DIR / name) as f:
        return np.frombuffer(f.read(), np.uint8, offset=header)


def _fashion_arrays(full: bool) -> tuple[np.ndarray, np.ndarray]:
    if not FASHION_DIR.is_dir():
        sys.exit(f"Fashion-MNIST is not in {FASHION_DIR}: apt-get install dataset-fashion-mnist")
    splits = ["t10k"] if not full else ["train", "t10k"]
    images = np.concatenate([_idx_file(f"{s}-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28) for s in splits])
    labels = np.concatenate([_idx_file(f"{s}-labels-idx1-ubyte.gz", 8) for s in splits]).astype(np.int64)
    return images, labels


def fashion_mnist(data: Path, *, full: bool = False) -> None:
    images, labels = _fashion_arrays(full)
    _write_pngs(
        data / ("fashion-mnist-70k" if full else "fashion-mnist"), images, labels, list(FASHION_CLASSES)
    )


def two_classes(data: Path, source: str, first: str, second: str) -> None:
    """Two classes of digits or Fashion-MNIST (test split) in DATA/<source>-<first>-<second>."""
    if source == "digits":
        images, labels = _digits_arrays()
        names = [str(d) for d in range(10)]
    else:
        images, labels = _fashion_arrays(full=False)
        names = list(FASHION_CLASSES)
    keep = np.isin(labels, [names.index(first), names.index(second)])
    _write_pngs(data / f"{source}-{first}-{second}", images[keep], labels[keep], names)
    for name in set(names) - {first, second}:
        (data / f"{source}-{first}-{second}" / name).rmdir()


MILLION_VARIANTS = 15


def fashion_variant(images: np.ndarray, variant: int, seed: int = 0) -> np.ndarray:
    """Variant 0 is the images as they are; the others shift each image by up to 2 px (zero fill), mirror
    half of them, scale the contrast by 0.75-1.25 and add a little noise: the same garment, another shot."""
    if variant == 0:
        return images
    rng = np.random.default_rng([seed, variant])
    n = len(images)
    out = np.zeros_like(images)
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2)))
    dy, dx = rng.integers(0, 5, n), rng.integers(0, 5, n)
    for sy in range(5):  # 25 shift classes, each one vectorised slice
        for sx in range(5):
            rows = np.flatnonzero((dy == sy) & (dx == sx))
            out[rows] = padded[rows, sy : sy + 28, sx : sx + 28]
    mirror = rng.random(n) < 0.5
    out[mirror] = out[mirror, :, ::-1]
    gain = rng.uniform(0.75, 1.25, (n, 1, 1)).astype(np.float32)
    noisy = out * gain + rng.normal(0, 6, out.shape).astype(np.float32)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def _write_variant(args: tuple[Path, int]) -> int:
    dest, variant = args
    images, labels = _fashion_arrays(full=True)
    pixels = fashion_variant(images, variant)
    for i, label in enumerate(labels.tolist()):
        Image.fromarray(pixels[i]).save(dest / FASHION_CLASSES[label] / f"{i:05d}_v{variant:02d}.png")
    return len(pixels)


def fashion_mnist_million(data: Path) -> None:
    """70,000 x MILLION_VARIANTS PNGs in the ten class folders, written by one process per core."""
    from concurrent.futures import ProcessPoolExecutor

    dest = data / "fashion-mnist-1m"
    for name in FASHION_CLASSES:
        (dest / name).mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor() as pool:
        count = sum(pool.map(_write_variant, [(dest, v) for v in range(MILLION_VARIANTS)]))
    print(f"{dest}: {count} images, {len(FASHION_CLASSES)} classes")


# ----------------------------------------------------------------------------------------------- many-groups


def _library_photos() -> Iterator[tuple[str, np.ndarray]]:
    """The photographs that ship inside scikit-image and scikit-learn (no synthetic test patterns)."""
    from skimage import data as skdata
    from sklearn.datasets import load_sample_image

    for name in ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry",
                 "retina", "camera", "coins", "moon", "page", "grass", "brick", "clock", "gravel"):  # fmt: skip
        yield name, np.asarray(getattr(skdata, name)())
    yield "motorcycle", np.asarray(skdata.stereo_motorcycle()[0])
    for name in ("china.jpg", "flower.jpg"):
        yield name.split(".")[0], np.asarray(load_sample_image(name))


def _wallpaper_photos() -> Iterator[tuple[str, Path]]:
    """One file per installed wallpaper: plasma's largest size, and every ukui / lomiri background."""
    from glob import glob

    for pattern in WALLPAPER_GLOBS:
        for folder in sorted(glob(pattern)):
            files = [p for p in sorted(Path(folder).iterdir()) if p.suffix.lower() in PICTURE_SUFFIXES]
            # One version of each picture: not gnome's dark twin, not a copy at another size (Name_WxH).
            files = [p for p in files if not p.stem.endswith("-d") and not re.search(r"_\d+x\d+$", p.stem)]
            if not files:
                continue
            if "contents" in Path(folder).parts:  # plasma: sizes of one picture; keep the largest
                largest = max(files, key=lambda p: p.stat().st_size)
                yield Path(folder).parts[-3], largest
            else:
                for file in files:
                    if file.stem not in NEAR_TWINS:
                        yield file.stem.replace("_", "-"), file


def _as_rgb(pixels: np.ndarray) -> Image.Image:
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8:
        pixels = (255 * (pixels.astype(np.float64) / max(float(pixels.max()), 1e-9))).astype(np.uint8)
    if pixels.ndim == 2:
        pixels = np.stack([pixels] * 3, axis=-1)
    return Image.fromarray(pixels[..., :3]).convert("RGB")


def _tiles(photo: Image.Image, count: int) -> list[Image.Image]:
    """The photo cut into `count` side-by-side tiles along its long axis."""
    width, height = photo.size
    if width >= height:
        edges = np.linspace(0, width, count + 1).round().astype(int)
        return [photo.crop((int(a), 0, int(b), height)) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    edges = np.linspace(0, height, count + 1).round().astype(int)
    return [photo.crop((0, int(a), width, int(b))) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def augmented_view(tile: Image.Image, rng: np.random.Generator) -> bytes:
    """One random view of a tile as JPEG bytes, like one shot of a burst: crop, flip, slight rotation,
    exposure and colour shift, size and JPEG quality."""
    width, height = tile.size
    area = rng.uniform(0.75, 1.0) * width * height
    aspect = float(np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3))))
    crop_w = int(min(width, max(8, round(np.sqrt(area * aspect)))))
    crop_h = int(min(height, max(8, round(np.sqrt(area / aspect)))))
    left = int(rng.integers(0, width - crop_w + 1))
    top = int(rng.integers(0, height - crop_h + 1))
    view = tile.crop((left, top, left + crop_w, top + crop_h))
    if rng.random() < 0.5:
        view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    long_edge = int(rng.integers(160, 321))
    scale = long_edge / max(view.size)
    view = view.resize((max(8, round(view.size[0] * scale)), max(8, round(view.size[1] * scale))),
                       Image.Resampling.BILINEAR)  # fmt: skip
    # A slight tilt, then the largest centred crop that leaves out the corners the rotation exposed.
    angle = float(rng.uniform(-6, 6))
    w, h = view.size
    view = view.rotate(angle, resample=Image.Resampling.BILINEAR)
    margin = np.sin(np.radians(abs(angle)))
    dx, dy = int(np.ceil(h * margin / 2)) + 1, int(np.ceil(w * margin / 2)) + 1
    if w > 2 * dx + 8 and h > 2 * dy + 8:
        view = view.crop((dx, dy, w - dx, h - dy))
    view = ImageEnhance.Brightness(view).enhance(rng.uniform(0.85, 1.15))
    view = ImageEnhance.Contrast(view).enhance(rng.uniform(0.85, 1.15))
    view = ImageEnhance.Color(view).enhance(rng.uniform(0.85, 1.15))
    balance = rng.uniform(0.95, 1.05, size=3)
    view = Image.fromarray(np.clip(np.asarray(view, np.float32) * balance, 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    view.save(buffer, "JPEG", quality=int(rng.integers(40, 96)))
    return buffer.getvalue()


def many_groups(data: Path, *, seed: int = 0, tiles: int = TILES, views: int = VIEWS) -> None:
    root = data / "many-groups"
    photos: list[tuple[str, Image.Image]] = [(n, _as_rgb(p)) for n, p in _library_photos()]
    for name, path in _wallpaper_photos():
        with Image.open(path) as im:
            im.draft("RGB", (1600, 1600))  # JPEG: decode at a reduced size; views are <= 320 px anyway
            photo = im.convert("RGB")
        photo.thumbnail((1600, 1600))
        photos.append((name, photo))
    if len(photos) < 100:
        print(f"note: only {len(photos)} photos found; for the full set: apt-get install "
              "plasma-workspace-wallpapers ukui-wallpapers lomiri-wallpapers mate-backgrounds gnome-backgrounds",
              file=sys.stderr)  # fmt: skip
    count, taken = 0, set()
    for name, photo in photos:
        while name in taken:  # two packages can ship pictures of the same name
            name += "+"
        taken.add(name)
        for t, tile in enumerate(_tiles(photo, tiles)):
            group = name if tiles == 1 else f"{name}-{t}"
            rng = np.random.default_rng([seed, zlib.crc32(group.encode())])  # independent of the other groups
            folder = root / group
            folder.mkdir(parents=True, exist_ok=True)
            for v in range(views):
                (folder / f"{group}_{v}.jpg").write_bytes(augmented_view(tile, rng))
                count += 1
    print(f"{root}: {count} images, {len(photos) * tiles} groups")


SETS = {
    "digits": digits,
    "fashion-mnist": fashion_mnist,
    "fashion-mnist-70k": lambda data: fashion_mnist(data, full=True),
    "fashion-mnist-1m": fashion_mnist_million,
    "many-groups": many_groups,
    "digits-0-1": lambda data: two_classes(data, "digits", "0", "1"),
    "digits-3-8": lambda data: two_classes(data, "digits", "3", "8"),
    "fashion-trouser-bag": lambda data: two_classes(data, "fashion", "trouser", "bag"),
    "fashion-shirt-coat": lambda data: two_classes(data, "fashion", "shirt", "coat"),
}


QUALITY_SETS = (  # what bench/quality.py runs by default
    "digits", "fashion-mnist", "many-groups", "digits-0-1", "digits-3-8", "fashion-trouser-bag", "fashion-shirt-coat",
)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data", type=Path, metavar="DATA", help="parent folder; each set goes to DATA/<set>")
    parser.add_argument("sets", nargs="*", choices=[*SETS, []], metavar="SET", help=", ".join(SETS))
    args = parser.parse_args(argv)
    for name in args.sets or [*QUALITY_SETS]:
        SETS[name](args.data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
