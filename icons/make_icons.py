"""Render icons/imgclust.svg to PNG sizes, a multi-size Windows .ico and a macOS .icns.

Run: QT_QPA_PLATFORM=offscreen python icons/make_icons.py [--out icons]
"""

from __future__ import annotations

import argparse
import io
import os
import xml.etree.ElementTree as ET
from pathlib import Path

from PIL import Image

ICON_DIR = Path(__file__).resolve().parent
SVG_PATH = ICON_DIR / "imgclust.svg"
PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)  # 256 is the largest size the ICO format holds
ICNS_SIZES = (32, 64, 128, 256, 512, 1024)  # what Pillow's ICNS writer stores (16 px comes from 32 @1x)
# At 32 px and below the landscape glyph is 2-5 pixels of mottle inside each tile, so small sizes drop it.
GLYPH_MIN_SIZE = 48
SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"


def svg_for_size(svg_path: Path, size: int) -> bytes:
    """The SVG source, with the photo glyph emptied out when size is too small to show it."""
    data = svg_path.read_bytes()
    if size >= GLYPH_MIN_SIZE:
        return data
    ET.register_namespace("", SVG_NS)
    ET.register_namespace("xlink", XLINK_NS)
    root = ET.fromstring(data)
    glyph = root.find(f".//{{{SVG_NS}}}g[@id='photo']")
    if glyph is None:
        raise ValueError(f"{svg_path} has no <g id='photo'> glyph to drop at small sizes")
    for child in list(glyph):
        glyph.remove(child)
    return ET.tostring(root, encoding="utf-8")


def render_svg(svg_path: Path, size: int) -> Image.Image:
    """Render the SVG (small-size variant below GLYPH_MIN_SIZE) to a size x size RGBA image with QtSvg."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    # QtSvg paints on a QImage without a window, but font and platform setup wants an application.
    _app = QGuiApplication.instance() or QGuiApplication([])
    renderer = QSvgRenderer(QByteArray(svg_for_size(svg_path, size)))
    if not renderer.isValid():
        raise ValueError(f"{svg_path} is not an SVG that QtSvg can render")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    buffer.close()
    return Image.open(io.BytesIO(bytes(data))).convert("RGBA")


def make_icons(out: Path = ICON_DIR, svg_path: Path = SVG_PATH) -> list[Path]:
    """Write png/imgclust-<size>.png, imgclust.ico and imgclust.icns into out; return the files."""
    renders = {size: render_svg(svg_path, size) for size in sorted({*PNG_SIZES, *ICO_SIZES, *ICNS_SIZES})}
    (out / "png").mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for size in PNG_SIZES:
        target = out / "png" / f"imgclust-{size}.png"
        renders[size].save(target, optimize=True)
        written.append(target)
    # Each size comes from its own render, not a downscale, so small sizes stay as crisp as Qt draws them.
    ico = out / "imgclust.ico"
    renders[256].save(
        ico,
        sizes=[(s, s) for s in ICO_SIZES],
        append_images=[renders[s] for s in ICO_SIZES if s != 256],
    )
    icns = out / "imgclust.icns"
    renders[1024].save(icns, append_images=[renders[s] for s in ICNS_SIZES if s != 1024])
    written += [ico, icns]
    return written


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: regenerate every icon file from the SVG."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ICON_DIR)
    args = parser.parse_args(argv)
    for path in make_icons(args.out):
        print(f"wrote {path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
