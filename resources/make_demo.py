"""Regenerate the bundled demo image set in resources/demo/ from photos shipped inside installed packages.

Each group is one licensed source photo seen through random crops, small rotations, flips, colour jitter,
rescaling and JPEG quality, so that a clustering of the folder has a ground truth: the subfolder name.
Run: python resources/make_demo.py [--seed 7] [--per-group 30] [--out resources/demo]
"""

from __future__ import annotations

import argparse
import io
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

DEMO_DIR = Path(__file__).resolve().parent / "demo"
IMAGE_SUFFIXES = (".jpg", ".png", ".webp")


@dataclass(frozen=True)
class Source:
    """One source photo and what the licence note must say about it."""

    group: str
    package: str  # "skimage" or "sklearn"
    filename: str
    title: str
    credit: str
    licence: str
    origin: str
    # (left, top, right, bottom) as fractions: crop centres fall in here so crops show the subject
    focus: tuple[float, float, float, float] = (0.3, 0.3, 0.7, 0.7)
    grey: bool = False


SOURCES: tuple[Source, ...] = (
    Source(
        "cat",
        "skimage",
        "chelsea.png",
        "Chelsea the cat (skimage.data.chelsea)",
        "Stefan van der Walt",
        "CC0 1.0 (no copyright restrictions, per the scikit-image docstring)",
        "scikit-image sample data",
        focus=(0.35, 0.3, 0.65, 0.6),
    ),
    Source(
        "coffee",
        "skimage",
        "coffee.png",
        "Coffee cup (skimage.data.coffee), courtesy of Pikolo Espresso Bar",
        "Rachel Michetti",
        "CC0 1.0 (no copyright restrictions, per the scikit-image docstring)",
        "scikit-image sample data",
        focus=(0.3, 0.3, 0.7, 0.6),
    ),
    Source(
        "astronaut",
        "skimage",
        "astronaut.png",
        "Astronaut Eileen Collins (skimage.data.astronaut)",
        "NASA",
        "Public domain (NASA; 'no known copyright restrictions')",
        "NASA Great Images database, https://flic.kr/p/r9qvLn",
        focus=(0.3, 0.25, 0.6, 0.6),
    ),
    Source(
        "rocket",
        "skimage",
        "rocket.jpg",
        "Launch of DSCOVR on Falcon 9 (skimage.data.rocket)",
        "SpaceX",
        "Public domain (released by SpaceX)",
        "https://www.flickr.com/photos/spacexphotos/16511594820/",
        focus=(0.4, 0.35, 0.6, 0.65),
    ),
    Source(
        "brick",
        "skimage",
        "brick.png",
        "Brick wall texture (skimage.data.brick), greyscale",
        "CC0Textures (Bricks25)",
        "CC0 1.0",
        "https://cc0textures.com/view.php?tex=Bricks25",
        grey=True,
    ),
    Source(
        "hubble",
        "skimage",
        "hubble_deep_field.jpg",
        "Hubble eXtreme Deep Field (skimage.data.hubble_deep_field)",
        "NASA",
        "Public domain (NASA media guidelines)",
        "http://hubblesite.org/newscenter/archive/releases/2012/37/image/a/",
        focus=(0.25, 0.25, 0.75, 0.75),
    ),
    Source(
        "flower",
        "sklearn",
        "flower.jpg",
        "Flower (sklearn.datasets.load_sample_images, flower.jpg)",
        "Flickr user vultilion (scikit-learn's README also names danielbuechele; the photo URL is vultilion's)",
        "CC BY 2.0, https://creativecommons.org/licenses/by/2.0/",
        "https://www.flickr.com/photos/vultilion/6056698931/",
        focus=(0.35, 0.3, 0.65, 0.7),
    ),
    Source(
        "temple",
        "sklearn",
        "china.jpg",
        "Chinese temple (sklearn.datasets.load_sample_images, china.jpg)",
        "Flickr user danielbuechele",
        "CC BY 2.0, https://creativecommons.org/licenses/by/2.0/",
        "https://www.flickr.com/photos/danielbuechele/6061409035/",
        focus=(0.25, 0.35, 0.42, 0.65),
    ),
)


def source_path(source: Source) -> Path:
    """Where the installed package keeps the source photo."""
    if source.package == "skimage":
        import skimage.data

        return Path(skimage.data.__file__).parent / source.filename
    import sklearn.datasets

    return Path(sklearn.datasets.__file__).parent / "images" / source.filename


def _rotated_crop(
    photo: Image.Image, rng: np.random.Generator, focus: tuple[float, float, float, float]
) -> Image.Image | None:
    """Cut a rotated rectangle that lies wholly inside the photo (no black corners), or None."""
    width, height = photo.size
    area_fraction = rng.uniform(0.2, 0.6)
    aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
    crop_w = math.sqrt(area_fraction * width * height * aspect)
    crop_h = crop_w / aspect
    angle = math.radians(rng.uniform(-8.0, 8.0))
    cx = width * rng.uniform(focus[0], focus[2])
    cy = height * rng.uniform(focus[1], focus[3])
    cos, sin = math.cos(angle), math.sin(angle)
    corners = [(sx * crop_w / 2, sy * crop_h / 2) for sx in (-1, 1) for sy in (-1, 1)]
    for dx, dy in corners:
        x, y = cx + cos * dx - sin * dy, cy + sin * dx + cos * dy
        if not (0 <= x <= width - 1 and 0 <= y <= height - 1):
            return None
    out_w, out_h = round(crop_w), round(crop_h)
    # The affine maps an output pixel to the source pixel: centre, rotate, shift back to (cx, cy).
    ox, oy = out_w / 2, out_h / 2
    coeffs = (cos, -sin, cx - cos * ox + sin * oy, sin, cos, cy - sin * ox - cos * oy)
    return photo.transform((out_w, out_h), Image.Transform.AFFINE, coeffs, Image.Resampling.BICUBIC)


def _has_detail(crop: Image.Image) -> bool:
    """True when the crop is not a near-uniform patch of sky or background."""
    grey = np.asarray(crop.convert("L"), dtype=np.float32)
    return float(grey.std()) > 18.0


def augment(photo: Image.Image, source: Source, rng: np.random.Generator) -> Image.Image:
    """One jittered view of the photo: crop, rotate, flip, scale, colour."""
    for _ in range(200):
        crop = _rotated_crop(photo, rng, source.focus)
        if crop is not None and _has_detail(crop):
            break
    else:
        raise RuntimeError(f"no usable crop of {source.filename}; widen its focus box")
    if rng.random() < 0.5:
        crop = ImageOps.mirror(crop)
    long_edge = int(rng.integers(200, 401))
    scale = long_edge / max(crop.size)
    crop = crop.resize(
        (max(1, round(crop.width * scale)), max(1, round(crop.height * scale))), Image.Resampling.LANCZOS
    )
    crop = ImageEnhance.Brightness(crop).enhance(rng.uniform(0.8, 1.2))
    crop = ImageEnhance.Contrast(crop).enhance(rng.uniform(0.85, 1.15))
    if crop.mode == "RGB":
        crop = ImageEnhance.Color(crop).enhance(rng.uniform(0.75, 1.25))
        # A small per-channel gain shifts the white balance the way different cameras do.
        gains = rng.uniform(0.93, 1.07, size=3)
        pixels = np.asarray(crop, dtype=np.float32) * gains
        crop = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    return crop


def _encode(image: Image.Image, suffix: str, rng: np.random.Generator) -> bytes:
    """Encode as JPEG (quality 60-95), WebP or PNG."""
    buffer = io.BytesIO()
    if suffix == ".jpg":
        image.save(buffer, "JPEG", quality=int(rng.integers(60, 96)), optimize=True)
    elif suffix == ".webp":
        image.save(buffer, "WEBP", quality=int(rng.integers(60, 91)), method=4)
    else:
        image.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def _suffix_for(index: int, group_index: int) -> str:
    """Mostly JPEG; one PNG and one WebP per group show that mixed formats cluster together."""
    if index == 7 + group_index % 5:
        return ".png"
    if index == 19 + group_index % 7:
        return ".webp"
    return ".jpg"


def write_licence(out: Path, per_group: int, seed: int) -> None:
    """Write LICENSE.md naming every group's source photo, its author and licence."""
    lines = [
        "# Demo images: sources and licences",
        "",
        f"Each subfolder holds {per_group} views of one photo (random crops of 20-60% of the area, rotations",
        "up to 8 degrees, mirror flips, brightness/contrast/colour jitter, rescaling to a 200-400 px long",
        "edge, JPEG quality 60-95; a few saved as PNG or WebP). They were generated by",
        f"`resources/make_demo.py --seed {seed}` from sample photos bundled with scikit-image and",
        "scikit-learn. The subfolder name is the ground truth for `imgclust evaluate`.",
        "",
        "The derived images are modified versions of the originals. They carry the licence of their",
        "source photo, listed below; CC BY 2.0 images require this attribution when redistributed.",
        "",
        "| Folder | Source photo | Author | Licence | Origin |",
        "| --- | --- | --- | --- | --- |",
    ]
    for source in SOURCES:
        shipped = f"`{source.package}`: `{source.filename}`"
        lines.append(
            f"| `{source.group}/` | {source.title}; file {shipped} | {source.credit} | {source.licence} "
            f"| {source.origin} |"
        )
    lines += [
        "",
        "scikit-image documents its sample data licences in the docstrings of `skimage.data`;",
        "scikit-learn documents its two sample photos in `sklearn/datasets/images/README.txt`.",
        "",
    ]
    (out / "LICENSE.md").write_text("\n".join(lines), encoding="utf-8")


def make_demo(out: Path = DEMO_DIR, *, per_group: int = 30, seed: int = 7) -> list[Path]:
    """Write per_group views of every source into out/<group>/ and the licence note; return the files."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written: list[Path] = []
    for group_index, source in enumerate(SOURCES):
        photo = Image.open(source_path(source))
        photo = photo.convert("L" if source.grey else "RGB")
        folder = out / source.group
        # Only our own folders are replaced, so stray files elsewhere in out/ survive a rerun.
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        for index in range(1, per_group + 1):
            view = augment(photo, source, rng)
            target = folder / f"{source.group}_{index:03d}{_suffix_for(index, group_index)}"
            target.write_bytes(_encode(view, target.suffix, rng))
            written.append(target)
    write_licence(out, per_group, seed)
    return written


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: regenerate the demo set and print a summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEMO_DIR)
    parser.add_argument("--per-group", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    files = make_demo(args.out, per_group=args.per_group, seed=args.seed)
    total = sum(path.stat().st_size for path in files)
    print(f"wrote {len(files)} images in {len(SOURCES)} groups to {args.out} ({total / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
