"""The bundled demo images and application icons are what the project promises."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "resources" / "demo"
ICONS = ROOT / "icons"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def _load_script(path: Path) -> ModuleType:
    """Import a standalone generator script that is not part of the package."""
    name = f"_imgclust_script_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class body runs.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _demo_images() -> list[Path]:
    return sorted(p for p in DEMO.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _groups() -> list[Path]:
    return sorted(p for p in DEMO.iterdir() if p.is_dir())


def test_demo_set_has_the_promised_size_and_groups():
    images = _demo_images()
    assert 100 <= len(images) <= 300
    total_bytes = sum(p.stat().st_size for p in images)
    assert total_bytes <= 10 * 1024 * 1024
    groups = _groups()
    assert len(groups) >= 5
    for group in groups:
        members = [p for p in images if p.parent == group]
        assert len(members) >= 10, f"{group.name} has only {len(members)} images"
        # Images sit directly in their group folder: the parent folder is the ground truth.
        assert all(p.name.startswith(f"{group.name}_") for p in members)
    # Mixed formats are part of the demo: the app must cluster a PNG and a WebP with their JPEG siblings.
    assert {p.suffix for p in images} >= {".jpg", ".png", ".webp"}


def test_every_demo_image_decodes_and_shows_something():
    seen_digests: dict[str, Path] = {}
    for path in _demo_images():
        with Image.open(path) as image:
            image.load()
            assert 200 <= max(image.size) <= 400, path
            grey = np.asarray(image.convert("L"), dtype=np.float32)
        # A near-uniform crop (sky, haze) would be a useless demo image.
        assert grey.std() > 10, f"{path} is almost featureless"
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert digest not in seen_digests, f"{path} duplicates {seen_digests.get(digest)}"
        seen_digests[digest] = path


def test_demo_groups_are_visually_distinct():
    """Even a crude colour histogram tells the groups apart, so the demo can cluster cleanly."""
    features, labels = [], []
    for path in _demo_images():
        with Image.open(path) as image:
            quantised = np.asarray(image.convert("RGB").resize((64, 64)), dtype=np.int32) // 64
        bins = quantised[..., 0] * 16 + quantised[..., 1] * 4 + quantised[..., 2]
        features.append(np.bincount(bins.ravel(), minlength=64) / bins.size)
        labels.append(path.parent.name)
    features_arr, labels_arr = np.stack(features), np.array(labels)
    names = sorted(set(labels))
    correct = 0
    for i in range(len(labels_arr)):
        # Leave-one-out nearest centroid: the image itself must not pull its own centroid.
        others = np.ones(len(labels_arr), bool)
        others[i] = False
        centroids = np.stack([features_arr[others & (labels_arr == n)].mean(0) for n in names])
        predicted = names[int(np.argmin(((centroids - features_arr[i]) ** 2).sum(1)))]
        correct += predicted == labels_arr[i]
    assert correct / len(labels_arr) >= 0.9


def test_licence_names_the_source_of_every_group():
    licence = (DEMO / "LICENSE.md").read_text(encoding="utf-8")
    for group in _groups():
        rows = [line for line in licence.splitlines() if line.startswith(f"| `{group.name}/`")]
        assert len(rows) == 1, f"LICENSE.md has no row for {group.name}/"
        assert re.search(r"CC0|CC BY|[Pp]ublic domain", rows[0]), rows[0]
        assert re.search(r"`[\w.]+\.(png|jpg)`", rows[0]), f"{group.name}/ row names no source file"


def test_make_demo_is_reproducible_and_writes_a_licence(tmp_path):
    make_demo = _load_script(ROOT / "resources" / "make_demo.py")
    first = make_demo.make_demo(tmp_path / "a", per_group=2, seed=3)
    second = make_demo.make_demo(tmp_path / "b", per_group=2, seed=3)
    assert len(first) == 2 * len(make_demo.SOURCES)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    other_seed = make_demo.make_demo(tmp_path / "c", per_group=2, seed=4)
    assert [p.read_bytes() for p in first] != [p.read_bytes() for p in other_seed]
    assert (tmp_path / "a" / "LICENSE.md").read_text() == (tmp_path / "b" / "LICENSE.md").read_text()


@pytest.mark.parametrize("size", PNG_SIZES)
def test_icon_png_has_its_size_and_a_rounded_transparent_corner(size):
    with Image.open(ICONS / "png" / f"imgclust-{size}.png") as image:
        assert image.format == "PNG"
        assert image.size == (size, size)
        rgba = image.convert("RGBA")
    assert rgba.getpixel((0, 0))[3] == 0  # outside the rounded backdrop
    assert rgba.getpixel((size // 2, size // 2))[3] == 255


def test_ico_and_icns_hold_the_platform_sizes():
    with Image.open(ICONS / "imgclust.ico") as ico:
        assert ico.format == "ICO"
        assert {(s, s) for s in (16, 24, 32, 48, 64, 128, 256)} <= set(ico.info["sizes"])
        ico.size = (16, 16)
        ico.load()
        assert ico.size == (16, 16)
    with Image.open(ICONS / "imgclust.icns") as icns:
        assert icns.format == "ICNS"
        assert {(512, 512, 2), (256, 256, 1), (16, 16, 2)} <= set(icns.info["sizes"])
    assert "<svg" in (ICONS / "imgclust.svg").read_text(encoding="utf-8")


def test_committed_pngs_match_a_fresh_render_of_the_svg():
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    make_icons = _load_script(ICONS / "make_icons.py")
    for size in (16, 64):
        fresh = np.asarray(make_icons.render_svg(make_icons.SVG_PATH, size), dtype=np.int16)
        with Image.open(ICONS / "png" / f"imgclust-{size}.png") as committed:
            stored = np.asarray(committed.convert("RGBA"), dtype=np.int16)
        assert np.abs(fresh - stored).max() <= 2, (
            f"icons/png/imgclust-{size}.png is stale: rerun make_icons.py"
        )
